// RAFS v6 read model (spec §5, §6): a RafsSuper over one Uint8Array bootstrap. Construction
// decodes only the superblocks, blob table and device slots; inodes, dirents, xattrs and chunk
// indexes are decoded from the buffer on each call (views, no copies), so building one per FUSE
// worker over a shared buffer is cheap. Everything is bounded by the buffer size, so corrupt input
// ends in a FormatError, never a hang or a huge allocation.
import { constants as osConstants } from 'node:os';
import { Reader } from '../util/bytes.js';
import { FormatError, FsError } from '../util/errors.js';
import type { BlobInfo } from '../format/blob-info.js';
import { RAFS_CHUNK_INFO_SIZE, type ChunkInfo } from '../format/chunk-info.js';
import { RafsSuperFlags, compressorFromFlags, digesterFromFlags } from '../format/constants.js';
import {
  EROFS_CHUNK_FORMAT_INDEXES,
  EROFS_CHUNK_INDEX_SIZE,
  EROFS_DEVT_SLOT_SIZE,
  EROFS_FT_DIR,
  EROFS_INODE_CHUNK_BASED,
  EROFS_INODE_FLAT_INLINE,
  EROFS_INODE_SLOT_SIZE,
  DirentBlock,
  decodeChunkIndex,
  decodeDevV6,
  decodeErofsDeviceSlot,
  decodeErofsInode,
  decodeErofsSuperBlock,
  decodeXattrIbody,
  erofsFileType,
  erofsFtToDt,
  erofsInodeSize,
  validateErofsSuperBlock,
  xattrIbodySize,
  type ErofsDeviceSlot,
  type ErofsInode,
  type ErofsSuperBlock,
} from '../format/erofs/index.js';
import {
  RAFS_V6_BLOB_SIZE,
  decodeRafsV6Blob,
  decodeRafsV6PrefetchTable,
  decodeRafsV6SuperBlockExt,
  rafsV6BlobToBlobInfo,
  validateRafsV6Blob,
  validateRafsV6SuperBlockExt,
  type RafsV6SuperBlockExt,
} from '../format/rafs-v6/index.js';
import type { DirEntry, RafsInode, RafsMeta, RafsSuper } from './types.js';
import { entryNameProblem } from './names.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../format/image-model.js';

const E = osConstants.errno;
const DOTDOT = new Uint8Array([0x2e, 0x2e]);

/** A decoded inode plus where it lives. */
export interface V6InodeView {
  nid: number;
  offset: number;
  inode: ErofsInode;
  /** Offset of the xattr ibody (= end of the inode core). */
  xattrOffset: number;
  xattrSize: number;
}

export function openRafsV6(buf: Uint8Array): RafsV6Super {
  return new RafsV6Super(buf);
}

export class RafsV6Super implements RafsSuper {
  readonly buf: Uint8Array;
  readonly sb: ErofsSuperBlock;
  readonly ext: RafsV6SuperBlockExt;
  readonly meta: RafsMeta;
  readonly blobs: readonly BlobInfo[];
  readonly devices: readonly ErofsDeviceSlot[];
  readonly rootIno: number;
  readonly blockSize: number;
  readonly #metaBase: number;
  #chunkMap: Map<number, number> | undefined;
  #parents: Map<number, number> | undefined;

  constructor(buf: Uint8Array) {
    this.buf = buf;
    this.sb = decodeErofsSuperBlock(buf);
    validateErofsSuperBlock(this.sb, buf.length);
    this.blockSize = 1 << this.sb.blkszbits;
    this.ext = decodeRafsV6SuperBlockExt(buf);
    validateRafsV6SuperBlockExt(this.ext, buf.length, this.blockSize);
    const nblobs = this.ext.blobTableSize / RAFS_V6_BLOB_SIZE;
    if (nblobs !== this.sb.extraDevices) {
      throw new FormatError('ERR_FORMAT_INVALID', 'RAFS v6 blob table', `${nblobs} entries but the superblock has ${this.sb.extraDevices} extra devices`);
    }
    const blobs: BlobInfo[] = [];
    const devices: ErofsDeviceSlot[] = [];
    const tags = new Set<string>();
    for (let i = 0; i < nblobs; i++) {
      const raw = decodeRafsV6Blob(buf, this.ext.blobTableOffset + i * RAFS_V6_BLOB_SIZE);
      validateRafsV6Blob(raw, i, this.ext.chunkSize);
      blobs.push(rafsV6BlobToBlobInfo(raw));
      const slot = decodeErofsDeviceSlot(buf, this.sb.devtSlotoff * EROFS_DEVT_SLOT_SIZE + i * EROFS_DEVT_SLOT_SIZE);
      if (slot.blocks === 0) throw new FormatError('ERR_FORMAT_INVALID', `EROFS device slot ${i}`, 'blocks is 0');
      if (tags.has(slot.tag)) throw new FormatError('ERR_FORMAT_INVALID', `EROFS device slot ${i}`, `duplicate tag "${slot.tag}"`);
      tags.add(slot.tag);
      devices.push(slot);
    }
    this.blobs = blobs;
    this.devices = devices;
    this.#metaBase = this.sb.metaBlkaddr * this.blockSize;
    this.rootIno = this.sb.rootNid;
    const flags = this.ext.flags;
    this.meta = {
      version: 6,
      chunkSize: this.ext.chunkSize,
      compressor: compressorFromFlags(flags),
      digester: digesterFromFlags(flags),
      flags,
      explicitUidGid: (flags & RafsSuperFlags.EXPLICIT_UID_GID) !== 0,
      hasXattr: (flags & RafsSuperFlags.HAS_XATTR) !== 0,
      inodeCount: this.sb.inos,
    };
  }

  /** Decodes the inode `nid`; FsError(ENOENT) when no inode can be there. */
  inodeView(nid: number): V6InodeView {
    const offset = this.#metaBase + nid * EROFS_INODE_SLOT_SIZE;
    if (!Number.isSafeInteger(nid) || nid < 0 || offset + EROFS_INODE_SLOT_SIZE > this.buf.length) {
      throw new FsError(E.ENOENT, `RAFS v6: no inode ${nid}`);
    }
    const inode = decodeErofsInode(this.buf, offset);
    if (erofsFileType(inode.mode) === 0) {
      if (inode.mode === 0) throw new FsError(E.ENOENT, `RAFS v6: no inode ${nid}`);
      throw new FormatError('ERR_FORMAT_INVALID', `inode ${nid}`, `i_mode 0${inode.mode.toString(8)} has an invalid file type`, offset);
    }
    const xattrOffset = offset + erofsInodeSize(inode);
    const xattrSize = xattrIbodySize(inode.xattrIcount);
    if (xattrOffset + xattrSize > this.buf.length) {
      throw new FormatError('ERR_FORMAT_TRUNCATED', `inode ${nid}`, `xattr area of ${xattrSize} bytes runs past the bootstrap`, offset);
    }
    return { nid, offset, inode, xattrOffset, xattrSize };
  }

  getInode(ino: number): RafsInode {
    const { inode } = this.inodeView(ino);
    const type = inode.mode & S_IFMT;
    return {
      ino,
      mode: inode.mode,
      uid: inode.uid,
      gid: inode.gid,
      size: inode.size,
      blocks: Math.ceil(inode.size / 512),
      nlink: inode.nlink,
      rdev: type === S_IFCHR || type === S_IFBLK ? decodeDevV6(inode.u) : 0,
      mtime: inode.mtime,
      mtimeNsec: inode.mtimeNsec,
    };
  }

  /**
   * Byte ranges [offset, length) of the data of a FLAT_PLAIN/FLAT_INLINE inode, one per block; the
   * inline tail follows the inode + xattrs and must not cross a block (§5.7).
   */
  dataBlocks(v: V6InodeView): Array<[number, number]> {
    const { inode } = v;
    const bs = this.blockSize;
    if (inode.dataLayout === EROFS_INODE_CHUNK_BASED) {
      throw new FormatError('ERR_FORMAT_INVALID', `inode ${v.nid}`, 'chunk-based layout on a directory or symlink', v.offset);
    }
    if (inode.size > this.buf.length) {
      throw new FormatError('ERR_FORMAT_INVALID', `inode ${v.nid}`, `i_size ${inode.size} exceeds the bootstrap size`, v.offset);
    }
    const out: Array<[number, number]> = [];
    const inline = inode.dataLayout === EROFS_INODE_FLAT_INLINE;
    const full = inline ? Math.floor(inode.size / bs) : Math.ceil(inode.size / bs);
    for (let i = 0; i < full; i++) {
      const start = (inode.u + i) * bs;
      const len = Math.min(bs, inode.size - i * bs);
      if (start + len > this.buf.length) {
        throw new FormatError('ERR_FORMAT_TRUNCATED', `inode ${v.nid}`, `data block ${inode.u + i} lies beyond the bootstrap`, v.offset);
      }
      out.push([start, len]);
    }
    const tail = inline ? inode.size % bs : 0;
    if (tail > 0) {
      const start = v.xattrOffset + v.xattrSize;
      if (Math.floor(v.offset / bs) !== Math.floor((start + tail - 1) / bs) || start + tail > this.buf.length) {
        throw new FormatError('ERR_FORMAT_INVALID', `inode ${v.nid}`, `inline tail of ${tail} bytes crosses a block boundary`, v.offset);
      }
      out.push([start, tail]);
    }
    return out;
  }

  #dirView(ino: number): V6InodeView {
    const v = this.inodeView(ino);
    if ((v.inode.mode & S_IFMT) !== S_IFDIR) throw new FsError(E.ENOTDIR, `RAFS v6: inode ${ino} is not a directory`);
    return v;
  }

  #blocks(v: V6InodeView): DirentBlock[] {
    return this.dataBlocks(v).map(([o, l]) => new DirentBlock(this.buf.subarray(o, o + l), o));
  }

  /** Dirent lookup including `.` and `..`: binary search over blocks, then inside one. */
  #find(v: V6InodeView, name: Uint8Array): { nid: number; fileType: number } | undefined {
    const ranges = this.dataBlocks(v);
    let lo = 0;
    let hi = ranges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const [o, l] = ranges[mid]!;
      const b = new DirentBlock(this.buf.subarray(o, o + l), o);
      if (Buffer.compare(name, b.name(0)) < 0) hi = mid - 1;
      else if (Buffer.compare(name, b.name(b.count - 1)) > 0) lo = mid + 1;
      else {
        const i = b.find(name);
        return i >= 0 ? { nid: b.nid(i), fileType: b.fileType(i) } : undefined;
      }
    }
    return undefined;
  }

  lookup(parentIno: number, name: Uint8Array): RafsInode | undefined {
    const hit = this.#find(this.#dirView(parentIno), name);
    return hit === undefined ? undefined : this.getInode(hit.nid);
  }

  parentOf(ino: number): number {
    const v = this.inodeView(ino);
    if ((v.inode.mode & S_IFMT) === S_IFDIR) {
      const hit = this.#find(v, DOTDOT);
      if (hit === undefined) throw new FormatError('ERR_FORMAT_INVALID', `directory ${ino}`, 'has no ".." entry', v.offset);
      return hit.nid;
    }
    // Non-directories do not record a parent in EROFS: build the map once by walking the tree.
    this.#parents ??= this.#buildParents();
    const p = this.#parents.get(ino);
    if (p === undefined) throw new FsError(E.ENOENT, `RAFS v6: inode ${ino} is not reachable from the root`);
    return p;
  }

  #buildParents(): Map<number, number> {
    const parents = new Map<number, number>([[this.rootIno, this.rootIno]]);
    const queue = [this.rootIno];
    for (let q = 0; q < queue.length; q++) {
      const dir = queue[q]!;
      this.readdir(dir, 0, (e) => {
        if (!parents.has(e.ino)) {
          parents.set(e.ino, dir);
          if (e.type === 4) queue.push(e.ino);
        }
        return true;
      });
    }
    return parents;
  }

  readdir(ino: number, offset: number, cb: (entry: DirEntry, nextOffset: number) => boolean): void {
    const v = this.#dirView(ino);
    let pos = 0;
    for (const b of this.#blocks(v)) {
      for (let i = 0; i < b.count; i++) {
        const name = b.name(i);
        if (isDotOrDotDot(name)) continue;
        if (pos++ < offset) continue;
        if (!cb({ name, ino: b.nid(i), type: erofsFtToDt(b.fileType(i)) }, pos)) return;
      }
    }
  }

  readlink(ino: number): Uint8Array {
    const v = this.inodeView(ino);
    if ((v.inode.mode & S_IFMT) !== S_IFLNK) throw new FsError(E.EINVAL, `RAFS v6: inode ${ino} is not a symlink`);
    const parts = this.dataBlocks(v);
    if (parts.length === 1) return this.buf.subarray(parts[0]![0], parts[0]![0] + parts[0]![1]);
    return Buffer.concat(parts.map(([o, l]) => this.buf.subarray(o, o + l)));
  }

  #xattrs(ino: number): Array<[Uint8Array, Uint8Array]> {
    const v = this.inodeView(ino);
    return v.xattrSize === 0 ? [] : decodeXattrIbody(this.buf, v.xattrOffset, v.xattrSize).entries;
  }

  getXattr(ino: number, name: Uint8Array): Uint8Array | undefined {
    for (const [n, value] of this.#xattrs(ino)) if (Buffer.compare(n, name) === 0) return value;
    return undefined;
  }

  listXattrs(ino: number): Uint8Array[] {
    return this.#xattrs(ino).map(([n]) => n);
  }

  /** Chunk table records keyed by blobIndex * 2^24 + chunk index → record offset (§5.12). */
  #chunks(): Map<number, number> {
    if (this.#chunkMap) return this.#chunkMap;
    const m = new Map<number, number>();
    const { chunkTableOffset: off, chunkTableSize: size } = this.ext;
    const r = new Reader(this.buf, off, size, 'RAFS v6 chunk table');
    for (let p = 0; p < size; p += RAFS_CHUNK_INFO_SIZE) m.set(r.u32(p + 32) * 0x100_0000 + (r.u32(p + 72) & 0xff_ffff), off + p);
    this.#chunkMap = m;
    return m;
  }

  fileChunks(ino: number): ChunkInfo[] {
    const v = this.inodeView(ino);
    const { inode } = v;
    if ((inode.mode & S_IFMT) !== S_IFREG) throw new FsError(E.EINVAL, `RAFS v6: inode ${ino} is not a regular file`);
    if (inode.dataLayout !== EROFS_INODE_CHUNK_BASED || (inode.u & EROFS_CHUNK_FORMAT_INDEXES) === 0) {
      throw new FormatError('ERR_FORMAT_UNSUPPORTED', `inode ${ino}`, 'regular file is not chunk-based with chunk indexes', v.offset);
    }
    const cs = this.ext.chunkSize;
    const n = Math.ceil(inode.size / cs);
    const start = Math.ceil((v.xattrOffset + v.xattrSize) / 8) * 8;
    if (start + n * EROFS_CHUNK_INDEX_SIZE > this.buf.length) {
      throw new FormatError('ERR_FORMAT_TRUNCATED', `inode ${ino}`, `${n} chunk indexes run past the bootstrap`, v.offset);
    }
    const table = this.#chunks();
    const out: ChunkInfo[] = [];
    for (let k = 0; k < n; k++) {
      const idx = decodeChunkIndex(this.buf, start + k * EROFS_CHUNK_INDEX_SIZE);
      if (idx.blobIndex >= this.blobs.length) {
        throw new FormatError('ERR_FORMAT_INVALID', `inode ${ino} chunk ${k}`, `blob index ${idx.blobIndex} is not in the blob table (${this.blobs.length} blobs)`);
      }
      const rec = table.get(idx.blobIndex * 0x100_0000 + idx.ciIndex);
      if (rec === undefined) {
        throw new FormatError('ERR_FORMAT_INVALID', `inode ${ino} chunk ${k}`, `chunk (blob ${idx.blobIndex}, index ${idx.ciIndex}) is missing from the chunk table`);
      }
      const r = new Reader(this.buf, rec, RAFS_CHUNK_INFO_SIZE, 'RAFS v6 chunk table');
      out.push({
        digest: r.bytes(0, 32),
        blobIndex: idx.blobIndex,
        flags: r.u32(36),
        compressedSize: r.u32(40),
        uncompressedSize: Math.min(cs, inode.size - k * cs),
        compressedOffset: r.u64(48),
        uncompressedOffset: idx.blkaddr * this.blockSize,
        fileOffset: k * cs,
        index: idx.ciIndex,
        crc32: r.u32(76),
      });
    }
    return out;
  }

  prefetchInodes(): number[] {
    if (this.ext.prefetchTableSize === 0) return [];
    // Builders before 2.3 sized the table by pattern count and left unmatched slots 0; nid 0 is
    // never an inode (§5.6), so drop those.
    return decodeRafsV6PrefetchTable(this.buf, this.ext.prefetchTableOffset, this.ext.prefetchTableSize).filter((n) => n !== 0);
  }

  validate(): void {
    const root = this.inodeView(this.rootIno);
    if ((root.inode.mode & S_IFMT) !== S_IFDIR) throw new FormatError('ERR_FORMAT_INVALID', 'EROFS superblock', `root_nid ${this.rootIno} is not a directory`);
    const seen = new Set<number>([this.rootIno]);
    const queue: Array<[number, number]> = [[this.rootIno, this.rootIno]];
    for (let q = 0; q < queue.length; q++) {
      const [dir, parent] = queue[q]!;
      const v = this.inodeView(dir);
      let prev: Uint8Array | undefined;
      let self = false;
      let dotdot = false;
      for (const b of this.#blocks(v)) {
        for (let i = 0; i < b.count; i++) {
          const name = b.name(i);
          const nid = b.nid(i);
          const where = `directory ${dir} entry "${Buffer.from(name).toString('latin1')}"`;
          if (prev !== undefined && Buffer.compare(prev, name) >= 0) throw new FormatError('ERR_FORMAT_INVALID', where, 'names are not strictly sorted');
          prev = name;
          if (name.length === 1 && name[0] === 0x2e) {
            if (nid !== dir) throw new FormatError('ERR_FORMAT_INVALID', where, `"." points to ${nid}`);
            self = true;
            continue;
          }
          if (isDotOrDotDot(name)) {
            if (nid !== parent) throw new FormatError('ERR_FORMAT_INVALID', where, `".." points to ${nid}, expected ${parent}`);
            dotdot = true;
            continue;
          }
          const problem = entryNameProblem(name);
          if (problem) throw new FormatError('ERR_FORMAT_INVALID', where, problem);
          // Hardlinks share one inode: check it once.
          const cv = seen.has(nid) ? this.inodeView(nid) : this.#validateInode(nid, where);
          if (erofsFileType(cv.inode.mode) !== b.fileType(i)) throw new FormatError('ERR_FORMAT_INVALID', where, `file_type ${b.fileType(i)} does not match i_mode 0${cv.inode.mode.toString(8)}`);
          if (b.fileType(i) === EROFS_FT_DIR) {
            if (seen.has(nid)) throw new FormatError('ERR_FORMAT_INVALID', where, `directory ${nid} is linked twice`);
            queue.push([nid, dir]);
          }
          seen.add(nid);
        }
      }
      if (!self || !dotdot) throw new FormatError('ERR_FORMAT_INVALID', `directory ${dir}`, 'lacks "." or ".."');
    }
  }

  #validateInode(nid: number, where: string): V6InodeView {
    let v: V6InodeView;
    try {
      v = this.inodeView(nid);
    } catch (err) {
      if (err instanceof FsError) throw new FormatError('ERR_FORMAT_INVALID', where, `points to nid ${nid}, which holds no inode`);
      throw err;
    }
    if (v.xattrSize > 0) decodeXattrIbody(this.buf, v.xattrOffset, v.xattrSize);
    const type = v.inode.mode & S_IFMT;
    if (type === S_IFREG) this.fileChunks(nid);
    else if (type === S_IFLNK) this.readlink(nid);
    return v;
  }
}

function isDotOrDotDot(n: Uint8Array): boolean {
  return (n.length === 1 && n[0] === 0x2e) || (n.length === 2 && n[0] === 0x2e && n[1] === 0x2e);
}

