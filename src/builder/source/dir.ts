// dir-rafs source: walks a directory with lstat (symlinks are never followed) into TreeNodes.
// Names are raw bytes; children are sorted by name bytes; hardlinked regular files share a
// hardlinkKey from (st_dev, st_ino). File data is read later, in data order, by the pipeline.
import { lstat, readdir, readlink } from 'node:fs/promises';
import type { Stats, BigIntStats } from 'node:fs';
import { NydusError } from '../../util/errors.js';
import { S_IFLNK, isDevice, isDir, isReg, sortChildren, type TreeNode } from '../../format/image-model.js';
import { readXattrs } from './xattrs.js';

export interface DirSourceOptions {
  /** uid/gid from the source (EXPLICIT_UID_GID); else 0. */
  explicitUidGid: boolean;
}

export interface DirSource {
  root: TreeNode;
  /** Source path of every regular file node. */
  paths: Map<TreeNode, Buffer>;
  inodes: number;
}

const SLASH = Buffer.from('/');

function ioError(path: Buffer, what: string, e: unknown): NydusError {
  const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  return new NydusError('ERR_IO', `cannot ${what} ${path.toString()}: ${code}`, { cause: e });
}

function nodeFromStat(name: Uint8Array, st: BigIntStats, o: DirSourceOptions): TreeNode {
  const ns = st.mtimeNs;
  const mode = Number(st.mode);
  return {
    name,
    mode,
    uid: o.explicitUidGid ? Number(st.uid) : 0,
    gid: o.explicitUidGid ? Number(st.gid) : 0,
    mtime: Number(ns / 1_000_000_000n),
    mtimeNsec: Number(ns % 1_000_000_000n),
    rdev: isDevice(mode) ? Number(st.rdev & 0xffffffffn) : 0,
    size: isReg(mode) ? Number(st.size) : 0,
    xattrs: [],
    children: [],
    chunks: [],
  };
}

/** Builds the tree of `rootPath`. Throws a one-line NydusError naming the path on failure. */
export async function scanDirectory(rootPath: string, o: DirSourceOptions): Promise<DirSource> {
  const root = Buffer.from(rootPath);
  let st: BigIntStats | Stats;
  try {
    st = await lstat(root, { bigint: true });
  } catch (e) {
    throw ioError(root, 'read source directory', e);
  }
  if (!st.isDirectory()) throw new NydusError('ERR_IO', `source ${rootPath} is not a directory`);
  const paths = new Map<TreeNode, Buffer>();
  const links = new Map<string, TreeNode[]>();
  let inodes = 1;
  const top = nodeFromStat(Buffer.from('/'), st as BigIntStats, o);
  top.xattrs = readXattrs(root);

  const load = async (dir: TreeNode, path: Buffer): Promise<void> => {
    let names: Buffer[];
    try {
      names = await readdir(path, { encoding: 'buffer' });
    } catch (e) {
      throw ioError(path, 'read directory', e);
    }
    const kids = await Promise.all(
      names.map(async (name) => {
        const p = Buffer.concat([path, SLASH, name]);
        let cst: BigIntStats;
        try {
          cst = await lstat(p, { bigint: true });
        } catch (e) {
          throw ioError(p, 'stat', e);
        }
        const n = nodeFromStat(name, cst, o);
        n.xattrs = readXattrs(p);
        if ((n.mode & 0o170000) === S_IFLNK) {
          try {
            n.symlink = await readlink(p, { encoding: 'buffer' });
          } catch (e) {
            throw ioError(p, 'read symlink', e);
          }
          n.size = n.symlink.length;
        } else if (isReg(n.mode)) {
          paths.set(n, p);
          if (cst.nlink > 1n) {
            const key = `${cst.dev}:${cst.ino}`;
            n.hardlinkKey = key;
            const group = links.get(key);
            if (group) group.push(n);
            else links.set(key, [n]);
          }
        }
        return { n, p };
      }),
    );
    inodes += kids.length;
    dir.children = kids.map((k) => k.n);
    sortChildren(dir);
    const byNode = new Map(kids.map((k) => [k.n, k.p]));
    for (const c of dir.children) if (isDir(c.mode)) await load(c, byNode.get(c)!);
  };
  await load(top, root);
  // All names of one inode share one chunk list (filled once, by the first name's data).
  for (const group of links.values()) {
    if (group.length < 2) {
      delete group[0]!.hardlinkKey;
      continue;
    }
    for (const n of group) n.chunks = group[0]!.chunks;
  }
  return { root: top, paths, inodes };
}
