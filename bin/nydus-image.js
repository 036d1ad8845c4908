#!/usr/bin/env node
import "../dist/src/cli/nydus-image.js";
