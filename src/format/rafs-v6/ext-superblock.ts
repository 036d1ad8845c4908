// RAFS v6 extended superblock RafsV6SuperBlockExt: 256 bytes at 1152 (spec §5.3). The kernel
// ignores it; nydusd reads the flags and the blob/chunk/prefetch table locations from it.
import { Reader, Writer } from '../../util/bytes.js';
import { FormatError } from '../../util/errors.js';
import { RAFS_SUPER_FLAGS_KNOWN, RafsSuperFlags, isValidChunkSize } from '../constants.js';
import { RAFS_V6_BLOB_SIZE } from './blob-table.js';

const S = 'RAFS v6 extended superblock';
export const RAFS_V6_EXT_SUPER_OFFSET = 1152;
export const RAFS_V6_EXT_SUPER_SIZE = 256;
export const RAFS_V6_CHUNK_INFO_SIZE = 80;
/** Device table slot offset nydus-image writes: 11 * 128 = 1408 (§5.4). */
export const RAFS_V6_DEVT_SLOTOFF = 11;

export interface RafsV6SuperBlockExt {
  /** RafsSuperFlags. */
  flags: number;
  blobTableOffset: number;
  blobTableSize: number;
  chunkSize: number;
  chunkTableOffset: number;
  chunkTableSize: number;
  prefetchTableOffset: number;
  prefetchTableSize: number;
}

export function decodeRafsV6SuperBlockExt(buf: Uint8Array, offset = RAFS_V6_EXT_SUPER_OFFSET): RafsV6SuperBlockExt {
  const r = new Reader(buf, offset, RAFS_V6_EXT_SUPER_SIZE, S);
  const flags = r.u64n(0);
  if (flags > 0xffff_ffffn) throw new FormatError('ERR_FORMAT_INVALID', S, `flags 0x${flags.toString(16)} has unknown bits`, offset);
  return {
    flags: Number(flags),
    blobTableOffset: r.u64(8),
    blobTableSize: r.u32(16),
    chunkSize: r.u32(20),
    chunkTableOffset: r.u64(24),
    chunkTableSize: r.u64(32),
    prefetchTableOffset: r.u64(40),
    prefetchTableSize: r.u32(48),
  };
}

export function encodeRafsV6SuperBlockExt(e: RafsV6SuperBlockExt, out = new Uint8Array(RAFS_V6_EXT_SUPER_SIZE), offset = 0): Uint8Array {
  out.fill(0, offset, offset + RAFS_V6_EXT_SUPER_SIZE);
  const w = new Writer(out, offset);
  w.u64(0, e.flags);
  w.u64(8, e.blobTableOffset);
  w.u32(16, e.blobTableSize);
  w.u32(20, e.chunkSize);
  w.u64(24, e.chunkTableOffset);
  w.u64(32, e.chunkTableSize);
  w.u64(40, e.prefetchTableOffset);
  w.u32(48, e.prefetchTableSize);
  return out;
}

const COMPRESSION_BITS = [RafsSuperFlags.COMPRESSION_NONE, RafsSuperFlags.COMPRESSION_LZ4, RafsSuperFlags.COMPRESSION_GZIP, RafsSuperFlags.COMPRESSION_ZSTD];
const HASH_BITS = [RafsSuperFlags.HASH_BLAKE3, RafsSuperFlags.HASH_SHA256];

/** nydusd's checks (RafsV6SuperBlockExt::validate, §5.3); `size` = bootstrap size. */
export function validateRafsV6SuperBlockExt(e: RafsV6SuperBlockExt, size: number, blockSize: number): void {
  const bad = (field: string, msg: string): never => {
    throw new FormatError('ERR_FORMAT_INVALID', S, `${field} ${msg}`, RAFS_V6_EXT_SUPER_OFFSET);
  };
  if ((e.flags & ~RAFS_SUPER_FLAGS_KNOWN) >>> 0 !== 0) bad('flags', `0x${e.flags.toString(16)} has unknown bits`);
  if (COMPRESSION_BITS.filter((b) => e.flags & b).length !== 1) bad('flags', `0x${e.flags.toString(16)} must have exactly one compression bit`);
  if (HASH_BITS.filter((b) => e.flags & b).length !== 1) bad('flags', `0x${e.flags.toString(16)} must have exactly one hash bit`);
  if (!isValidChunkSize(e.chunkSize)) bad('chunk_size', `0x${e.chunkSize.toString(16)} is not a power of two in [4096, 16 MiB]`);
  if (e.blobTableOffset < 4096 || e.blobTableOffset % 4096 !== 0) bad('blob_table_offset', `${e.blobTableOffset} is not 4 KiB aligned and >= 4096`);
  if (e.blobTableSize % RAFS_V6_BLOB_SIZE !== 0) bad('blob_table_size', `${e.blobTableSize} is not a multiple of ${RAFS_V6_BLOB_SIZE}`);
  if (e.chunkTableSize % RAFS_V6_CHUNK_INFO_SIZE !== 0) bad('chunk_table_size', `${e.chunkTableSize} is not a multiple of ${RAFS_V6_CHUNK_INFO_SIZE}`);
  if (e.prefetchTableSize % 4 !== 0) bad('prefetch_table_size', `${e.prefetchTableSize} is not a multiple of 4`);
  const ranges: Array<[string, number, number]> = [['blob table', e.blobTableOffset, e.blobTableSize]];
  if (e.chunkTableSize > 0) {
    if (e.chunkTableOffset % blockSize !== 0) bad('chunk_table_offset', `${e.chunkTableOffset} is not block aligned`);
    ranges.push(['chunk table', e.chunkTableOffset, e.chunkTableSize]);
  }
  if (e.prefetchTableSize > 0) ranges.push(['prefetch table', e.prefetchTableOffset, e.prefetchTableSize]);
  for (const [name, off, len] of ranges) {
    if (len > 0 && (off < 4096 || off + len > size)) bad(name, `[${off}, ${off + len}) lies outside the bootstrap (${size} bytes)`);
  }
  for (let i = 0; i < ranges.length; i++) {
    for (let j = i + 1; j < ranges.length; j++) {
      const [a, ao, al] = ranges[i]!;
      const [b, bo, bl] = ranges[j]!;
      if (al > 0 && bl > 0 && ao < bo + bl && bo < ao + al) bad(a, `overlaps the ${b}`);
    }
  }
}
