#!/usr/bin/env bash
# Installs everything the demo and the tests need on a fresh Debian machine (run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
APT_PKGS="erofs-utils squashfs-tools squashfuse docker-registry skopeo umoci apache2-utils b3sum attr fuse3 tree jq zstd lz4 iproute2 curl kmod openssl python3 time containerd runc busybox-static"
missing=""
for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ] && [ "$(id -u)" = 0 ]; then
  echo "setup: installing Debian packages:$missing"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# Node.js: an LTS with node:zlib zstd (>= 22.15). Where the machine's node is older, a pinned runtime
# from the npm registry goes to .node/ and node_modules/.bin/node points at it, so the README's npm
# scripts, npx and `#!/usr/bin/env node` under npm all run it (npm puts node_modules/.bin first).
NODE_PIN=24.22.3
NODE_ARCH=$(uname -m | sed 's/x86_64/x64/; s/aarch64/arm64/')
NODE_DIR="$PWD/.node/node_modules/node-linux-$NODE_ARCH"
# Decide on the machine's node, not on a shim from an earlier run (npm scripts put node_modules/.bin first).
PATH=$(printf %s "$PATH" | tr : '\n' | grep -v '/node_modules/\.bin$' | paste -sd:)
use_pinned=0
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=15)?0:1)' 2>/dev/null; then
  if [ "$("$NODE_DIR/bin/node" -v 2>/dev/null)" != "v$NODE_PIN" ]; then
    echo "setup: node $(node -v 2>/dev/null) is too old; installing node $NODE_PIN into .node/"
    npm install --prefix .node --no-save --no-audit --no-fund --loglevel=error "node-linux-$NODE_ARCH@$NODE_PIN"
  fi
  use_pinned=1
  export PATH="$NODE_DIR/bin:$PATH"
  # node-gyp builds native addons against this runtime's own headers (no download).
  export npm_config_nodedir="$NODE_DIR"
fi
# `npm ci`: exactly the lockfile. Re-run when the lockfile changed or node_modules was installed by another node.
stamp=node_modules/.nydus-setup
want="$(node -p 'process.version + " " + process.versions.modules')"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
  npm ci --no-audit --no-fund
  echo "$want" > "$stamp"
fi
if [ "$use_pinned" = 1 ]; then
  ln -sfn "$NODE_DIR/bin/node" node_modules/.bin/node
fi
npm run build --silent
