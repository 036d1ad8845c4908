// The FUSE worker module of `nydusd erofs`: a flat read-only directory with one `<blob_id>.blob.data`
// file per blob of a RAFS v6 image, in the layout kernel EROFS expects for `device=` (chunk i's
// uncompressed bytes at its uncompressed_offset, gaps read as zeros, whole 4 KiB blocks). Reads of
// cached chunks are served from the blob cache file in this thread; missing chunks are fetched,
// verified and cached by the main thread's storage (the same path as nydusd's FUSE reads).
import { closeSync, openSync, readSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { decodeChunkInfo, RAFS_CHUNK_INFO_SIZE, type ChunkInfo } from '../format/chunk-info.js';
import { FOPEN_KEEP_CACHE, FUSE_ROOT_ID, type Attr, type DirEntry, type Entry, type LowLevelFileSystem, type WorkerContext } from '../fuse/index.js';
import { openRafsV6 } from '../rafs/v6.js';
import { FsError } from '../util/errors.js';
import type { DaemonRequest } from './fuse-fs.js';
import { allChunks } from './prefetch-plan.js';
import { isChunkReady, SEQUENTIAL_READAHEAD_CHUNKS } from './chunk-ready.js';

const E = osConstants.errno;
/** The files' content never changes while mounted: cache attrs and entries for a long time. */
const TIMEOUT = 2 ** 32;
/** The mount index the main thread's fetch handler expects (one image per daemon). */
export const BLOB_DATA_MOUNT = 1;

export interface BlobDataFsInit {
  bootstrap: SharedArrayBuffer;
  /** Per blob index: file name and size (a whole number of 4 KiB blocks). */
  files: Array<{ name: string; size: number }>;
  /** Per blob index: the blob cache's ready bitmap (shared) and data file, when there is a file cache. */
  cache: Array<{ bitmap: Uint8Array; dataPath: string } | undefined>;
  mtime: number;
}

interface BlobTable {
  /** The blob's chunks by uncompressed offset; `starts[k]` = chunks[k].uncompressedOffset. */
  chunks: ChunkInfo[];
  starts: Float64Array;
}

const ZEROS = Buffer.alloc(1 << 20);

function zeros(n: number): Buffer[] {
  const out: Buffer[] = [];
  for (; n > 0; n -= ZEROS.length) out.push(ZEROS.subarray(0, Math.min(n, ZEROS.length)));
  return out;
}

/**
 * Sorted chunk tables per blob (each chunk once): from the bootstrap's chunk table when it has one
 * (a linear decode), else from every file. Walking the 8k inodes of a Debian rootfs took ~1 s per
 * worker under load, paid by the first cold read of each worker.
 */
export function blobChunkTables(bootstrap: Uint8Array, nblobs: number): BlobTable[] {
  // The main thread checked it is v6; the v6 reader alone keeps the worker's start-up small.
  const sb = openRafsV6(bootstrap);
  const per: ChunkInfo[][] = Array.from({ length: nblobs }, () => []);
  const { chunkTableOffset: off, chunkTableSize: size } = sb.ext;
  if (size > 0) {
    const seen = new Set<number>();
    for (let p = 0; p < size; p += RAFS_CHUNK_INFO_SIZE) {
      const c = decodeChunkInfo(bootstrap, off + p);
      const key = c.blobIndex * 2 ** 32 + c.index;
      if (seen.has(key)) continue;
      seen.add(key);
      per[c.blobIndex]?.push(c);
    }
  } else for (const c of allChunks(sb)) per[c.blobIndex]?.push({ ...c, digest: c.digest.slice() });
  return per.map((chunks) => {
    chunks.sort((a, b) => a.uncompressedOffset - b.uncompressedOffset);
    return { chunks, starts: Float64Array.from(chunks, (c) => c.uncompressedOffset) };
  });
}

/** Index of the first chunk ending after `offset`. */
function firstChunk(t: BlobTable, offset: number): number {
  let lo = 0;
  let hi = t.chunks.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (t.starts[mid]! + t.chunks[mid]!.uncompressedSize <= offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function createFileSystem(initData: unknown, ctx: WorkerContext): LowLevelFileSystem {
  const init = initData as BlobDataFsInit;
  let tables: BlobTable[] | undefined;
  const fds = new Map<number, number>();
  const lastMiss = new Map<number, number>();
  const firstIno = FUSE_ROOT_ID + 1;

  const blobOf = (ino: number): number => {
    const i = ino - firstIno;
    if (i < 0 || i >= init.files.length) throw new FsError(ino === FUSE_ROOT_ID ? E.EISDIR : E.ENOENT, `no blob data file with inode ${ino}`);
    return i;
  };
  const attr = (ino: number): Attr => {
    const t = { atime: init.mtime, mtime: init.mtime, ctime: init.mtime, nlink: 1, uid: 0, gid: 0, rdev: 0, blksize: 4096 };
    if (ino === FUSE_ROOT_ID) return { ...t, ino, size: 4096, blocks: 8, mode: 0o040555, nlink: 2 };
    const f = init.files[blobOf(ino)]!;
    return { ...t, ino, size: f.size, blocks: Math.ceil(f.size / 512), mode: 0o100444 };
  };
  const entry = (ino: number): Entry => ({ ino, attr: attr(ino), entryTimeout: TIMEOUT, attrTimeout: TIMEOUT });

  const cacheFd = (blob: number): number => {
    let fd = fds.get(blob);
    if (fd === undefined) {
      fd = openSync(init.cache[blob]!.dataPath, 'r');
      fds.set(blob, fd);
    }
    return fd;
  };

  const preadFull = (fd: number, b: Buffer, pos: number, blob: number): void => {
    let got = 0;
    while (got < b.length) {
      const n = readSync(fd, b, got, b.length - got, pos + got);
      if (n === 0) break;
      got += n;
    }
    if (got !== b.length) throw new FsError(E.EIO, `short read from the blob cache of blob ${blob}`);
  };

  /** Two consecutive cold chunks: bring the next few into the cache in the background. */
  const readahead = (blob: number, t: BlobTable, pos: number): void => {
    const prev = lastMiss.get(blob);
    lastMiss.set(blob, pos);
    const ent = init.cache[blob];
    if (prev === undefined || pos !== prev + 1 || !ent) return;
    const ahead: ChunkInfo[] = [];
    for (let k = pos + 1; k < t.chunks.length && ahead.length < SEQUENTIAL_READAHEAD_CHUNKS; k++) {
      if (!isChunkReady(ent.bitmap, t.chunks[k]!.index)) ahead.push(t.chunks[k]!);
    }
    if (ahead.length) ctx.postToMain({ t: 'readahead', mount: BLOB_DATA_MOUNT, chunks: ahead } satisfies DaemonRequest);
  };

  const read = (ino: number, offset: number, size: number): Buffer[] | Promise<Buffer[]> => {
    const blob = blobOf(ino);
    const end = Math.min(init.files[blob]!.size, offset + size);
    if (offset >= end) return [];
    tables ??= blobChunkTables(new Uint8Array(init.bootstrap), init.files.length);
    const t = tables[blob]!;
    const ent = init.cache[blob];
    // A cold part names its chunk by position in `missing` (and so in the fetch's reply).
    const parts: Array<Buffer | { miss: number; from: number; to: number }> = [];
    const missing: ChunkInfo[] = [];
    // Only the needed bytes of each missing chunk come back (a chunk appears once per read).
    const ranges: Array<[number, number]> = [];
    let lastMissPos = -1;
    let pos = offset;
    for (let k = firstChunk(t, offset); k < t.chunks.length && pos < end; k++) {
      const c = t.chunks[k]!;
      const start = c.uncompressedOffset;
      if (start >= end) break;
      if (start > pos) parts.push(...zeros(start - pos));
      const from = Math.max(pos, start) - start;
      const to = Math.min(end, start + c.uncompressedSize) - start;
      if (to <= from) continue;
      if (ent && isChunkReady(ent.bitmap, c.index)) {
        const b = Buffer.allocUnsafe(to - from);
        preadFull(cacheFd(blob), b, start + from, blob);
        parts.push(b);
      } else {
        parts.push({ miss: missing.length, from, to });
        missing.push(c);
        ranges.push([from, to]);
        lastMissPos = k;
      }
      pos = start + to;
    }
    if (pos < end) parts.push(...zeros(end - pos));
    if (missing.length === 0) return parts as Buffer[];
    readahead(blob, t, lastMissPos);
    return ctx.request<Uint8Array[]>({ t: 'fetch', mount: BLOB_DATA_MOUNT, chunks: missing, ranges } satisfies DaemonRequest).then((datas) =>
      parts.map((p) => {
        if (Buffer.isBuffer(p)) return p;
        const d = datas[p.miss]!;
        if (d.length !== p.to - p.from) throw new FsError(E.EIO, `short data for chunk ${missing[p.miss]!.index}`);
        return Buffer.from(d.buffer, d.byteOffset, d.length);
      }),
    );
  };

  return {
    lookup: (parent, name) => {
      if (parent !== FUSE_ROOT_ID) throw new FsError(E.ENOTDIR, 'not a directory');
      const i = init.files.findIndex((f) => f.name === name.toString());
      if (i < 0) throw new FsError(E.ENOENT, 'no such blob data file');
      return entry(firstIno + i);
    },
    getattr: (ino) => ({ attr: attr(ino), attrTimeout: TIMEOUT }),
    open: (ino) => {
      blobOf(ino);
      return { fh: 0, flags: FOPEN_KEEP_CACHE };
    },
    read: (ino, _fh, offset, size) => read(ino, offset, size),
    release: () => undefined,
    opendir: (ino) => {
      if (ino !== FUSE_ROOT_ID) throw new FsError(E.ENOTDIR, 'not a directory');
      return { fh: 0 };
    },
    readdir: (ino, _fh, offset) => {
      if (ino !== FUSE_ROOT_ID) throw new FsError(E.ENOTDIR, 'not a directory');
      const all: DirEntry[] = [
        { ino, name: '.', type: 0o040000, off: 1 },
        { ino, name: '..', type: 0o040000, off: 2 },
        ...init.files.map((f, i) => ({ ino: firstIno + i, name: f.name, type: 0o100000, off: 3 + i })),
      ];
      return all.slice(offset);
    },
    releasedir: () => undefined,
    statfs: () => {
      const blocks = init.files.reduce((n, f) => n + f.size / 4096, 0);
      return { blocks, bfree: 0, bavail: 0, files: init.files.length + 1, ffree: 0, bsize: 4096, namelen: 255, frsize: 4096 };
    },
    access: (_ino, mask) => {
      if (mask & 2) throw new FsError(E.EROFS, 'read-only filesystem');
    },
    forget: () => undefined,
    destroy: () => {
      for (const fd of fds.values()) closeSync(fd);
      fds.clear();
    },
  };
}
