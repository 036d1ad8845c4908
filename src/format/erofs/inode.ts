// EROFS compact (32 B) and extended (64 B) inodes (spec §5.7). Upstream: RafsV6InodeCompact,
// RafsV6InodeExtended. One decoder dispatches on i_format bit 0.
import { Reader, Writer } from '../../util/bytes.js';
import { FormatError } from '../../util/errors.js';
import {
  EROFS_I_ALL,
  EROFS_I_DATALAYOUT_BIT,
  EROFS_INODE_CHUNK_BASED,
  EROFS_INODE_COMPACT_SIZE,
  EROFS_INODE_EXTENDED_SIZE,
  EROFS_INODE_FLAT_INLINE,
  EROFS_INODE_FLAT_PLAIN,
  EROFS_INODE_LAYOUT_EXTENDED,
  EROFS_XATTR_ENTRY_SIZE,
  EROFS_XATTR_IBODY_HEADER_SIZE,
} from './constants.js';

export interface ErofsInode {
  /** EROFS_INODE_LAYOUT_COMPACT (32 B) or EROFS_INODE_LAYOUT_EXTENDED (64 B). */
  version: number;
  /** EROFS_INODE_FLAT_PLAIN | FLAT_INLINE | CHUNK_BASED. */
  dataLayout: number;
  xattrIcount: number;
  mode: number;
  size: number;
  /** Layout-dependent word: block address, chunk format, or rdev. */
  u: number;
  ino: number;
  uid: number;
  gid: number;
  /** Compact inodes carry no mtime (0 here). */
  mtime: number;
  mtimeNsec: number;
  nlink: number;
}

/** On-disk size of the inode core. */
export function erofsInodeSize(i: Pick<ErofsInode, 'version'>): number {
  return i.version === EROFS_INODE_LAYOUT_EXTENDED ? EROFS_INODE_EXTENDED_SIZE : EROFS_INODE_COMPACT_SIZE;
}

/** Bytes of the inline xattr area for an i_xattr_icount (§5.8). */
export function xattrIbodySize(icount: number): number {
  return icount === 0 ? 0 : EROFS_XATTR_IBODY_HEADER_SIZE + (icount - 1) * EROFS_XATTR_ENTRY_SIZE;
}

export function decodeErofsInode(buf: Uint8Array, offset: number): ErofsInode {
  const head = new Reader(buf, offset, 2, 'EROFS inode');
  const format = head.u16(0);
  if ((format & ~EROFS_I_ALL) !== 0) {
    throw new FormatError('ERR_FORMAT_INVALID', 'EROFS inode', `i_format 0x${format.toString(16)} has unknown bits`, offset);
  }
  const version = format & 1;
  const dataLayout = (format >> EROFS_I_DATALAYOUT_BIT) & 7;
  if (dataLayout !== EROFS_INODE_FLAT_PLAIN && dataLayout !== EROFS_INODE_FLAT_INLINE && dataLayout !== EROFS_INODE_CHUNK_BASED) {
    throw new FormatError('ERR_FORMAT_UNSUPPORTED', 'EROFS inode', `i_format data layout ${dataLayout} is not used by RAFS`, offset);
  }
  if (version === EROFS_INODE_LAYOUT_EXTENDED) {
    const r = new Reader(buf, offset, EROFS_INODE_EXTENDED_SIZE, 'EROFS extended inode');
    return {
      version,
      dataLayout,
      xattrIcount: r.u16(2),
      mode: r.u16(4),
      size: r.u64(8),
      u: r.u32(16),
      ino: r.u32(20),
      uid: r.u32(24),
      gid: r.u32(28),
      mtime: r.u64(32),
      mtimeNsec: r.u32(40),
      nlink: r.u32(44),
    };
  }
  const r = new Reader(buf, offset, EROFS_INODE_COMPACT_SIZE, 'EROFS compact inode');
  return {
    version,
    dataLayout,
    xattrIcount: r.u16(2),
    mode: r.u16(4),
    nlink: r.u16(6),
    size: r.u32(8),
    u: r.u32(16),
    ino: r.u32(20),
    uid: r.u16(24),
    gid: r.u16(26),
    mtime: 0,
    mtimeNsec: 0,
  };
}

/** Encodes the inode core (32 or 64 bytes per `version`); reserved bytes are zero. */
export function encodeErofsInode(i: ErofsInode, out?: Uint8Array, offset = 0): Uint8Array {
  const size = erofsInodeSize(i);
  const o = out ?? new Uint8Array(size);
  o.fill(0, offset, offset + size);
  const w = new Writer(o, offset);
  w.u16(0, (i.version & 1) | (i.dataLayout << EROFS_I_DATALAYOUT_BIT));
  w.u16(2, i.xattrIcount);
  w.u16(4, i.mode);
  if (i.version === EROFS_INODE_LAYOUT_EXTENDED) {
    w.u64(8, i.size);
    w.u32(16, i.u);
    w.u32(20, i.ino);
    w.u32(24, i.uid);
    w.u32(28, i.gid);
    w.u64(32, i.mtime);
    w.u32(40, i.mtimeNsec);
    w.u32(44, i.nlink);
  } else {
    w.u16(6, i.nlink);
    w.u32(8, i.size);
    w.u32(16, i.u);
    w.u32(20, i.ino);
    w.u16(24, i.uid);
    w.u16(26, i.gid);
  }
  return o;
}

// Device numbers: EROFS stores Linux new_encode_dev(); our model uses glibc's dev_t (§5.7).
// Identical for major < 4096 and minor < 2^20, which is all new_encode_dev can express.

/** glibc dev_t → u32 new_encode_dev form (bits that form cannot hold are dropped, as upstream). */
export function encodeDevV6(rdev: number): number {
  const lo = rdev % 2 ** 32 >>> 0;
  const hi = Math.floor(rdev / 2 ** 32) >>> 0;
  const major = ((lo >>> 8) & 0xfff) | (hi & ~0xfff);
  const minor = (lo & 0xff) | ((lo >>> 12) & ~0xff) | ((hi & 0xfff) << 20);
  return newEncodeDev(major, minor);
}

export function newEncodeDev(major: number, minor: number): number {
  return ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & 0xfff00) << 12)) >>> 0;
}

/** u32 new_encode_dev form → glibc dev_t (makedev(major, minor)). */
export function decodeDevV6(u: number): number {
  const major = (u & 0xfff00) >>> 8;
  const minor = (u & 0xff) | ((u >>> 12) & 0xfff00);
  return makedev(major, minor);
}

/** glibc makedev() as a JS number (exact below 2^53). */
export function makedev(major: number, minor: number): number {
  const m = minor >>> 0;
  const j = major >>> 0;
  return ((j & 0xfff) << 8) + (j - (j & 0xfff)) * 2 ** 32 + (m & 0xff) + (m - (m & 0xff)) * 4096;
}
