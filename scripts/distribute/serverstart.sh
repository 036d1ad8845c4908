#!/bin/sh
# serverstart.sh -i SERVER_IP -d /path/to/dir1,/path/to/dir2 [--work-dir W] [--port P] [--bundle]
# Converts each directory to a nydus image and starts nydus-backend-proxy as the
# nydusd_http_server service. Thin wrapper over `nydus-distribute server start`.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
# nydus-ts to use: $NYDUS_DISTRIBUTE, else the install that wrote this script, else this checkout.
cli() {
  if [ -n "${NYDUS_DISTRIBUTE:-}" ]; then $NYDUS_DISTRIBUTE "$@"; return; fi
  for home in "${NYDUS_TS_HOME:-}" "__NYDUS_TS_HOME__" "$HERE/../.."; do
    if [ -n "$home" ] && [ -f "$home/bin/nydus-distribute.js" ]; then node "$home/bin/nydus-distribute.js" "$@"; return; fi
  done
  nydus-distribute "$@"
}
cli server start "$@"
