#!/usr/bin/env node
import "../dist/src/cli/nydus-distribute.js";
