// zstd level 3 and lz4 block, 1 MiB chunks of mixed data: the zstd-napi / lz4-napi addons vs node:zlib.
// Usage: node dist/bench/codec/zstd-lz4.js [MiB=64] [runs=3]
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import zlib from 'node:zlib';

const require = createRequire(import.meta.url);
const zstdNapi = require('zstd-napi') as {
  Compressor: new () => { setParameters(p: Record<string, number>): void; compress(d: Uint8Array): Buffer };
  Decompressor: new () => { decompress(d: Uint8Array): Buffer };
};
const lz4 = require('lz4-napi') as { compressSync(d: Uint8Array): Buffer; uncompressSync(d: Uint8Array): Buffer };
const MiB = 1 << 20;
const total = Number(process.argv[2] ?? 64);
const runs = Number(process.argv[3] ?? 3);

// Mixed data: executables and libraries, text, 1/8 random (incompressible), 1/16 zeros.
function corpus(): Buffer[] {
  const parts: Buffer[] = [];
  let size = 0;
  const want = (total * MiB * 13) / 16;
  const walk = (d: string): void => {
    for (const n of readdirSync(d)) {
      if (size >= want) return;
      const p = join(d, n);
      let st;
      try { st = statSync(p); } catch { continue; }
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && st.size > 0 && st.size < 64 * MiB) { const b = readFileSync(p); parts.push(b); size += b.length; }
    }
  };
  for (const d of ['/usr/bin', '/usr/share/doc', '/usr/lib/x86_64-linux-gnu']) walk(d);
  const all = Buffer.concat(parts).subarray(0, want);
  const chunks: Buffer[] = [];
  for (let o = 0; o < all.length; o += MiB) chunks.push(all.subarray(o, o + MiB));
  for (let i = 0; i < total / 8; i++) chunks.splice((i * 7) % chunks.length, 0, randomBytes(MiB));
  for (let i = 0; i < total / 16; i++) chunks.splice((i * 5) % chunks.length, 0, Buffer.alloc(MiB));
  return chunks;
}

function time(label: string, chunks: Buffer[], f: (b: Buffer) => Buffer): { out: Buffer[]; mibs: number } {
  let best = Infinity;
  let out: Buffer[] = [];
  for (let r = 0; r < runs; r++) {
    const t = process.hrtime.bigint();
    out = chunks.map(f);
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e9);
  }
  const inBytes = chunks.reduce((s, c) => s + c.length, 0);
  const mibs = inBytes / MiB / best;
  process.stdout.write(`${label.padEnd(40)} ${mibs.toFixed(0).padStart(6)} MiB/s (best of ${runs})\n`);
  return { out, mibs };
}

const chunks = corpus();
const inBytes = chunks.reduce((s, c) => s + c.length, 0);
process.stdout.write(`node ${process.version}, ${chunks.length} chunks of 1 MiB, ${(inBytes / MiB).toFixed(0)} MiB\n`);
const zc = new zstdNapi.Compressor();
zc.setParameters({ compressionLevel: 3 });
const zd = new zstdNapi.Decompressor();
const a = time('zstd-napi compress (level 3)', chunks, (b) => zc.compress(b));
const zopts = (b: Buffer): zlib.ZstdOptions => ({ params: { [zlib.constants.ZSTD_c_compressionLevel]: 3 }, pledgedSrcSize: b.length } as zlib.ZstdOptions);
const b = time('node:zlib zstdCompressSync (level 3)', chunks, (c) => zlib.zstdCompressSync(c, zopts(c)));
time('node:zlib zstdCompressSync chunkSize 1 MiB', chunks, (c) => zlib.zstdCompressSync(c, { ...zopts(c), chunkSize: MiB }));
const ratio = (o: Buffer[]): string => (o.reduce((s, c) => s + c.length, 0) / inBytes).toFixed(4);
process.stdout.write(`  ratio: zstd-napi ${ratio(a.out)}, node:zlib ${ratio(b.out)}; identical frames: ${a.out.every((x, i) => x.equals(b.out[i]!))}\n`);
time('zstd-napi decompress', a.out, (c) => zd.decompress(c));
time('node:zlib zstdDecompressSync', a.out, (c) => zlib.zstdDecompressSync(c));
time('node:zlib zstdDecompressSync chunkSize 1 MiB', a.out, (c) => zlib.zstdDecompressSync(c, { chunkSize: MiB }));
const l = time('lz4-napi compressSync', chunks, (c) => lz4.compressSync(c));
time('lz4-napi uncompressSync', l.out, (c) => lz4.uncompressSync(c));
process.stdout.write(`  lz4 ratio ${ratio(l.out)}; node:zlib has no lz4\n`);
