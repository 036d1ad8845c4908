// Blob meta (CI) header: 4096 bytes right after the CI array; also the tail of the `.blob.meta`
// cache file. Spec §7.3; upstream storage/src/meta/mod.rs BlobCompressionContextHeader.
import { Reader, Writer } from '../../util/bytes.js';
import { FormatError } from '../../util/errors.js';
import { COMPRESSOR_CODES, compressorCode, type Compressor } from '../constants.js';

export const BLOB_CCT_MAGIC = 0xb10bb10b;
export const BLOB_CCT_HEADER_SIZE = 0x1000;

export interface BlobMetaHeader {
  /** BlobFeatures (s_features); equals the blob table's. */
  features: number;
  ciCompressor: Compressor;
  /** Number of CI entries (= blob chunk_count). */
  ciEntries: number;
  /** Absolute offset of the (compressed) CI array in the blob. */
  ciOffset: number;
  ciCompressedSize: number;
  ciUncompressedSize: number;
  /** Zran/batch context table inside the uncompressed CI data (0 when unused). */
  ciZranOffset: number;
  ciZranSize: number;
  ciZranCount: number;
}

export function decodeBlobMetaHeader(buf: Uint8Array, offset = 0): BlobMetaHeader {
  const r = new Reader(buf, offset, BLOB_CCT_HEADER_SIZE, 'blob meta header');
  const magic = r.u32(0);
  const magic2 = r.u32(4092);
  if (magic !== BLOB_CCT_MAGIC || magic2 !== BLOB_CCT_MAGIC) {
    throw new FormatError('ERR_FORMAT_BAD_MAGIC', 'blob meta header', `magic 0x${magic.toString(16)}/0x${magic2.toString(16)}, expected 0x${BLOB_CCT_MAGIC.toString(16)}`, offset);
  }
  const code = r.u32(8);
  const ciCompressor = COMPRESSOR_CODES[code];
  if (ciCompressor === undefined) throw new FormatError('ERR_FORMAT_UNSUPPORTED', 'blob meta header', `unknown ci_compressor ${code}`, offset + 8);
  return {
    features: r.u32(4),
    ciCompressor,
    ciEntries: r.u32(12),
    ciOffset: r.u64(16),
    ciCompressedSize: r.u64(24),
    ciUncompressedSize: r.u64(32),
    ciZranOffset: r.u64(40),
    ciZranSize: r.u64(48),
    ciZranCount: r.u32(56),
  };
}

export function encodeBlobMetaHeader(h: BlobMetaHeader, out: Uint8Array = new Uint8Array(BLOB_CCT_HEADER_SIZE), offset = 0): Uint8Array {
  out.fill(0, offset, offset + BLOB_CCT_HEADER_SIZE);
  const w = new Writer(out, offset);
  w.u32(0, BLOB_CCT_MAGIC);
  w.u32(4, h.features);
  w.u32(8, compressorCode(h.ciCompressor));
  w.u32(12, h.ciEntries);
  w.u64(16, h.ciOffset);
  w.u64(24, h.ciCompressedSize);
  w.u64(32, h.ciUncompressedSize);
  w.u64(40, h.ciZranOffset);
  w.u64(48, h.ciZranSize);
  w.u32(56, h.ciZranCount);
  w.u32(4092, BLOB_CCT_MAGIC);
  return out;
}
