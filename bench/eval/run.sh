#!/usr/bin/env bash
# bench/eval/run.sh - the issue 13 evaluation: nine ways to use one root filesystem, measured and
# written to bench/eval/REPORT.md with SVG charts (bench/eval/charts/). Needs root, /dev/fuse, loop
# devices, kernel EROFS, squashfuse_ll, mksquashfs, skopeo, umoci (+ debootstrap, docker-registry
# and python3 for --full).
#
#   bash bench/eval/run.sh            reduced size (EVAL_SIZE small|tiny; python3 tree from this host)
#   bash bench/eval/run.sh --full     the full evaluation: a Debian bookworm minbase + python3 rootfs
#                                     built by debootstrap (cached), remote = S3 (radosgw) and an OCI
#                                     registry behind a 100 Mbit/s, 10 ms (each way) delay line.
# --full is resumable: the rootfs tarball and the built images are cached under EVAL_CACHE
# (/var/cache/nydus-eval), each finished row is kept there too, so a rerun after an interruption
# continues with the next row (EVAL_FRESH=1 measures everything again).
# Runtime on the 2-vCPU test VM (load average 15-45 from other jobs): first run +9 min for debootstrap
# and +1 min for the images; then ~11 min with EVAL_RUNS=1, so expect ~30 min for the default 3 runs.
# S3: radosgw on a one-node Ceph (bench/eval/ceph.sh, ~1 min to start); EVAL_S3=s3rver skips it.
# Env: EVAL_RUNS [1; --full 3] EVAL_OUT [bench/eval] EVAL_ROWS [a|b] EVAL_NOTE [text for the report] EVAL_S3
#      EVAL_CACHE EVAL_MIRROR [from /etc/apt/sources.list*] NETEM [/work/shared/tools/netem.sh]
set -euo pipefail
cd "$(dirname "$0")/../.."
NODE=$PWD/node_modules/.bin/node   # Node 24 (plain `node` may be older)
[ -x "$NODE" ] || NODE=node
npx tsc -p . >/dev/null || true   # other areas may have type errors in progress; emit still happens
if [ "${1:-}" != --full ]; then exec "$NODE" dist/bench/eval/eval.js "$@"; fi

[ "$(id -u)" = 0 ] || { echo "run.sh --full: needs root" >&2; exit 1; }
export EVAL_SIZE=full
export EVAL_CACHE=${EVAL_CACHE:-/var/cache/nydus-eval}
export EVAL_ROOTFS_TAR=$EVAL_CACHE/rootfs-bookworm-minbase-python3.tar
mkdir -p "$EVAL_CACHE"
T0=$(date +%s)

# 1. The root filesystem: debootstrap once, then a tarball (kept; delete it to rebuild).
if [ ! -s "$EVAL_ROOTFS_TAR" ]; then
  command -v debootstrap >/dev/null || apt-get install -y --no-install-recommends debootstrap
  mirror=${EVAL_MIRROR:-$(grep -hoE '(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null | grep -oE 'https?://[^ ]+' | head -1)}
  mirror=${mirror:-http://deb.debian.org/debian}
  build=$(mktemp -d "$EVAL_CACHE/debootstrap.XXXXXX")
  echo "run.sh: debootstrap bookworm minbase + python3 from $mirror (log: $build.log)" >&2
  debootstrap --variant=minbase --include=python3 bookworm "$build/root" "$mirror" >"$build.log" 2>&1
  rm -f "$build/root/var/cache/apt/archives/"*.deb
  tar -C "$build/root" --numeric-owner --xattrs -cf "$EVAL_ROOTFS_TAR.tmp" .
  mv "$EVAL_ROOTFS_TAR.tmp" "$EVAL_ROOTFS_TAR"
  rm -rf "$build" "$build.log"
fi

# 2. The line: two network namespaces joined by the user-space delay line (no sch_netem here).
NETEM=${NETEM:-/work/shared/tools/netem.sh}
export NS=nyeval NETEM_STATE=$EVAL_CACHE/netem DELAY_MS=10 RATE_MBIT=100 PORT=8099
"$NETEM" down >/dev/null 2>&1 || true   # a previous run that was killed
trap '"$NETEM" down >/dev/null 2>&1 || true' EXIT
"$NETEM" up "$NETEM_STATE/serve" >/dev/null
export EVAL_SERVER_NS=$NS-s EVAL_SERVER_IP=198.18.0.2 EVAL_NET_DEV=$NS-c0
export EVAL_LINK="a ${RATE_MBIT} Mbit/s, ${DELAY_MS} ms each way (RTT $((2 * DELAY_MS)) ms) delay line (netem.sh, user-space delayline.py over TUN)"

# 3. The evaluation, inside the client namespace (mounts stay in this mount namespace).
"$NETEM" exec "$NODE" dist/bench/eval/eval.js
echo "run.sh --full: done in $(( $(date +%s) - T0 )) s" >&2
