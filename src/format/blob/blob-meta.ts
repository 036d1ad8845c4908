// Blob meta as a whole: locating the (compressed) CI array + header in a blob from its BlobInfo,
// decompressing/parsing/validating it, and the uncompressed `<blob_id>.blob.meta` cache file.
// Spec §7.3, §8; upstream storage/src/meta/mod.rs (BlobCompressionContextInfo).
import { align } from '../../util/bytes.js';
import { FormatError } from '../../util/errors.js';
import type { BlobInfo } from '../blob-info.js';
import { compressChunk, decompress } from '../compress.js';
import { BlobFeatures, type Compressor } from '../constants.js';
import type { CiEntry } from './ci-entry.js';
import { BLOB_CCT_V1_ENTRY_SIZE, decodeChunkInfoV1, encodeChunkInfoV1 } from './chunk-info-v1.js';
import { BLOB_CCT_V2_ENTRY_SIZE, decodeChunkInfoV2, encodeChunkInfoV2 } from './chunk-info-v2.js';
import { BLOB_CCT_HEADER_SIZE, decodeBlobMetaHeader, type BlobMetaHeader } from './meta-header.js';
import { decodeBatchContexts, type BatchInflateContext } from './batch.js';

/** Cache file suffixes in the blob cache work_dir (§8): `<blob_id>.<suffix>`. */
export const BLOB_CCT_FILE_SUFFIX = 'blob.meta';
export const BLOB_DIGEST_FILE_SUFFIX = 'blob.digest';
export const BLOB_TOC_FILE_SUFFIX = 'blob.toc';

const STRUCT = 'blob meta';

export function ciEntrySize(features: number): number {
  return features & BlobFeatures.CHUNK_INFO_V2 ? BLOB_CCT_V2_ENTRY_SIZE : BLOB_CCT_V1_ENTRY_SIZE;
}

export function decodeCiArray(buf: Uint8Array, count: number, v2: boolean): CiEntry[] {
  const size = v2 ? BLOB_CCT_V2_ENTRY_SIZE : BLOB_CCT_V1_ENTRY_SIZE;
  if (buf.length < count * size) throw new FormatError('ERR_FORMAT_TRUNCATED', 'CI array', `${buf.length} bytes cannot hold ${count} entries of ${size}`);
  const out: CiEntry[] = new Array<CiEntry>(count);
  for (let i = 0; i < count; i++) out[i] = v2 ? decodeChunkInfoV2(buf, i * size) : decodeChunkInfoV1(buf, i * size);
  return out;
}

export function encodeCiArray(entries: readonly CiEntry[], v2: boolean): Uint8Array {
  const size = v2 ? BLOB_CCT_V2_ENTRY_SIZE : BLOB_CCT_V1_ENTRY_SIZE;
  const out = new Uint8Array(entries.length * size);
  entries.forEach((e, i) => (v2 ? encodeChunkInfoV2(e, out, i * size) : encodeChunkInfoV1(e, out, i * size)));
  return out;
}

/**
 * Compresses an uncompressed CI array as nydus-image does: with `compressor`, falling back to
 * none when that does not shrink it (§7.3: the 2.2 fixture's 32-byte CI is stored raw).
 */
export function compressCiArray(ci: Uint8Array, compressor: Compressor): { data: Uint8Array; ciCompressor: Compressor } {
  const r = compressChunk(ci, compressor);
  return { data: r.data, ciCompressor: r.compressed ? compressor : 'none' };
}

/**
 * Byte range of the blob holding the compressed CI array followed by its 4 KiB header
 * (`ci_offset .. ci_offset + ci_compressed_size + 4096`), or undefined for a blob without blob
 * meta (v5, or no chunks).
 */
export function blobMetaRange(info: BlobInfo): { offset: number; size: number } | undefined {
  if (info.chunkCount === 0 || info.metaCiUncompressedSize === 0) return undefined;
  return { offset: info.metaCiOffset, size: info.metaCiCompressedSize + BLOB_CCT_HEADER_SIZE };
}

/** nydusd's check: the header must agree with the blob table entry (features are not compared). */
export function validateBlobMetaHeader(h: BlobMetaHeader, info: BlobInfo): void {
  const pairs: [string, number | string, number | string][] = [
    ['ci_entries', h.ciEntries, info.chunkCount],
    ['ci_compressor', h.ciCompressor, info.metaCiCompressor],
    ['ci_offset', h.ciOffset, info.metaCiOffset],
    ['ci_compressed_size', h.ciCompressedSize, info.metaCiCompressedSize],
    ['ci_uncompressed_size', h.ciUncompressedSize, info.metaCiUncompressedSize],
  ];
  for (const [field, got, want] of pairs) {
    if (got !== want) throw new FormatError('ERR_FORMAT_INVALID', 'blob meta header', `${field} is ${got}, blob table says ${want} (blob ${info.blobId})`);
  }
  const entrySize = ciEntrySize(info.features);
  const extra = info.features & (BlobFeatures.ZRAN | BlobFeatures.BATCH | BlobFeatures.ENCRYPTED);
  if (extra ? h.ciUncompressedSize < entrySize * h.ciEntries : h.ciUncompressedSize !== entrySize * h.ciEntries) {
    throw new FormatError('ERR_FORMAT_INVALID', 'blob meta header', `ci_uncompressed_size ${h.ciUncompressedSize} does not fit ${h.ciEntries} entries of ${entrySize} bytes`);
  }
  if (h.ciCompressedSize > h.ciUncompressedSize) {
    throw new FormatError('ERR_FORMAT_INVALID', 'blob meta header', `ci_compressed_size ${h.ciCompressedSize} > ci_uncompressed_size ${h.ciUncompressedSize}`);
  }
}

/** Checks each CI entry lies inside the blob and (ALIGNED) starts on a 4 KiB boundary. */
export function validateCiEntries(chunks: readonly CiEntry[], info: BlobInfo): void {
  const aligned = (info.features & BlobFeatures.ALIGNED) !== 0;
  chunks.forEach((c, i) => {
    if (info.compressedSize > 0 && c.compressedOffset + c.compressedSize > info.compressedSize) {
      throw new FormatError('ERR_FORMAT_INVALID', 'CI array', `chunk ${i} ends at ${c.compressedOffset + c.compressedSize}, beyond the blob size ${info.compressedSize}`);
    }
    if (c.uncompressedOffset + c.uncompressedSize > info.uncompressedSize) {
      throw new FormatError('ERR_FORMAT_INVALID', 'CI array', `chunk ${i} ends at uncompressed ${c.uncompressedOffset + c.uncompressedSize}, beyond ${info.uncompressedSize}`);
    }
    if (aligned && c.uncompressedOffset % 4096 !== 0) {
      throw new FormatError('ERR_FORMAT_INVALID', 'CI array', `chunk ${i} uncompressed offset ${c.uncompressedOffset} is not 4 KiB aligned`);
    }
    if (!c.compressed && c.compressedSize !== c.uncompressedSize) {
      throw new FormatError('ERR_FORMAT_INVALID', 'CI array', `chunk ${i} is stored raw but sizes differ (${c.compressedSize}/${c.uncompressedSize})`);
    }
  });
}

export interface BlobMeta {
  header: BlobMetaHeader;
  chunks: CiEntry[];
  /** Uncompressed CI data (incl. zran/batch contexts): what the `.blob.meta` cache stores. */
  ciData: Uint8Array;
  /** Batch context table (BATCH blobs; [] otherwise). */
  batches: BatchInflateContext[];
}

/**
 * Parses the bytes of `blobMetaRange(info)` (compressed CI + 4 KiB header): checks the header
 * against the blob table, decompresses and decodes the CI array, validates every entry.
 */
export function decodeBlobMeta(bytes: Uint8Array, info: BlobInfo): BlobMeta {
  const range = blobMetaRange(info);
  if (!range) throw new FormatError('ERR_FORMAT_INVALID', STRUCT, `blob ${info.blobId} has no blob meta (no chunks or no CI)`);
  if (bytes.length < range.size) throw new FormatError('ERR_FORMAT_TRUNCATED', STRUCT, `${bytes.length} bytes, need ${range.size}`);
  const header = decodeBlobMetaHeader(bytes, info.metaCiCompressedSize);
  validateBlobMetaHeader(header, info);
  const ciData = decompress(bytes.subarray(0, header.ciCompressedSize), header.ciCompressor, header.ciUncompressedSize);
  const chunks = decodeCiArray(ciData, header.ciEntries, (info.features & BlobFeatures.CHUNK_INFO_V2) !== 0);
  validateCiEntries(chunks, info);
  return { header, chunks, ciData: ciData.slice(), batches: decodeBatchContexts(ciData, header) };
}

/** Size of `<blob_id>.blob.meta`: `align(ci_uncompressed_size, 4096) + 4096` (§8). */
export function blobMetaCacheSize(ciUncompressedSize: number): number {
  return align(ciUncompressedSize, 4096) + BLOB_CCT_HEADER_SIZE;
}

/** The `.blob.meta` cache file: uncompressed CI zero padded to 4 KiB, then the header copy (§8). */
export function encodeBlobMetaCache(ciData: Uint8Array, headerBytes: Uint8Array): Uint8Array {
  if (headerBytes.length !== BLOB_CCT_HEADER_SIZE) throw new FormatError('ERR_FORMAT_INVALID', 'blob.meta cache', `header is ${headerBytes.length} bytes, expected 4096`);
  const out = new Uint8Array(blobMetaCacheSize(ciData.length));
  out.set(ciData, 0);
  out.set(headerBytes, align(ciData.length, 4096));
  return out;
}

/**
 * Parses a `.blob.meta` cache file; throws (the caller re-downloads) when its size or header does
 * not match the blob table.
 */
export function decodeBlobMetaCache(file: Uint8Array, info: BlobInfo): BlobMeta {
  const size = blobMetaCacheSize(info.metaCiUncompressedSize);
  if (file.length !== size) throw new FormatError('ERR_FORMAT_INVALID', 'blob.meta cache', `file is ${file.length} bytes, expected ${size}`);
  const header = decodeBlobMetaHeader(file, size - BLOB_CCT_HEADER_SIZE);
  validateBlobMetaHeader(header, info);
  const ciData = file.subarray(0, header.ciUncompressedSize);
  const chunks = decodeCiArray(ciData, header.ciEntries, (info.features & BlobFeatures.CHUNK_INFO_V2) !== 0);
  validateCiEntries(chunks, info);
  return { header, chunks, ciData, batches: decodeBatchContexts(ciData, header) };
}
