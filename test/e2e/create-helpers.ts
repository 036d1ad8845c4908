// Helpers for the `nydus-image create` e2e tests: a source tree with every file type, the CLI
// runner, and a reader that walks a built image (bootstrap + blobs) back into comparable records.
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, symlinkSync, linkSync, utimesSync, writeFileSync, ftruncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { openBootstrap } from '../../src/rafs/index.js';
import type { RafsSuper } from '../../src/rafs/types.js';
import { BlobChunkFlags } from '../../src/format/constants.js';
import { decompress } from '../../src/format/compress.js';
import { digest } from '../../src/format/digest.js';
import { BIN, REPO_ROOT } from '../helpers/paths.js';
import { pattern } from '../helpers/data.js';

const require = createRequire(import.meta.url);
const xattr = require('@napi-rs/xattr') as { listAttributesSync(p: string): string[]; getAttributeSync(p: string, n: string): Buffer | null; setAttributeSync(p: string, n: string, v: Uint8Array | string): void };

export const IS_ROOT = process.getuid?.() === 0;

export interface Entry {
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  mtimeNsec: number;
  size: number;
  rdev: number;
  nlink: number;
  symlink?: string;
  /** sha256-free check: the file bytes themselves. */
  data?: Buffer;
  xattrs: string[];
  ino: number;
}

export function runCli(args: string[], input?: Buffer | string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN('nydus-image'), ...args], { cwd: REPO_ROOT, input, maxBuffer: 1 << 28 });
  return { code: r.status ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}


/** A source directory with every file type RAFS stores. */
export function makeSourceTree(dir: string): void {
  mkdirSync(join(dir, 'dir/sub/deeper'), { recursive: true });
  mkdirSync(join(dir, 'empty-dir'));
  writeFileSync(join(dir, 'empty'), '');
  writeFileSync(join(dir, 'one'), 'x');
  writeFileSync(join(dir, 'dir/exact-4k'), pattern(4096, 1));
  writeFileSync(join(dir, 'dir/sub/medium'), pattern(1_500_000, 2));
  writeFileSync(join(dir, 'dir/sub/deeper/text'), 'hello nydus\n'.repeat(5000));
  // Sparse: holes are ordinary zero chunks.
  const fd = openSync(join(dir, 'sparse'), 'w');
  writeSync(fd, 'head', 0);
  writeSync(fd, 'tail', 3 * 1024 * 1024);
  ftruncateSync(fd, 3 * 1024 * 1024 + 10);
  closeSync(fd);
  writeFileSync(join(dir, 'hl-a'), pattern(10000, 3));
  linkSync(join(dir, 'hl-a'), join(dir, 'dir/hl-b'));
  symlinkSync('t/'.repeat(200) + 'target', join(dir, 'long-symlink'));
  symlinkSync('one', join(dir, 'dir/short-symlink'));
  writeFileSync(Buffer.concat([Buffer.from(join(dir, 'raw-')), Buffer.from([0xc3, 0x28, 0xff])]), 'non-utf8 name');
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  execFileSync('python3', ['-c', 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])', join(dir, 'sock')]);
  if (IS_ROOT) {
    execFileSync('mknod', [join(dir, 'chr'), 'c', '1', '7']);
    execFileSync('mknod', [join(dir, 'blk'), 'b', '7', '200']);
  }
  try {
    xattr.setAttributeSync(join(dir, 'one'), 'user.mime', 'text/plain');
    xattr.setAttributeSync(join(dir, 'dir'), 'user.dir', Buffer.from([0, 1, 2, 255]));
    if (IS_ROOT) xattr.setAttributeSync(join(dir, 'hl-a'), 'trusted.t', 'v');
  } catch {
    /* xattrs unsupported here: the comparison still holds */
  }
  utimesSync(join(dir, 'one'), 1_600_000_000.123456, 1_600_000_000.123456);
  // Times a 32-bit or unsigned field would mangle: after 2106 (>= 2^32 s) and before 1970.
  utimesSync(join(dir, 'dir/exact-4k'), 2 ** 32 + 17, 2 ** 32 + 17.5);
  utimesSync(join(dir, 'empty'), -31_536_000, -31_536_000 + 0.25);
}

const S_IFMT = 0o170000;
const isReg = (m: number): boolean => (m & S_IFMT) === 0o100000;
const isDir = (m: number): boolean => (m & S_IFMT) === 0o040000;
const isLnk = (m: number): boolean => (m & S_IFMT) === 0o120000;
const isDev = (m: number): boolean => (m & S_IFMT) === 0o020000 || (m & S_IFMT) === 0o060000;
const ALLOWED = (n: string): boolean => /^(user\.|security\.|trusted\.)/.test(n) || n === 'system.posix_acl_access' || n === 'system.posix_acl_default';

/** Records of a directory on disk, keyed by path (latin1 of the raw bytes; root is '/'). */
export function describeDir(root: string): Map<string, Entry> {
  const out = new Map<string, Entry>();
  const inoOf = new Map<string, number>();
  const visit = (p: Buffer, key: string): void => {
    const st = lstatSync(p, { bigint: true });
    const mode = Number(st.mode);
    const s = p.toString('utf8');
    const utf8ok = Buffer.from(s).equals(p);
    const e: Entry = {
      mode,
      uid: Number(st.uid),
      gid: Number(st.gid),
      mtime: Number(st.mtimeNs / 1_000_000_000n),
      mtimeNsec: Number(st.mtimeNs % 1_000_000_000n),
      size: isReg(mode) ? Number(st.size) : isLnk(mode) ? Number(st.size) : 0,
      rdev: isDev(mode) ? Number(st.rdev) : 0,
      // Directories too: 2 + subdirectories on the (ext4/tmpfs) source, as the writers derive it.
      nlink: isReg(mode) || isDir(mode) ? Number(st.nlink) : 1,
      xattrs: utf8ok ? xattr.listAttributesSync(s).filter(ALLOWED).sort().map((n) => `${n}=${xattr.getAttributeSync(s, n)!.toString('hex')}`) : [],
      ino: 0,
    };
    const k = `${st.dev}:${st.ino}`;
    if (!inoOf.has(k)) inoOf.set(k, inoOf.size + 1);
    e.ino = inoOf.get(k)!;
    if (isReg(mode)) e.data = readFileSync(p);
    if (isLnk(mode)) e.symlink = readlinkSync(p, { encoding: 'buffer' }).toString('latin1');
    out.set(key, e);
    if (isDir(mode)) for (const n of readdirSync(p, { encoding: 'buffer' })) visit(Buffer.concat([p, Buffer.from('/'), n]), `${key === '/' ? '' : key}/${n.toString('latin1')}`);
  };
  visit(Buffer.from(root), '/');
  return out;
}

/** Reads a built image back: metadata from the bootstrap, file data from the blobs (by blob id). */
export function describeImage(bootstrap: Uint8Array, blobFile: (blobId: string, index: number) => string): { entries: Map<string, Entry>; sb: RafsSuper } {
  const sb = openBootstrap(bootstrap, 'test bootstrap');
  sb.validate();
  const blobs = new Map<number, Buffer>();
  const blobData = (i: number): Buffer => {
    let b = blobs.get(i);
    if (!b) {
      b = readFileSync(blobFile(sb.blobs[i]!.blobId, i));
      blobs.set(i, b);
    }
    return b;
  };
  const out = new Map<string, Entry>();
  const inoOf = new Map<number, number>();
  const visit = (ino: number, key: string): void => {
    const n = sb.getInode(ino);
    if (!inoOf.has(n.ino)) inoOf.set(n.ino, inoOf.size + 1);
    const e: Entry = {
      mode: n.mode,
      uid: n.uid,
      gid: n.gid,
      mtime: n.mtime,
      mtimeNsec: n.mtimeNsec,
      size: isDir(n.mode) ? 0 : n.size,
      rdev: isDev(n.mode) ? n.rdev : 0,
      nlink: n.nlink,
      xattrs: sb.listXattrs(ino).map((x) => Buffer.from(x).toString()).sort().map((x) => `${x}=${Buffer.from(sb.getXattr(ino, Buffer.from(x))!).toString('hex')}`),
      ino: inoOf.get(n.ino)!,
    };
    if (isLnk(n.mode)) e.symlink = Buffer.from(sb.readlink(ino)).toString('latin1');
    if (isReg(n.mode)) {
      const parts: Buffer[] = [];
      for (const c of sb.fileChunks(ino)) {
        const raw = blobData(c.blobIndex).subarray(c.compressedOffset, c.compressedOffset + c.compressedSize);
        const plain = c.flags & BlobChunkFlags.COMPRESSED ? Buffer.from(decompress(raw, sb.meta.compressor, c.uncompressedSize)) : Buffer.from(raw);
        if (!Buffer.from(digest(plain, sb.meta.digester)).equals(Buffer.from(c.digest))) throw new Error(`${key}: chunk digest mismatch`);
        parts.push(plain);
      }
      e.data = Buffer.concat(parts);
    }
    out.set(key, e);
    if (isDir(n.mode)) {
      sb.readdir(ino, 0, (d) => {
        visit(d.ino, `${key === '/' ? '' : key}/${Buffer.from(d.name).toString('latin1')}`);
        return true;
      });
    }
  };
  visit(sb.rootIno, '/');
  return { entries: out, sb };
}

/** Fields compared between a source and its image; `root` mtime and dir sizes are writer-defined. */
export function comparable(m: Map<string, Entry>, opts: { uidGid: boolean } = { uidGid: true }): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, e] of m) {
    o[k] = {
      mode: e.mode.toString(8),
      ...(opts.uidGid ? { uid: e.uid, gid: e.gid } : {}),
      ...(k === '/' ? {} : { mtime: e.mtime, mtimeNsec: e.mtimeNsec }),
      size: e.size,
      rdev: e.rdev,
      nlink: e.nlink,
      symlink: e.symlink,
      data: e.data === undefined ? undefined : `${e.data.length}:${digest(e.data, 'sha256') && Buffer.from(digest(e.data, 'sha256')).toString('hex')}`,
      xattrs: e.xattrs,
    };
  }
  return o;
}

/** Groups of paths that share an inode (hardlinks), as sorted lists. */
export function linkGroups(m: Map<string, Entry>): string[][] {
  const g = new Map<number, string[]>();
  for (const [k, e] of m) if (isReg(e.mode)) g.set(e.ino, [...(g.get(e.ino) ?? []), k]);
  return [...g.values()].filter((x) => x.length > 1).map((x) => x.sort()).sort();
}
