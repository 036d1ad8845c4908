// RAFS v5 inode record (spec §4.7): 128-byte inode, padded name, padded symlink target, optional
// xattr table (§4.8), then `child_count` 80-byte chunk infos for regular files (§4.11).
// Upstream: RafsV5Inode / RafsV5InodeWrapper in rafs/src/metadata/layout/v5.rs.
import { Reader, Writer, align } from '../../util/bytes.js';
import { FormatError } from '../../util/errors.js';
import { RAFS_CHUNK_INFO_SIZE, encodeChunkInfo, type ChunkInfo } from '../chunk-info.js';
import { RafsInodeFlags } from '../constants.js';
import { RAFSV5_ALIGNMENT } from './superblock.js';
import { encodeRafsV5Xattrs, rafsV5XattrTableExtent, rafsV5XattrTableSize, type XattrPair } from './xattr.js';

const S = 'RAFS v5 inode';
export const RAFSV5_INODE_SIZE = 128;
/** nydusd: `1 <= name_size <= 256` (§4.12). */
export const RAFSV5_MAX_NAME_SIZE = 256;

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

export interface RafsV5Inode {
  /** Merkle digest §4.9 (32 bytes, a view into the source buffer when decoded). */
  digest: Uint8Array;
  parent: number;
  ino: number;
  uid: number;
  gid: number;
  projid: number;
  mode: number;
  size: number;
  blocks: number;
  /** RafsInodeFlags (§2.5). */
  flags: number;
  nlink: number;
  childIndex: number;
  /** Directories: children; regular files: chunks. */
  childCount: number;
  nameSize: number;
  symlinkSize: number;
  rdev: number;
  mtimeNsec: number;
  mtime: number;
}

export function decodeRafsV5Inode(buf: Uint8Array, offset: number): RafsV5Inode {
  const r = new Reader(buf, offset, RAFSV5_INODE_SIZE, S);
  return {
    digest: r.bytes(0, 32),
    parent: r.u64(32),
    ino: r.u64(40),
    uid: r.u32(48),
    gid: r.u32(52),
    projid: r.u32(56),
    mode: r.u32(60),
    size: r.u64(64),
    blocks: r.u64(72),
    flags: r.u64(80),
    nlink: r.u32(88),
    childIndex: r.u32(92),
    childCount: r.u32(96),
    nameSize: r.u16(100),
    symlinkSize: r.u16(102),
    rdev: r.u32(104),
    mtimeNsec: r.u32(108),
    mtime: r.u64(112),
  };
}

export function encodeRafsV5Inode(i: RafsV5Inode, out: Uint8Array = new Uint8Array(RAFSV5_INODE_SIZE), offset = 0): Uint8Array {
  out.fill(0, offset, offset + RAFSV5_INODE_SIZE);
  const w = new Writer(out, offset);
  w.bytes(0, i.digest.subarray(0, 32));
  w.u64(32, i.parent);
  w.u64(40, i.ino);
  w.u32(48, i.uid);
  w.u32(52, i.gid);
  w.u32(56, i.projid);
  w.u32(60, i.mode);
  w.u64(64, i.size);
  w.u64(72, i.blocks);
  w.u64(80, i.flags);
  w.u32(88, i.nlink);
  w.u32(92, i.childIndex);
  w.u32(96, i.childCount);
  w.u16(100, i.nameSize);
  w.u16(102, i.symlinkSize);
  w.u32(104, i.rdev >>> 0);
  w.u32(108, i.mtimeNsec);
  w.u64(112, i.mtime);
  return out;
}

export const isV5Dir = (i: RafsV5Inode): boolean => (i.mode & S_IFMT) === S_IFDIR;
export const isV5Reg = (i: RafsV5Inode): boolean => (i.mode & S_IFMT) === S_IFREG;
export const isV5Symlink = (i: RafsV5Inode): boolean => (i.mode & S_IFMT) === S_IFLNK;
/** Hardlinks are regular files with more than one name (§4.10). */
export const isV5Hardlink = (i: RafsV5Inode): boolean => isV5Reg(i) && i.nlink > 1;

/** Where the parts of one record sit (absolute offsets into the bootstrap). */
export interface RafsV5RecordLayout {
  offset: number;
  nameOffset: number;
  /** -1 when no symlink target. */
  symlinkOffset: number;
  /** -1 when no xattr table. */
  xattrOffset: number;
  chunksOffset: number;
  /** Chunk infos (regular files only, else 0). */
  chunkCount: number;
  /** First byte after the record. */
  end: number;
}

/** Computes the record layout, bounds-checking every part against `buf`. */
export function rafsV5RecordLayout(buf: Uint8Array, offset: number, inode: RafsV5Inode): RafsV5RecordLayout {
  const nameOffset = offset + RAFSV5_INODE_SIZE;
  let p = nameOffset + align(inode.nameSize, RAFSV5_ALIGNMENT);
  let symlinkOffset = -1;
  if (inode.symlinkSize > 0) {
    symlinkOffset = p;
    p += align(inode.symlinkSize, RAFSV5_ALIGNMENT);
  }
  if (p > buf.length) throw new FormatError('ERR_FORMAT_TRUNCATED', S, `name/symlink of inode ${inode.ino} run past the end of the bootstrap`, offset);
  let xattrOffset = -1;
  if (inode.flags & RafsInodeFlags.XATTR) {
    xattrOffset = p;
    p += rafsV5XattrTableExtent(buf, p);
  }
  const chunksOffset = p;
  const chunkCount = isV5Reg(inode) ? inode.childCount : 0;
  p += chunkCount * RAFS_CHUNK_INFO_SIZE;
  if (p > buf.length) throw new FormatError('ERR_FORMAT_TRUNCATED', S, `chunk infos of inode ${inode.ino} (child_count ${chunkCount}) run past the end of the bootstrap`, offset);
  return { offset, nameOffset, symlinkOffset, xattrOffset, chunksOffset, chunkCount, end: p };
}

/** Per-inode checks nydusd applies in direct mode (§4.12). */
export function validateRafsV5Inode(i: RafsV5Inode, inodeTableEntries: number, isRoot: boolean, where?: number): void {
  const bad = (field: string, msg: string): never => {
    throw new FormatError('ERR_FORMAT_INVALID', S, `${field} ${msg} (ino ${i.ino})`, where);
  };
  if (i.ino === 0) bad('i_ino', 'is 0');
  if (i.ino > inodeTableEntries) bad('i_ino', `exceeds inode_table_entries ${inodeTableEntries}`);
  if (!isRoot && i.parent === 0) bad('i_parent', 'is 0 on a non-root inode');
  if (i.nlink === 0) bad('i_nlink', 'is 0');
  if (i.nameSize === 0 || i.nameSize > RAFSV5_MAX_NAME_SIZE) bad('i_name_size', `${i.nameSize} is not in 1..${RAFSV5_MAX_NAME_SIZE}`);
  if (!isRoot && !isV5Hardlink(i) && i.parent >= i.ino) bad('i_parent', `${i.parent} is not below i_ino`);
}

export interface RafsV5InodeRecordParts {
  inode: RafsV5Inode;
  name: Uint8Array;
  symlink?: Uint8Array | undefined;
  xattrs: readonly XattrPair[];
  chunks: readonly ChunkInfo[];
}

/** Byte size of a record with these parts. */
export function rafsV5RecordSize(nameSize: number, symlinkSize: number, xattrTableSize: number, chunkCount: number): number {
  return RAFSV5_INODE_SIZE + align(nameSize, RAFSV5_ALIGNMENT) + align(symlinkSize, RAFSV5_ALIGNMENT) + xattrTableSize + chunkCount * RAFS_CHUNK_INFO_SIZE;
}

/** Byte size of the record `encodeRafsV5InodeRecord(parts)` writes. */
export function rafsV5InodeRecordSize(parts: RafsV5InodeRecordParts): number {
  const xt = parts.inode.flags & RafsInodeFlags.XATTR ? rafsV5XattrTableSize(parts.xattrs) : 0;
  return rafsV5RecordSize(parts.name.length, parts.symlink?.length ?? 0, xt, parts.chunks.length);
}

/**
 * Encodes a whole record; `inode.nameSize/symlinkSize/flags` must already agree with the parts.
 * With `out`, writes at `offset` (which must hold rafsV5InodeRecordSize bytes, zeroed) instead of
 * allocating: a builder of 300k inodes then keeps one buffer, not 300k (issue 11, defect 8).
 */
export function encodeRafsV5InodeRecord(parts: RafsV5InodeRecordParts, out?: Uint8Array, offset = 0): Uint8Array {
  const { inode, name, symlink, xattrs, chunks } = parts;
  const xt = inode.flags & RafsInodeFlags.XATTR ? encodeRafsV5Xattrs(xattrs) : new Uint8Array(0);
  const size = rafsV5RecordSize(name.length, symlink?.length ?? 0, xt.length, chunks.length);
  if (!out) out = new Uint8Array(size);
  else if (offset + size > out.length) throw new FormatError('ERR_FORMAT_INVALID', S, `record of ${size} bytes does not fit at offset ${offset}`);
  encodeRafsV5Inode(inode, out, offset);
  let p = offset + RAFSV5_INODE_SIZE;
  out.set(name, p);
  p += align(name.length, RAFSV5_ALIGNMENT);
  if (symlink && symlink.length > 0) {
    out.set(symlink, p);
    p += align(symlink.length, RAFSV5_ALIGNMENT);
  }
  out.set(xt, p);
  p += xt.length;
  for (const c of chunks) {
    encodeChunkInfo(c, out, p);
    p += RAFS_CHUNK_INFO_SIZE;
  }
  return offset === 0 && size === out.length ? out : out.subarray(offset, offset + size);
}
