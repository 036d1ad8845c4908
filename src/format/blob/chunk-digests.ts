// Chunk digest array (`blob.digest`): chunk_count x 32 bytes, digest of chunk i at 32*i, stored
// uncompressed (INLINED_CHUNK_DIGEST blobs). Spec §7.7; upstream builder/src/core/blob.rs.
import { FormatError } from '../../util/errors.js';
import { RAFS_DIGEST_LENGTH } from '../constants.js';

export function encodeChunkDigests(digests: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(digests.length * RAFS_DIGEST_LENGTH);
  digests.forEach((d, i) => {
    if (d.length !== RAFS_DIGEST_LENGTH) throw new FormatError('ERR_FORMAT_INVALID', 'blob.digest', `digest ${i} has ${d.length} bytes, expected 32`);
    out.set(d, i * RAFS_DIGEST_LENGTH);
  });
  return out;
}

/** Splits the array into per-chunk digests (views); `chunkCount` is the blob's, checked. */
export function decodeChunkDigests(buf: Uint8Array, chunkCount: number): Uint8Array[] {
  if (buf.length !== chunkCount * RAFS_DIGEST_LENGTH) {
    throw new FormatError('ERR_FORMAT_INVALID', 'blob.digest', `${buf.length} bytes for ${chunkCount} chunks, expected ${chunkCount * RAFS_DIGEST_LENGTH}`);
  }
  const out: Uint8Array[] = [];
  for (let i = 0; i < chunkCount; i++) out.push(buf.subarray(i * RAFS_DIGEST_LENGTH, (i + 1) * RAFS_DIGEST_LENGTH));
  return out;
}
