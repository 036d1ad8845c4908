// Which chunks a mount prefetches (upstream-features §2.11): the files named by --prefetch-files or
// the API, else the bootstrap's prefetch table; everything when the list is "/" or prefetch_all.
import { chunkKey, type ChunkInfo } from '../format/chunk-info.js';
import type { RafsSuper } from '../rafs/types.js';

function resolve(sb: RafsSuper, path: string): number | undefined {
  let ino = sb.rootIno;
  for (const part of path.split('/').filter(Boolean)) {
    const c = sb.lookup(ino, Buffer.from(part));
    if (!c) return undefined;
    ino = c.ino;
  }
  return ino;
}

/**
 * Chunks of the named inodes (directories recursively), deduplicated, as two phases: hinted files
 * then (with `all`) the rest. Storage plans each
 * prefetch call in blob offset order, so the daemon must queue the phases separately or a hinted
 * file in the middle of the blob is fetched only when the whole-image sweep reaches it.
 */
export function prefetchPhases(sb: RafsSuper, files: string[] | undefined, all: boolean): ChunkInfo[][] {
  let out: ChunkInfo[] = [];
  const seen = new Set<string>();
  const visited = new Set<number>();
  const add = (ino: number): void => {
    const stack = [ino];
    while (stack.length) {
      const cur = stack.pop()!;
      if (visited.has(cur)) continue;
      visited.add(cur);
      const inode = sb.getInode(cur);
      const t = inode.mode & 0o170000;
      if (t === 0o040000) {
        const kids: number[] = [];
        sb.readdir(cur, 0, (e) => (kids.push(e.ino), true));
        stack.push(...kids.reverse());
      } else if (t === 0o100000) {
        for (const c of sb.fileChunks(cur)) {
          const k = `${c.blobIndex}:${chunkKey(sb.blobs[c.blobIndex] ?? { features: 0 }, c)}`;
          if (seen.has(k)) continue;
          seen.add(k);
          out.push(c);
        }
      }
    }
  };
  const hinted = files && files.length ? files.map((f) => resolve(sb, f)).filter((x): x is number => x !== undefined) : sb.prefetchInodes();
  for (const ino of hinted) add(ino);
  const phases = [out];
  out = [];
  if (all || (files?.length === 1 && files[0] === '/')) add(sb.rootIno);
  phases.push(out);
  return phases.filter((p) => p.length > 0);
}
