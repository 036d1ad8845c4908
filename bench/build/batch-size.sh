#!/usr/bin/env bash
# Image size with and without --batch-size against `tar c | zstd -3` of the same tree, one run
# each side by side (CPU time and peak RSS from /usr/bin/time -v). Not a test.
# usage: bench/build/batch-size.sh [TREE] [OUT_DIR]   (TREE default: a fresh gen_small_files.py tree)
# env: FILES (generated tree size, default 100000), BATCH (default 0x100000), NODE (Node 24)
set -euo pipefail
cd "$(dirname "$0")/../.."
NODE=${NODE:-node_modules/.bin/node}
BATCH=${BATCH:-0x100000}
OUT=${2:-$(mktemp -d /tmp/nb-batch.XXXX)}
TREE=${1:-$OUT/small}
if [ ! -d "$TREE" ]; then python3 bench/build/gen_small_files.py "$TREE" --files "${FILES:-100000}"; fi
mkdir -p "$OUT"
echo "load: $(uptime)"

measure() { # name, command...
  local name=$1
  shift
  /usr/bin/time -v -o "$OUT/$name.time" "$@" >/dev/null 2>"$OUT/$name.err" || { cat "$OUT/$name.err"; exit 1; }
  local cpu rss
  cpu=$(awk -F': ' '/User time/{u=$2} /System time/{s=$2} END{printf "%.2f", u+s}' "$OUT/$name.time")
  rss=$(awk -F': ' '/Maximum resident/{printf "%d", $2/1024}' "$OUT/$name.time")
  echo "$name cpu_s=$cpu rss_mib=$rss wall=$(awk -F': ' '/Elapsed/{print $2}' "$OUT/$name.time")"
}

measure tar-zstd bash -c "tar c -C '$TREE' . | zstd -3 -T0 -q -o '$OUT/tree.tar.zst' -f"
rm -rf "$OUT/plain" "$OUT/batch"
measure nydus-plain "$NODE" bin/nydus-image.js create --log-level warn -B "$OUT/plain.boot" -D "$OUT/plain" "$TREE"
measure nydus-batch "$NODE" bin/nydus-image.js create --log-level warn --batch-size "$BATCH" -B "$OUT/batch.boot" -D "$OUT/batch" "$TREE"

tz=$(stat -c %s "$OUT/tree.tar.zst")
for v in plain batch; do
  blob=$(du -cb "$OUT/$v"/* | tail -1 | cut -f1)
  boot=$(stat -c %s "$OUT/$v.boot")
  awk -v n="$v" -v b="$blob" -v m="$boot" -v t="$tz" 'BEGIN{printf "%s: blob %.1f MiB + bootstrap %.1f MiB = %.1f MiB = %.3f x tar.zst (%.1f MiB)\n", n, b/1048576, m/1048576, (b+m)/1048576, (b+m)/t, t/1048576}'
done
