// Kernel FUSE ABI: opcodes, flags and fixed struct layouts from include/uapi/linux/fuse.h.
// Everything is little-endian (we only run on LE hosts). Encoders write into a caller-owned
// buffer so the hot path allocates nothing; sizes are the kernel's sizeof() values.

export const FUSE_KERNEL_VERSION = 7;
/** The minor we speak: 7.31 has everything a read-only fs needs (readdirplus, lseek, max_pages,
 * NO_OPENDIR_SUPPORT, CACHE_SYMLINKS) and keeps the 64-byte fuse_init_out. */
export const FUSE_OUR_MINOR = 31;
/** Oldest kernel minor we accept: 7.23 is the first with the full fuse_init_out layout. */
export const FUSE_MIN_MINOR = 23;
export const FUSE_ROOT_ID = 1;
export const FUSE_MIN_READ_BUFFER = 8192;

export enum Op {
  FUSE_LOOKUP = 1,
  FUSE_FORGET = 2,
  FUSE_GETATTR = 3,
  FUSE_SETATTR = 4,
  FUSE_READLINK = 5,
  FUSE_SYMLINK = 6,
  FUSE_MKNOD = 8,
  FUSE_MKDIR = 9,
  FUSE_UNLINK = 10,
  FUSE_RMDIR = 11,
  FUSE_RENAME = 12,
  FUSE_LINK = 13,
  FUSE_OPEN = 14,
  FUSE_READ = 15,
  FUSE_WRITE = 16,
  FUSE_STATFS = 17,
  FUSE_RELEASE = 18,
  FUSE_FSYNC = 20,
  FUSE_SETXATTR = 21,
  FUSE_GETXATTR = 22,
  FUSE_LISTXATTR = 23,
  FUSE_REMOVEXATTR = 24,
  FUSE_FLUSH = 25,
  FUSE_INIT = 26,
  FUSE_OPENDIR = 27,
  FUSE_READDIR = 28,
  FUSE_RELEASEDIR = 29,
  FUSE_FSYNCDIR = 30,
  FUSE_GETLK = 31,
  FUSE_SETLK = 32,
  FUSE_SETLKW = 33,
  FUSE_ACCESS = 34,
  FUSE_CREATE = 35,
  FUSE_INTERRUPT = 36,
  FUSE_BMAP = 37,
  FUSE_DESTROY = 38,
  FUSE_IOCTL = 39,
  FUSE_POLL = 40,
  FUSE_NOTIFY_REPLY = 41,
  FUSE_BATCH_FORGET = 42,
  FUSE_FALLOCATE = 43,
  FUSE_READDIRPLUS = 44,
  FUSE_RENAME2 = 45,
  FUSE_LSEEK = 46,
  FUSE_COPY_FILE_RANGE = 47,
  FUSE_SETUPMAPPING = 48,
  FUSE_REMOVEMAPPING = 49,
  FUSE_SYNCFS = 50,
  FUSE_TMPFILE = 51,
}

/** Names for stats/debug output, indexed by opcode. */
export const OPCODE_NAMES: Readonly<Record<number, string>> = {
  1: 'LOOKUP', 2: 'FORGET', 3: 'GETATTR', 4: 'SETATTR', 5: 'READLINK', 6: 'SYMLINK', 8: 'MKNOD', 9: 'MKDIR',
  10: 'UNLINK', 11: 'RMDIR', 12: 'RENAME', 13: 'LINK', 14: 'OPEN', 15: 'READ', 16: 'WRITE', 17: 'STATFS',
  18: 'RELEASE', 20: 'FSYNC', 21: 'SETXATTR', 22: 'GETXATTR', 23: 'LISTXATTR', 24: 'REMOVEXATTR', 25: 'FLUSH',
  26: 'INIT', 27: 'OPENDIR', 28: 'READDIR', 29: 'RELEASEDIR', 30: 'FSYNCDIR', 31: 'GETLK', 32: 'SETLK',
  33: 'SETLKW', 34: 'ACCESS', 35: 'CREATE', 36: 'INTERRUPT', 37: 'BMAP', 38: 'DESTROY', 39: 'IOCTL', 40: 'POLL',
  41: 'NOTIFY_REPLY', 42: 'BATCH_FORGET', 43: 'FALLOCATE', 44: 'READDIRPLUS', 45: 'RENAME2', 46: 'LSEEK',
  47: 'COPY_FILE_RANGE', 48: 'SETUPMAPPING', 49: 'REMOVEMAPPING', 50: 'SYNCFS', 51: 'TMPFILE',
};
/** Stats table width: opcodes above this are counted in the last slot ("other"). */
export const MAX_OPCODE = 63;

// fuse_init_in/out flags (first 32 bits).
export const FUSE_ASYNC_READ = 1 << 0;
export const FUSE_POSIX_LOCKS = 1 << 1;
export const FUSE_ATOMIC_O_TRUNC = 1 << 3;
export const FUSE_EXPORT_SUPPORT = 1 << 4;
export const FUSE_BIG_WRITES = 1 << 5;
export const FUSE_AUTO_INVAL_DATA = 1 << 12;
export const FUSE_DO_READDIRPLUS = 1 << 13;
export const FUSE_READDIRPLUS_AUTO = 1 << 14;
export const FUSE_ASYNC_DIO = 1 << 15;
export const FUSE_WRITEBACK_CACHE = 1 << 16;
export const FUSE_NO_OPEN_SUPPORT = 1 << 17;
export const FUSE_PARALLEL_DIROPS = 1 << 18;
export const FUSE_MAX_PAGES = 1 << 22;
export const FUSE_CACHE_SYMLINKS = 1 << 23;
export const FUSE_NO_OPENDIR_SUPPORT = 1 << 24;

// fuse_notify_code: unsolicited messages to the kernel (out header with unique 0, error = code).
/** Since 7.40 (Linux 6.9): move every request a server has read but not answered back to the queue. */
export const FUSE_NOTIFY_RESEND = 7;
/** Set by the kernel in the unique of a request it resent (fuse.h FUSE_UNIQUE_RESEND). */
export const FUSE_UNIQUE_RESEND = 1n << 63n;

// fuse_open_out.open_flags
export const FOPEN_DIRECT_IO = 1 << 0;
export const FOPEN_KEEP_CACHE = 1 << 1;
export const FOPEN_NONSEEKABLE = 1 << 2;
export const FOPEN_CACHE_DIR = 1 << 3;

// Fixed sizes (bytes).
export const IN_HEADER_SIZE = 40;
export const OUT_HEADER_SIZE = 16;
export const ATTR_SIZE = 88;
export const ENTRY_OUT_SIZE = 40 + ATTR_SIZE; // 128
export const ATTR_OUT_SIZE = 16 + ATTR_SIZE; // 104
export const OPEN_OUT_SIZE = 16;
export const STATFS_OUT_SIZE = 80;
export const INIT_OUT_SIZE = 64;
export const DIRENT_HEADER_SIZE = 24;
export const DIRENTPLUS_HEADER_SIZE = ENTRY_OUT_SIZE + DIRENT_HEADER_SIZE; // 152

export function readU64(b: Buffer, off: number): number {
  return b.readUInt32LE(off) + b.readUInt32LE(off + 4) * 0x1_0000_0000;
}

export function writeU64(b: Buffer, v: number, off: number): void {
  // Two halves instead of writeBigUInt64LE: avoids a BigInt per field on the hot path.
  const lo = v % 0x1_0000_0000;
  b.writeUInt32LE(lo >>> 0, off);
  b.writeUInt32LE(Math.floor(v / 0x1_0000_0000) >>> 0, off + 4);
}

/** fuse_out_header; `errno` is positive here and negated on the wire (the only place). */
export function encodeOutHeader(b: Buffer, len: number, errno: number, unique: bigint): void {
  b.writeUInt32LE(len, 0);
  b.writeInt32LE(-errno, 4);
  b.writeBigUInt64LE(unique, 8);
}

/** Seconds (possibly fractional) → [sec, nsec] as the kernel's *_valid/*_valid_nsec pairs want. */
export function splitTimeout(t: number): [number, number] {
  if (!(t > 0)) return [0, 0];
  const s = Math.floor(t);
  return [s, Math.round((t - s) * 1e9) % 1e9];
}
