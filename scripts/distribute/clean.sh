#!/bin/sh
# clean.sh [/path/to/mount]
# Unmounts the overlay and the nydus mount, stops the nydusd service and removes what start.sh
# created in this bundle. Wrapper over `nydus-distribute node clean --bundle-dir <this dir>`.
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
cli node clean "$@" --bundle-dir "$HERE"
