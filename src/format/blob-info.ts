// In-memory description of one data blob, the union of what the v5 blob tables (§4.5, §4.6) and
// the v6 blob table (§5.5) record. Bootstrap encoders take it; decoders produce it.
import type { Compressor, Digester } from './constants.js';

export interface BlobInfo {
  /** 64 lowercase hex chars normally. */
  blobId: string;
  /** Position in the blob table. */
  blobIndex: number;
  chunkSize: number;
  chunkCount: number;
  compressor: Compressor;
  digester: Digester;
  /** BlobFeatures bits. */
  features: number;
  /** Size of the blob file. */
  compressedSize: number;
  /** End of the last chunk in the uncompressed layout (v6: 4 KiB aligned). */
  uncompressedSize: number;
  // v5 blob table only
  readaheadOffset: number;
  readaheadSize: number;
  // v6 blob table: blob meta (CI array) location, ToC
  metaCiCompressor: Compressor;
  metaCiOffset: number;
  metaCiCompressedSize: number;
  metaCiUncompressedSize: number;
  blobTocSize: number;
  /** sha256 of ToC + its tar header, or 32 zero bytes. */
  blobTocDigest: Uint8Array;
  blobMetaDigest: Uint8Array;
  blobMetaSize: number;
}

export function emptyBlobInfo(blobId: string, blobIndex: number, chunkSize: number, compressor: Compressor, digester: Digester): BlobInfo {
  return {
    blobId,
    blobIndex,
    chunkSize,
    chunkCount: 0,
    compressor,
    digester,
    features: 0,
    compressedSize: 0,
    uncompressedSize: 0,
    readaheadOffset: 0,
    readaheadSize: 0,
    metaCiCompressor: 'none',
    metaCiOffset: 0,
    metaCiCompressedSize: 0,
    metaCiUncompressedSize: 0,
    blobTocSize: 0,
    blobTocDigest: new Uint8Array(32),
    blobMetaDigest: new Uint8Array(32),
    blobMetaSize: 0,
  };
}
