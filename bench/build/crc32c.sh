#!/usr/bin/env bash
# CRC-32C end to end (not a test): `nydus-image create` CPU time with the native @node-rs/crc32
# binding (default) vs the JS fallback (NYDUS_CRC32C=js), alternating, same tree, same run.
# Usage: bash bench/build/crc32c.sh [TREE=/usr/lib/x86_64-linux-gnu] [RUNS=3]   (E2E=0: skip the create runs)
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
# The chunk pipeline alone (what each builder worker does per 1 MiB chunk: BLAKE3, CRC-32C, zstd),
# in this process, CPU time per round, the two CRCs alternating; data = the first 256 MiB of TREE.
$NODE --input-type=module -e "
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { crc32c, crc32cJs, digest } from './dist/src/format/digest.js';
import { compressChunk } from './dist/src/format/compress.js';
const parts = []; let size = 0;
const walk = (d) => { for (const n of readdirSync(d)) { if (size >= 256 << 20) return; const p = join(d, n); let st; try { st = statSync(p); } catch { continue; }
  if (st.isDirectory()) walk(p); else if (st.isFile() && st.size > 0) { const b = readFileSync(p); parts.push(b); size += b.length; } } };
walk('$TREE');
const all = Buffer.concat(parts).subarray(0, 256 << 20); const chunks = [];
for (let o = 0; o < all.length; o += 1 << 20) chunks.push(all.subarray(o, o + (1 << 20)));
for (const comp of ['none', 'zstd']) for (let r = 0; r < $RUNS; r++) for (const [n, f] of [['native', crc32c], ['js', crc32cJs]]) {
  const c0 = process.cpuUsage();
  for (const ch of chunks) { digest(ch, 'blake3'); f(ch); if (comp === 'zstd') compressChunk(ch, 'zstd'); }
  const c = process.cpuUsage(c0);
  console.log('pipeline compressor=' + comp, 'impl=' + n, 'run=' + (r + 1), 'cpu_s=' + ((c.user + c.system) / 1e6).toFixed(3), 'MiB=' + chunks.length);
}"
[ "${E2E:-1}" = 0 ] && exit 0
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
