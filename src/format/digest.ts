// Chunk and inode digests (spec §3.2): BLAKE3-256 or SHA-256, 32 raw bytes; CRC-32C of chunks.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Digester } from './constants.js';

const require = createRequire(import.meta.url);
const blake = require('@napi-rs/blake-hash') as {
  blake3(data: Uint8Array): Buffer;
  Blake3Hasher: new () => { update(data: Uint8Array): unknown; digest(enc?: string): Buffer | string };
};

export function digest(data: Uint8Array, algo: Digester): Uint8Array {
  if (algo === 'blake3') return blake.blake3(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
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

// CRC-32C (Castagnoli), reflected poly 0x82F63B78, init/xorout 0xFFFFFFFF; slicing-by-8 tables.
const CRC_TABLES: Uint32Array[] = (() => {
  const t: Uint32Array[] = [];
  const t0 = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t0[i] = c >>> 0;
  }
  t.push(t0);
  for (let s = 1; s < 8; s++) {
    const prev = t[s - 1]!;
    const ts = new Uint32Array(256);
    for (let i = 0; i < 256; i++) ts[i] = ((prev[i]! >>> 8) ^ t0[prev[i]! & 0xff]!) >>> 0;
    t.push(ts);
  }
  return t;
})();

export function crc32c(data: Uint8Array, seed = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = CRC_TABLES as [Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array];
  let crc = ~seed >>> 0;
  let i = 0;
  const n = data.length;
  for (; i + 8 <= n; i += 8) {
    const a = (crc ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
    crc =
      t7[a & 0xff]! ^ t6[(a >>> 8) & 0xff]! ^ t5[(a >>> 16) & 0xff]! ^ t4[a >>> 24]! ^
      t3[data[i + 4]!]! ^ t2[data[i + 5]!]! ^ t1[data[i + 6]!]! ^ t0[data[i + 7]!]!;
  }
  for (; i < n; i++) crc = t0[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}
