// CI v2 entry: 24 bytes, three u64 (uncomp_info, comp_info, data). Spec §7.3; upstream
// storage/src/meta/chunk_info_v2.rs BlobChunkInfoV2Ondisk. Used by batch/zran/encrypted and
// `*-ref` blobs; our builder writes v1.
import { Reader, Writer } from '../../util/bytes.js';
import { FormatError } from '../../util/errors.js';
import { BLOB_CCT_CHUNK_SIZE_MASK, CHUNK_V2_FLAG_COMPRESSED, type CiEntry } from './ci-entry.js';

export const BLOB_CCT_V2_ENTRY_SIZE = 24;
const TWO32 = 0x1_0000_0000;

export function decodeChunkInfoV2(buf: Uint8Array, offset = 0): CiEntry {
  const r = new Reader(buf, offset, BLOB_CCT_V2_ENTRY_SIZE, 'CI v2 entry');
  const ulo = r.u32(0), uhi = r.u32(4), clo = r.u32(8), chi = r.u32(12);
  // uncomp_info: bits 0-31 offset >> 12, bits 32-55 size-1, bits 56-63 flags.
  // comp_info: bits 0-39 offset, bits 40-63 size (not minus one).
  const flags = uhi >>> 24;
  return {
    compressedOffset: clo + (chi & 0xff) * TWO32,
    compressedSize: chi >>> 8,
    uncompressedOffset: ulo * 4096,
    uncompressedSize: (uhi & BLOB_CCT_CHUNK_SIZE_MASK) + 1,
    compressed: (flags & CHUNK_V2_FLAG_COMPRESSED) !== 0,
    flags,
    data: r.u64n(16),
  };
}

export function encodeChunkInfoV2(e: CiEntry, out: Uint8Array = new Uint8Array(BLOB_CCT_V2_ENTRY_SIZE), offset = 0): Uint8Array {
  const uo = e.uncompressedOffset;
  if (uo % 4096 !== 0 || uo < 0 || uo / 4096 >= TWO32) {
    throw new FormatError('ERR_FORMAT_INVALID', 'CI v2 entry', `uncompressed offset ${uo} is not a 4 KiB aligned 44-bit value`);
  }
  if (e.compressedOffset < 0 || e.compressedOffset >= 2 ** 40) throw new FormatError('ERR_FORMAT_INVALID', 'CI v2 entry', `compressed offset ${e.compressedOffset} exceeds 40 bits`);
  if (e.uncompressedSize < 1 || e.uncompressedSize > BLOB_CCT_CHUNK_SIZE_MASK + 1) throw new FormatError('ERR_FORMAT_INVALID', 'CI v2 entry', `uncompressed size ${e.uncompressedSize} is outside 1..16 MiB`);
  if (e.compressedSize < 0 || e.compressedSize > BLOB_CCT_CHUNK_SIZE_MASK) throw new FormatError('ERR_FORMAT_INVALID', 'CI v2 entry', `compressed size ${e.compressedSize} exceeds 24 bits`);
  const flags = ((e.flags & ~CHUNK_V2_FLAG_COMPRESSED) | (e.compressed ? CHUNK_V2_FLAG_COMPRESSED : 0)) & 0xff;
  const w = new Writer(out, offset);
  w.u32(0, uo / 4096);
  w.u32(4, ((e.uncompressedSize - 1) | (flags << 24)) >>> 0);
  w.u32(8, e.compressedOffset % TWO32);
  w.u32(12, (Math.floor(e.compressedOffset / TWO32) & 0xff) | (e.compressedSize << 8));
  w.u64(16, e.data);
  return out;
}
