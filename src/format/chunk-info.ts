// Chunk info: 80-byte record shared by the v5 inode chunk list (§4.11) and the v6 chunk table (§5.12).
// Upstream: rafs/src/metadata/layout/v5.rs RafsV5ChunkInfo.
import { Reader, Writer, hex } from '../util/bytes.js';
import { BlobChunkFlags, BlobFeatures } from './constants.js';

export const RAFS_CHUNK_INFO_SIZE = 80;

export interface ChunkInfo {
  /** Chunk digest of the uncompressed bytes (32 bytes). */
  digest: Uint8Array;
  blobIndex: number;
  flags: number;
  compressedSize: number;
  uncompressedSize: number;
  compressedOffset: number;
  uncompressedOffset: number;
  fileOffset: number;
  /** Chunk index within its blob. */
  index: number;
  crc32: number;
}

export function decodeChunkInfo(buf: Uint8Array, offset = 0): ChunkInfo {
  const r = new Reader(buf, offset, RAFS_CHUNK_INFO_SIZE, 'chunk info');
  return {
    digest: r.bytes(0, 32).slice(),
    blobIndex: r.u32(32),
    flags: r.u32(36),
    compressedSize: r.u32(40),
    uncompressedSize: r.u32(44),
    compressedOffset: r.u64(48),
    uncompressedOffset: r.u64(56),
    fileOffset: r.u64(64),
    index: r.u32(72),
    crc32: r.u32(76),
  };
}

export function encodeChunkInfo(c: ChunkInfo, out: Uint8Array = new Uint8Array(RAFS_CHUNK_INFO_SIZE), offset = 0): Uint8Array {
  const w = new Writer(out, offset);
  out.fill(0, offset, offset + RAFS_CHUNK_INFO_SIZE);
  w.bytes(0, c.digest.subarray(0, 32));
  w.u32(32, c.blobIndex);
  w.u32(36, c.flags);
  w.u32(40, c.compressedSize);
  w.u32(44, c.uncompressedSize);
  w.u64(48, c.compressedOffset);
  w.u64(56, c.uncompressedOffset);
  w.u64(64, c.fileOffset);
  w.u32(72, c.index);
  w.u32(76, c.crc32);
  return out;
}

export function isChunkCompressed(c: ChunkInfo): boolean {
  return (c.flags & BlobChunkFlags.COMPRESSED) !== 0;
}

/**
 * What identifies a chunk in its blob's cache, in-flight map and dedup sets. Chunk records of v5
 * images without the extended blob table (older builders) all carry index 0, so there the chunk is
 * named by its digest and place (upstream switches to a digest-keyed chunk map for such blobs);
 * every other blob numbers its chunks 0..n-1.
 */
export type ChunkKey = number | string;

export function isDigestKeyed(blob: { features: number }): boolean {
  return (blob.features & BlobFeatures._V5_NO_EXT_BLOB_TABLE) !== 0;
}

export function chunkKey(blob: { features: number }, c: ChunkInfo): ChunkKey {
  if (!isDigestKeyed(blob)) return c.index;
  return `${hex(c.digest)}@${c.compressedOffset}+${c.compressedSize}>${c.uncompressedOffset}+${c.uncompressedSize}`;
}

/** "chunk 3" or, where indexes mean nothing, "chunk at compressed offset N (digest abcd1234…)". */
export function chunkName(blob: { features: number }, c: ChunkInfo): string {
  return isDigestKeyed(blob) ? `chunk at compressed offset ${c.compressedOffset} (digest ${hex(c.digest).slice(0, 16)}…)` : `chunk ${c.index}`;
}
