// One entry of the blob meta "compression context table" (CI array), independent of its
// on-disk version (v1: 16 bytes, v2: 24 bytes). Spec §7.3; upstream storage/src/meta/mod.rs
// BlobMetaChunkInfo.

export interface CiEntry {
  compressedOffset: number;
  compressedSize: number;
  /** v1: always 4 KiB aligned (low 12 bits are not stored). */
  uncompressedOffset: number;
  uncompressedSize: number;
  /** v1: `compressedSize !== uncompressedSize`; v2: flag CHUNK_V2_FLAG_COMPRESSED. */
  compressed: boolean;
  /** CI v2 flag byte (CHUNK_V2_FLAG_*, without the << 56 shift); v1: derived COMPRESSED bit only. */
  flags: number;
  /** CI v2 `data` word (crc32 / zran / batch info); 0n for v1. */
  data: bigint;
}

/** Upstream BLOB_CCT_CHUNK_SIZE_MASK: CI sizes are 24-bit (chunks are at most 16 MiB). */
export const BLOB_CCT_CHUNK_SIZE_MASK = 0xff_ffff;

/** CI v2 flag bits (upstream CHUNK_V2_FLAG_* >> 56), §7.3. */
export const CHUNK_V2_FLAG_COMPRESSED = 0x01;
export const CHUNK_V2_FLAG_ZRAN = 0x02;
export const CHUNK_V2_FLAG_BATCH = 0x04;
export const CHUNK_V2_FLAG_ENCRYPTED = 0x08;
export const CHUNK_V2_FLAG_HAS_CRC32 = 0x10;

/** crc32 recorded in a CI v2 entry, or undefined when it has none. */
export function ciEntryCrc32(e: CiEntry): number | undefined {
  return e.flags & CHUNK_V2_FLAG_HAS_CRC32 ? Number(e.data & 0xffff_ffffn) : undefined;
}
