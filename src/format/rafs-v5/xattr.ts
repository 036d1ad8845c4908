// RAFS v5 xattr table (spec §4.8): u64 size, then `{u32 pair_size; name; NUL; value}` pairs,
// padded to align(size, 8). Pair order is whatever the builder wrote; readers keep it.
import { Reader, Writer, align } from '../../util/bytes.js';
import { FormatError } from '../../util/errors.js';
import { RAFSV5_ALIGNMENT } from './superblock.js';

const S = 'RAFS v5 xattr table';
export const RAFSV5_XATTR_HEADER_SIZE = 8;

export type XattrPair = [name: Uint8Array, value: Uint8Array];

/** Bytes of the pairs (the table's `size` field, unpadded). */
export function rafsV5XattrPairsSize(pairs: readonly XattrPair[]): number {
  let n = 0;
  for (const [k, v] of pairs) n += 4 + k.length + 1 + v.length;
  return n;
}

/** Total bytes the table occupies in an inode record. */
export function rafsV5XattrTableSize(pairs: readonly XattrPair[]): number {
  return RAFSV5_XATTR_HEADER_SIZE + align(rafsV5XattrPairsSize(pairs), RAFSV5_ALIGNMENT);
}

/** Reads the `size` field and returns the table's total byte size (header + padded pairs). */
export function rafsV5XattrTableExtent(buf: Uint8Array, offset: number): number {
  const size = new Reader(buf, offset, RAFSV5_XATTR_HEADER_SIZE, S).u64(0);
  const total = RAFSV5_XATTR_HEADER_SIZE + align(size, RAFSV5_ALIGNMENT);
  new Reader(buf, offset, total, S); // bounds check only
  return total;
}

/** Decodes the pairs as views into `buf` (no copies). */
export function decodeRafsV5Xattrs(buf: Uint8Array, offset: number): XattrPair[] {
  const size = new Reader(buf, offset, RAFSV5_XATTR_HEADER_SIZE, S).u64(0);
  const r = new Reader(buf, offset + RAFSV5_XATTR_HEADER_SIZE, size, S);
  const out: XattrPair[] = [];
  let p = 0;
  while (p < size) {
    const pairSize = r.u32(p);
    const pair = r.bytes(p + 4, pairSize);
    const nul = pair.indexOf(0);
    if (nul <= 0) throw new FormatError('ERR_FORMAT_INVALID', S, `pair ${out.length} has no name or no NUL separator`, offset + 8 + p);
    out.push([pair.subarray(0, nul), pair.subarray(nul + 1)]);
    p += 4 + pairSize;
  }
  return out;
}

export function encodeRafsV5Xattrs(pairs: readonly XattrPair[]): Uint8Array {
  const size = rafsV5XattrPairsSize(pairs);
  const out = new Uint8Array(RAFSV5_XATTR_HEADER_SIZE + align(size, RAFSV5_ALIGNMENT));
  const w = new Writer(out);
  w.u64(0, size);
  let p = RAFSV5_XATTR_HEADER_SIZE;
  for (const [k, v] of pairs) {
    if (k.length === 0 || k.includes(0)) throw new FormatError('ERR_FORMAT_INVALID', S, 'xattr name is empty or contains NUL');
    w.u32(p, k.length + 1 + v.length);
    w.bytes(p + 4, k);
    w.bytes(p + 4 + k.length + 1, v);
    p += 4 + k.length + 1 + v.length;
  }
  return out;
}
