#!/usr/bin/env bash
# CRC-32C end to end (not a test): `nydus-image create` CPU time with the native @node-rs/crc32
# binding (default) vs the JS fallback (NYDUS_CRC32C=js), alternating, same tree, same run.
# Usage: bash bench/build/crc32c.sh [TREE=/usr/lib/x86_64-linux-gnu] [RUNS=3]
set -euo pipefail
cd "$(dirname "$0")/../.."
TREE=${1:-/usr/lib/x86_64-linux-gnu}
RUNS=${2:-3}
NODE=node_modules/.bin/node
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
echo "tree $TREE ($(du -sh "$TREE" | cut -f1)); load: $(uptime | sed 's/.*load/load/')"
# Microbenchmark first: 1 MiB buffers, GiB/s of each implementation in this process.
$NODE --input-type=module -e "
import { crc32c, crc32cJs } from './dist/src/format/digest.js';
import { randomBytes } from 'node:crypto';
const b = randomBytes(1 << 20);
for (const [n, f] of [['native', crc32c], ['js', crc32cJs]]) {
  for (let i = 0; i < 64; i++) f(b);
  const t = performance.now(); for (let i = 0; i < 1024; i++) f(b);
  console.log('micro', n, (1 / ((performance.now() - t) / 1000)).toFixed(2), 'GiB/s');
}"
for comp in none zstd; do
  for i in $(seq "$RUNS"); do
    for impl in native js; do
      rm -rf "$OUT/b"; mkdir -p "$OUT/b"
      env=(); [ "$impl" = js ] && env=(NYDUS_CRC32C=js)
      /usr/bin/time -f "%U %S %e %M" -o "$OUT/t" env "${env[@]}" $NODE bin/nydus-image.js create --fs-version 6 --compressor "$comp" \
        --chunk-size 0x100000 --bootstrap "$OUT/b/bootstrap" --blob-dir "$OUT/b" "$TREE" >/dev/null
      read -r u s e m <"$OUT/t"
      echo "e2e compressor=$comp impl=$impl run=$i cpu_s=$(echo "$u + $s" | bc) wall_s=$e rss_kb=$m"
    done
  done
done
echo "load after: $(uptime | sed 's/.*load/load/')"
