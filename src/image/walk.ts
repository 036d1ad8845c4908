// Depth-first walk of a RAFS tree with full paths (used by unpack, stat, inspect, check).
import type { RafsInode, RafsSuper } from '../rafs/types.js';
import { FormatError } from '../util/errors.js';
import { isDir } from '../format/image-model.js';

export interface WalkEntry {
  /** Path bytes relative to the root, without a leading '/'; empty for the root. */
  path: Uint8Array;
  inode: RafsInode;
  depth: number;
}

/** Visits the root and then every entry, parents before children, children in name order. */
export function walkRafs(sb: RafsSuper, visit: (e: WalkEntry) => void): void {
  const seenDirs = new Set<number>();
  const stack: WalkEntry[] = [{ path: new Uint8Array(0), inode: sb.getInode(sb.rootIno), depth: 0 }];
  while (stack.length) {
    const e = stack.pop()!;
    visit(e);
    if (!isDir(e.inode.mode)) continue;
    if (seenDirs.has(e.inode.ino)) throw new FormatError('ERR_FORMAT_INVALID', 'directory tree', `directory inode ${e.inode.ino} is reachable twice (cycle)`);
    seenDirs.add(e.inode.ino);
    if (e.depth > 4096) throw new FormatError('ERR_FORMAT_INVALID', 'directory tree', 'directory nesting deeper than 4096');
    const kids: WalkEntry[] = [];
    sb.readdir(e.inode.ino, 0, (d) => {
      const path = e.path.length ? Buffer.concat([e.path, Buffer.from('/'), d.name]) : Buffer.from(d.name);
      kids.push({ path, inode: sb.getInode(d.ino), depth: e.depth + 1 });
      return true;
    });
    for (let i = kids.length - 1; i >= 0; i--) stack.push(kids[i]!);
  }
}
