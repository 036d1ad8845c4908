// The FUSE worker module of nydusd: adapts the VFS to the fuse layer's LowLevelFileSystem. Loaded by
// URL in every FUSE worker thread. The mount table lives on the main thread; a shared version
// counter tells a worker when to fetch the new table (API mount/umount/remount) before serving.
import type { ChunkInfo } from '../format/chunk-info.js';
import { FOPEN_KEEP_CACHE, type Attr, type DirEntry, type DirEntryPlus, type Entry, type LowLevelFileSystem, type WorkerContext } from '../fuse/index.js';
import { FOP } from './fs-stats.js';
import { Vfs, type MountSpec, type VfsAttr } from './vfs.js';

export interface FuseFsInit {
  /** Int32Array[1]: bumped by the main thread whenever the mount table changes. */
  tableVersion: SharedArrayBuffer;
  /** Timeouts (seconds) for RAFS inodes: immutable, so upstream caches them "forever" (2^32 s). */
  entryTimeout: number;
  attrTimeout: number;
  /** Timeouts for the pseudo directories, whose entries change on mount/umount/remount. */
  pseudoTimeout: number;
}

/** Worker → main requests. */
export type DaemonRequest =
  | { t: 'table' }
  /** `ranges[i]` = [from, to) of chunk i the reader needs: only those bytes are copied back. */
  /** `into`: shared memory of the asking worker to copy the reply into (instead of a new buffer). */
  | { t: 'fetch'; mount: number; chunks: ChunkInfo[]; ino?: number; ranges?: Array<[number, number]>; into?: Uint8Array }
  | { t: 'readahead'; mount: number; chunks: ChunkInfo[] };

function ownDigest(c: ChunkInfo): ChunkInfo {
  return { ...c, digest: c.digest.slice() };
}

/**
 * A fetch's reply, moved to the worker: copies of the wanted ranges (all of each chunk without
 * `ranges`) in one new buffer. Storage may hand the same bytes to several readers (joined fetches,
 * kept chunks), so its buffers are never transferred; and a 128 KiB read of a 1 MiB chunk copies
 * 128 KiB, not the chunk.
 */
export function fetchReply(datas: readonly Uint8Array[], ranges?: ReadonlyArray<readonly [number, number]>, into?: Uint8Array): { value: Uint8Array[]; transfer: ArrayBuffer[] } {
  const r = datas.map((d, i) => {
    const [from, to] = ranges?.[i] ?? [0, d.length];
    return d.subarray(Math.min(from, d.length), Math.min(to, d.length));
  });
  const total = r.reduce((n, d) => n + d.length, 0);
  // The worker's shared reply slot: views of it travel back without a copy or an allocation.
  const shared = into && into.buffer instanceof SharedArrayBuffer && into.length >= total;
  const all = shared ? into : new Uint8Array(total);
  let off = 0;
  const value = r.map((d) => {
    all.set(d, off);
    off += d.length;
    return all.subarray(off - d.length, off);
  });
  return { value, transfer: shared ? [] : [all.buffer as ArrayBuffer] };
}

/** Reply slots per worker (one per cold read waiting at a time) and their size (the largest READ). */
const REPLY_SLOTS = 4;
const REPLY_SLOT_BYTES = 1 << 20;

export interface MountTable {
  version: number;
  mounts: MountSpec[];
  /** Images replaced by remounts and still readable (until their mountpoint is unmounted). */
  retired?: MountSpec[];
}

function toAttr(a: VfsAttr): Attr {
  return {
    ino: a.ino, size: a.size, blocks: a.blocks, mode: a.mode, nlink: a.nlink, uid: a.uid, gid: a.gid, rdev: a.rdev,
    blksize: a.blksize, atime: a.mtime, mtime: a.mtime, ctime: a.mtime, atimeNsec: a.mtimeNsec, mtimeNsec: a.mtimeNsec, ctimeNsec: a.mtimeNsec,
  };
}

export function createFileSystem(initData: unknown, ctx: WorkerContext): Promise<LowLevelFileSystem> | LowLevelFileSystem {
  const init = initData as FuseFsInit;
  const version = new Int32Array(init.tableVersion);
  // Cold reads' data comes back through a few shared slots the main thread copies into: no 1 MiB
  // buffer allocated (main) and collected (here) per cold READ, which cost CPU in GC and kept
  // hundreds of MiB of garbage resident across the workers. A slot is free again when its read
  // settles: its reply is written in the same turn, and a slot is only handed out again for a new
  // request, which comes in a later turn.
  let slots: SharedArrayBuffer | undefined;
  const freeSlots = Array.from({ length: REPLY_SLOTS }, (_, i) => i);
  const vfs = new Vfs({
    // Digests are views into the shared bootstrap: copy so structured cloning doesn't drag it along.
    fetchChunks: (mount, chunks, ino, ranges) => {
      const bytes = ranges ? ranges.reduce((n, [a, b]) => n + (b - a), 0) : Infinity;
      const slot = bytes <= REPLY_SLOT_BYTES ? freeSlots.pop() : undefined;
      const into = slot === undefined ? undefined : new Uint8Array((slots ??= new SharedArrayBuffer(REPLY_SLOTS * REPLY_SLOT_BYTES)), slot * REPLY_SLOT_BYTES, bytes);
      const p = ctx.request<Uint8Array[]>({ t: 'fetch', mount, chunks: chunks.map(ownDigest), ino, ranges, into } satisfies DaemonRequest);
      if (slot !== undefined) {
        const free = (): void => void freeSlots.push(slot);
        p.then(free, free);
      }
      return p;
    },
    readahead: (mount, chunks) => ctx.postToMain({ t: 'readahead', mount, chunks: chunks.map(ownDigest) } satisfies DaemonRequest),
  });
  let seen = -1;
  const active = new Map<number, string>();
  // Mounts replaced by a remount, per mountpoint. Their inodes stay served (open files, dentries the
  // kernel still caches for entry_timeout) until the mountpoint is unmounted: releasing them at once
  // made every read in flight during PUT /api/v1/mount fail with ESTALE.
  const replaced = new Map<string, number[]>();
  let refreshing: Promise<void> | undefined;

  async function refresh(): Promise<void> {
    const table = await ctx.request<MountTable>({ t: 'table' } satisfies DaemonRequest);
    const next = new Map(table.mounts.map((m) => [m.index, m]));
    const mountpoints = new Set(table.mounts.map((m) => m.mountpoint));
    for (const [idx, mp] of active) {
      if (next.has(idx)) continue;
      active.delete(idx);
      if (mountpoints.has(mp)) {
        // Remount: vfs.mount below points the entry at the new image; keep this one's inodes.
        replaced.set(mp, [...(replaced.get(mp) ?? []), idx]);
        continue;
      }
      vfs.umount(mp);
      vfs.release(idx);
      for (const r of replaced.get(mp) ?? []) vfs.release(r);
      replaced.delete(mp);
    }
    for (const m of table.mounts) {
      if (active.has(m.index)) continue;
      vfs.mount(m);
      active.set(m.index, m.mountpoint);
    }
    // A worker that was idle across a remount never had the replaced image, yet the kernel may send it
    // an inode of that image (looked up by another worker): serve those too.
    for (const r of table.retired ?? []) {
      const kept = replaced.get(r.mountpoint) ?? [];
      if (kept.includes(r.index)) continue;
      vfs.keep(r);
      replaced.set(r.mountpoint, [...kept, r.index]);
    }
    seen = table.version;
  }

  // A refresh already in flight may carry a table older than the version this request saw (the
  // main thread can bump between that table's read and now): keep refreshing until caught up, or an
  // inode the kernel got from a fresher worker would be ESTALE here.
  async function catchUp(): Promise<void> {
    while (Atomics.load(version, 0) !== seen) {
      refreshing ??= refresh().finally(() => (refreshing = undefined));
      await refreshing;
    }
  }

  /** Runs `fn` against an up-to-date mount table; synchronous unless the table changed. */
  function fresh<T>(fn: () => T | Promise<T>): T | Promise<T> {
    if (Atomics.load(version, 0) === seen) return fn();
    return catchUp().then(fn);
  }

  function counted<T>(op: number, ino: number, fn: () => T | Promise<T>): T | Promise<T> {
    const t0 = performance.now();
    const us = (): number => Math.round((performance.now() - t0) * 1000);
    try {
      const r = fresh(fn);
      if (r instanceof Promise) {
        return r.then(
          (v) => (vfs.count(op, ino, true, us()), v),
          (e: unknown) => {
            vfs.count(op, ino, false, us());
            throw e;
          },
        );
      }
      vfs.count(op, ino, true, us());
      return r;
    } catch (e) {
      vfs.count(op, ino, false, us());
      throw e;
    }
  }

  // A name in a pseudo directory may point elsewhere after an API (re)mount: keep it short-lived.
  const entry = (a: VfsAttr, parent: number): Entry => {
    const t = vfs.isPseudo(parent) ? init.pseudoTimeout : init.entryTimeout;
    return { ino: a.ino, attr: toAttr(a), entryTimeout: t, attrTimeout: vfs.isPseudo(a.ino) ? init.pseudoTimeout : init.attrTimeout };
  };

  const fs: LowLevelFileSystem = {
    // `name` is a view into the worker's request buffer: copy it in case the answer is deferred.
    lookup: (parent, name) => {
      const n = Buffer.from(name);
      return counted(FOP.Lookup, parent, () => entry(vfs.lookup(parent, n), parent));
    },
    getattr: (ino) => counted(FOP.Getattr, ino, () => ({ attr: toAttr(vfs.getattr(ino)), attrTimeout: vfs.isPseudo(ino) ? init.pseudoTimeout : init.attrTimeout })),
    readlink: (ino) => counted(FOP.Readlink, ino, () => vfs.readlink(ino)),
    // Image content never changes under a mount: let the page cache keep it across opens.
    open: (ino) => counted(FOP.Open, ino, () => ({ fh: 0, flags: FOPEN_KEEP_CACHE })),
    read: (ino, _fh, offset, size) => counted(FOP.Read, ino, () => vfs.read(ino, offset, size)),
    release: (ino) => counted(FOP.Release, ino, () => undefined),
    opendir: (ino) => counted(FOP.Opendir, ino, () => {
      vfs.getattr(ino);
      return { fh: 0 };
    }),
    readdir: (ino, _fh, offset, size) =>
      counted(FOP.Readdir, ino, () => {
        const out: DirEntry[] = [];
        let bytes = 0;
        vfs.readdir(ino, offset, (e, next) => {
          bytes += 24 + ((e.name.length + 7) & ~7);
          if (bytes > size && out.length > 0) return false;
          out.push({ ino: e.ino, name: e.name, type: e.type << 12, off: next });
          return true;
        });
        return out;
      }),
    readdirplus: (ino, _fh, offset, size) =>
      counted(FOP.Readdirplus, ino, () => {
        const out: DirEntryPlus[] = [];
        let bytes = 0;
        vfs.readdir(ino, offset, (e, next) => {
          bytes += 152 + ((e.name.length + 7) & ~7);
          if (bytes > size && out.length > 0) return false;
          const isDot = e.name.length <= 2 && e.name.every((c) => c === 0x2e);
          const a = isDot ? vfs.getattr(e.ino) : vfs.lookup(ino, e.name);
          out.push({ ino: e.ino, name: e.name, type: e.type << 12, off: next, entry: entry(a, ino) });
          return true;
        });
        return out;
      }),
    releasedir: () => undefined,
    statfs: (ino) => counted(FOP.Statfs, ino, () => vfs.statfs()),
    getxattr: (ino, name) => {
      const n = Buffer.from(name);
      return counted(FOP.Getxattr, ino, () => {
        const v = vfs.getxattr(ino, n);
        if (!v) throw Object.assign(new Error('no such attribute'), { code: 'ENODATA' });
        return v;
      });
    },
    listxattr: (ino) => counted(FOP.Listxattr, ino, () => vfs.listxattr(ino)),
    access: (ino, mask) =>
      counted(FOP.Access, ino, () => {
        vfs.getattr(ino);
        if (mask & 2) throw Object.assign(new Error('read-only filesystem'), { code: 'EROFS' });
      }),
    forget: () => undefined,
  };
  return fresh(() => fs);
}
