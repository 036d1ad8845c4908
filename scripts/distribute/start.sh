#!/bin/sh
# start.sh /path/to/mount [--prefetch]
# Run on a node inside a client bundle (the directory named after the distributed directory):
# starts nydusd as a service, pulling from the server on demand into ./cache, and mounts an
# overlay at the mount point. Wrapper over `nydus-distribute node start --bundle-dir <this dir>`.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
cli() {
  if [ -n "${NYDUS_DISTRIBUTE:-}" ]; then $NYDUS_DISTRIBUTE "$@"; return; fi
  # A self-contained bundle (server start --bundle) carries its own Node runtime and programs.
  if [ -x "$HERE/nydus/node" ]; then "$HERE/nydus/node" "$HERE/nydus/nydus-distribute.cjs" "$@"; return; fi
  for home in "${NYDUS_TS_HOME:-}" "__NYDUS_TS_HOME__" "$HERE/../.."; do
    if [ -n "$home" ] && [ -f "$home/bin/nydus-distribute.js" ]; then node "$home/bin/nydus-distribute.js" "$@"; return; fi
  done
  nydus-distribute "$@"
}
if [ $# -lt 1 ]; then echo "usage: sh start.sh /path/to/mount [--prefetch]" >&2; exit 2; fi
MOUNT=$1; shift
cli node start "$MOUNT" --bundle-dir "$HERE" "$@"
