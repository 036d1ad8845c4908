// tar-rafs source: builds TreeNodes from an OCI layer tar as it streams by (upstream
// builder/src/tarball.rs). Regular-file data goes straight to the chunk pipeline; missing parent
// directories are created with mode 0755; hardlinks to regular files share the target's inode and
// chunks, hardlinks to anything else become an independent copy of the target's metadata.
import type { ChunkInfo } from '../../format/chunk-info.js';
import { NydusError } from '../../util/errors.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, isDir, isReg, sortChildren, type TreeNode } from '../../format/image-model.js';
import { maybeGunzip, readTar, type TarEntry } from '../../format/tar-reader.js';
import { isAllowedXattr, sortXattrs } from './xattrs.js';

export interface TarSourceOptions {
  explicitUidGid: boolean;
  /** Receives each regular file's data; appends the file's chunks to `out`. */
  /** `dataOffset`: where the data starts in the (uncompressed) tar stream. */
  onFileData(body: AsyncIterable<Buffer>, size: number, out: ChunkInfo[], name: string, dataOffset?: number): Promise<void>;
}

export interface TarSource {
  root: TreeNode;
  entries: number;
}

const TYPE_BITS = { file: S_IFREG, hardlink: S_IFREG, symlink: S_IFLNK, char: S_IFCHR, block: S_IFBLK, dir: S_IFDIR, fifo: S_IFIFO } as const;

// Most tar entries have no xattrs, children or chunks: they share these frozen empties (a write
// would throw, never corrupt) instead of three arrays per node (issue 11: ~2 KB per empty entry).
const NO_XATTRS: Array<[Uint8Array, Uint8Array]> = Object.freeze([]) as unknown as Array<[Uint8Array, Uint8Array]>;
const NO_CHILDREN: TreeNode[] = Object.freeze([]) as unknown as TreeNode[];
const NO_CHUNKS: ChunkInfo[] = Object.freeze([]) as unknown as ChunkInfo[];

const STARGZ_SPECIAL = new Set(['stargz.index.json', '.prefetch.landmark', '.no.prefetch.landmark']);

function unsafe(msg: string): NydusError {
  return new NydusError('ERR_TAR_UNSAFE', `tar: ${msg}`);
}

/** Splits a tar path into components; rejects absolute paths and `..`. [] is the root. */
export function tarPathComponents(path: Buffer, what = 'entry'): Buffer[] {
  const shown = path.toString();
  if (path.length === 0) throw unsafe(`${what} with an empty path`);
  if (path[0] === 0x2f) throw unsafe(`${what} '${shown}' has an absolute path`);
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= path.length; i++) {
    if (i === path.length || path[i] === 0x2f) {
      const c = path.subarray(start, i);
      start = i + 1;
      if (c.length === 0 || (c.length === 1 && c[0] === 0x2e)) continue;
      if (c.length === 2 && c[0] === 0x2e && c[1] === 0x2e) throw unsafe(`${what} '${shown}' escapes the root with '..'`);
      out.push(Buffer.from(c));
    }
  }
  return out;
}

/** glibc makedev, truncated to the u32 RAFS stores. */
export function makedev(major: number, minor: number): number {
  const lo = (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12);
  return lo >>> 0;
}

function newDir(name: Buffer): TreeNode {
  return { name, mode: S_IFDIR | 0o755, uid: 0, gid: 0, mtime: 0, mtimeNsec: 0, rdev: 0, size: 0, xattrs: [], children: [], chunks: [] };
}

/** Builds the tree of a tar stream, chunking file data through `o.onFileData` in stream order. */
export async function scanTar(input: AsyncIterable<Uint8Array>, o: TarSourceOptions): Promise<TarSource> {
  const root = newDir(Buffer.from('/'));
  const index = new Map<TreeNode, Map<string, TreeNode>>([[root, new Map()]]);
  let entries = 0;
  let nextLink = 1;

  const lookup = (comps: Buffer[]): TreeNode | undefined => {
    let n: TreeNode | undefined = root;
    for (const c of comps) {
      n = index.get(n)?.get(c.toString('latin1'));
      if (!n) return undefined;
    }
    return n;
  };
  const parentOf = (comps: Buffer[]): TreeNode => {
    let n = root;
    for (const c of comps.slice(0, -1)) {
      const m = index.get(n);
      if (!m) throw unsafe(`'${comps.map(String).join('/')}' is below a non-directory`);
      let d = m.get(c.toString('latin1'));
      if (!d) {
        d = newDir(c);
        m.set(c.toString('latin1'), d);
        index.set(d, new Map());
      }
      n = d;
    }
    if (!index.has(n)) throw unsafe(`'${comps.map(String).join('/')}' is below a non-directory`);
    return n;
  };

  for await (const e of readTar(maybeGunzip(input))) {
    entries++;
    const comps = tarPathComponents(e.path);
    // eStargz metadata files are not part of the filesystem (upstream is_stargz_special_files).
    if (comps.length === 1 && STARGZ_SPECIAL.has(comps[0]!.toString('latin1'))) continue;
    // Old archivers store directories as regular entries whose name ends in '/'.
    if (e.type === 'file' && e.size === 0 && e.path[e.path.length - 1] === 0x2f) e.type = 'dir';
    const node = await nodeFromEntry(e, comps, o, lookup, () => `tar:${nextLink++}`);
    if (comps.length === 0) {
      if (!isDir(node.mode)) throw unsafe(`root entry '${e.path.toString()}' is not a directory`);
      Object.assign(root, { ...node, name: root.name, children: root.children });
      continue;
    }
    const parent = parentOf(comps);
    const m = index.get(parent)!;
    const key = comps[comps.length - 1]!.toString('latin1');
    const old = m.get(key);
    if (old && isDir(old.mode) && isDir(node.mode)) {
      // A repeated directory entry updates attributes and keeps what is below it.
      Object.assign(old, { ...node, children: old.children });
      continue;
    }
    m.set(key, node);
    if (isDir(node.mode)) index.set(node, new Map());
    if (old) index.delete(old);
  }

  const finish = (d: TreeNode): void => {
    const m = index.get(d);
    d.children = m ? [...m.values()] : [];
    sortChildren(d);
    for (const c of d.children) if (isDir(c.mode)) finish(c);
  };
  finish(root);
  return { root, entries };
}

async function nodeFromEntry(
  e: TarEntry,
  comps: Buffer[],
  o: TarSourceOptions,
  lookup: (c: Buffer[]) => TreeNode | undefined,
  linkKey: () => string,
): Promise<TreeNode> {
  const name = comps.length ? comps[comps.length - 1]! : Buffer.from('/');
  const shown = e.path.toString();
  if (e.type === 'hardlink') {
    const target = lookup(tarPathComponents(e.linkpath, `hardlink target of '${shown}'`));
    if (!target) throw new NydusError('ERR_BUILD', `tar: unknown target '${e.linkpath.toString()}' for hardlink '${shown}'`);
    if (isDir(target.mode)) throw new NydusError('ERR_BUILD', `tar: target '${e.linkpath.toString()}' of hardlink '${shown}' is a directory`);
    // All metadata comes from the target, as extracting the tar would give (upstream rule).
    const n: TreeNode = { ...target, name, xattrs: [...target.xattrs], children: NO_CHILDREN };
    if (isReg(target.mode)) {
      target.hardlinkKey ??= linkKey();
      n.hardlinkKey = target.hardlinkKey;
      n.chunks = target.chunks;
    } else {
      delete n.hardlinkKey;
    }
    return n;
  }
  const xattrs = e.xattrs.length === 0 ? NO_XATTRS : sortXattrs(e.xattrs.filter(([k]) => isAllowedXattr(k)).map(([k, v]): [Uint8Array, Uint8Array] => [k, v]));
  const n: TreeNode = {
    name,
    mode: TYPE_BITS[e.type] | (e.mode & 0o7777),
    uid: o.explicitUidGid ? e.uid : 0,
    gid: o.explicitUidGid ? e.gid : 0,
    mtime: e.mtime,
    mtimeNsec: e.mtimeNsec,
    rdev: e.type === 'char' || e.type === 'block' ? makedev(e.devMajor, e.devMinor) : 0,
    size: 0,
    xattrs,
    // Directories get their children in scanTar's finish(); empty files keep no chunks.
    children: NO_CHILDREN,
    chunks: e.type === 'file' && e.size > 0 ? [] : NO_CHUNKS,
  };
  if (e.type === 'symlink') {
    if (e.linkpath.length === 0) throw new NydusError('ERR_BUILD', `tar: symlink '${shown}' has an empty target`);
    if (e.linkpath.length > 0xffff) throw new NydusError('ERR_BUILD', `tar: symlink target of '${shown}' is too long`);
    n.symlink = Buffer.from(e.linkpath);
    n.size = e.linkpath.length;
  } else if (e.type === 'file') {
    n.size = e.size;
    await o.onFileData(e.body, e.size, n.chunks, shown, e.offset + 512);
  }
  if (n.uid > 0xffffffff || n.gid > 0xffffffff) throw new NydusError('ERR_BUILD', `tar: uid/gid of '${shown}' out of range`);
  return n;
}
