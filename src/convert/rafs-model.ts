// Adapter: reads a bootstrap (RafsSuper) back into the builder's ImageModel so per-layer
// bootstraps can be merged in-process. Stands in for rafs/tree-from-rafs.ts until that lands.
import type { ImageModel, TreeNode } from '../builder/tree.js';
import type { RafsSuper } from '../rafs/types.js';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

export function modelFromRafs(sb: RafsSuper): ImageModel {
  const build = (ino: number, name: Uint8Array, depth: number): TreeNode => {
    const i = sb.getInode(ino);
    const xattrs: Array<[Uint8Array, Uint8Array]> = sb.listXattrs(ino).map((k) => [k, sb.getXattr(ino, k) ?? new Uint8Array(0)]);
    const type = i.mode & S_IFMT;
    const node: TreeNode = {
      name,
      mode: i.mode,
      uid: i.uid,
      gid: i.gid,
      mtime: i.mtime,
      mtimeNsec: i.mtimeNsec,
      rdev: i.rdev,
      size: type === S_IFDIR ? 0 : i.size,
      xattrs,
      children: [],
      chunks: type === S_IFREG ? sb.fileChunks(ino).map((c) => ({ ...c })) : [],
    };
    if (type === S_IFLNK) node.symlink = sb.readlink(ino);
    // Names sharing an inode are hardlinks; the key only has to be unique within this bootstrap.
    if (type === S_IFREG && i.nlink > 1) node.hardlinkKey = `i${ino}`;
    if (type === S_IFDIR) {
      if (depth > 4096) throw new Error('directory nesting deeper than 4096');
      const kids: Array<{ ino: number; name: Uint8Array }> = [];
      sb.readdir(ino, 0, (d) => {
        kids.push({ ino: d.ino, name: d.name.slice() });
        return true;
      });
      node.children = kids.map((k) => build(k.ino, k.name, depth + 1));
    }
    return node;
  };
  const root = build(sb.rootIno, new Uint8Array([0x2f]), 0);
  return {
    root,
    blobs: sb.blobs.map((b) => ({ ...b })),
    chunkSize: sb.meta.chunkSize,
    compressor: sb.meta.compressor,
    digester: sb.meta.digester,
    explicitUidGid: sb.meta.explicitUidGid,
    prefetchPaths: [],
  };
}
