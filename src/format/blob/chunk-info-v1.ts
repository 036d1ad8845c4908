// CI v1 entry: 16 bytes, two u64 (uncomp_info, comp_info). Spec §7.3; upstream
// storage/src/meta/chunk_info_v1.rs BlobChunkInfoV1Ondisk. Handled as two u32 halves per u64
// so decoding a large CI array allocates no bigints.
import { Reader, Writer } from '../../util/bytes.js';
import { FormatError } from '../../util/errors.js';
import { CHUNK_V2_FLAG_COMPRESSED, type CiEntry } from './ci-entry.js';

export const BLOB_CCT_V1_ENTRY_SIZE = 16;
const TWO32 = 0x1_0000_0000;
/** comp_info bits 0-39. */
const CHUNK_V1_COMP_OFFSET_MAX = 0xff_ffff_ffff;
/** uncomp_info bits 12-43 hold the byte offset in place (4 KiB aligned). */
const CHUNK_V1_UNCOMP_OFFSET_MAX = 0xfff_ffff_f000;
const CHUNK_V1_MAX_SIZE = 0x100_0000;

export function decodeChunkInfoV1(buf: Uint8Array, offset = 0): CiEntry {
  const r = new Reader(buf, offset, BLOB_CCT_V1_ENTRY_SIZE, 'CI v1 entry');
  const ulo = r.u32(0), uhi = r.u32(4), clo = r.u32(8), chi = r.u32(12);
  // uncomp_info: bits 8-11 size-1 >> 20, bits 12-43 offset, bits 44-63 (size-1) & 0xfffff.
  const uncompressedSize = ((((ulo >>> 8) & 0xf) << 20) | (uhi >>> 12)) + 1;
  // comp_info: bits 0-39 offset, bits 40-43 (size-1) >> 20, bits 44-63 (size-1) & 0xfffff.
  const compressedSize = ((((chi >>> 8) & 0xf) << 20) | (chi >>> 12)) + 1;
  const compressed = compressedSize !== uncompressedSize;
  return {
    compressedOffset: clo + (chi & 0xff) * TWO32,
    compressedSize,
    uncompressedOffset: ((ulo & 0xffff_f000) >>> 0) + (uhi & 0xfff) * TWO32,
    uncompressedSize,
    compressed,
    flags: compressed ? CHUNK_V2_FLAG_COMPRESSED : 0,
    data: 0n,
  };
}

export function encodeChunkInfoV1(e: CiEntry, out: Uint8Array = new Uint8Array(BLOB_CCT_V1_ENTRY_SIZE), offset = 0): Uint8Array {
  const { compressedOffset: co, compressedSize: cs, uncompressedOffset: uo, uncompressedSize: us } = e;
  if (uo % 4096 !== 0 || uo < 0 || uo > CHUNK_V1_UNCOMP_OFFSET_MAX) {
    throw new FormatError('ERR_FORMAT_INVALID', 'CI v1 entry', `uncompressed offset ${uo} is not a 4 KiB aligned 44-bit value`);
  }
  if (co < 0 || co > CHUNK_V1_COMP_OFFSET_MAX) throw new FormatError('ERR_FORMAT_INVALID', 'CI v1 entry', `compressed offset ${co} exceeds 40 bits`);
  for (const [what, n] of [['compressed size', cs], ['uncompressed size', us]] as const) {
    if (!Number.isInteger(n) || n < 1 || n > CHUNK_V1_MAX_SIZE) throw new FormatError('ERR_FORMAT_INVALID', 'CI v1 entry', `${what} ${n} is outside 1..16 MiB`);
  }
  // v1 cannot flag compression: "compressed" is implied by csize != usize (§7.3).
  if (e.compressed !== (cs !== us)) {
    throw new FormatError('ERR_FORMAT_INVALID', 'CI v1 entry', `compressed=${e.compressed} contradicts sizes ${cs}/${us}`);
  }
  const u1 = us - 1, c1 = cs - 1;
  const w = new Writer(out, offset);
  w.u32(0, (uo % TWO32) | (((u1 >>> 20) & 0xf) << 8));
  w.u32(4, (Math.floor(uo / TWO32) & 0xfff) | ((u1 & 0xfffff) << 12));
  w.u32(8, co % TWO32);
  w.u32(12, (Math.floor(co / TWO32) & 0xff) | (((c1 >>> 20) & 0xf) << 8) | ((c1 & 0xfffff) << 12));
  return out;
}
