// RAFS v6 bootstrap writer: ImageModel → EROFS image with the RAFS extensions, following the
// nydus-image layout algorithm of spec §5.14 (extended inodes, avail-slot reuse, inline tails),
// so equal models give the bytes nydus-image would write. Upstream: builder/src/core/v6.rs.
import { align } from '../../util/bytes.js';
import { NydusError } from '../../util/errors.js';
import { encodeChunkInfo, RAFS_CHUNK_INFO_SIZE, type ChunkInfo } from '../../format/chunk-info.js';
import { BlobFeatures, RafsSuperFlags, compressorFlag, digesterFlag } from '../../format/constants.js';
import {
  EROFS_BLOCK_BITS_12,
  EROFS_CHUNK_FORMAT_INDEXES,
  EROFS_CHUNK_INDEX_SIZE,
  EROFS_DEVT_SLOT_SIZE,
  EROFS_FEATURE_COMPAT_RAFS_V6,
  EROFS_FEATURE_INCOMPAT_RAFS_V6,
  EROFS_INODE_CHUNK_BASED,
  EROFS_INODE_EXTENDED_SIZE,
  EROFS_INODE_FLAT_INLINE,
  EROFS_INODE_FLAT_PLAIN,
  EROFS_INODE_LAYOUT_EXTENDED,
  EROFS_SUPER_MAGIC_V1,
  EROFS_SUPER_OFFSET,
  direntSize,
  encodeChunkIndex,
  encodeDevV6,
  encodeDirents,
  encodeErofsDeviceSlot,
  encodeErofsInode,
  encodeErofsSuperBlock,
  encodeXattrIbody,
  erofsFileType,
  xattrIcountOf,
  type ErofsDirent,
} from '../../format/erofs/index.js';
import {
  RAFS_V6_BLOB_SIZE,
  RAFS_V6_DEVT_SLOTOFF,
  RAFS_V6_EXT_SUPER_OFFSET,
  blobInfoToRafsV6Blob,
  encodeRafsV6Blob,
  encodeRafsV6PrefetchTable,
  encodeRafsV6SuperBlockExt,
} from '../../format/rafs-v6/index.js';
import { isDevice, isDir, isReg, isSymlink, type ImageModel, type TreeNode } from '../../format/image-model.js';

const BS = 4096;
const SLOT = 32;
/** Device slots are mapped at 512 KiB boundaries in flat mode (nydus ≥ 2.3; 2 MiB before), §5.4. */
const V6_DEVICE_ALIGNMENT = 0x80000;
const DOT = new Uint8Array([0x2e]);
const DOTDOT = new Uint8Array([0x2e, 0x2e]);

interface WNode {
  t: TreeNode;
  parent: WNode | undefined;
  index: number;
  /** Hardlink group leader (first name in traversal order), or itself. */
  first: WNode;
  xattr: Uint8Array;
  /** Inode core + xattr ibody. */
  isize: number;
  off: number;
  data: number;
  layout: number;
  /** Directories: dirent bytes; symlinks: target length. */
  dsize: number;
  nlink: number;
  children: WNode[];
}

function buildError(msg: string): NydusError {
  return new NydusError('ERR_BUILD', `RAFS v6 writer: ${msg}`);
}

/** Placement of a directory or symlink inode and its data (§5.14). */
export interface V6TailPlacement {
  off: number;
  data: number;
  layout: number;
}

/**
 * Allocator state of §5.14 (upstream BootstrapContext): `offset` grows; avail[k] lists blocks
 * with k*32 free bytes at their end. Exported for tests.
 */
export class V6Layout {
  offset = BS;
  readonly avail: number[][] = Array.from({ length: BS / SLOT }, () => []);

  appendAvail(off: number): void {
    if (off % BS) this.avail[Math.floor((BS - (off % BS)) / SLOT)]!.push(off - (off % BS));
  }

  allocAvail(size: number): number {
    if (size >= BS) return 0;
    const m = Math.ceil(size / SLOT);
    for (let k = m; k < this.avail.length; k++) {
      const q = this.avail[k]!;
      if (q.length > 0) {
        const r = q.shift()! + BS - k * SLOT;
        this.appendAvail(r + m * SLOT);
        return r;
      }
    }
    return 0;
  }

  alloc(size: number): number {
    const r = this.allocAvail(size);
    if (r) return r;
    const off = this.offset;
    this.offset += size;
    return off;
  }

  /** Directories and symlinks: FLAT_INLINE when the tail fits after the inode, else FLAT_PLAIN. */
  withTail(isize: number, dsize: number): V6TailPlacement {
    const tail = dsize % BS;
    if (tail && isize + tail <= BS) {
      let off = this.allocAvail(isize + tail);
      if (!off) {
        if (BS - (this.offset % BS) < isize + tail) {
          this.appendAvail(this.offset);
          this.offset = align(this.offset, BS);
        }
        off = this.offset;
        this.offset += isize + tail;
      }
      if (dsize !== tail) {
        this.appendAvail(this.offset);
        this.offset = align(this.offset, BS);
      }
      const data = this.offset;
      this.offset += dsize - tail;
      return { off, data, layout: EROFS_INODE_FLAT_INLINE };
    }
    const off = this.alloc(isize);
    this.appendAvail(this.offset);
    this.offset = align(this.offset, BS);
    const data = this.offset;
    this.offset = align(this.offset + dsize, BS);
    return { off, data, layout: EROFS_INODE_FLAT_PLAIN };
  }
}

function checkName(name: Uint8Array, path: string): void {
  if (name.length === 0 || name.length > 255 || name.includes(0x2f) || name.includes(0)) {
    throw buildError(`invalid file name under "${path}" (empty, longer than 255 bytes, or containing "/" or NUL)`);
  }
}

/** `chunkbits` of a file (§5.10): one big chunk when all chunks are back to back in one blob. */
function chunkBits(size: number, chunks: readonly ChunkInfo[], chunkSize: number): number {
  const base = Math.log2(chunkSize);
  if (size <= chunkSize || chunks.length === 0) return base;
  for (let k = 1; k < chunks.length; k++) {
    const a = chunks[k - 1]!;
    const b = chunks[k]!;
    if (b.blobIndex !== a.blobIndex || b.uncompressedOffset !== a.uncompressedOffset + chunkSize) return base;
  }
  let bits = 0;
  while (2 ** bits < size) bits++;
  return Math.min(bits, EROFS_BLOCK_BITS_12 + 0x1f);
}

function compareChunks(a: ChunkInfo, b: ChunkInfo): number {
  return Buffer.compare(a.digest, b.digest) || a.blobIndex - b.blobIndex;
}

export function encodeBootstrapV6(model: ImageModel): Uint8Array {
  const { root, chunkSize } = model;
  if (!isDir(root.mode)) throw buildError('the root is not a directory');
  const nblobs = model.blobs.length;
  if (nblobs > 255) throw buildError(`${nblobs} blobs, at most 255 fit in a v6 bootstrap`);

  // Hardlink groups: names per key, counted over the whole tree first.
  const linkCount = new Map<string, number>();
  const countLinks = (n: TreeNode): void => {
    if (isReg(n.mode) && n.hardlinkKey !== undefined) linkCount.set(n.hardlinkKey, (linkCount.get(n.hardlinkKey) ?? 0) + 1);
    n.children.forEach(countLinks);
  };
  countLinks(root);

  // Shared empties for the common case (no xattrs, not a directory): per-inode allocations are
  // most of the writer's memory on trees of many small files (issue 11, 300k empty entries).
  const noXattr = new Uint8Array(0);
  const noChildren = Object.freeze([]) as unknown as WNode[];
  const mk = (t: TreeNode, parent: WNode | undefined): WNode => {
    const xattr = t.xattrs.length === 0 ? noXattr : encodeXattrIbody(t.xattrs);
    const n: WNode = { t, parent, index: 0, first: undefined as unknown as WNode, xattr, isize: EROFS_INODE_EXTENDED_SIZE + xattr.length, off: 0, data: 0, layout: EROFS_INODE_FLAT_PLAIN, dsize: 0, nlink: 1, children: isDir(t.mode) ? [] : noChildren };
    n.first = n;
    return n;
  };

  const L = new V6Layout();
  const placeTail = (n: WNode, dsize: number): void => {
    n.dsize = dsize;
    Object.assign(n, L.withTail(n.isize, dsize));
  };
  const leaders = new Map<string, WNode>();
  const order: WNode[] = [];
  let nextIndex = 1;
  const rootW = mk(root, undefined);
  rootW.index = nextIndex++;
  order.push(rootW);

  const build = (dir: WNode, path: string): void => {
    const kids = dir.t.children;
    for (let i = 1; i < kids.length; i++) {
      if (Buffer.compare(kids[i - 1]!.name, kids[i]!.name) >= 0) throw buildError(`children of "${path}" are not sorted by name or repeat a name`);
    }
    const names = [DOT, DOTDOT, ...kids.map((k) => k.name)].sort(Buffer.compare);
    placeTail(dir, direntSize(names, BS));
    L.offset = align(L.offset, SLOT);
    let subdirs = 0;
    for (const kt of kids) {
      checkName(kt.name, path);
      const c = mk(kt, dir);
      c.index = nextIndex++;
      dir.children.push(c);
      order.push(c);
      const cpath = `${path === '/' ? '' : path}/${Buffer.from(kt.name).toString()}`;
      if (isDir(kt.mode)) {
        subdirs++;
        continue;
      }
      if (isReg(kt.mode)) {
        const expect = Math.ceil(kt.size / chunkSize);
        if (kt.chunks.length !== expect) throw buildError(`"${cpath}" has ${kt.chunks.length} chunks, expected ${expect} for ${kt.size} bytes`);
        const key = kt.hardlinkKey;
        const leader = key !== undefined ? leaders.get(key) : undefined;
        if (key !== undefined) c.nlink = linkCount.get(key)!;
        if (leader) {
          c.first = leader;
          c.off = leader.off;
        } else {
          if (key !== undefined) leaders.set(key, c);
          c.off = L.alloc(align(c.isize, 8) + EROFS_CHUNK_INDEX_SIZE * kt.chunks.length);
        }
      } else if (isSymlink(kt.mode)) {
        if (!kt.symlink) throw buildError(`symlink "${cpath}" has no target`);
        placeTail(c, kt.symlink.length);
      } else {
        c.off = L.offset;
        L.offset += c.isize;
      }
      L.offset = align(L.offset, SLOT);
    }
    dir.nlink = 2 + subdirs;
    for (const c of dir.children) if (isDir(c.t.mode)) build(c, `${path === '/' ? '' : path}/${Buffer.from(c.t.name).toString()}`);
  };
  build(rootW, '/');

  // Prefetch table (§5.13): nids of exactly matched patterns in pattern order, only with blobs.
  // As upstream: relative patterns and patterns under an earlier one are dropped, and empty
  // regular files never match.
  const prefetchNids: number[] = [];
  if (nblobs > 0) {
    const kept: string[][] = [];
    for (const raw of model.prefetchPaths) {
      const p = raw.trim();
      if (!p.startsWith('/')) continue;
      const parts = p.split('/').filter((x) => x.length > 0 && x !== '.');
      if (kept.some((k) => k.length <= parts.length && k.every((x, i) => x === parts[i]))) continue;
      kept.push(parts);
      let n: WNode | undefined = rootW;
      for (const part of parts) {
        const want = Buffer.from(part);
        n = n.children.find((c) => Buffer.compare(c.t.name, want) === 0);
        if (!n) break;
      }
      if (n && !(isReg(n.t.mode) && n.t.size === 0)) prefetchNids.push(n.first.off / SLOT);
    }
  }

  // Table placement and the metadata shift (§5.6).
  const blobTableOffset = align(RAFS_V6_DEVT_SLOTOFF * EROFS_DEVT_SLOT_SIZE + EROFS_DEVT_SLOT_SIZE * nblobs, BS);
  const blobTableSize = RAFS_V6_BLOB_SIZE * nblobs;
  const prefetchSize = 4 * prefetchNids.length;
  const shift = nblobs > 0 ? align(blobTableOffset + blobTableSize + prefetchSize, BS) : 0;

  // Chunk table: distinct (digest, blob_index), last inserted wins, sorted (§5.12).
  const chunkMap = new Map<string, ChunkInfo>();
  for (const c of model.extraChunks ?? []) chunkMap.set(`${Buffer.from(c.digest).toString('hex')}:${c.blobIndex}`, c);
  for (const n of order) for (const c of n.t.chunks) chunkMap.set(`${Buffer.from(c.digest).toString('hex')}:${c.blobIndex}`, c);
  const chunkTable = [...chunkMap.values()].sort(compareChunks);

  const chunkTableOffset = align(shift + L.offset, BS);
  const chunkTableSize = RAFS_CHUNK_INFO_SIZE * chunkTable.length;
  const size = align(chunkTableOffset + chunkTableSize, BS);
  const out = new Uint8Array(size);

  // Inodes, xattrs, dirents, symlink targets, chunk indexes.
  for (const n of order) {
    if (n.first !== n) continue; // later hardlink names share the leader's inode
    const t = n.t;
    const at = n.off + shift;
    let u = 0;
    let layout = n.layout;
    let isize = t.size;
    let payload: Uint8Array | undefined;
    if (isDir(t.mode)) {
      const entries: ErofsDirent[] = [
        { name: DOT, nid: n.off / SLOT, fileType: erofsFileType(t.mode) },
        { name: DOTDOT, nid: (n.parent ?? n).off / SLOT, fileType: erofsFileType((n.parent ?? n).t.mode) },
        ...n.children.map((c) => ({ name: c.t.name, nid: c.first.off / SLOT, fileType: erofsFileType(c.t.mode) })),
      ].sort((a, b) => Buffer.compare(a.name, b.name));
      payload = encodeDirents(entries, BS);
      isize = n.dsize;
    } else if (isSymlink(t.mode)) {
      payload = t.symlink!;
      isize = payload.length;
    } else if (isReg(t.mode)) {
      layout = EROFS_INODE_CHUNK_BASED;
      u = EROFS_CHUNK_FORMAT_INDEXES | (chunkBits(t.size, t.chunks, chunkSize) - EROFS_BLOCK_BITS_12);
      const start = align(at + n.isize, 8);
      t.chunks.forEach((c, k) =>
        encodeChunkIndex({ blobIndex: c.blobIndex, ciIndex: c.index, blkaddr: Math.floor(c.uncompressedOffset / BS) }, out, start + k * EROFS_CHUNK_INDEX_SIZE),
      );
    } else {
      isize = 0;
      u = isDevice(t.mode) ? encodeDevV6(t.rdev) : 0;
    }
    if (payload) {
      u = Math.floor((n.data + shift) / BS);
      const tail = layout === EROFS_INODE_FLAT_INLINE ? payload.length % BS : 0;
      out.set(payload.subarray(0, payload.length - tail), n.data + shift);
      if (tail) out.set(payload.subarray(payload.length - tail), at + n.isize);
    }
    encodeErofsInode(
      {
        version: EROFS_INODE_LAYOUT_EXTENDED,
        dataLayout: layout,
        xattrIcount: xattrIcountOf(n.xattr.length),
        mode: t.mode,
        size: isize,
        u,
        // i_ino: the RAFS index; the root gets 1 as nydus-image >= 2.3 writes (2.2 wrote 0).
        ino: n.first.index,
        uid: t.uid,
        gid: t.gid,
        mtime: t.mtime,
        mtimeNsec: t.mtimeNsec,
        nlink: n.nlink,
      },
      out,
      at,
    );
    out.set(n.xattr, at + EROFS_INODE_EXTENDED_SIZE);
  }

  chunkTable.forEach((c, i) => encodeChunkInfo(c, out, chunkTableOffset + i * RAFS_CHUNK_INFO_SIZE));

  // Device slots, mapped at aligned addresses after the bootstrap (flat mode, §5.4).
  let mapped = align(size, V6_DEVICE_ALIGNMENT) / BS;
  let totalBlocks = 0;
  model.blobs.forEach((b, i) => {
    const blocks = Math.floor(b.uncompressedSize / BS);
    encodeErofsDeviceSlot({ tag: b.blobId, blocks, mappedBlkaddr: mapped }, out, RAFS_V6_DEVT_SLOTOFF * EROFS_DEVT_SLOT_SIZE + i * EROFS_DEVT_SLOT_SIZE);
    totalBlocks += blocks;
    mapped = align((mapped + blocks) * BS, V6_DEVICE_ALIGNMENT) / BS;
    encodeRafsV6Blob(blobInfoToRafsV6Blob(b, i), out, blobTableOffset + i * RAFS_V6_BLOB_SIZE);
  });
  if (prefetchSize > 0) out.set(encodeRafsV6PrefetchTable(prefetchNids), blobTableOffset + blobTableSize);

  let flags = compressorFlag(model.compressor) | digesterFlag(model.digester) | RafsSuperFlags.ENCRYPTION_NONE;
  if (model.explicitUidGid) flags |= RafsSuperFlags.EXPLICIT_UID_GID;
  if (order.some((n) => n.t.xattrs.length > 0)) flags |= RafsSuperFlags.HAS_XATTR;
  if (model.blobs.every((b) => (b.features & BlobFeatures.INLINED_CHUNK_DIGEST) !== 0)) flags |= RafsSuperFlags.INLINED_CHUNK_DIGEST;

  encodeErofsSuperBlock(
    {
      magic: EROFS_SUPER_MAGIC_V1,
      checksum: 0,
      featureCompat: EROFS_FEATURE_COMPAT_RAFS_V6,
      blkszbits: EROFS_BLOCK_BITS_12,
      extslots: 0,
      rootNid: rootW.off / SLOT,
      inos: nextIndex - 1,
      buildTime: 0,
      buildTimeNsec: 0,
      blocks: totalBlocks,
      metaBlkaddr: shift / BS,
      xattrBlkaddr: 0,
      uuid: new Uint8Array(16),
      volumeName: new Uint8Array(16),
      featureIncompat: EROFS_FEATURE_INCOMPAT_RAFS_V6,
      u: 0,
      extraDevices: nblobs,
      devtSlotoff: RAFS_V6_DEVT_SLOTOFF,
    },
    out,
    EROFS_SUPER_OFFSET,
  );
  encodeRafsV6SuperBlockExt(
    {
      flags,
      blobTableOffset,
      blobTableSize,
      chunkSize,
      chunkTableOffset,
      chunkTableSize,
      prefetchTableOffset: prefetchSize > 0 ? blobTableOffset + blobTableSize : 0,
      prefetchTableSize: prefetchSize,
    },
    out,
    RAFS_V6_EXT_SUPER_OFFSET,
  );
  return out;
}
