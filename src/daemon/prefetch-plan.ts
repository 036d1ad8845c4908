// Which chunks a mount prefetches (upstream-features §2.11): the files named by --prefetch-files or
// the API, else the bootstrap's prefetch table; everything when the list is "/" or prefetch_all.
import { chunkKey, type ChunkInfo } from '../format/chunk-info.js';
import type { FsConfig } from '../config/daemon-config.js';
import type { RafsSuper } from '../rafs/types.js';
import type { Logger } from '../util/log.js';
import type { MountStorage } from './mount-storage.js';

function resolve(sb: RafsSuper, path: string): number | undefined {
  let ino = sb.rootIno;
  for (const part of path.split('/').filter(Boolean)) {
    const c = sb.lookup(ino, Buffer.from(part));
    if (!c) return undefined;
    ino = c.ino;
  }
  return ino;
}

/** Collects the chunks of inodes (directories recursively), each chunk once. */
function chunkCollector(sb: RafsSuper): { add(ino: number): void; take(): ChunkInfo[] } {
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
  const take = (): ChunkInfo[] => {
    const r = out;
    out = [];
    return r;
  };
  return { add, take };
}

/** Every chunk the image's files reference, each once, in tree order. */
export function allChunks(sb: RafsSuper): ChunkInfo[] {
  const c = chunkCollector(sb);
  c.add(sb.rootIno);
  return c.take();
}

/**
 * Chunks of the named inodes (directories recursively), deduplicated, as two phases: hinted files
 * then (with `all`) the rest. Storage plans each
 * prefetch call in blob offset order, so the daemon must queue the phases separately or a hinted
 * file in the middle of the blob is fetched only when the whole-image sweep reaches it.
 */
export function prefetchPhases(sb: RafsSuper, files: string[] | undefined, all: boolean): ChunkInfo[][] {
  const c = chunkCollector(sb);
  const hinted = files && files.length ? files.map((f) => resolve(sb, f)).filter((x): x is number => x !== undefined) : sb.prefetchInodes();
  for (const ino of hinted) c.add(ino);
  const phases = [c.take()];
  if (all || (files?.length === 1 && files[0] === '/')) c.add(sb.rootIno);
  phases.push(c.take());
  return phases.filter((p) => p.length > 0);
}

/** Queues a mount's prefetch (config switches and/or --prefetch-files) on its storage and logs the outcome. */
export function startPrefetch(sb: RafsSuper, storage: MountStorage, config: FsConfig, prefetchFiles: string[] | undefined, label: string, log: Logger): void {
  const pf = config.rafs.prefetch.enable || config.cache.prefetch.enable || (prefetchFiles?.length ?? 0) > 0;
  if (!pf) return;
  // Hinted files first: each phase is queued (and offset-ordered) on its own.
  const phases = prefetchPhases(sb, prefetchFiles, config.rafs.prefetch.prefetchAll || config.cache.prefetch.prefetchAll);
  const total = phases.reduce((k, p) => k + p.length, 0);
  if (total) log.info(`prefetching ${total} chunks for ${label}`);
  for (const chunks of phases) storage.prefetch(chunks);
  if (total && storage.prefetchDone) {
    const t0 = Date.now();
    void storage.prefetchDone().then(
      (p) => p && log.info(`prefetch for ${label} done in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${p.doneChunks} chunks fetched (${p.bytes} bytes), ${p.skippedChunks} already cached, ${p.failedChunks} failed`),
      () => undefined,
    );
  }
}
