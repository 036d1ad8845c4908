// Chunk and inode digests (spec §3.2): BLAKE3-256 or SHA-256, 32 raw bytes; CRC-32C of chunks.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Digester } from './constants.js';

const require = createRequire(import.meta.url);
type BlakeHash = {
  blake3(data: Uint8Array): Buffer;
  Blake3Hasher: new () => { update(data: Uint8Array): unknown; digest(enc?: string): Buffer | string };
};
// Loaded on first use: FUSE worker threads import the readers but rarely hash.
let blakeMod: BlakeHash | undefined;
const blake = (): BlakeHash => (blakeMod ??= require('@napi-rs/blake-hash') as BlakeHash);

/** Loads the BLAKE3 and CRC-32C addons now (see format/native.ts). */
export function preloadDigesters(): void {
  blake();
  crcImpl();
}

export function digest(data: Uint8Array, algo: Digester): Uint8Array {
  if (algo === 'blake3') return blake().blake3(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  return createHash('sha256').update(data).digest();
}

/** Incremental hasher for digests over concatenations (v5 inode merkle digests). */
export interface Hasher {
  update(data: Uint8Array): void;
  digest(): Uint8Array;
}

export function createHasher(algo: Digester): Hasher {
  if (algo === 'sha256') {
    const h = createHash('sha256');
    return { update: (d) => void h.update(d), digest: () => h.digest() };
  }
  const parts: Uint8Array[] = [];
  return {
    update: (d) => void parts.push(d.slice()),
    digest: () => digest(Buffer.concat(parts), 'blake3'),
  };
}

export function sha256(data: Uint8Array): Uint8Array {
  return createHash('sha256').update(data).digest();
}

export function parseDigester(s: string): Digester | undefined {
  return s === 'blake3' || s === 'sha256' ? s : undefined;
}

// CRC-32C (Castagnoli), reflected poly 0x82F63B78, init/xorout 0xFFFFFFFF. Slicing-by-16 over one
// flat Int32Array table (16 × 256), reading the input as little-endian 32-bit words: ~2.2 GB/s in V8
// vs ~0.9 GB/s for byte-wise slicing-by-8 (it was ≈40% of zstd's time per chunk in the workers).
// Row s of the table advances a byte by s further zero bytes; row 0 is the classic byte table.
const CRC_TABLE: Int32Array = (() => {
  const t = new Int32Array(16 * 256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c;
  }
  for (let s = 1; s < 16; s++) {
    for (let i = 0; i < 256; i++) {
      const prev = t[(s - 1) * 256 + i]!;
      t[s * 256 + i] = (prev >>> 8) ^ t[prev & 0xff]!;
    }
  }
  return t;
})();
/** The word loop reinterprets bytes as host-order int32: only valid on little-endian hosts. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * CRC-32C of `data`, continuing from `seed` (a previous result). Uses @node-rs/crc32 (SSE4.2 / ARMv8
 * CRC instructions) when it loads, else the JS below; NYDUS_CRC32C=js forces the JS one (benchmarks,
 * tests of the fallback). bench/README.md "CRC-32C" has the end-to-end numbers behind this choice.
 */
export function crc32c(data: Uint8Array, seed = 0): number {
  return crcImpl()(data, seed);
}

type CrcFn = (data: Uint8Array, seed: number) => number;
let crcFn: CrcFn | undefined;
function crcImpl(): CrcFn {
  if (crcFn) return crcFn;
  crcFn = crc32cJs;
  if (process.env.NYDUS_CRC32C !== 'js') {
    try {
      const native = (require('@node-rs/crc32') as { crc32c(d: Uint8Array, s?: number): number }).crc32c;
      crcFn = (d, s) => native(d, s) >>> 0;
    } catch {
      // No prebuilt binary for this platform: the JS one is correct, only slower.
    }
  }
  return crcFn;
}

/** The portable CRC-32C (the fallback of crc32c()). */
export function crc32cJs(data: Uint8Array, seed = 0): number {
  const t = CRC_TABLE;
  let crc = ~seed | 0;
  let i = 0;
  const n = data.length;
  if (LITTLE_ENDIAN && n >= 64) {
    // Byte-wise up to a 4-byte aligned address (typed-array views need aligned offsets).
    while ((data.byteOffset + i) & 3) crc = t[(crc ^ data[i++]!) & 0xff]! ^ (crc >>> 8);
    const words = new Int32Array(data.buffer, data.byteOffset + i, (n - i) >>> 2);
    const nw = words.length;
    let w = 0;
    for (; w + 4 <= nw; w += 4) {
      const a = crc ^ words[w]!;
      const b = words[w + 1]!;
      const c = words[w + 2]!;
      const d = words[w + 3]!;
      crc =
        t[3840 + (a & 0xff)]! ^ t[3584 + ((a >>> 8) & 0xff)]! ^ t[3328 + ((a >>> 16) & 0xff)]! ^ t[3072 + (a >>> 24)]! ^
        t[2816 + (b & 0xff)]! ^ t[2560 + ((b >>> 8) & 0xff)]! ^ t[2304 + ((b >>> 16) & 0xff)]! ^ t[2048 + (b >>> 24)]! ^
        t[1792 + (c & 0xff)]! ^ t[1536 + ((c >>> 8) & 0xff)]! ^ t[1280 + ((c >>> 16) & 0xff)]! ^ t[1024 + (c >>> 24)]! ^
        t[768 + (d & 0xff)]! ^ t[512 + ((d >>> 8) & 0xff)]! ^ t[256 + ((d >>> 16) & 0xff)]! ^ t[d >>> 24]!;
    }
    i += w * 4;
  }
  for (; i < n; i++) crc = t[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}
