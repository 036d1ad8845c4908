#!/usr/bin/env node
'use strict';
// CommonJS on purpose (bin/package.json): libuv's thread pool is sized from UV_THREADPOOL_SIZE when
// first used, and an ES module entry starts it (4 threads) before its first line runs. Each FUSE
// worker waiting on /dev/fuse in async mode holds a pool thread, so with the default pool the
// daemon's own cache and backend I/O could starve and a cold read hang. Size it here, first.
const argv = process.argv.slice(2);
let threads = 4;
for (let i = 0; i < argv.length; i++) {
  const m = /^(?:--thread-num|--fuse-threads|-T)(?:=(\d+))?$/.exec(argv[i]);
  if (m) threads = Number(m[1] ?? argv[i + 1]) || threads;
}
if (!process.env.UV_THREADPOOL_SIZE) process.env.UV_THREADPOOL_SIZE = String(Math.min(1024, Math.max(16, threads * 2 + 8)));
import('../dist/src/cli/nydusd.js').catch((e) => {
  process.stderr.write(`nydusd: cannot start (${e && e.message}); run 'npm run build' first?\n`);
  process.exit(70);
});
