// Turns any RafsSuper (v5 or v6) back into the builder's ImageModel: used by merge, re-encoding
// and round-trip tests. Codes only against the RafsSuper interface.
import { FormatError } from '../util/errors.js';
import { isDir, isReg, isSymlink, type ImageModel, type TreeNode } from '../format/image-model.js';
import type { RafsInode, RafsSuper } from './types.js';

const S = 'RAFS tree';

function nodeOf(sb: RafsSuper, inode: RafsInode, name: Uint8Array): TreeNode {
  const m = inode.mode;
  const node: TreeNode = {
    name: name.slice(),
    mode: m,
    uid: inode.uid,
    gid: inode.gid,
    mtime: inode.mtime,
    mtimeNsec: inode.mtimeNsec,
    rdev: inode.rdev,
    // Writers compute directory sizes themselves.
    size: isDir(m) ? 0 : inode.size,
    xattrs: sb.listXattrs(inode.ino).map((k) => [k.slice(), (sb.getXattr(inode.ino, k) ?? new Uint8Array(0)).slice()]),
    children: [],
    chunks: isReg(m) ? sb.fileChunks(inode.ino) : [],
  };
  if (isSymlink(m)) node.symlink = sb.readlink(inode.ino).slice();
  if (isReg(m) && inode.nlink > 1) node.hardlinkKey = `ino:${inode.ino}`;
  return node;
}

/** Rebuilds the image model; prefetch inode numbers become paths of the names seen first. */
export function treeFromRafs(sb: RafsSuper): ImageModel {
  const rootInode = sb.getInode(sb.rootIno);
  if (!isDir(rootInode.mode)) throw new FormatError('ERR_FORMAT_INVALID', S, `root inode ${sb.rootIno} is not a directory`);
  const root = nodeOf(sb, rootInode, new TextEncoder().encode('/'));
  const pathOf = new Map<number, string>([[sb.rootIno, '/']]);
  const visitedDirs = new Set<number>([sb.rootIno]);
  // Iterative walk: a corrupt image must not exhaust the stack.
  const stack: Array<{ ino: number; node: TreeNode; path: string }> = [{ ino: sb.rootIno, node: root, path: '' }];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    const subdirs: Array<{ ino: number; node: TreeNode; path: string }> = [];
    sb.readdir(dir.ino, 0, (entry) => {
      const inode = sb.getInode(entry.ino);
      const child = nodeOf(sb, inode, entry.name);
      dir.node.children.push(child);
      const path = `${dir.path}/${Buffer.from(entry.name).toString('utf8')}`;
      if (!pathOf.has(inode.ino)) pathOf.set(inode.ino, path);
      if (isDir(inode.mode)) {
        if (visitedDirs.has(inode.ino)) throw new FormatError('ERR_FORMAT_INVALID', S, `directory inode ${inode.ino} is reached twice (cycle)`);
        visitedDirs.add(inode.ino);
        subdirs.push({ ino: inode.ino, node: child, path });
      }
      return true;
    });
    for (let i = subdirs.length - 1; i >= 0; i--) stack.push(subdirs[i]!);
  }
  const prefetchPaths: string[] = [];
  for (const ino of sb.prefetchInodes()) {
    const p = pathOf.get(ino);
    if (p !== undefined) prefetchPaths.push(p);
  }
  return {
    root,
    blobs: sb.blobs.map((b) => ({ ...b, blobTocDigest: b.blobTocDigest.slice(), blobMetaDigest: b.blobMetaDigest.slice() })),
    chunkSize: sb.meta.chunkSize,
    compressor: sb.meta.compressor,
    digester: sb.meta.digester,
    explicitUidGid: sb.meta.explicitUidGid,
    prefetchPaths,
  };
}
