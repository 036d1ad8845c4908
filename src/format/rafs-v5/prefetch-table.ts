// RAFS v5 prefetch table (spec §4.4): u32 inode numbers in pattern order, padded to 8 bytes.
// A 0 entry terminates the list.
import { Reader } from '../../util/bytes.js';
import { rafsV5U32TableSize } from './superblock.js';

const S = 'RAFS v5 prefetch table';

export function decodeRafsV5PrefetchTable(buf: Uint8Array, offset: number, entries: number): number[] {
  const r = new Reader(buf, offset, entries * 4, S);
  const out: number[] = [];
  for (let i = 0; i < entries; i++) {
    const ino = r.u32(i * 4);
    if (ino === 0) break;
    out.push(ino);
  }
  return out;
}

export function encodeRafsV5PrefetchTable(inos: readonly number[]): Uint8Array {
  const out = new Uint8Array(rafsV5U32TableSize(inos.length));
  const dv = new DataView(out.buffer);
  inos.forEach((ino, i) => dv.setUint32(i * 4, ino, true));
  return out;
}
