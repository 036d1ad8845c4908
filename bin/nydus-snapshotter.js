#!/usr/bin/env node
'use strict';
// CommonJS shim (bin/package.json): loads the compiled ESM entry point.
import('../dist/src/cli/nydus-snapshotter.js').catch((e) => {
  process.stderr.write(`nydus-snapshotter: cannot start (${e && e.message}); run 'npm run build' first?\n`);
  process.exit(70);
});
