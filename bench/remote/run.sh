#!/usr/bin/env bash
# bench/remote/run.sh - lazy loading over an emulated link: nydusd (cold, warm, full prefetch) vs
# download-and-untar of the same tree as .tar.zst, client and server in two network namespaces
# linked by a user-space delay line. Needs root, /dev/fuse, /dev/net/tun, python3, curl, zstd.
# Env: BENCH_MIB [500] RATE_MBIT [100] DELAY_MS [10]. Prints one JSON object.
set -euo pipefail
cd "$(dirname "$0")/../.."
# Node 24 from setup (node_modules/.bin/node); a plain `node` may be older, and the native addons built for 24 crash in it.
export PATH="$PWD/node_modules/.bin:$PATH"
npx tsc -p . >/dev/null || true   # other areas may have type errors in progress; emit still happens
exec node dist/bench/remote/bench.js "$@"
