// RAFS v5 inode table (spec §4.3): u32 entries, `table[index-1] = record_offset >> 3`, padded
// with one zero u32 when the count is odd.
import { Reader } from '../../util/bytes.js';
import { FormatError } from '../../util/errors.js';
import { RAFSV5_ALIGNMENT, RAFSV5_SUPERBLOCK_SIZE, rafsV5U32TableSize } from './superblock.js';

const S = 'RAFS v5 inode table';
/** Entries must point past the superblock and below 2^29 (offset < 4 GiB). */
const MIN_ENTRY = RAFSV5_SUPERBLOCK_SIZE >> 3;
const MAX_ENTRY = 1 << 29;

/** Reads entry `index` (1-based inode index) and returns the record's byte offset. */
export function readRafsV5InodeTableEntry(buf: Uint8Array, tableOffset: number, entries: number, index: number): number {
  if (!Number.isInteger(index) || index < 1 || index > entries) {
    throw new FormatError('ERR_FORMAT_INVALID', S, `inode index ${index} is outside 1..${entries}`);
  }
  const r = new Reader(buf, tableOffset + (index - 1) * 4, 4, S);
  const v = r.u32(0);
  if (v <= MIN_ENTRY || v >= MAX_ENTRY) {
    throw new FormatError('ERR_FORMAT_INVALID', S, `entry for inode index ${index} is ${v}, not in (${MIN_ENTRY}, ${MAX_ENTRY})`, tableOffset + (index - 1) * 4);
  }
  return v * RAFSV5_ALIGNMENT;
}

/** Decodes the whole table into record byte offsets (index i+1 at position i). */
export function decodeRafsV5InodeTable(buf: Uint8Array, tableOffset: number, entries: number): number[] {
  new Reader(buf, tableOffset, rafsV5U32TableSize(entries), S);
  const out: number[] = [];
  for (let i = 1; i <= entries; i++) out.push(readRafsV5InodeTableEntry(buf, tableOffset, entries, i));
  return out;
}

/** Encodes record byte offsets (each a multiple of 8) as the padded table. */
export function encodeRafsV5InodeTable(recordOffsets: readonly number[]): Uint8Array {
  const out = new Uint8Array(rafsV5U32TableSize(recordOffsets.length));
  const dv = new DataView(out.buffer);
  recordOffsets.forEach((off, i) => {
    if (off % RAFSV5_ALIGNMENT !== 0 || off >> 3 <= MIN_ENTRY || off >> 3 >= MAX_ENTRY) {
      throw new FormatError('ERR_FORMAT_INVALID', S, `record offset ${off} of inode index ${i + 1} cannot be encoded`);
    }
    dv.setUint32(i * 4, off / RAFSV5_ALIGNMENT, true);
  });
  return out;
}
