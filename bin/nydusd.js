#!/usr/bin/env node
// Idle FUSE workers and cache I/O share libuv's pool: size it before anything touches it.
process.env.UV_THREADPOOL_SIZE ??= "16";
await import("../dist/src/cli/nydusd.js");
