// Shared enumerations and flag words of RAFS v5/v6 (spec rafs-format.md §2).
// Upstream names kept verbatim so one grep finds nydus, the kernel and us.

/** RafsSuperFlags (u64; v5 superblock `flags`, v6 extended superblock `flags`), §2.1. */
export const RafsSuperFlags = {
  COMPRESSION_NONE: 0x1,
  COMPRESSION_LZ4: 0x2,
  HASH_BLAKE3: 0x4,
  HASH_SHA256: 0x8,
  EXPLICIT_UID_GID: 0x10,
  HAS_XATTR: 0x20,
  COMPRESSION_GZIP: 0x40,
  COMPRESSION_ZSTD: 0x80,
  INLINED_CHUNK_DIGEST: 0x100,
  TARTFS_MODE: 0x200,
  ENCRYPTION_NONE: 0x0100_0000,
  ENCRYPTION_AES128XTS: 0x0200_0000,
} as const;
/** Bits a reader accepts (anything else is rejected), incl. the reserved-compatible range. */
export const RAFS_SUPER_FLAGS_KNOWN = 0x3ff | 0x0100_0000 | 0x0200_0000 | 0xfc00_0000;

/** BlobFeatures (u32), §2.3. */
export const BlobFeatures = {
  ALIGNED: 0x1,
  INLINED_FS_META: 0x2,
  CHUNK_INFO_V2: 0x4,
  ZRAN: 0x8,
  SEPARATE: 0x10,
  INLINED_CHUNK_DIGEST: 0x20,
  TARFS: 0x40,
  BATCH: 0x80,
  ENCRYPTED: 0x100,
  IS_CHUNKDICT_GENERATED: 0x200,
  IS_SEPARATED_WITH_PREFETCH_FILES: 0x400,
  EXTERNAL: 0x800,
  HAS_TAR_HEADER: 0x1000_0000,
  HAS_TOC: 0x2000_0000,
  CAP_TAR_TOC: 0x4000_0000,
  _V5_NO_EXT_BLOB_TABLE: 0x8000_0000,
} as const;
/** Readers reject a features word with any of these bits set (§2.3). */
export const BLOB_FEATURES_INVALID = 0xf000 | 0x8000_0000;

/** BlobChunkFlags (u32), §2.4. */
export const BlobChunkFlags = {
  COMPRESSED: 0x1,
  _HOLECHUNK: 0x2,
  ENCRYPTED: 0x4,
  BATCH: 0x8,
  HAS_CRC32: 0x10,
} as const;

/** RafsInodeFlags (u64; v5 inode `flags`), §2.5. */
export const RafsInodeFlags = {
  SYMLINK: 0x1,
  HARDLINK: 0x2,
  XATTR: 0x4,
  HAS_HOLE: 0x8,
} as const;

export type Compressor = 'none' | 'lz4_block' | 'gzip' | 'zstd';
export type Digester = 'blake3' | 'sha256';

/** Numeric algorithm codes (v6 blob table, blob meta header), §2.2. */
export const COMPRESSOR_CODES: readonly Compressor[] = ['none', 'lz4_block', 'gzip', 'zstd'];
export const DIGESTER_CODES: readonly Digester[] = ['blake3', 'sha256'];

export function compressorCode(c: Compressor): number {
  return COMPRESSOR_CODES.indexOf(c);
}
export function digesterCode(d: Digester): number {
  return DIGESTER_CODES.indexOf(d);
}

/** Decodes the compressor from superblock flags; first match wins, lz4_block when none (§2.1). */
export function compressorFromFlags(flags: number): Compressor {
  if (flags & RafsSuperFlags.COMPRESSION_NONE) return 'none';
  if (flags & RafsSuperFlags.COMPRESSION_LZ4) return 'lz4_block';
  if (flags & RafsSuperFlags.COMPRESSION_GZIP) return 'gzip';
  if (flags & RafsSuperFlags.COMPRESSION_ZSTD) return 'zstd';
  return 'lz4_block';
}
export function digesterFromFlags(flags: number): Digester {
  if (flags & RafsSuperFlags.HASH_BLAKE3) return 'blake3';
  if (flags & RafsSuperFlags.HASH_SHA256) return 'sha256';
  return 'blake3';
}
export function compressorFlag(c: Compressor): number {
  return { none: RafsSuperFlags.COMPRESSION_NONE, lz4_block: RafsSuperFlags.COMPRESSION_LZ4, gzip: RafsSuperFlags.COMPRESSION_GZIP, zstd: RafsSuperFlags.COMPRESSION_ZSTD }[c];
}
export function digesterFlag(d: Digester): number {
  return d === 'blake3' ? RafsSuperFlags.HASH_BLAKE3 : RafsSuperFlags.HASH_SHA256;
}

export const RAFS_DEFAULT_CHUNK_SIZE = 0x100000;
export const RAFS_MIN_CHUNK_SIZE = 0x1000;
export const RAFS_MAX_CHUNK_SIZE = 0x1000000;
export const RAFS_ROOT_INODE = 1;
/** Digest bytes (blake3-256 / sha256). */
export const RAFS_DIGEST_LENGTH = 32;

export function isValidChunkSize(n: number): boolean {
  return Number.isInteger(n) && n >= RAFS_MIN_CHUNK_SIZE && n <= RAFS_MAX_CHUNK_SIZE && (n & (n - 1)) === 0;
}
