// The daemon's filesystem view, one instance per FUSE worker thread: a pseudo root holding any
// number of RAFS mounts (upstream's pseudofs + vfs), inode numbers namespaced per mount, and the
// read path that serves warm chunks from the blob cache file in this thread and asks the main
// thread (DataClient) only for missing ones.
import { closeSync, openSync, readSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import type { ChunkInfo } from '../format/chunk-info.js';
import { openBootstrap } from '../rafs/index.js';
import { entryNameProblem } from '../rafs/names.js';
import type { RafsInode, RafsSuper } from '../rafs/types.js';
import { verifyChunk } from '../storage/blob-io.js';
import { STATE_ACCESS, nowSeconds, readStillValid, readToken } from '../storage/cache/cache-quota.js';
import { FsError } from '../util/errors.js';
import { isChunkReady, SEQUENTIAL_READAHEAD_CHUNKS } from './chunk-ready.js';
import { FileStats, FsStats, type FileStatsFlags } from './fs-stats.js';

const E = osConstants.errno;
/** Inode numbers of mount k live in [k*2^40, (k+1)*2^40); k = 0 is the pseudo filesystem. */
export const INO_SPACE = 2 ** 40;
export const ROOT_ID = 1;

export interface VfsAttr {
  ino: number;
  size: number;
  blocks: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  mtime: number;
  mtimeNsec: number;
  blksize: number;
}

export interface VfsDirEntry {
  name: Buffer;
  ino: number;
  /** DT_* */
  type: number;
}

/** What a worker needs to serve one mount; structured-clone friendly (buffers are shared). */
export interface MountSpec {
  index: number;
  mountpoint: string;
  bootstrap: SharedArrayBuffer | Uint8Array;
  enableXattr: boolean;
  /** Per blob index: ready bitmap (shared with the main thread), the cache data file, verify-before-serve. */
  cache?: Array<CacheEnt | undefined>;
  /** Shared counters (FsStats layout) for /api/v1/metrics. */
  stats: SharedArrayBuffer;
  /** Per-file records (FileStats layout), when iostats_files / access_pattern / latest_read_files is on. */
  files?: { buf: SharedArrayBuffer; flags: FileStatsFlags } | undefined;
  /** Euid/egid reported when the image has no explicit uid/gid. */
  uid: number;
  gid: number;
}

/** A blob's cache as workers see it (storage's CacheView): ready bits, data file, verify, seqlock + access time. */
type CacheEnt = { bitmap: Uint8Array; dataPath: string; verify?: boolean; state?: Int32Array; trusted?: Uint8Array };

export interface DataClient {
  /**
   * Returns the uncompressed bytes of each chunk (fetched, verified and cached by the main thread).
   * `ino` is the FUSE inode the read is for (shown by /api/v1/metrics/inflight while it waits).
   */
  fetchChunks(mountIndex: number, chunks: ChunkInfo[], ino: number, ranges?: Array<[number, number]>): Promise<Uint8Array[]>;
  /** Asks for chunks to be brought into the cache in the background (no reply). */
  readahead(mountIndex: number, chunks: ChunkInfo[]): void;
}

export { SEQUENTIAL_READAHEAD_CHUNKS };

interface Mount {
  spec: MountSpec;
  sb: RafsSuper;
  stats: FsStats;
  files: FileStats | undefined;
  fds: Map<number, number>;
  /** Per regular file read: its size and chunks (RAFS is immutable, so a read needs no inode decode). */
  chunkCache: Map<number, { size: number; chunks: ChunkInfo[] }>;
  /** Per inode: position (in the file's chunk list) of the last cold chunk a read missed. */
  lastMiss: Map<number, number>;
  /**
   * Chunks this worker read from the cache and verified, by blob index and place: the bytes match the
   * record's digest, so serving them again is right whatever happens to the file. Spares re-hashing
   * a whole chunk for each page-sized read of it.
   */
  verified: Map<string, { digest: Uint8Array; data: Buffer }>;
}

/** Verified chunks kept per worker and mount (a sequential reader needs the current one). */
const VERIFIED_CHUNKS = 4;

interface PseudoDir {
  ino: number;
  parent: number;
  children: Map<string, { pseudo?: PseudoDir; mount?: number }>;
}

export { isChunkReady };

/** Warm reads land in one reused buffer per worker (a 1 MiB READ plus slack for unaligned chunks). */
const SCRATCH_BYTES = 2 << 20;

export class Vfs {
  readonly #mounts = new Map<number, Mount>();
  /**
   * Cached bytes of the current read. A synchronous read's reply is written before the worker
   * reads the next request, so the buffer is free again then: no 1 MiB allocation (and its page
   * faults and GC) per warm READ. Reads that wait for a fetch copy their cached parts out first.
   */
  #scratch: Buffer | undefined;
  #scratchUsed = 0;
  readonly #pseudo = new Map<number, PseudoDir>();
  #nextPseudo = 2;
  #rootMount: number | undefined;
  readonly #data: DataClient;

  constructor(data: DataClient) {
    this.#data = data;
    this.#pseudo.set(ROOT_ID, { ino: ROOT_ID, parent: ROOT_ID, children: new Map() });
  }

  /**
   * Serves a mount's inodes without linking it into the namespace: an image a remount replaced,
   * whose inodes the kernel may still hand to this worker (it never saw that image while current).
   */
  keep(spec: MountSpec): void {
    if (this.#mounts.has(spec.index)) return;
    const buf = spec.bootstrap instanceof SharedArrayBuffer ? new Uint8Array(spec.bootstrap) : spec.bootstrap;
    const sb = openBootstrap(buf, `bootstrap of ${spec.mountpoint}`);
    this.#mounts.set(spec.index, { spec, sb, stats: new FsStats(spec.stats), files: spec.files ? new FileStats(spec.files.buf, spec.files.flags) : undefined, fds: new Map(), chunkCache: new Map(), lastMiss: new Map(), verified: new Map() });
  }

  /** Adds (or, for an existing mountpoint, swaps in) a mount. Old inodes of a swapped mount stay readable. */
  mount(spec: MountSpec): void {
    this.keep(spec);
    if (spec.mountpoint === '/') {
      this.#rootMount = spec.index;
      return;
    }
    const parts = spec.mountpoint.split('/').filter(Boolean);
    let dir = this.#pseudo.get(ROOT_ID)!;
    for (const [i, p] of parts.entries()) {
      const last = i === parts.length - 1;
      const cur = dir.children.get(p);
      if (last) {
        dir.children.set(p, { mount: spec.index });
      } else if (cur?.pseudo) {
        dir = cur.pseudo;
      } else {
        const nd: PseudoDir = { ino: this.#nextPseudo++, parent: dir.ino, children: new Map() };
        this.#pseudo.set(nd.ino, nd);
        dir.children.set(p, { pseudo: nd });
        dir = nd;
      }
    }
  }

  /** Removes the mountpoint's entry; the mount's state goes when `release` is called. */
  umount(mountpoint: string): void {
    if (mountpoint === '/') {
      this.#rootMount = undefined;
      return;
    }
    const parts = mountpoint.split('/').filter(Boolean);
    let dir = this.#pseudo.get(ROOT_ID)!;
    for (const p of parts.slice(0, -1)) {
      const n = dir.children.get(p)?.pseudo;
      if (!n) return;
      dir = n;
    }
    dir.children.delete(parts[parts.length - 1]!);
  }

  release(index: number): void {
    const m = this.#mounts.get(index);
    if (!m) return;
    for (const fd of m.fds.values()) closeSync(fd);
    this.#mounts.delete(index);
  }

  #split(ino: number): { m: Mount; local: number } | undefined {
    if (ino === ROOT_ID && this.#rootMount !== undefined) {
      const m = this.#mounts.get(this.#rootMount);
      if (m) return { m, local: m.sb.rootIno };
    }
    const idx = Math.floor(ino / INO_SPACE);
    if (idx === 0) return undefined;
    const m = this.#mounts.get(idx);
    if (!m) throw new FsError(E.ESTALE, `inode ${ino} belongs to a mount that is gone`);
    return { m, local: ino - idx * INO_SPACE };
  }

  #global(m: Mount, local: number): number {
    if (local === m.sb.rootIno && this.#rootMount === m.spec.index) return ROOT_ID;
    return m.spec.index * INO_SPACE + local;
  }

  #attr(m: Mount, i: RafsInode): VfsAttr {
    const explicit = m.sb.meta.explicitUidGid;
    return {
      ino: this.#global(m, i.ino),
      size: i.size,
      blocks: i.blocks,
      mode: i.mode,
      nlink: i.nlink,
      uid: explicit ? i.uid : m.spec.uid,
      gid: explicit ? i.gid : m.spec.gid,
      rdev: i.rdev,
      mtime: i.mtime,
      mtimeNsec: i.mtimeNsec,
      blksize: 4096,
    };
  }

  #pseudoAttr(d: PseudoDir): VfsAttr {
    return { ino: d.ino, size: 4096, blocks: 8, mode: 0o040755, nlink: 2 + d.children.size, uid: 0, gid: 0, rdev: 0, mtime: 0, mtimeNsec: 0, blksize: 4096 };
  }

  #owner(ino: number): { m: Mount; local: number } | undefined {
    try {
      return this.#split(ino);
    } catch {
      return undefined;
    }
  }

  /** True for the pseudo filesystem's own directories (the root of pseudo mounts and its parents). */
  isPseudo(ino: number): boolean {
    try {
      return this.#split(ino) === undefined;
    } catch {
      return false;
    }
  }

  /** Counts a finished operation (and its latency) in the owning mount's stats. */
  count(op: number, ino: number, ok: boolean, latencyUs?: number): void {
    const s = this.#owner(ino);
    if (!s) return;
    s.m.stats.fop(op, ok, latencyUs);
    s.m.files?.fop(s.local, op, ok);
  }

  getattr(ino: number): VfsAttr {
    const s = this.#split(ino);
    if (!s) {
      const d = this.#pseudo.get(ino);
      if (!d) throw new FsError(E.ENOENT, `no inode ${ino}`);
      return this.#pseudoAttr(d);
    }
    return this.#attr(s.m, s.m.sb.getInode(s.local));
  }

  lookup(parent: number, name: Buffer): VfsAttr {
    const s = this.#split(parent);
    if (!s) {
      const d = this.#pseudo.get(parent);
      if (!d) throw new FsError(E.ENOENT, `no inode ${parent}`);
      const c = d.children.get(name.toString());
      if (!c) throw new FsError(E.ENOENT, 'no such entry');
      if (c.pseudo) return this.#pseudoAttr(c.pseudo);
      const m = this.#mounts.get(c.mount!)!;
      const root = m.sb.getInode(m.sb.rootIno);
      return this.#attr(m, root);
    }
    if (name.length === 1 && name[0] === 0x2e) return this.getattr(parent);
    if (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e) return this.getattr(this.#parentOf(parent));
    const child = s.m.sb.lookup(s.local, name);
    if (!child) throw new FsError(E.ENOENT, 'no such entry');
    return this.#attr(s.m, child);
  }

  #parentOf(ino: number): number {
    const s = this.#split(ino);
    if (!s) return this.#pseudo.get(ino)?.parent ?? ROOT_ID;
    return this.#global(s.m, s.m.sb.parentOf(s.local));
  }

  readlink(ino: number): Buffer {
    const s = this.#split(ino);
    if (!s) throw new FsError(E.EINVAL, 'not a symlink');
    return Buffer.from(s.m.sb.readlink(s.local));
  }

  /**
   * Directory entries from position `offset` (0 = ".", 1 = "..", then children); `cb` returns false
   * when the reply buffer is full.
   */
  readdir(ino: number, offset: number, cb: (e: VfsDirEntry, next: number) => boolean): void {
    const self = this.getattr(ino);
    if ((self.mode & 0o170000) !== 0o040000) throw new FsError(E.ENOTDIR, 'not a directory');
    if (offset === 0 && !cb({ name: Buffer.from('.'), ino, type: 4 }, 1)) return;
    if (offset <= 1 && !cb({ name: Buffer.from('..'), ino: this.#parentOf(ino), type: 4 }, 2)) return;
    const start = Math.max(0, offset - 2);
    const s = this.#split(ino);
    if (!s) {
      const d = this.#pseudo.get(ino)!;
      let i = 0;
      for (const [name, c] of d.children) {
        if (i++ < start) continue;
        const cino = c.pseudo ? c.pseudo.ino : this.#global(this.#mounts.get(c.mount!)!, this.#mounts.get(c.mount!)!.sb.rootIno);
        if (!cb({ name: Buffer.from(name), ino: cino, type: 4 }, i + 2)) return;
      }
      return;
    }
    s.m.sb.readdir(s.local, start, (e, next) => {
      // The rule check and unpack apply: a crafted name ('..', '/', NUL) is never handed out.
      const bad = entryNameProblem(e.name);
      if (bad) throw new FsError(E.EIO, `directory ${s.local} of ${s.m.spec.mountpoint}: ${bad}`);
      return cb({ name: Buffer.from(e.name), ino: this.#global(s.m, e.ino), type: e.type }, next + 2);
    });
  }

  getxattr(ino: number, name: Buffer): Buffer | undefined {
    const s = this.#split(ino);
    if (!s || !s.m.spec.enableXattr) return undefined;
    const v = s.m.sb.getXattr(s.local, name);
    return v ? Buffer.from(v) : undefined;
  }

  listxattr(ino: number): Buffer[] {
    const s = this.#split(ino);
    if (!s || !s.m.spec.enableXattr) return [];
    return s.m.sb.listXattrs(s.local).map((n) => Buffer.from(n));
  }

  #chunks(m: Mount, local: number, size: number): ChunkInfo[] {
    const chunks = m.sb.fileChunks(local);
    if (m.chunkCache.size > 4096) m.chunkCache.clear();
    m.chunkCache.set(local, { size, chunks });
    return chunks;
  }

  #cacheFd(m: Mount, blobIndex: number): number | undefined {
    const ent = m.spec.cache?.[blobIndex];
    if (!ent) return undefined;
    let fd = m.fds.get(blobIndex);
    if (fd === undefined) {
      fd = openSync(ent.dataPath, 'r');
      m.fds.set(blobIndex, fd);
    }
    return fd;
  }

  /** Reads [offset, offset+size) of a regular file; synchronous when every chunk is cached. */
  read(ino: number, offset: number, size: number): Buffer[] | Promise<Buffer[]> {
    const s = this.#split(ino);
    if (!s) throw new FsError(E.EISDIR, 'not a regular file');
    const { m, local } = s;
    const cached = m.chunkCache.get(local);
    let fileSize = cached?.size;
    if (fileSize === undefined) {
      const inode = m.sb.getInode(local);
      if ((inode.mode & 0o170000) !== 0o100000) throw new FsError(E.EINVAL, 'not a regular file');
      fileSize = inode.size;
    }
    const end = Math.min(fileSize, offset + size);
    if (offset >= end) return [];
    const chunks = cached?.chunks ?? this.#chunks(m, local, fileSize);
    this.#scratchUsed = 0;
    const cs = m.sb.meta.chunkSize;
    // Chunks are in file order and (without holes) chunk k covers [k*cs, ...): start near offset/cs.
    let k = Math.min(chunks.length, Math.floor(offset / cs));
    while (k > 0 && chunks[k - 1]!.fileOffset + chunks[k - 1]!.uncompressedSize > offset) k--;
    // A cold part names its chunk by position in `missing` (and so in the fetch's reply).
    const parts: Array<Buffer | { miss: number; from: number; to: number }> = [];
    const missing: ChunkInfo[] = [];
    // Only the needed bytes of each missing chunk come back (a chunk appears once per read).
    const ranges: Array<[number, number]> = [];
    let lastMissPos = -1;
    // The chunks must cover [offset, end) without gaps: a crafted bootstrap with too few or empty
    // chunks would otherwise make the read silently short.
    let covered = offset;
    for (; k < chunks.length; k++) {
      const c = chunks[k]!;
      if (c.fileOffset >= end) break;
      const cEnd = c.fileOffset + c.uncompressedSize;
      if (cEnd <= offset) continue;
      if (c.fileOffset > covered) break;
      covered = Math.max(covered, Math.min(end, cEnd));
      const from = Math.max(offset, c.fileOffset) - c.fileOffset;
      const to = Math.min(end, cEnd) - c.fileOffset;
      const ent = m.spec.cache?.[c.blobIndex];
      const cachedPart = ent ? this.#readCachedPart(m, ent, c, from, to) : undefined;
      if (cachedPart) {
        parts.push(cachedPart);
      } else {
        parts.push({ miss: missing.length, from, to });
        missing.push(c);
        ranges.push([from, to]);
        lastMissPos = k;
      }
    }
    if (covered < end) throw new FsError(E.EIO, `file data [${covered}, ${end}) of inode ${local} is not covered by its chunk records`);
    m.stats.dataRead(end - offset);
    m.files?.read(local, end - offset);
    if (missing.length === 0) return parts as Buffer[];
    // This reply waits: the worker serves other reads meanwhile, which reuse the scratch buffer.
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (Buffer.isBuffer(p) && p.buffer === this.#scratch?.buffer) parts[i] = Buffer.from(p);
    }
    this.#readahead(m, local, chunks, lastMissPos);
    return this.#data.fetchChunks(m.spec.index, missing, ino, ranges).then((datas) =>
      parts.map((p) => {
        if (Buffer.isBuffer(p)) return p;
        const d = datas[p.miss]!;
        if (d.length !== p.to - p.from) throw new FsError(E.EIO, `short chunk data for inode ${local}`);
        return Buffer.from(d.buffer, d.byteOffset, d.length);
      }),
    );
  }

  /**
   * Bytes [from, to) of a ready chunk from the cache file. With `verify` the whole chunk is read and
   * its digest checked; a mismatch (or a short file) returns undefined, so the chunk goes to the main
   * thread, which drops and re-fetches it.
   */
  #readCachedPart(m: Mount, ent: CacheEnt, c: ChunkInfo, from: number, to: number): Buffer | undefined {
    // Seqlock against eviction (storage/cache/cache-quota.ts): odd or changed = evicted meanwhile.
    const token = ent.state ? readToken(ent.state) : 0;
    if (token === undefined || !isChunkReady(ent.bitmap, c.index)) return undefined;
    // Verified once in this process (by any thread) and not overwritten since: no need to hash again.
    const verify = (ent.verify ?? false) && !(ent.trusted && isChunkReady(ent.trusted, c.index));
    const memoKey = `${c.blobIndex}:${c.uncompressedOffset}`;
    if (verify) {
      const hit = m.verified.get(memoKey);
      if (hit && hit.data.length === c.uncompressedSize && Buffer.compare(hit.digest, c.digest) === 0) return hit.data.subarray(from, to);
    }
    const fd = this.#cacheFd(m, c.blobIndex)!;
    const [start, len] = verify ? [0, c.uncompressedSize] : [from, to - from];
    // Verified chunks are kept (m.verified): they get their own buffer.
    const b = verify ? Buffer.allocUnsafe(len) : this.#take(len);
    let got = 0;
    while (got < b.length) {
      const n = readSync(fd, b, got, b.length - got, c.uncompressedOffset + start + got);
      if (n === 0) break;
      got += n;
    }
    if (got !== b.length) return undefined;
    if (ent.state) {
      if (!readStillValid(ent.state, token)) return undefined;
      Atomics.store(ent.state, STATE_ACCESS, nowSeconds());
    }
    if (!verify) return b;
    const blob = m.sb.blobs[c.blobIndex];
    if (!blob) return undefined;
    try {
      verifyChunk(blob, c, b);
    } catch {
      return undefined;
    }
    if (ent.trusted && ent.state && c.index >>> 3 < ent.trusted.length) {
      const bit = 0x80 >>> (c.index & 7);
      Atomics.or(ent.trusted, c.index >>> 3, bit);
      // Overwritten while we hashed: the bytes we checked may be gone, so take the mark back.
      if (!readStillValid(ent.state, token)) Atomics.and(ent.trusted, c.index >>> 3, ~bit & 0xff);
    }
    m.verified.delete(memoKey);
    m.verified.set(memoKey, { digest: c.digest, data: b });
    if (m.verified.size > VERIFIED_CHUNKS) m.verified.delete(m.verified.keys().next().value!);
    return b.subarray(from, to);
  }

  #take(len: number): Buffer {
    this.#scratch ??= Buffer.allocUnsafeSlow(SCRATCH_BYTES);
    if (this.#scratchUsed + len > this.#scratch.length) return Buffer.allocUnsafe(len);
    const b = this.#scratch.subarray(this.#scratchUsed, this.#scratchUsed + len);
    this.#scratchUsed += len;
    return b;
  }

  /**
   * Page-cache readahead asks for one chunk's worth at a time, so a cold sequential read would wait
   * for one fetch after another. Once two consecutive chunks of a file miss, fetch the next few in
   * the background; random access (non-consecutive misses) triggers nothing, so it reads no extra.
   */
  #readahead(m: Mount, local: number, chunks: ChunkInfo[], pos: number): void {
    const prev = m.lastMiss.get(local);
    if (m.lastMiss.size > 4096) m.lastMiss.clear();
    m.lastMiss.set(local, pos);
    if (prev === undefined || pos !== prev + 1 || !m.spec.cache) return;
    const ahead: ChunkInfo[] = [];
    for (let k = pos + 1; k < chunks.length && ahead.length < SEQUENTIAL_READAHEAD_CHUNKS; k++) {
      const c = chunks[k]!;
      const ent = m.spec.cache[c.blobIndex];
      // No view (dummycache, digest-keyed blobs): storage keeps what it fetched ahead in memory or its cache.
      if (!ent || !isChunkReady(ent.bitmap, c.index)) ahead.push(c);
    }
    if (ahead.length) this.#data.readahead(m.spec.index, ahead);
  }

  statfs(): { blocks: number; bfree: number; bavail: number; files: number; ffree: number; bsize: number; namelen: number; frsize: number } {
    let blocks = 0;
    let files = 0;
    for (const m of this.#mounts.values()) {
      files += m.sb.meta.inodeCount;
      for (const b of m.sb.blobs) blocks += Math.ceil(b.uncompressedSize / 4096);
    }
    return { blocks, bfree: 0, bavail: 0, files, ffree: 0, bsize: 4096, namelen: 255, frsize: 4096 };
  }
}
