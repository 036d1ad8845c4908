#!/usr/bin/env bash
# bench/distribute/run.sh - file distribution with nydus vs a plain copy, 1 server + 3 nodes in
# network namespaces (per-node 100 Mbit/s, 10 ms links through user-space delay lines).
# Needs root, /dev/fuse, /dev/net/tun, python3, curl. Env: BENCH_MIB [64] RATE_MBIT [100] DELAY_MS [10].
set -euo pipefail
cd "$(dirname "$0")/../.."
# Node 24 from setup (node_modules/.bin/node); a plain `node` may be older, and the native addons built for 24 crash in it.
export PATH="$PWD/node_modules/.bin:$PATH"
npx tsc -p . >/dev/null || true   # other areas may have type errors in progress; emit still happens
exec node dist/bench/distribute/bench.js "$@"
