#!/usr/bin/env node
import "../dist/src/cli/nydus-backend-proxy.js";
