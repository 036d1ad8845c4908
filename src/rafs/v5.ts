// RAFS v5 read model (spec §4): a RafsSuper over one bootstrap buffer. Construction decodes only
// the superblock and the (small) blob tables; inodes, names, xattrs and chunks are decoded on
// demand straight from the buffer, so an instance is cheap per FUSE worker thread.
// Inode numbers are i_ino (hardlink names share the first name's number, §4.10); the inode table
// is indexed by inode *index*, which equals i_ino for the first (or only) name.
import { constants as osConstants } from 'node:os';
import type { BlobInfo } from '../format/blob-info.js';
import { RAFS_CHUNK_INFO_SIZE, decodeChunkInfo, type ChunkInfo } from '../format/chunk-info.js';
import { RAFS_ROOT_INODE, RafsInodeFlags, RafsSuperFlags, compressorFromFlags, digesterFromFlags } from '../format/constants.js';
import { createHasher, digest } from '../format/digest.js';
import {
  blobInfosFromRafsV5,
  decodeRafsV5BlobTable,
  decodeRafsV5ExtBlobTable,
  decodeRafsV5Inode,
  decodeRafsV5PrefetchTable,
  decodeRafsV5SuperBlock,
  decodeRafsV5Xattrs,
  isV5Dir,
  isV5Hardlink,
  isV5Reg,
  isV5Symlink,
  RAFSV5_INODE_SIZE,
  rafsV5RecordLayout,
  readRafsV5InodeTableEntry,
  validateRafsV5Inode,
  validateRafsV5SuperBlock,
  type RafsV5Inode,
  type RafsV5RecordLayout,
  type RafsV5SuperBlock,
} from '../format/rafs-v5/index.js';
import { FormatError, FsError } from '../util/errors.js';
import type { DirEntry, RafsInode, RafsMeta, RafsSuper } from './types.js';
import { entryNameProblem } from './names.js';

const E = osConstants.errno;
const S = 'RAFS v5 bootstrap';

/** A v5 inode as seen through the read model, with the raw on-disk fields alongside. */
export interface RafsV5InodeView extends RafsInode {
  /** Inode table index of the record this view was decoded from. */
  index: number;
  parent: number;
  flags: number;
  childIndex: number;
  childCount: number;
  digest: Uint8Array;
}

function view(index: number, i: RafsV5Inode): RafsV5InodeView {
  return {
    ino: i.ino,
    mode: i.mode,
    uid: i.uid,
    gid: i.gid,
    size: i.size,
    blocks: i.blocks,
    nlink: i.nlink,
    rdev: i.rdev,
    mtime: i.mtime,
    mtimeNsec: i.mtimeNsec,
    index,
    parent: i.parent,
    flags: i.flags,
    childIndex: i.childIndex,
    childCount: i.childCount,
    digest: i.digest,
  };
}

const dtype = (mode: number): number => (mode & 0o170000) >>> 12;

export class RafsV5Super implements RafsSuper {
  readonly buf: Uint8Array;
  readonly superBlock: RafsV5SuperBlock;
  readonly meta: RafsMeta;
  readonly blobs: readonly BlobInfo[];
  readonly rootIno = RAFS_ROOT_INODE;
  readonly #dv: DataView;

  constructor(buf: Uint8Array) {
    this.buf = buf;
    this.#dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const sb = decodeRafsV5SuperBlock(buf);
    validateRafsV5SuperBlock(sb, buf.length);
    this.superBlock = sb;
    const compressor = compressorFromFlags(sb.flags);
    const digester = digesterFromFlags(sb.flags);
    this.meta = {
      version: 5,
      chunkSize: sb.blockSize,
      compressor,
      digester,
      flags: sb.flags,
      explicitUidGid: (sb.flags & RafsSuperFlags.EXPLICIT_UID_GID) !== 0,
      hasXattr: (sb.flags & RafsSuperFlags.HAS_XATTR) !== 0,
      inodeCount: sb.inodeTableEntries,
    };
    const entries = decodeRafsV5BlobTable(buf, sb.blobTableOffset, sb.blobTableSize);
    const ext = sb.extendedBlobTableEntries > 0 ? decodeRafsV5ExtBlobTable(buf, sb.extendedBlobTableOffset, sb.extendedBlobTableEntries) : [];
    this.blobs = blobInfosFromRafsV5(entries, ext, sb.blockSize, compressor, digester);
  }

  /** Byte offset of the record of inode index `index` (1-based). */
  recordOffset(index: number): number {
    return readRafsV5InodeTableEntry(this.buf, this.superBlock.inodeTableOffset, this.superBlock.inodeTableEntries, index);
  }

  /** Raw inode of table index `index`. */
  rawInode(index: number): RafsV5Inode {
    return decodeRafsV5Inode(this.buf, this.recordOffset(index));
  }

  #record(index: number): { inode: RafsV5Inode; layout: RafsV5RecordLayout } {
    const off = this.recordOffset(index);
    const inode = decodeRafsV5Inode(this.buf, off);
    return { inode, layout: rafsV5RecordLayout(this.buf, off, inode) };
  }

  /** The record of inode number `ino`: the table entry `ino` must hold that very i_ino. */
  #byIno(ino: number): RafsV5Inode {
    if (!Number.isInteger(ino) || ino < 1 || ino > this.superBlock.inodeTableEntries) throw new FsError(E.ENOENT, `inode ${ino} does not exist`);
    const inode = this.rawInode(ino);
    if (inode.ino !== ino) throw new FsError(E.ENOENT, `inode ${ino} does not exist (table index ${ino} is a hardlink name of inode ${inode.ino})`);
    return inode;
  }

  #layoutByIno(ino: number): { inode: RafsV5Inode; layout: RafsV5RecordLayout } {
    const inode = this.#byIno(ino);
    return { inode, layout: rafsV5RecordLayout(this.buf, this.recordOffset(ino), inode) };
  }

  /** Checks a directory's child range lies inside the table and returns [first, end). */
  #childRange(dir: RafsV5Inode): [number, number] {
    if (dir.childCount === 0) return [0, 0];
    const first = dir.childIndex;
    const end = first + dir.childCount;
    if (first < 2 || end - 1 > this.superBlock.inodeTableEntries) {
      throw new FormatError('ERR_FORMAT_INVALID', 'RAFS v5 inode', `child_index ${first} + child_count ${dir.childCount} of directory ${dir.ino} is outside the inode table`);
    }
    return [first, end];
  }

  /** Name bytes of table index `index` (a view into the buffer; only i_name_size is decoded). */
  nameAt(index: number): Uint8Array {
    const off = this.recordOffset(index);
    const end = off + RAFSV5_INODE_SIZE + (off + RAFSV5_INODE_SIZE <= this.buf.length ? this.#dv.getUint16(off + 100, true) : 0);
    if (end > this.buf.length || off + RAFSV5_INODE_SIZE > this.buf.length) {
      throw new FormatError('ERR_FORMAT_TRUNCATED', 'RAFS v5 inode', `record or name of index ${index} runs past the end`, off);
    }
    return this.buf.subarray(off + RAFSV5_INODE_SIZE, end);
  }

  getInode(ino: number): RafsV5InodeView {
    return view(ino, this.#byIno(ino));
  }

  lookup(parentIno: number, name: Uint8Array): RafsV5InodeView | undefined {
    const dir = this.#byIno(parentIno);
    if (!isV5Dir(dir)) throw new FsError(E.ENOTDIR, `inode ${parentIno} is not a directory`);
    const [first, end] = this.#childRange(dir);
    let lo = first;
    let hi = end - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = Buffer.compare(this.nameAt(mid), name);
      if (c === 0) return view(mid, this.rawInode(mid));
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  parentOf(ino: number): number {
    if (ino === this.rootIno) return this.rootIno;
    return this.#byIno(ino).parent;
  }

  readdir(ino: number, offset: number, cb: (entry: DirEntry, nextOffset: number) => boolean): void {
    const dir = this.#byIno(ino);
    if (!isV5Dir(dir)) throw new FsError(E.ENOTDIR, `inode ${ino} is not a directory`);
    const [first, end] = this.#childRange(dir);
    for (let idx = first + Math.max(0, offset); idx < end; idx++) {
      const child = this.rawInode(idx);
      const entry: DirEntry = { name: this.nameAt(idx), ino: child.ino, type: dtype(child.mode) };
      if (!cb(entry, idx - first + 1)) return;
    }
  }

  readlink(ino: number): Uint8Array {
    const { inode, layout } = this.#layoutByIno(ino);
    if (!isV5Symlink(inode)) throw new FsError(E.EINVAL, `inode ${ino} is not a symlink`);
    if (layout.symlinkOffset < 0) throw new FormatError('ERR_FORMAT_INVALID', 'RAFS v5 inode', `symlink ${ino} has i_symlink_size 0`, layout.offset);
    return this.buf.subarray(layout.symlinkOffset, layout.symlinkOffset + inode.symlinkSize);
  }

  #xattrs(ino: number): Array<[Uint8Array, Uint8Array]> {
    const { layout } = this.#layoutByIno(ino);
    return layout.xattrOffset < 0 ? [] : decodeRafsV5Xattrs(this.buf, layout.xattrOffset);
  }

  getXattr(ino: number, name: Uint8Array): Uint8Array | undefined {
    for (const [k, v] of this.#xattrs(ino)) if (Buffer.compare(k, name) === 0) return v;
    return undefined;
  }

  listXattrs(ino: number): Uint8Array[] {
    return this.#xattrs(ino).map(([k]) => k);
  }

  fileChunks(ino: number): ChunkInfo[] {
    const { layout } = this.#layoutByIno(ino);
    return this.#chunksOf(layout);
  }

  #chunksOf(layout: RafsV5RecordLayout): ChunkInfo[] {
    const out: ChunkInfo[] = [];
    for (let k = 0; k < layout.chunkCount; k++) out.push(decodeChunkInfo(this.buf, layout.chunksOffset + k * RAFS_CHUNK_INFO_SIZE));
    return out;
  }

  prefetchInodes(): number[] {
    const sb = this.superBlock;
    return decodeRafsV5PrefetchTable(this.buf, sb.prefetchTableOffset, sb.prefetchTableEntries);
  }

  /**
   * §4.12 checks on every table entry and record, then a walk from the root: child ranges inside
   * the table, each index reached once (no cycles or shared subtrees), children sorted by name
   * (lookup depends on it), child parent = directory ino, chunk counts and blob indexes sane.
   */
  validate(): void {
    const n = this.superBlock.inodeTableEntries;
    const bad = (msg: string, off?: number): never => {
      throw new FormatError('ERR_FORMAT_INVALID', S, msg, off);
    };
    const chunkSize = this.meta.chunkSize;
    for (let idx = 1; idx <= n; idx++) {
      const { inode, layout } = this.#record(idx);
      validateRafsV5Inode(inode, n, idx === 1, layout.offset);
      if (inode.ino !== idx) {
        // Only later hardlink names may carry another index's i_ino; that index must be the first name.
        if (!isV5Hardlink(inode) || inode.ino > idx || this.rawInode(inode.ino).ino !== inode.ino) {
          bad(`inode index ${idx} has i_ino ${inode.ino}, which is not a hardlink of an earlier inode`, layout.offset);
        }
      }
      // A symlink always has a target (symlink(2) refuses an empty one); size 0 is a forged record.
      if (isV5Symlink(inode) && inode.symlinkSize === 0) bad(`symlink ${inode.ino} has i_symlink_size 0`, layout.offset);
      if (isV5Reg(inode) && (inode.flags & RafsInodeFlags.HAS_HOLE) === 0) {
        const want = Math.ceil(inode.size / chunkSize);
        if (want !== inode.childCount) bad(`regular file ${inode.ino} of size ${inode.size} has ${inode.childCount} chunks, expected ${want}`, layout.offset);
      }
      for (let k = 0; k < layout.chunkCount; k++) {
        const blobIndex = this.#dv.getUint32(layout.chunksOffset + k * RAFS_CHUNK_INFO_SIZE + 32, true);
        if (blobIndex >= this.blobs.length) bad(`chunk ${k} of inode ${inode.ino} references blob ${blobIndex}, only ${this.blobs.length} blobs`, layout.offset);
      }
      if (layout.xattrOffset >= 0) decodeRafsV5Xattrs(this.buf, layout.xattrOffset);
    }
    const root = this.rawInode(1);
    if (root.ino !== RAFS_ROOT_INODE || !isV5Dir(root)) bad('the root (index 1) is not directory inode 1');
    const seen = new Uint8Array(n + 1);
    seen[1] = 1;
    const stack = [1];
    while (stack.length > 0) {
      const idx = stack.pop()!;
      const dir = this.rawInode(idx);
      const [first, end] = this.#childRange(dir);
      let prev: Uint8Array | undefined;
      for (let c = first; c < end; c++) {
        if (seen[c]) bad(`inode index ${c} is reached twice (directory cycle or overlapping child ranges)`);
        seen[c] = 1;
        const child = this.rawInode(c);
        if (child.parent !== dir.ino) bad(`inode index ${c} has i_parent ${child.parent}, but is a child of directory ${dir.ino}`);
        const name = this.nameAt(c);
        const problem = entryNameProblem(name);
        if (problem) bad(`inode index ${c} in directory ${dir.ino}: ${problem}`);
        if (prev && Buffer.compare(prev, name) >= 0) bad(`children of directory ${dir.ino} are not strictly sorted by name`);
        prev = name;
        if (isV5Dir(child)) stack.push(c);
      }
    }
    for (const ino of this.prefetchInodes()) if (ino > n) bad(`prefetch table entry ${ino} exceeds inode_table_entries ${n}`);
  }

  /**
   * Recomputes every v5 inode digest (§4.9) and compares with the stored one (nydusd's
   * validate_digest). Directory digests use the children's stored digests, which are
   * themselves checked.
   */
  verifyDigests(): void {
    const algo = this.meta.digester;
    const n = this.superBlock.inodeTableEntries;
    for (let idx = 1; idx <= n; idx++) {
      const { inode, layout } = this.#record(idx);
      let want: Uint8Array;
      if (isV5Reg(inode)) {
        const h = createHasher(algo);
        for (const c of this.#chunksOf(layout)) h.update(c.digest);
        want = h.digest();
      } else if (isV5Symlink(inode)) {
        want = digest(layout.symlinkOffset < 0 ? new Uint8Array(0) : this.buf.subarray(layout.symlinkOffset, layout.symlinkOffset + inode.symlinkSize), algo);
      } else if (isV5Dir(inode)) {
        const h = createHasher(algo);
        const [first, end] = this.#childRange(inode);
        for (let c = first; c < end; c++) h.update(this.rawInode(c).digest);
        want = h.digest();
      } else {
        want = digest(new Uint8Array(0), algo);
      }
      if (Buffer.compare(want, inode.digest) !== 0) {
        throw new FormatError('ERR_DIGEST_MISMATCH', 'RAFS v5 inode', `digest of inode ${inode.ino} (index ${idx}) does not match its contents`, layout.offset);
      }
    }
  }
}

/** Opens a v5 bootstrap: validates the superblock and tables; inodes are decoded lazily. */
export function openRafsV5(buf: Uint8Array): RafsV5Super {
  return new RafsV5Super(buf);
}
