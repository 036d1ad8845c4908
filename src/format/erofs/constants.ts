// EROFS on-disk constants used by RAFS v6 (spec rafs-format.md §5). Names follow the kernel's
// fs/erofs/erofs_fs.h and upstream nydus rafs/src/metadata/layout/v6.rs.

/** The EROFS superblock sits at byte 1024 (§5.2). */
export const EROFS_SUPER_OFFSET = 1024;
export const EROFS_SUPER_BLOCK_SIZE = 128;
export const EROFS_SUPER_MAGIC_V1 = 0xe0f5e1e2;
/** 4 KiB blocks; tarfs uses 512 (§5.1). */
export const EROFS_BLOCK_BITS_12 = 12;
export const EROFS_BLOCK_BITS_9 = 9;
export const EROFS_BLOCK_SIZE_4096 = 4096;

export const EROFS_FEATURE_COMPAT_RAFS_V6 = 0x4000_0000;
export const EROFS_FEATURE_COMPAT_SB_CHKSUM = 0x1;
export const EROFS_FEATURE_INCOMPAT_CHUNKED_FILE = 0x4;
export const EROFS_FEATURE_INCOMPAT_DEVICE_TABLE = 0x8;
/** The exact incompat word nydus writes and nydusd requires (§5.2). */
export const EROFS_FEATURE_INCOMPAT_RAFS_V6 = EROFS_FEATURE_INCOMPAT_CHUNKED_FILE | EROFS_FEATURE_INCOMPAT_DEVICE_TABLE;

/** Inode slots are 32 bytes: nid * 32 + meta_blkaddr * bs = inode offset (§5.6). */
export const EROFS_ISLOTBITS = 5;
export const EROFS_INODE_SLOT_SIZE = 32;
export const EROFS_INODE_COMPACT_SIZE = 32;
export const EROFS_INODE_EXTENDED_SIZE = 64;

/** i_format bit 0 (§5.7). */
export const EROFS_INODE_LAYOUT_COMPACT = 0;
export const EROFS_INODE_LAYOUT_EXTENDED = 1;
/** i_format bits 1..3 (§5.7). */
export const EROFS_INODE_FLAT_PLAIN = 0;
export const EROFS_INODE_FLAT_COMPRESSION_LEGACY = 1;
export const EROFS_INODE_FLAT_INLINE = 2;
export const EROFS_INODE_FLAT_COMPRESSION = 3;
export const EROFS_INODE_CHUNK_BASED = 4;
export const EROFS_I_VERSION_BIT = 0;
export const EROFS_I_DATALAYOUT_BIT = 1;
/** Any i_format bit outside version + datalayout is rejected by nydusd. */
export const EROFS_I_ALL = 0xf;

/** Chunk format word in i_u of CHUNK_BASED inodes (§5.10). */
export const EROFS_CHUNK_FORMAT_BLKBITS_MASK = 0x1f;
export const EROFS_CHUNK_FORMAT_INDEXES = 0x20;
export const EROFS_CHUNK_INDEX_SIZE = 8;

/** Dirent (12 bytes) and file types (§5.9). */
export const EROFS_DIRENT_SIZE = 12;
export const EROFS_FT_UNKNOWN = 0;
export const EROFS_FT_REG_FILE = 1;
export const EROFS_FT_DIR = 2;
export const EROFS_FT_CHRDEV = 3;
export const EROFS_FT_BLKDEV = 4;
export const EROFS_FT_FIFO = 5;
export const EROFS_FT_SOCK = 6;
export const EROFS_FT_SYMLINK = 7;
export const EROFS_FT_MAX = 8;

/** Xattr ibody header and name indexes (§5.8). */
export const EROFS_XATTR_IBODY_HEADER_SIZE = 12;
export const EROFS_XATTR_ENTRY_SIZE = 4;
export const EROFS_XATTR_INDEX_USER = 1;
export const EROFS_XATTR_INDEX_POSIX_ACL_ACCESS = 2;
export const EROFS_XATTR_INDEX_POSIX_ACL_DEFAULT = 3;
export const EROFS_XATTR_INDEX_TRUSTED = 4;
export const EROFS_XATTR_INDEX_LUSTRE = 5;
export const EROFS_XATTR_INDEX_SECURITY = 6;

/** Device slots are 128 bytes (§5.4). */
export const EROFS_DEVT_SLOT_SIZE = 128;
/** 0xFFFFFFFF in a block address means a hole to the kernel; RAFS never writes it. */
export const EROFS_NULL_ADDR = 0xffff_ffff;

// st_mode file types (kept local so format/ does not import builder/).
const S_IFMT = 0o170000;
const FT_BY_MODE: Record<number, number> = {
  0o100000: EROFS_FT_REG_FILE,
  0o040000: EROFS_FT_DIR,
  0o020000: EROFS_FT_CHRDEV,
  0o060000: EROFS_FT_BLKDEV,
  0o010000: EROFS_FT_FIFO,
  0o140000: EROFS_FT_SOCK,
  0o120000: EROFS_FT_SYMLINK,
};
const DT_BY_FT = [0, 8, 4, 2, 6, 1, 12, 10];

/** EROFS_FT_* of an st_mode (EROFS_FT_UNKNOWN for an invalid type). */
export function erofsFileType(mode: number): number {
  return FT_BY_MODE[mode & S_IFMT] ?? EROFS_FT_UNKNOWN;
}
/** Linux DT_* value for an EROFS_FT_* value. */
export function erofsFtToDt(ft: number): number {
  return DT_BY_FT[ft] ?? 0;
}
