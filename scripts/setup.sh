#!/usr/bin/env bash
# Installs everything the demo and the tests need on a fresh Debian machine (run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
APT_PKGS="erofs-utils squashfs-tools squashfuse docker-registry skopeo umoci apache2-utils b3sum attr fuse3 tree jq zstd lz4 iproute2 curl kmod openssl python3 containerd runc busybox-static"
missing=""
for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ] && [ "$(id -u)" = 0 ]; then
  echo "setup: installing Debian packages:$missing"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ package.json -nt node_modules/.package-lock.json ]; then
  # Not `npm ci`: its strict check trips over the lockfile's optional per-platform packages
  # (@napi-rs/* for other OSes) that npm itself records without entries. The lockfile still pins versions.
  npm install --no-audit --no-fund
fi
npm run build --silent
