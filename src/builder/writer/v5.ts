// RAFS v5 bootstrap writer (spec §4.10): numbers the model's tree, synthesizes the attributes
// nydus-image derives itself (directory size/nlink, blocks, root mtime, merkle digests §4.9) and
// lays out superblock, tables and inode records (§4.1). Pure: returns the bootstrap bytes.
import { align, ByteSink } from '../../util/bytes.js';
import { NydusError } from '../../util/errors.js';
import { RafsInodeFlags, RafsSuperFlags, RAFS_ROOT_INODE, compressorFlag, digesterFlag, isValidChunkSize } from '../../format/constants.js';
import { createHasher, digest } from '../../format/digest.js';
import {
  RAFS_SUPER_MAGIC,
  RAFSV5_ALIGNMENT,
  RAFSV5_EXT_BLOB_ENTRY_SIZE,
  RAFSV5_MAX_NAME_SIZE,
  RAFSV5_SUPERBLOCK_SIZE,
  RAFSV5_SUPER_VERSION,
  encodeRafsV5BlobTable,
  encodeRafsV5ExtBlobTable,
  encodeRafsV5InodeRecord,
  rafsV5InodeRecordSize,
  type RafsV5InodeRecordParts,
  encodeRafsV5InodeTable,
  encodeRafsV5PrefetchTable,
  encodeRafsV5SuperBlock,
  rafsV5TablesFromBlobInfos,
  rafsV5U32TableSize,
  rafsV5XattrPairsSize,
  type RafsV5Inode,
} from '../../format/rafs-v5/index.js';
import { isDir, isReg, isSymlink, type ImageModel, type TreeNode } from '../../format/image-model.js';

/** Pseudo dirent size nydus-image adds per child for a v5 directory's i_size (RAFS_V5_VIRTUAL_ENTRY_SIZE). */
const RAFS_V5_VIRTUAL_ENTRY_SIZE = 8;

export interface EncodeV5Options {
  /**
   * 'dfs' (default): records in DFS pre-order, as nydus-image >= 2.3. 'index': records in index
   * order and the <= 2.2 inodes_count (root not counted), reproducing older images byte for byte.
   */
  recordOrder?: 'dfs' | 'index';
}

interface Entry {
  node: TreeNode;
  index: number;
  ino: number;
  parent: Entry | undefined;
  childIndex: number;
  children: Entry[];
  nlink: number;
  digest: Uint8Array;
}

function fail(msg: string): never {
  throw new NydusError('ERR_BUILD', `RAFS v5 writer: ${msg}`);
}

/** Assigns indexes: root 1; a directory's children get consecutive indexes, then each child directory recurses (§4.10). */
function number(root: TreeNode): Entry[] {
  // Shared empties: one allocation per entry fewer on trees of many small files (issue 11).
  const noChildren = Object.freeze([]) as unknown as Entry[];
  const noDigest = new Uint8Array(0);
  const mk = (node: TreeNode, index: number, parent: Entry | undefined): Entry => ({ node, index, ino: index, parent, childIndex: 0, children: isDir(node.mode) ? [] : noChildren, nlink: 1, digest: noDigest });
  const rootEntry = mk(root, 1, undefined);
  const entries: Entry[] = [rootEntry];
  const stack: Entry[] = [rootEntry];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    dir.childIndex = entries.length + 1;
    let prev: Uint8Array | undefined;
    for (const child of dir.node.children) {
      if (prev && Buffer.compare(prev, child.name) >= 0) fail(`children of ${Buffer.from(dir.node.name).toString()} are not strictly sorted by name`);
      prev = child.name;
      const e = mk(child, entries.length + 1, dir);
      entries.push(e);
      dir.children.push(e);
    }
    for (let i = dir.children.length - 1; i >= 0; i--) if (isDir(dir.children[i]!.node.mode)) stack.push(dir.children[i]!);
  }
  return entries;
}

function checkName(e: Entry): void {
  const n = e.node.name;
  if (n.length === 0 || n.length > RAFSV5_MAX_NAME_SIZE) fail(`name of inode index ${e.index} has ${n.length} bytes (1..${RAFSV5_MAX_NAME_SIZE})`);
  if (e.index !== 1 && (n.includes(0x2f) || n.includes(0))) fail(`name of inode index ${e.index} contains '/' or NUL`);
}

/** Builds the v5 bootstrap of `model`. */
export function encodeBootstrapV5(model: ImageModel, opts: EncodeV5Options = {}): Uint8Array {
  const order = opts.recordOrder ?? 'dfs';
  if (!isValidChunkSize(model.chunkSize)) fail(`chunk size 0x${model.chunkSize.toString(16)} is invalid`);
  if (!isDir(model.root.mode)) fail('the root is not a directory');
  const entries = number(model.root);

  // Hardlinks: the first name in index order owns the inode; all names share its ino and nlink.
  const firstOf = new Map<string, Entry>();
  const names = new Map<string, number>();
  for (const e of entries) {
    checkName(e);
    if (isReg(e.node.mode) && e.node.chunks.length !== Math.ceil(e.node.size / model.chunkSize)) {
      fail(`regular file at inode index ${e.index} (size ${e.node.size}) has ${e.node.chunks.length} chunks, expected ${Math.ceil(e.node.size / model.chunkSize)}`);
    }
    const key = e.node.hardlinkKey;
    if (key === undefined || !isReg(e.node.mode)) continue;
    const first = firstOf.get(key);
    if (first) e.ino = first.ino;
    else firstOf.set(key, e);
    names.set(key, (names.get(key) ?? 0) + 1);
  }
  for (const e of entries) {
    const m = e.node.mode;
    if (isDir(m)) e.nlink = 2 + e.children.filter((c) => isDir(c.node.mode)).length;
    else if (isReg(m) && e.node.hardlinkKey !== undefined) e.nlink = names.get(e.node.hardlinkKey) ?? 1;
    else e.nlink = 1;
  }

  // Merkle digests (§4.9): children always have larger indexes, so reverse index order is post-order.
  const algo = model.digester;
  // Every empty file, device and fifo shares one digest, and the others live in one arena: 300k
  // digests as 300k native 32-byte buffers cost ~0.4 KB each until a GC finalises them.
  const emptyDigest = digest(new Uint8Array(0), algo);
  const arena = new Uint8Array(entries.length * 32);
  const keep = (i: number, d: Uint8Array): Uint8Array => {
    arena.set(d, i * 32);
    return arena.subarray(i * 32, i * 32 + d.length);
  };
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i]!;
    const m = e.node.mode;
    const parts = isDir(m) ? e.children.length : isReg(m) ? e.node.chunks.length : 0;
    if ((isDir(m) || isReg(m)) && parts > 0) {
      const h = createHasher(algo);
      if (isDir(m)) for (const c of e.children) h.update(c.digest);
      else for (const c of e.node.chunks) h.update(c.digest);
      e.digest = keep(i, h.digest());
    } else if (isSymlink(m)) {
      e.digest = keep(i, digest(e.node.symlink ?? new Uint8Array(0), algo));
    } else {
      e.digest = emptyDigest;
    }
  }

  const hasXattr = entries.some((e) => e.node.xattrs.length > 0);
  // Records are sized first and encoded straight into the output (one buffer, not one per inode).
  const partsOf = (e: Entry): RafsV5InodeRecordParts => ({
    inode: inodeOf(e, model.explicitUidGid),
    name: e.node.name,
    symlink: isSymlink(e.node.mode) ? e.node.symlink : undefined,
    xattrs: e.node.xattrs,
    chunks: isReg(e.node.mode) ? e.node.chunks : [],
  });

  const recordOrder = order === 'index' ? entries : dfsPreOrder(entries[0]!);
  const prefetch = prefetchInos(entries[0]!, model.prefetchPaths);
  const { entries: blobEntries, ext } = rafsV5TablesFromBlobInfos(model.blobs);
  const blobTable = encodeRafsV5BlobTable(blobEntries);
  const extTable = encodeRafsV5ExtBlobTable(ext);

  const inodeTableOffset = RAFSV5_SUPERBLOCK_SIZE;
  const prefetchTableOffset = inodeTableOffset + rafsV5U32TableSize(entries.length);
  const blobTableOffset = prefetchTableOffset + rafsV5U32TableSize(prefetch.length);
  const extOffset = blobTableOffset + blobTable.length;
  let p = extOffset + ext.length * RAFSV5_EXT_BLOB_ENTRY_SIZE;
  const offsets = new Array<number>(entries.length);
  for (const e of recordOrder) {
    offsets[e.index - 1] = p;
    p += rafsV5InodeRecordSize(partsOf(e));
  }

  const flags = compressorFlag(model.compressor) | digesterFlag(model.digester) | (model.explicitUidGid ? RafsSuperFlags.EXPLICIT_UID_GID : 0) | (hasXattr ? RafsSuperFlags.HAS_XATTR : 0);
  const out = new ByteSink(p);
  out.append(encodeRafsV5SuperBlock({
    magic: RAFS_SUPER_MAGIC,
    fsVersion: RAFSV5_SUPER_VERSION,
    sbSize: RAFSV5_SUPERBLOCK_SIZE,
    blockSize: model.chunkSize,
    flags,
    // Builders <= 2.2 (whose layout 'index' reproduces) left the root out of their inode map, so
    // their inodes_count is one short (the upstream fixtures say 51 for 52 unique inodes).
    inodesCount: entries.filter((e) => e.ino === e.index).length - (order === 'index' ? 1 : 0),
    inodeTableOffset,
    prefetchTableOffset,
    blobTableOffset,
    inodeTableEntries: entries.length,
    prefetchTableEntries: prefetch.length,
    blobTableSize: blobTable.length,
    extendedBlobTableEntries: ext.length,
    // Legacy images without an extended table record offset 0 (§4.2).
    extendedBlobTableOffset: ext.length === 0 && model.blobs.length > 0 ? 0 : extOffset,
  }));
  out.append(encodeRafsV5InodeTable(offsets));
  out.append(encodeRafsV5PrefetchTable(prefetch));
  out.append(blobTable);
  out.append(extTable);
  const recordsAt = out.length;
  const buf = out.alloc(p - recordsAt).buf;
  for (const e of recordOrder) encodeRafsV5InodeRecord(partsOf(e), buf, offsets[e.index - 1]!);
  return out.finish();
}

function inodeOf(e: Entry, explicitUidGid: boolean): RafsV5Inode {
  const n = e.node;
  const m = n.mode;
  const isRoot = e.index === RAFS_ROOT_INODE;
  let size = n.size;
  if (isDir(m)) {
    let d = 0;
    for (const c of e.children) d += c.node.name.length + RAFS_V5_VIRTUAL_ENTRY_SIZE;
    size = d === 0 ? 4096 : align(d, 4096);
  } else if (isSymlink(m)) {
    size = n.symlink?.length ?? 0;
    if (size === 0) fail(`symlink at inode index ${e.index} has no target`);
  }
  const symlinkSize = isSymlink(m) ? size : 0;
  if (symlinkSize > 0xffff) fail(`symlink target at inode index ${e.index} is longer than 65535 bytes`);
  const xattrBytes = align(rafsV5XattrPairsSize(n.xattrs), RAFSV5_ALIGNMENT);
  let flags = 0;
  if (isSymlink(m)) flags |= RafsInodeFlags.SYMLINK;
  if (n.xattrs.length > 0) flags |= RafsInodeFlags.XATTR;
  return {
    digest: e.digest,
    parent: e.parent ? e.parent.ino : 0,
    ino: e.ino,
    uid: explicitUidGid ? n.uid : 0,
    gid: explicitUidGid ? n.gid : 0,
    projid: 0,
    mode: m,
    size,
    blocks: Math.ceil((size + xattrBytes) / 512),
    flags,
    nlink: e.nlink,
    childIndex: isDir(m) ? e.childIndex : 0,
    childCount: isDir(m) ? e.children.length : isReg(m) ? n.chunks.length : 0,
    nameSize: n.name.length,
    symlinkSize,
    rdev: n.rdev,
    mtimeNsec: isRoot ? 0 : n.mtimeNsec,
    mtime: isRoot ? 0 : n.mtime,
  };
}

/** Records in DFS pre-order: root, first child, its subtree, next child, ... */
function dfsPreOrder(root: Entry): Entry[] {
  const out: Entry[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const e = stack.pop()!;
    out.push(e);
    for (let i = e.children.length - 1; i >= 0; i--) stack.push(e.children[i]!);
  }
  return out;
}

/** Inode numbers of the prefetch paths that exist, in path order (§4.4). */
function prefetchInos(root: Entry, paths: readonly string[]): number[] {
  const out: number[] = [];
  for (const path of paths) {
    let e: Entry | undefined = root;
    for (const part of path.split('/').filter((s) => s.length > 0)) {
      const want: Buffer = Buffer.from(part);
      e = e.children.find((c) => Buffer.compare(c.node.name, want) === 0);
      if (!e) break;
    }
    if (e) out.push(e.ino);
  }
  return out;
}
