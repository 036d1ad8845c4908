#!/bin/sh
# serverclean.sh [--work-dir W]
# Stops and removes the nydusd_http_server service and what serverstart.sh created.
# Run from inside nydusdfile/serverfile (where serverstart.sh puts a copy), the work dir is
# its parent; elsewhere ./nydusdfile, as serverstart.sh. Wrapper over `nydus-distribute server clean`.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
cli() {
  if [ -n "${NYDUS_DISTRIBUTE:-}" ]; then $NYDUS_DISTRIBUTE "$@"; return; fi
  for home in "${NYDUS_TS_HOME:-}" "__NYDUS_TS_HOME__" "$HERE/../.."; do
    if [ -n "$home" ] && [ -f "$home/bin/nydus-distribute.js" ]; then node "$home/bin/nydus-distribute.js" "$@"; return; fi
  done
  nydus-distribute "$@"
}
if [ $# -eq 0 ] && [ "$(basename "$HERE")" = serverfile ] && [ -f "$HERE/.nydus-distribute.json" ]; then
  set -- --work-dir "$(dirname "$HERE")"
fi
cli server clean "$@"
