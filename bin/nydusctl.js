#!/usr/bin/env node
import "../dist/src/cli/nydusctl.js";
