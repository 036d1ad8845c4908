// Zran (gzip random access) contexts of a `*-ref` blob: the table that follows the CI array in the
// uncompressed blob meta (header ci_zran_offset/size/count), and the CI v2 data word of a zran
// chunk (zran_index << 32 | zran_offset). Upstream storage/src/meta/zran.rs ZranInflateContext
// (40 bytes, packed LE) followed by the dictionaries; chunk_info_v2.rs set_zran_index/offset.
import { Reader, Writer } from '../../util/bytes.js';
import { FormatError } from '../../util/errors.js';
import { CHUNK_V2_FLAG_ZRAN, type CiEntry } from './ci-entry.js';

export const ZRAN_INFLATE_CONTEXT_SIZE = 40;
/** Upstream ZRAN_MAX_CI_ENTRIES. */
export const ZRAN_MAX_CI_ENTRIES = 1 << 24;

/** One random access point: decoding starts at a deflate block boundary with a preset window. */
export interface ZranContext {
  /** Offset in the gzip stream of the first whole byte of the block. */
  inOffset: number;
  /** Offset in the uncompressed stream where the block starts. */
  outOffset: number;
  /** Compressed bytes from `inOffset` that cover every chunk of this context. */
  inLen: number;
  /** Uncompressed bytes from `outOffset` covered by this context's chunks. */
  outLen: number;
  /** The byte before `inOffset`, whose top `ctxBits` bits start the block (0 bits: byte aligned). */
  ctxByte: number;
  ctxBits: number;
  /** Inflate dictionary (window), up to 32 KiB. */
  dict: Uint8Array;
}

const STRUCT = 'zran context table';

/** Encodes contexts then dictionaries, as ZranContextGenerator::store does. */
export function encodeZranContexts(ctxs: readonly ZranContext[]): Uint8Array {
  const dictBytes = ctxs.reduce((n, c) => n + c.dict.length, 0);
  const out = new Uint8Array(ctxs.length * ZRAN_INFLATE_CONTEXT_SIZE + dictBytes);
  const w = new Writer(out, 0);
  let dictOff = 0;
  let p = ctxs.length * ZRAN_INFLATE_CONTEXT_SIZE;
  ctxs.forEach((c, i) => {
    const o = i * ZRAN_INFLATE_CONTEXT_SIZE;
    w.u64(o, c.inOffset);
    w.u64(o + 8, c.outOffset);
    w.u64(o + 16, dictOff);
    w.u32(o + 24, c.inLen);
    w.u32(o + 28, c.outLen);
    w.u32(o + 32, c.dict.length);
    out[o + 36] = c.ctxByte;
    out[o + 37] = c.ctxBits;
    out.set(c.dict, p);
    p += c.dict.length;
    dictOff += c.dict.length;
  });
  return out;
}

/** Decodes `count` contexts from the zran area of the uncompressed CI data. */
export function decodeZranContexts(buf: Uint8Array, count: number): ZranContext[] {
  if (count > ZRAN_MAX_CI_ENTRIES) throw new FormatError('ERR_FORMAT_INVALID', STRUCT, `${count} contexts exceed ${ZRAN_MAX_CI_ENTRIES}`);
  const head = count * ZRAN_INFLATE_CONTEXT_SIZE;
  if (buf.length < head) throw new FormatError('ERR_FORMAT_TRUNCATED', STRUCT, `${buf.length} bytes cannot hold ${count} contexts`);
  const r = new Reader(buf, 0, buf.length, STRUCT);
  const out: ZranContext[] = [];
  for (let i = 0; i < count; i++) {
    const o = i * ZRAN_INFLATE_CONTEXT_SIZE;
    const dictOff = r.u64(o + 16);
    const dictSize = r.u32(o + 32);
    const ctxBits = buf[o + 37]!;
    if (dictSize > 1 << 15) throw new FormatError('ERR_FORMAT_INVALID', STRUCT, `context ${i}: dictionary of ${dictSize} bytes exceeds 32 KiB`);
    if (ctxBits > 7) throw new FormatError('ERR_FORMAT_INVALID', STRUCT, `context ${i}: ctx_bits ${ctxBits} is not 0..7`);
    if (head + dictOff + dictSize > buf.length) throw new FormatError('ERR_FORMAT_TRUNCATED', STRUCT, `context ${i}: dictionary ${dictOff}+${dictSize} lies beyond the table`);
    out.push({
      inOffset: r.u64(o),
      outOffset: r.u64(o + 8),
      inLen: r.u32(o + 24),
      outLen: r.u32(o + 28),
      ctxByte: buf[o + 36]!,
      ctxBits,
      dict: buf.subarray(head + dictOff, head + dictOff + dictSize),
    });
  }
  return out;
}

/** The zran table inside the uncompressed CI data, located by the blob meta header. */
export function zranContextsOf(ciData: Uint8Array, h: { ciZranOffset: number; ciZranSize: number; ciZranCount: number }): ZranContext[] {
  if (h.ciZranOffset + h.ciZranSize > ciData.length) throw new FormatError('ERR_FORMAT_INVALID', STRUCT, `zran area ${h.ciZranOffset}+${h.ciZranSize} lies beyond the ${ciData.length} bytes of CI data`);
  return decodeZranContexts(ciData.subarray(h.ciZranOffset, h.ciZranOffset + h.ciZranSize), h.ciZranCount);
}

export function isZranCi(e: CiEntry): boolean {
  return (e.flags & CHUNK_V2_FLAG_ZRAN) !== 0;
}

/** Context index of a zran CI entry (data >> 32). */
export function ciZranIndex(e: CiEntry): number {
  return Number(e.data >> 32n);
}

/** Offset of the chunk in its context's uncompressed output (data & 0xffffffff). */
export function ciZranOffset(e: CiEntry): number {
  return Number(e.data & 0xffff_ffffn);
}

export function zranData(index: number, offset: number): bigint {
  return (BigInt(index) << 32n) | BigInt(offset >>> 0);
}
