// In-memory LowLevelFileSystem for tests and benchmarks, built from a plain (structured-cloneable)
// description. Also a worker module: exports createFileSystem(initData, ctx).
//
// Lazy large files: { type: 'file', size: N, pattern: seed } serves patternBytes(seed, off, len)
// without storing N bytes (slices of one precomputed period buffer, returned as a scatter list).
// Slow path: { slowMs } on a file (or options.delayMs for every read) answers reads with a Promise;
// { fromMain: true } fetches the bytes through ctx.request({ op: 'read', path, offset, size }).
import { constants as C } from 'node:fs';
import { FsError } from '../../util/errors.js';
import * as E from '../errno.js';
import type { Attr, DirEntry, DirEntryPlus, Entry, LowLevelFileSystem, OpenReply, StatFs, WorkerContext } from '../filesystem.js';

interface Common {
  mode?: number; // permission bits
  uid?: number;
  gid?: number;
  mtime?: number;
  xattrs?: Record<string, string | Uint8Array>;
}
export type MemNode =
  | (Common & { type: 'dir'; entries: Record<string, MemNode> })
  | (Common & { type: 'file'; content?: string | Uint8Array; size?: number; pattern?: number; slowMs?: number; fromMain?: boolean; directIo?: boolean })
  | (Common & { type: 'symlink'; target: string })
  | { type: 'hardlink'; target: string } // path (from root, "/a/b") of an earlier file
  | (Common & { type: 'chardev' | 'blockdev'; major: number; minor: number })
  | (Common & { type: 'fifo' | 'socket' });

export interface MemFsOptions {
  entryTimeout?: number;
  attrTimeout?: number;
  /** Delay every read by this many ms (async slow path). */
  delayMs?: number;
  /** FOPEN_* flags for every open. */
  openFlags?: number;
}

export interface MemFsInit {
  tree: MemNode & { type: 'dir' };
  options?: MemFsOptions;
}

interface Inode {
  ino: number;
  path: string;
  attr: Attr;
  node: MemNode;
  data?: Buffer;
  children?: Map<string, number>; // insertion order = readdir order
  parent: number;
  xattrs: Map<string, Buffer>;
}

const PERIOD = 1048573; // prime: a pattern period that never lines up with 4 KiB blocks
const periods = new Map<number, Buffer>();

function periodFor(seed: number): Buffer {
  let p = periods.get(seed);
  if (!p) {
    p = Buffer.allocUnsafe(PERIOD);
    let x = (seed * 2654435761) >>> 0 || 1;
    for (let i = 0; i < PERIOD; i++) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      p[i] = x & 0xff;
    }
    periods.set(seed, p);
  }
  return p;
}

/** Bytes [off, off+len) of the lazy pattern file with this seed, as slices of the period buffer. */
export function patternSlices(seed: number, off: number, len: number): Buffer[] {
  const p = periodFor(seed);
  const out: Buffer[] = [];
  while (len > 0) {
    const i = off % PERIOD;
    const n = Math.min(len, PERIOD - i);
    out.push(p.subarray(i, i + n));
    off += n;
    len -= n;
  }
  return out;
}

export function patternBytes(seed: number, off: number, len: number): Buffer {
  return Buffer.concat(patternSlices(seed, off, len));
}

const TYPE_BITS: Record<string, number> = {
  dir: C.S_IFDIR, file: C.S_IFREG, symlink: C.S_IFLNK, chardev: C.S_IFCHR, blockdev: C.S_IFBLK, fifo: C.S_IFIFO, socket: C.S_IFSOCK,
};

function toBuf(v: string | Uint8Array): Buffer {
  return typeof v === 'string' ? Buffer.from(v) : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

function enoent(what: string): never {
  throw new FsError(E.ENOENT, `${what}: no such entry`);
}

export class MemFs implements LowLevelFileSystem {
  readonly inodes: Inode[] = [];
  private readonly opts: MemFsOptions;

  constructor(init: MemFsInit, private readonly ctx?: WorkerContext) {
    this.opts = init.options ?? {};
    this.inodes.length = 1; // ino 0 is unused; root is FUSE_ROOT_ID = 1
    this.add('/', init.tree, 1);
  }

  private add(path: string, node: MemNode, parent: number): number {
    if (node.type === 'hardlink') {
      const target = this.resolve(node.target);
      target.attr.nlink++;
      return target.ino;
    }
    const ino = this.inodes.length;
    const mode = TYPE_BITS[node.type]! | (node.mode ?? (node.type === 'dir' ? 0o755 : node.type === 'symlink' ? 0o777 : 0o644));
    let data: Buffer | undefined;
    let size = 0;
    let rdev = 0;
    if (node.type === 'file') {
      if (node.content !== undefined) data = toBuf(node.content);
      size = data ? data.length : (node.size ?? 0);
    } else if (node.type === 'symlink') {
      data = Buffer.from(node.target);
      size = data.length;
    } else if (node.type === 'chardev' || node.type === 'blockdev') {
      // Kernel new_encode_dev: what fuse_attr.rdev carries.
      rdev = (node.minor & 0xff) | (node.major << 8) | ((node.minor & ~0xff) << 12);
    } else if (node.type === 'dir') {
      size = 4096;
    }
    const t = node.mtime ?? 1_700_000_000;
    const attr: Attr = {
      // Symlinks are "fast" (target in the inode, no data block), like ext4 for short targets.
      ino, size, blocks: node.type === 'symlink' ? 0 : Math.ceil(size / 4096) * 8, atime: t, mtime: t, ctime: t,
      mode, nlink: node.type === 'dir' ? 2 : 1, uid: node.uid ?? 0, gid: node.gid ?? 0, rdev, blksize: 4096,
    };
    const xattrs = new Map<string, Buffer>();
    for (const [k, v] of Object.entries(node.xattrs ?? {})) xattrs.set(k, toBuf(v));
    const inode: Inode = { ino, path, attr, node, parent, xattrs };
    if (data) inode.data = data;
    this.inodes.push(inode);
    if (node.type === 'dir') {
      inode.children = new Map();
      for (const [name, child] of Object.entries(node.entries)) {
        const cino = this.add(path === '/' ? `/${name}` : `${path}/${name}`, child, ino);
        inode.children.set(name, cino);
        if (child.type === 'dir') attr.nlink++;
      }
    }
    return ino;
  }

  /** Inode for an absolute path of the description. */
  resolve(path: string): Inode {
    let cur = this.inodes[1]!;
    for (const part of path.split('/').filter(Boolean)) {
      const c = cur.children?.get(part);
      if (c === undefined) enoent(path);
      cur = this.inodes[c]!;
    }
    return cur;
  }

  private get(ino: number): Inode {
    return this.inodes[ino] ?? enoent(`inode ${ino}`);
  }

  private entry(i: Inode): Entry {
    const e: Entry = { ino: i.ino, attr: i.attr };
    if (this.opts.entryTimeout !== undefined) e.entryTimeout = this.opts.entryTimeout;
    if (this.opts.attrTimeout !== undefined) e.attrTimeout = this.opts.attrTimeout;
    return e;
  }

  lookup(parent: number, name: Buffer): Entry {
    const p = this.get(parent);
    if (!p.children) throw new FsError(E.ENOTDIR, 'not a directory');
    const c = p.children.get(name.toString());
    if (c === undefined) enoent(name.toString());
    return this.entry(this.get(c));
  }

  getattr(ino: number): { attr: Attr; attrTimeout?: number } {
    const i = this.get(ino);
    return this.opts.attrTimeout !== undefined ? { attr: i.attr, attrTimeout: this.opts.attrTimeout } : { attr: i.attr };
  }

  readlink(ino: number): Buffer {
    const i = this.get(ino);
    if (i.node.type !== 'symlink') throw new FsError(E.EINVAL, 'not a symlink');
    return i.data!;
  }

  open(ino: number): OpenReply {
    const i = this.get(ino);
    if (i.node.type === 'dir') throw new FsError(E.EISDIR, 'is a directory');
    const flags = (i.node.type === 'file' && i.node.directIo ? 1 /* FOPEN_DIRECT_IO */ : 0) | (this.opts.openFlags ?? 2 /* FOPEN_KEEP_CACHE */);
    return { fh: ino, flags };
  }

  read(ino: number, _fh: number, offset: number, size: number): Buffer[] | Promise<Buffer[]> {
    const i = this.get(ino);
    const node = i.node;
    if (node.type !== 'file') throw new FsError(E.EISDIR, 'not a file');
    const end = Math.min(i.attr.size, offset + size);
    const len = Math.max(0, end - offset);
    const serve = (): Buffer[] => (i.data ? [i.data.subarray(offset, offset + len)] : patternSlices(node.pattern ?? ino, offset, len));
    if (node.fromMain && this.ctx) {
      return this.ctx.request<Uint8Array>({ op: 'read', path: i.path, offset, size: len }).then((u) => [toBuf(u)]);
    }
    const delay = node.slowMs ?? this.opts.delayMs;
    if (delay) return new Promise((resolve) => setTimeout(() => resolve(serve()), delay));
    return serve();
  }

  opendir(ino: number): OpenReply {
    if (!this.get(ino).children) throw new FsError(E.ENOTDIR, 'not a directory');
    return { fh: ino, flags: 0 };
  }

  private listing(ino: number): Array<{ name: string; inode: Inode }> {
    const d = this.get(ino);
    if (!d.children) throw new FsError(E.ENOTDIR, 'not a directory');
    const out = [{ name: '.', inode: d }, { name: '..', inode: this.get(d.parent) }];
    for (const [name, c] of d.children) out.push({ name, inode: this.get(c) });
    return out;
  }

  readdir(ino: number, _fh: number, offset: number, size: number): DirEntry[] {
    // The dispatcher stops at `size` bytes; a dirent is ≥ 32 bytes, so size/32 entries is enough.
    return this.listing(ino).slice(offset, offset + Math.ceil(size / 32)).map((e, k) => ({
      ino: e.inode.ino, name: e.name, type: e.inode.attr.mode, off: offset + k + 1,
    }));
  }

  readdirplus(ino: number, _fh: number, offset: number, size: number): DirEntryPlus[] {
    return this.listing(ino).slice(offset, offset + Math.ceil(size / 160)).map((e, k) => ({
      ino: e.inode.ino, name: e.name, type: e.inode.attr.mode, off: offset + k + 1, entry: this.entry(e.inode),
    }));
  }

  statfs(): StatFs {
    let blocks = 0;
    for (const i of this.inodes) if (i) blocks += i.attr.blocks / 8;
    return { blocks, bfree: 0, bavail: 0, files: this.inodes.length - 1, ffree: 0, bsize: 4096, namelen: 255, frsize: 4096 };
  }

  getxattr(ino: number, name: Buffer): Buffer {
    const v = this.get(ino).xattrs.get(name.toString());
    if (!v) throw new FsError(E.ENODATA, 'no such xattr');
    return v;
  }

  listxattr(ino: number): Buffer[] {
    return [...this.get(ino).xattrs.keys()].map((k) => Buffer.from(k));
  }

  lseek(ino: number, _fh: number, offset: number, whence: number): number {
    const size = this.get(ino).attr.size;
    if (offset >= size) throw new FsError(E.ENXIO, 'past end of file');
    return whence === 3 /* SEEK_DATA */ ? offset : size; // no holes: data everywhere, hole at EOF
  }
}

/** Worker module entry (see FileSystemModule). */
export function createFileSystem(initData: unknown, ctx: WorkerContext): LowLevelFileSystem {
  return new MemFs(initData as MemFsInit, ctx);
}
