#!/usr/bin/env node
import "../dist/src/cli/nydusify.js";
