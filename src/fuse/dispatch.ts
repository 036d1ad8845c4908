// Decode one kernel request, call the LowLevelFileSystem, encode the reply. No I/O of its own:
// replies go through a DeviceWriter, so this is testable without /dev/fuse. A request whose
// filesystem method returns a Promise is "pending"; `pending` lets the worker loop decide between
// blocking and non-blocking device reads (see worker.ts).
import * as A from './abi.js';
import { Op } from './abi.js';
import * as E from './errno.js';
import { errnoOf } from './errno.js';
import type { Attr, DirEntry, DirEntryPlus, Entry, LowLevelFileSystem, MaybePromise, OpenReply, RequestInfo, StatFs } from './filesystem.js';

export interface DeviceWriter {
  write(b: Buffer): void;
  writev(parts: Buffer[]): void;
}

/** Protocol knobs; all have defaults (see DEFAULT_PROTOCOL_OPTIONS). Timeouts in seconds. */
export interface ProtocolOptions {
  entryTimeout: number;
  attrTimeout: number;
  /** > 0: a lookup failing with ENOENT is cached by the kernel for this long (nodeid 0 entry). */
  negativeTimeout: number;
  maxReadahead: number;
  maxWrite: number;
  /** Max pages per request (256 × 4 KiB = 1 MiB READs). */
  maxPages: number;
  maxBackground: number;
  congestionThreshold: number;
  /** 'auto' = FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO (kernel picks); needs fs.readdirplus. */
  readdirplus: 'off' | 'on' | 'auto';
  cacheSymlinks: boolean;
  /** FOPEN_* used when the filesystem has no open() (or its reply has no flags). */
  openFlags: number;
  dirOpenFlags: number;
}

export const DEFAULT_PROTOCOL_OPTIONS: ProtocolOptions = {
  entryTimeout: 1,
  attrTimeout: 1,
  negativeTimeout: 0,
  maxReadahead: 1 << 20,
  maxWrite: 1 << 20,
  maxPages: 256,
  maxBackground: 64,
  congestionThreshold: 48,
  readdirplus: 'auto',
  cacheSymlinks: true,
  openFlags: A.FOPEN_KEEP_CACHE,
  dirOpenFlags: A.FOPEN_KEEP_CACHE | A.FOPEN_CACHE_DIR,
};

export interface InitInfo {
  kernelMajor: number;
  kernelMinor: number;
  minor: number;
  kernelFlags: number;
  flags: number;
  maxReadahead: number;
}

const O_ACCMODE = 3;
const O_TRUNC = 0o1000;
const W_OK = 2;
const DEFAULT_POLLMASK = 0x1 | 0x4 | 0x40 | 0x100; // POLLIN|POLLOUT|POLLRDNORM|POLLWRNORM

/** Requests that would modify the filesystem: answered EROFS without asking the filesystem. */
const WRITE_OPS = new Set<number>([
  Op.FUSE_SETATTR, Op.FUSE_SYMLINK, Op.FUSE_MKNOD, Op.FUSE_MKDIR, Op.FUSE_UNLINK, Op.FUSE_RMDIR,
  Op.FUSE_RENAME, Op.FUSE_LINK, Op.FUSE_WRITE, Op.FUSE_SETXATTR, Op.FUSE_REMOVEXATTR, Op.FUSE_CREATE,
  Op.FUSE_FALLOCATE, Op.FUSE_RENAME2, Op.FUSE_COPY_FILE_RANGE, Op.FUSE_TMPFILE,
]);

function isPromise<T>(v: MaybePromise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}

export class Dispatcher {
  /** Requests whose filesystem call returned a still-unsettled Promise. */
  pending = 0;
  init: InitInfo | undefined;
  destroyed = false;
  /** Called after the INIT reply is written. */
  onInit: ((info: InitInfo) => void) | undefined;
  /** Called when a pending request settles (after its reply is written). */
  onSettled: (() => void) | undefined;
  private readonly scratch = Buffer.alloc(4096);
  private noOpen = false;
  private noOpendir = false;

  constructor(
    private readonly fs: LowLevelFileSystem,
    private readonly opts: ProtocolOptions,
    private readonly dev: DeviceWriter,
    /** [0..63] requests per opcode, [64..127] error replies per opcode; shared by all workers. */
    private readonly stats: BigInt64Array | undefined,
  ) {}

  /** Handle one request (the first `len` bytes of `buf`). `buf` may be reused once this returns. */
  handle(buf: Buffer, len: number): void {
    const opcode = buf.readUInt32LE(4);
    const unique = buf.readBigUInt64LE(8);
    const ino = A.readU64(buf, 16);
    if (this.stats) Atomics.add(this.stats, Math.min(opcode, A.MAX_OPCODE), 1n);
    const req: RequestInfo = { uid: buf.readUInt32LE(24), gid: buf.readUInt32LE(28), pid: buf.readUInt32LE(32), opcode };
    const fs = this.fs;
    switch (opcode) {
      case Op.FUSE_INIT:
        return this.doInit(buf, unique);
      case Op.FUSE_LOOKUP: {
        if (!fs.lookup) return this.err(unique, opcode, E.ENOSYS);
        const name = cstr(buf, A.IN_HEADER_SIZE, len);
        return this.run(unique, opcode, () => fs.lookup!(ino, name, req), (e) => this.replyEntry(unique, e), (errno) => {
          if (errno !== E.ENOENT || !(this.opts.negativeTimeout > 0)) return false;
          // A nodeid-0 entry is a cacheable "no such name" (fuse_lowlevel.h: negative entry).
          const b = this.scratch;
          b.fill(0, A.OUT_HEADER_SIZE, A.OUT_HEADER_SIZE + A.ENTRY_OUT_SIZE);
          const [s, ns] = A.splitTimeout(this.opts.negativeTimeout);
          A.writeU64(b, s, A.OUT_HEADER_SIZE + 16);
          b.writeUInt32LE(ns, A.OUT_HEADER_SIZE + 32);
          this.send(unique, A.ENTRY_OUT_SIZE);
          return true;
        });
      }
      case Op.FUSE_FORGET:
        fs.forget?.(ino, A.readU64(buf, 40));
        return; // no reply
      case Op.FUSE_BATCH_FORGET: {
        const count = buf.readUInt32LE(40);
        for (let i = 0, off = 48; i < count && off + 16 <= len; i++, off += 16) fs.forget?.(A.readU64(buf, off), A.readU64(buf, off + 8));
        return; // no reply
      }
      case Op.FUSE_INTERRUPT:
      case Op.FUSE_NOTIFY_REPLY:
        // No reply. Interrupts are not acted on: a pending read still completes and its reply
        // is dropped by the kernel (write → ENOENT) if the caller has gone.
        return;
      case Op.FUSE_GETATTR: {
        if (!fs.getattr) return this.err(unique, opcode, E.ENOSYS);
        const fh = buf.readUInt32LE(40) & 1 ? A.readU64(buf, 48) : undefined; // FUSE_GETATTR_FH
        return this.run(unique, opcode, () => fs.getattr!(ino, fh, req), (r) => {
          const attr = 'attr' in r ? r.attr : r;
          const timeout = 'attr' in r && r.attrTimeout !== undefined ? r.attrTimeout : this.opts.attrTimeout;
          const b = this.scratch;
          const o = A.OUT_HEADER_SIZE;
          const [s, ns] = A.splitTimeout(timeout);
          A.writeU64(b, s, o);
          b.writeUInt32LE(ns, o + 8);
          b.writeUInt32LE(0, o + 12);
          encodeAttr(b, o + 16, attr);
          this.send(unique, A.ATTR_OUT_SIZE);
        });
      }
      case Op.FUSE_READLINK:
        if (!fs.readlink) return this.err(unique, opcode, E.ENOSYS);
        return this.run(unique, opcode, () => fs.readlink!(ino, req), (t) => this.sendData(unique, [typeof t === 'string' ? Buffer.from(t) : t]));
      case Op.FUSE_OPEN:
      case Op.FUSE_OPENDIR: {
        const dir = opcode === Op.FUSE_OPENDIR;
        const flags = buf.readUInt32LE(40);
        if (!dir && ((flags & O_ACCMODE) !== 0 || flags & O_TRUNC)) return this.err(unique, opcode, E.EROFS);
        const method = dir ? fs.opendir : fs.open;
        const defFlags = dir ? this.opts.dirOpenFlags : this.opts.openFlags;
        if (!method) {
          // With FUSE_NO_OPEN(DIR)_SUPPORT, ENOSYS means "no open needed": the kernel stops sending it.
          if (dir ? this.noOpendir : this.noOpen) return this.err(unique, opcode, E.ENOSYS);
          return this.replyOpen(unique, { fh: 0, flags: defFlags }, defFlags);
        }
        return this.run(unique, opcode, () => method.call(fs, ino, flags, req), (r) => this.replyOpen(unique, r, defFlags));
      }
      case Op.FUSE_READ: {
        if (!fs.read) return this.err(unique, opcode, E.ENOSYS);
        const fh = A.readU64(buf, 40);
        const offset = A.readU64(buf, 48);
        const size = buf.readUInt32LE(56);
        return this.run(unique, opcode, () => fs.read!(ino, fh, offset, size, req), (d) => this.sendData(unique, Array.isArray(d) ? d : [d], size));
      }
      case Op.FUSE_RELEASE:
      case Op.FUSE_RELEASEDIR: {
        const method = opcode === Op.FUSE_RELEASE ? fs.release : fs.releasedir;
        if (!method) return this.send(unique, 0);
        const fh = A.readU64(buf, 40);
        return this.run(unique, opcode, () => method.call(fs, ino, fh, req), () => this.send(unique, 0));
      }
      case Op.FUSE_READDIR:
      case Op.FUSE_READDIRPLUS: {
        const plus = opcode === Op.FUSE_READDIRPLUS;
        const method = plus ? fs.readdirplus : fs.readdir;
        if (!method) return this.err(unique, opcode, E.ENOSYS);
        const fh = A.readU64(buf, 40);
        const offset = A.readU64(buf, 48);
        const size = buf.readUInt32LE(56);
        return this.run(unique, opcode, () => method.call(fs, ino, fh, offset, size, req) as MaybePromise<DirEntry[]>, (ents) =>
          this.replyDir(unique, ents, size, plus));
      }
      case Op.FUSE_STATFS:
        if (!fs.statfs) {
          return this.replyStatfs(unique, { blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, bsize: 4096, namelen: 255, frsize: 4096 });
        }
        return this.run(unique, opcode, () => fs.statfs!(ino, req), (st) => this.replyStatfs(unique, st));
      case Op.FUSE_GETXATTR: {
        if (!fs.getxattr) return this.err(unique, opcode, E.ENOSYS);
        const size = buf.readUInt32LE(40);
        const name = cstr(buf, 48, len);
        return this.run(unique, opcode, () => fs.getxattr!(ino, name, req), (v) => this.replyXattr(unique, v, size));
      }
      case Op.FUSE_LISTXATTR: {
        if (!fs.listxattr) return this.err(unique, opcode, E.ENOSYS);
        const size = buf.readUInt32LE(40);
        return this.run(unique, opcode, () => fs.listxattr!(ino, req), (names) => {
          const parts: Buffer[] = [];
          for (const n of names) parts.push(n, NUL);
          this.replyXattr(unique, Buffer.concat(parts), size);
        });
      }
      case Op.FUSE_ACCESS: {
        const mask = buf.readUInt32LE(40);
        if (mask & W_OK) return this.err(unique, opcode, E.EROFS);
        if (!fs.access) return this.send(unique, 0);
        return this.run(unique, opcode, () => fs.access!(ino, mask, req), () => this.send(unique, 0));
      }
      case Op.FUSE_FLUSH:
        return this.send(unique, 0);
      case Op.FUSE_LSEEK: {
        if (!fs.lseek) return this.err(unique, opcode, E.ENOSYS);
        const fh = A.readU64(buf, 40);
        const offset = A.readU64(buf, 48);
        const whence = buf.readUInt32LE(56);
        return this.run(unique, opcode, () => fs.lseek!(ino, fh, offset, whence, req), (off) => {
          A.writeU64(this.scratch, off, A.OUT_HEADER_SIZE);
          this.send(unique, 8);
        });
      }
      case Op.FUSE_POLL: {
        const fh = A.readU64(buf, 40);
        const events = buf.readUInt32LE(60);
        const done = (rev: number): void => {
          this.scratch.writeUInt32LE(rev >>> 0, A.OUT_HEADER_SIZE);
          this.scratch.writeUInt32LE(0, A.OUT_HEADER_SIZE + 4);
          this.send(unique, 8);
        };
        if (!fs.poll) return done(DEFAULT_POLLMASK & (events || DEFAULT_POLLMASK));
        return this.run(unique, opcode, () => fs.poll!(ino, fh, events, req), done);
      }
      case Op.FUSE_DESTROY:
        this.destroyed = true;
        try {
          fs.destroy?.();
        } catch {
          /* destroy failures must not keep the kernel waiting */
        }
        return this.send(unique, 0);
      default:
        return this.err(unique, opcode, WRITE_OPS.has(opcode) ? E.EROFS : E.ENOSYS);
    }
  }

  private doInit(buf: Buffer, unique: bigint): void {
    const major = buf.readUInt32LE(40);
    const kminor = buf.readUInt32LE(44);
    const kra = buf.readUInt32LE(48);
    const kflags = buf.readUInt32LE(52);
    if (major !== A.FUSE_KERNEL_VERSION || kminor < A.FUSE_MIN_MINOR) return this.err(unique, Op.FUSE_INIT, E.EPROTO);
    const o = this.opts;
    let want = A.FUSE_ASYNC_READ | A.FUSE_BIG_WRITES | A.FUSE_ASYNC_DIO | A.FUSE_PARALLEL_DIROPS | A.FUSE_MAX_PAGES;
    if (this.fs.readdirplus && o.readdirplus !== 'off') {
      want |= A.FUSE_DO_READDIRPLUS | (o.readdirplus === 'auto' ? A.FUSE_READDIRPLUS_AUTO : 0);
    }
    if (o.cacheSymlinks) want |= A.FUSE_CACHE_SYMLINKS;
    if (!this.fs.open) want |= A.FUSE_NO_OPEN_SUPPORT;
    if (!this.fs.opendir) want |= A.FUSE_NO_OPENDIR_SUPPORT;
    const flags = (want & kflags) >>> 0;
    this.noOpen = (flags & A.FUSE_NO_OPEN_SUPPORT) !== 0;
    this.noOpendir = (flags & A.FUSE_NO_OPENDIR_SUPPORT) !== 0;
    const minor = Math.min(kminor, A.FUSE_OUR_MINOR);
    const maxReadahead = Math.min(o.maxReadahead, kra);
    const b = this.scratch;
    const p = A.OUT_HEADER_SIZE;
    b.fill(0, p, p + A.INIT_OUT_SIZE);
    b.writeUInt32LE(A.FUSE_KERNEL_VERSION, p);
    b.writeUInt32LE(minor, p + 4);
    b.writeUInt32LE(maxReadahead, p + 8);
    b.writeUInt32LE(flags, p + 12);
    b.writeUInt16LE(Math.min(o.maxBackground, 0xffff), p + 16);
    b.writeUInt16LE(Math.min(o.congestionThreshold, 0xffff), p + 18);
    b.writeUInt32LE(o.maxWrite, p + 20);
    b.writeUInt32LE(1, p + 24); // time_gran: we report nanoseconds
    b.writeUInt16LE(o.maxPages, p + 28);
    this.send(unique, A.INIT_OUT_SIZE);
    this.init = { kernelMajor: major, kernelMinor: kminor, minor, kernelFlags: kflags >>> 0, flags, maxReadahead };
    this.onInit?.(this.init);
  }

  /**
   * Takes over a connection whose INIT another process answered (failover): the kernel will not
   * send INIT again, so adopt the parameters negotiated then.
   */
  adoptInit(info: InitInfo): void {
    this.init = info;
    this.noOpen = (info.flags & A.FUSE_NO_OPEN_SUPPORT) !== 0;
    this.noOpendir = (info.flags & A.FUSE_NO_OPENDIR_SUPPORT) !== 0;
  }

  /** Call the fs; reply synchronously or when the Promise settles. `onErr` may take over an error reply. */
  private run<T>(unique: bigint, opcode: number, call: () => MaybePromise<T>, done: (v: T) => void, onErr?: (errno: number) => boolean): void {
    const fail = (e: unknown): void => {
      const errno = errnoOf(e);
      if (onErr?.(errno)) return;
      this.err(unique, opcode, errno);
    };
    let r: MaybePromise<T>;
    try {
      r = call();
    } catch (e) {
      return fail(e);
    }
    if (!isPromise(r)) {
      try {
        done(r);
      } catch (e) {
        fail(e);
      }
      return;
    }
    this.pending++;
    r.then(done, fail)
      .catch(fail)
      .finally(() => {
        this.pending--;
        this.onSettled?.();
      });
  }

  private err(unique: bigint, opcode: number, errno: number): void {
    if (this.stats) Atomics.add(this.stats, 64 + Math.min(opcode, A.MAX_OPCODE), 1n);
    const b = this.scratch;
    A.encodeOutHeader(b, A.OUT_HEADER_SIZE, errno > 0 && errno < 4096 ? errno : E.ERANGE, unique);
    this.dev.write(b.subarray(0, A.OUT_HEADER_SIZE));
  }

  /** Send the scratch buffer: header + `bodyLen` bytes already encoded after it. */
  private send(unique: bigint, bodyLen: number): void {
    const n = A.OUT_HEADER_SIZE + bodyLen;
    A.encodeOutHeader(this.scratch, n, 0, unique);
    this.dev.write(this.scratch.subarray(0, n));
  }

  /** Header + a scatter list, written with one writev (no copy of the data). */
  private sendData(unique: bigint, parts: Buffer[], max = Infinity): void {
    let total = 0;
    for (const p of parts) total += p.length;
    if (total > max) {
      // A filesystem returned more than asked: trim rather than confuse the kernel.
      const trimmed: Buffer[] = [];
      let left = max;
      for (const p of parts) {
        if (left <= 0) break;
        trimmed.push(p.length <= left ? p : p.subarray(0, left));
        left -= p.length;
      }
      parts = trimmed;
      total = max;
    }
    const hdr = Buffer.allocUnsafe(A.OUT_HEADER_SIZE);
    A.encodeOutHeader(hdr, A.OUT_HEADER_SIZE + total, 0, unique);
    this.dev.writev([hdr, ...parts]);
  }

  private replyEntry(unique: bigint, e: Entry): void {
    encodeEntry(this.scratch, A.OUT_HEADER_SIZE, e, this.opts);
    this.send(unique, A.ENTRY_OUT_SIZE);
  }

  private replyOpen(unique: bigint, r: OpenReply, defFlags: number): void {
    const b = this.scratch;
    A.writeU64(b, r.fh ?? 0, A.OUT_HEADER_SIZE);
    b.writeUInt32LE((r.flags ?? defFlags) >>> 0, A.OUT_HEADER_SIZE + 8);
    b.writeUInt32LE(0, A.OUT_HEADER_SIZE + 12);
    this.send(unique, A.OPEN_OUT_SIZE);
  }

  private replyStatfs(unique: bigint, st: StatFs): void {
    const b = this.scratch;
    const o = A.OUT_HEADER_SIZE;
    b.fill(0, o, o + A.STATFS_OUT_SIZE);
    A.writeU64(b, st.blocks, o);
    A.writeU64(b, st.bfree, o + 8);
    A.writeU64(b, st.bavail, o + 16);
    A.writeU64(b, st.files, o + 24);
    A.writeU64(b, st.ffree, o + 32);
    b.writeUInt32LE(st.bsize, o + 40);
    b.writeUInt32LE(st.namelen, o + 44);
    b.writeUInt32LE(st.frsize, o + 48);
    this.send(unique, A.STATFS_OUT_SIZE);
  }

  /** size 0 is a size probe (fuse_getxattr_out); a too-small buffer is ERANGE. */
  private replyXattr(unique: bigint, v: Buffer, size: number): void {
    if (size === 0) {
      this.scratch.writeUInt32LE(v.length, A.OUT_HEADER_SIZE);
      this.scratch.writeUInt32LE(0, A.OUT_HEADER_SIZE + 4);
      return this.send(unique, 8);
    }
    if (v.length > size) return this.err(unique, Op.FUSE_GETXATTR, E.ERANGE);
    this.sendData(unique, [v]);
  }

  private replyDir(unique: bigint, ents: DirEntry[], size: number, plus: boolean): void {
    const out = Buffer.alloc(A.OUT_HEADER_SIZE + size);
    let p = A.OUT_HEADER_SIZE;
    for (const d of ents) {
      const name = typeof d.name === 'string' ? Buffer.from(d.name) : d.name;
      const rec = (plus ? A.DIRENTPLUS_HEADER_SIZE : A.DIRENT_HEADER_SIZE) + name.length;
      const padded = (rec + 7) & ~7;
      if (p + padded > out.length) break; // the rest comes with the next READDIR at d.off
      if (plus) {
        const e = (d as DirEntryPlus).entry;
        encodeEntry(out, p, e, this.opts);
        p += A.ENTRY_OUT_SIZE;
      }
      A.writeU64(out, d.ino, p);
      A.writeU64(out, d.off, p + 8);
      out.writeUInt32LE(name.length, p + 16);
      out.writeUInt32LE(d.type >= 0o10000 ? (d.type & 0o170000) >>> 12 : d.type, p + 20);
      name.copy(out, p + 24);
      p += padded - (plus ? A.ENTRY_OUT_SIZE : 0);
    }
    A.encodeOutHeader(out, p, 0, unique);
    this.dev.write(out.subarray(0, p));
  }
}

const NUL = Buffer.from([0]);

/** A NUL-terminated name starting at `off`, copied (the request buffer is reused by the next read). */
function cstr(buf: Buffer, off: number, end: number): Buffer {
  let z = buf.indexOf(0, off);
  if (z < 0 || z > end) z = end;
  return Buffer.from(buf.subarray(off, z));
}

export function encodeAttr(b: Buffer, o: number, a: Attr): void {
  A.writeU64(b, a.ino, o);
  A.writeU64(b, a.size, o + 8);
  A.writeU64(b, a.blocks, o + 16);
  A.writeU64(b, a.atime, o + 24);
  A.writeU64(b, a.mtime, o + 32);
  A.writeU64(b, a.ctime, o + 40);
  b.writeUInt32LE(a.atimeNsec ?? 0, o + 48);
  b.writeUInt32LE(a.mtimeNsec ?? 0, o + 52);
  b.writeUInt32LE(a.ctimeNsec ?? 0, o + 56);
  b.writeUInt32LE(a.mode >>> 0, o + 60);
  b.writeUInt32LE(a.nlink >>> 0, o + 64);
  b.writeUInt32LE(a.uid >>> 0, o + 68);
  b.writeUInt32LE(a.gid >>> 0, o + 72);
  b.writeUInt32LE(a.rdev >>> 0, o + 76);
  b.writeUInt32LE(a.blksize >>> 0, o + 80);
  b.writeUInt32LE(0, o + 84);
}

export function encodeEntry(b: Buffer, o: number, e: Entry, opts: ProtocolOptions): void {
  const [es, ens] = A.splitTimeout(e.entryTimeout ?? opts.entryTimeout);
  const [as, ans] = A.splitTimeout(e.attrTimeout ?? opts.attrTimeout);
  A.writeU64(b, e.ino, o);
  A.writeU64(b, e.generation ?? 0, o + 8);
  A.writeU64(b, es, o + 16);
  A.writeU64(b, as, o + 24);
  b.writeUInt32LE(ens, o + 32);
  b.writeUInt32LE(ans, o + 36);
  encodeAttr(b, o + 40, e.attr);
}
