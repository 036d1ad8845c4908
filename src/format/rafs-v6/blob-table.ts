// RAFS v6 blob table entry RafsV6Blob: 256 bytes per blob (spec §5.5), and its mapping to the
// shared BlobInfo model.
import { Reader, Writer } from '../../util/bytes.js';
import { FormatError } from '../../util/errors.js';
import type { BlobInfo } from '../blob-info.js';
import { BLOB_FEATURES_INVALID, BlobFeatures, COMPRESSOR_CODES, DIGESTER_CODES, compressorCode, digesterCode } from '../constants.js';
import { decodeTag, encodeTag } from '../erofs/device-slot.js';

const S = 'RAFS v6 blob table entry';
export const RAFS_V6_BLOB_SIZE = 256;
const MAX_CHUNK_COUNT = 1 << 24;
const MAX_COMPRESSED_SIZE = 2 ** 40;
const MAX_UNCOMPRESSED_SIZE = 2 ** 44;
const CI_V1_SIZE = 16;
const CI_V2_SIZE = 24;

export interface RafsV6Blob {
  blobId: string;
  blobIndex: number;
  chunkSize: number;
  chunkCount: number;
  compressionAlgo: number;
  digestAlgo: number;
  features: number;
  compressedSize: number;
  uncompressedSize: number;
  blobTocSize: number;
  ciCompressor: number;
  ciOffset: number;
  ciCompressedSize: number;
  ciUncompressedSize: number;
  blobTocDigest: Uint8Array;
  blobMetaDigest: Uint8Array;
  blobMetaSize: number;
  cipherIv: Uint8Array;
  cipherAlgo: number;
}

export function decodeRafsV6Blob(buf: Uint8Array, offset: number): RafsV6Blob {
  const r = new Reader(buf, offset, RAFS_V6_BLOB_SIZE, S);
  return {
    blobId: decodeTag(r.bytes(0, 64), S, offset),
    blobIndex: r.u32(64),
    chunkSize: r.u32(68),
    chunkCount: r.u32(72),
    compressionAlgo: r.u32(76),
    digestAlgo: r.u32(80),
    features: r.u32(84),
    compressedSize: r.u64(88),
    uncompressedSize: r.u64(96),
    blobTocSize: r.u32(104),
    ciCompressor: r.u32(108),
    ciOffset: r.u64(112),
    ciCompressedSize: r.u64(120),
    ciUncompressedSize: r.u64(128),
    blobTocDigest: r.bytes(136, 32).slice(),
    blobMetaDigest: r.bytes(168, 32).slice(),
    // Encrypted blobs keep IV bytes here; u64n keeps them exact.
    blobMetaSize: Number(r.u64n(200) & 0x1f_ffff_ffff_ffffn),
    cipherIv: r.bytes(208, 8).slice(),
    cipherAlgo: r.u32(216),
  };
}

export function encodeRafsV6Blob(b: RafsV6Blob, out = new Uint8Array(RAFS_V6_BLOB_SIZE), offset = 0): Uint8Array {
  out.fill(0, offset, offset + RAFS_V6_BLOB_SIZE);
  const w = new Writer(out, offset);
  w.bytes(0, encodeTag(b.blobId, S));
  w.u32(64, b.blobIndex);
  w.u32(68, b.chunkSize);
  w.u32(72, b.chunkCount);
  w.u32(76, b.compressionAlgo);
  w.u32(80, b.digestAlgo);
  w.u32(84, b.features);
  w.u64(88, b.compressedSize);
  w.u64(96, b.uncompressedSize);
  w.u32(104, b.blobTocSize);
  w.u32(108, b.ciCompressor);
  w.u64(112, b.ciOffset);
  w.u64(120, b.ciCompressedSize);
  w.u64(128, b.ciUncompressedSize);
  w.bytes(136, b.blobTocDigest.subarray(0, 32));
  w.bytes(168, b.blobMetaDigest.subarray(0, 32));
  w.u64(200, b.blobMetaSize);
  w.bytes(208, b.cipherIv.subarray(0, 8));
  w.u32(216, b.cipherAlgo);
  return out;
}

/** RafsV6Blob::validate (§5.5): `index` = table position, `chunkSize` = fs chunk size. */
export function validateRafsV6Blob(b: RafsV6Blob, index: number, chunkSize: number): void {
  const bad = (field: string, msg: string): never => {
    throw new FormatError('ERR_FORMAT_INVALID', `${S} ${index}`, `${field} ${msg}`);
  };
  if (b.blobId.length === 0) bad('blob_id', 'is empty');
  if (b.blobIndex !== index) bad('blob_index', `is ${b.blobIndex}, expected ${index}`);
  if (b.chunkSize !== chunkSize) bad('chunk_size', `0x${b.chunkSize.toString(16)} differs from the fs chunk size 0x${chunkSize.toString(16)}`);
  if (b.chunkCount > MAX_CHUNK_COUNT) bad('chunk_count', `${b.chunkCount} exceeds 2^24`);
  if (COMPRESSOR_CODES[b.compressionAlgo] === undefined) bad('compression_algo', `${b.compressionAlgo} is unknown`);
  if (DIGESTER_CODES[b.digestAlgo] === undefined) bad('digest_algo', `${b.digestAlgo} is unknown`);
  if (COMPRESSOR_CODES[b.ciCompressor] === undefined) bad('ci_compressor', `${b.ciCompressor} is unknown`);
  if ((b.features & BLOB_FEATURES_INVALID) >>> 0 !== 0) bad('features', `0x${b.features.toString(16)} has invalid bits`);
  if (b.compressedSize > MAX_COMPRESSED_SIZE) bad('compressed_size', `${b.compressedSize} exceeds 2^40`);
  if (b.uncompressedSize > MAX_UNCOMPRESSED_SIZE) bad('uncompressed_size', `${b.uncompressedSize} exceeds 2^44`);
  const tarfs = (b.features & BlobFeatures.TARFS) !== 0;
  if (tarfs === ((b.features & BlobFeatures.ALIGNED) !== 0)) bad('features', tarfs ? 'has ALIGNED on a tarfs blob' : 'lacks ALIGNED');
  if (b.ciCompressedSize > b.ciUncompressedSize) bad('ci_compressed_size', `${b.ciCompressedSize} exceeds ci_uncompressed_size ${b.ciUncompressedSize}`);
  const v2 = (b.features & BlobFeatures.CHUNK_INFO_V2) !== 0;
  const special = (b.features & (BlobFeatures.BATCH | BlobFeatures.ZRAN | BlobFeatures.ENCRYPTED)) !== 0;
  if (special && !v2) bad('features', 'BATCH/ZRAN/ENCRYPTED require CHUNK_INFO_V2');
  if (v2 && !special && b.ciUncompressedSize !== CI_V2_SIZE * b.chunkCount) bad('ci_uncompressed_size', `${b.ciUncompressedSize} != 24 * chunk_count ${b.chunkCount}`);
  const exempt = tarfs || (b.features & BlobFeatures.IS_CHUNKDICT_GENERATED) !== 0;
  if (!v2 && !exempt && b.ciUncompressedSize !== CI_V1_SIZE * b.chunkCount) bad('ci_uncompressed_size', `${b.ciUncompressedSize} != 16 * chunk_count ${b.chunkCount}`);
}

export function rafsV6BlobToBlobInfo(b: RafsV6Blob): BlobInfo {
  return {
    blobId: b.blobId,
    blobIndex: b.blobIndex,
    chunkSize: b.chunkSize,
    chunkCount: b.chunkCount,
    compressor: COMPRESSOR_CODES[b.compressionAlgo] ?? 'none',
    digester: DIGESTER_CODES[b.digestAlgo] ?? 'blake3',
    features: b.features,
    compressedSize: b.compressedSize,
    uncompressedSize: b.uncompressedSize,
    readaheadOffset: 0,
    readaheadSize: 0,
    metaCiCompressor: COMPRESSOR_CODES[b.ciCompressor] ?? 'none',
    metaCiOffset: b.ciOffset,
    metaCiCompressedSize: b.ciCompressedSize,
    metaCiUncompressedSize: b.ciUncompressedSize,
    blobTocSize: b.blobTocSize,
    blobTocDigest: b.blobTocDigest,
    blobMetaDigest: b.blobMetaDigest,
    blobMetaSize: b.blobMetaSize,
  };
}

/** BlobInfo → table entry at position `index` (no encryption: zero IV, cipher none). */
export function blobInfoToRafsV6Blob(b: BlobInfo, index = b.blobIndex): RafsV6Blob {
  return {
    blobId: b.blobId,
    blobIndex: index,
    chunkSize: b.chunkSize,
    chunkCount: b.chunkCount,
    compressionAlgo: compressorCode(b.compressor),
    digestAlgo: digesterCode(b.digester),
    features: b.features,
    compressedSize: b.compressedSize,
    uncompressedSize: b.uncompressedSize,
    blobTocSize: b.blobTocSize,
    ciCompressor: compressorCode(b.metaCiCompressor),
    ciOffset: b.metaCiOffset,
    ciCompressedSize: b.metaCiCompressedSize,
    ciUncompressedSize: b.metaCiUncompressedSize,
    blobTocDigest: b.blobTocDigest,
    blobMetaDigest: b.blobMetaDigest,
    blobMetaSize: b.blobMetaSize,
    cipherIv: new Uint8Array(8),
    cipherAlgo: 0,
  };
}

