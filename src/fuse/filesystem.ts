// The low-level filesystem contract (inode numbers, not paths), close to the wire like
// fuse-backend-rs's FileSystem trait and libfuse's fuse_lowlevel_ops. Every method is optional:
// a missing one answers ENOSYS (or the documented default). A method may answer synchronously
// (return the value: the fast path) or return a Promise (the slow path, e.g. a network fetch);
// the worker keeps serving other requests while a Promise is pending. Throw FsError(errno) — or
// anything errnoOf understands — to fail a request.

import type { TransferListItem } from 'node:worker_threads';

export type MaybePromise<T> = T | Promise<T>;

/** struct fuse_attr. Times are seconds since the epoch plus nanoseconds. */
export interface Attr {
  ino: number;
  size: number;
  /** 512-byte blocks, as st_blocks. */
  blocks: number;
  atime: number;
  mtime: number;
  ctime: number;
  atimeNsec?: number;
  mtimeNsec?: number;
  ctimeNsec?: number;
  /** File type and permission bits (S_IFREG | 0o644 ...). */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  blksize: number;
}

/** A LOOKUP answer. Timeouts are seconds (fractions allowed); absent → session defaults. */
export interface Entry {
  ino: number;
  generation?: number;
  attr: Attr;
  entryTimeout?: number;
  attrTimeout?: number;
}

export interface AttrReply {
  attr: Attr;
  attrTimeout?: number;
}

/** An OPEN/OPENDIR answer: fh is handed back on READ/RELEASE; flags are FOPEN_* bits. */
export interface OpenReply {
  fh?: number;
  /** FOPEN_DIRECT_IO, FOPEN_KEEP_CACHE, FOPEN_CACHE_DIR ... */
  flags?: number;
}

/** One directory entry. `off` is the cookie of the *next* entry (what the kernel passes back as offset). */
export interface DirEntry {
  ino: number;
  name: Buffer | string;
  /** File type as S_IFMT bits (mode & 0o170000) or the full mode. */
  type: number;
  off: number;
}

/** READDIRPLUS entry: the kernel counts `entry` as a lookup (nlookup+1) unless the name is "." or "..". */
export interface DirEntryPlus extends DirEntry {
  entry: Entry;
}

export interface StatFs {
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  bsize: number;
  namelen: number;
  frsize: number;
}

/** Who asked: from fuse_in_header. */
export interface RequestInfo {
  uid: number;
  gid: number;
  pid: number;
  opcode: number;
}

export interface LowLevelFileSystem {
  lookup?(parent: number, name: Buffer, req: RequestInfo): MaybePromise<Entry>;
  /** No reply is sent; `nlookup` lookups of `ino` are dropped. */
  forget?(ino: number, nlookup: number): void;
  getattr?(ino: number, fh: number | undefined, req: RequestInfo): MaybePromise<AttrReply | Attr>;
  readlink?(ino: number, req: RequestInfo): MaybePromise<Buffer | string>;
  /** Absent → the kernel is told FUSE_NO_OPEN_SUPPORT semantics (ENOSYS once, then no OPENs) or fh 0. */
  open?(ino: number, flags: number, req: RequestInfo): MaybePromise<OpenReply>;
  /** May return fewer bytes than `size` only at EOF. A Buffer[] is written with writev, uncopied. */
  read?(ino: number, fh: number, offset: number, size: number, req: RequestInfo): MaybePromise<Buffer | Buffer[]>;
  release?(ino: number, fh: number, req: RequestInfo): MaybePromise<void>;
  opendir?(ino: number, flags: number, req: RequestInfo): MaybePromise<OpenReply>;
  /** Entries starting at cookie `offset`; the dispatcher packs as many as fit in `size` bytes. */
  readdir?(ino: number, fh: number, offset: number, size: number, req: RequestInfo): MaybePromise<DirEntry[]>;
  readdirplus?(ino: number, fh: number, offset: number, size: number, req: RequestInfo): MaybePromise<DirEntryPlus[]>;
  releasedir?(ino: number, fh: number, req: RequestInfo): MaybePromise<void>;
  statfs?(ino: number, req: RequestInfo): MaybePromise<StatFs>;
  /** Throw ENODATA when absent. Size probing and ERANGE are handled by the dispatcher. */
  getxattr?(ino: number, name: Buffer, req: RequestInfo): MaybePromise<Buffer>;
  listxattr?(ino: number, req: RequestInfo): MaybePromise<Buffer[]>;
  /** Absent → allowed unless W_OK is asked (EROFS). */
  access?(ino: number, mask: number, req: RequestInfo): MaybePromise<void>;
  /** whence: SEEK_DATA (3) or SEEK_HOLE (4). Absent → ENOSYS, the kernel then uses generic seek. */
  lseek?(ino: number, fh: number, offset: number, whence: number, req: RequestInfo): MaybePromise<number>;
  /** Absent → the default poll mask (readable and writable). */
  poll?(ino: number, fh: number, events: number, req: RequestInfo): MaybePromise<number>;
  /** FUSE_DESTROY or session end. */
  destroy?(): void;
}

/** Given to createFileSystem in each worker. */
export interface WorkerContext {
  /** 0-based index of this worker. */
  readonly workerIndex: number;
  /** Fire-and-forget message to the main thread (session 'message' event / onMessage). */
  postToMain(msg: unknown, transfer?: Transferable[]): void;
  /** Request/response to the main thread's onRequest handler; rejects with FsError(errno) if it threw one. */
  request<T = unknown>(msg: unknown, transfer?: Transferable[]): Promise<T>;
}

/**
 * The worker module contract: a compiled ESM module, loaded by URL in every worker, exporting
 * `createFileSystem(initData, ctx)`. initData is structured-cloned (SharedArrayBuffers are shared).
 */
export interface FileSystemModule {
  createFileSystem(initData: unknown, ctx: WorkerContext): MaybePromise<LowLevelFileSystem>;
}

export type Transferable = TransferListItem;
