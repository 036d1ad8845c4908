#!/usr/bin/env bash
# bench/snapshotter/run.sh - containerd + nydus-snapshotter: pull + run to first output, Nydus vs OCI,
# over an emulated link (client and registry in two network namespaces joined by a user-space delay
# line). Needs root, /dev/fuse, /dev/net/tun, python3, curl, containerd, runc, umoci, skopeo.
# Env: BENCH_MIB [200] RATE_MBIT [100] DELAY_MS [10]. Prints one JSON object.
set -euo pipefail
cd "$(dirname "$0")/../.."
# Node 24 from setup (node_modules/.bin/node); a plain `node` may be older, and the native addons built for 24 crash in it.
export PATH="$PWD/node_modules/.bin:$PATH"
npx tsc -p . >/dev/null || true   # other areas may have type errors in progress; emit still happens
exec node dist/bench/snapshotter/bench.js "$@"
