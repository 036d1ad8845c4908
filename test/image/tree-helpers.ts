// A source tree holding every file type RAFS/EROFS stores, built for the image acceptance tests,
// and a describer/comparer of a directory on disk (source, extracted tar, or kernel mount).
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, linkSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, symlinkSync, lutimesSync, writeFileSync, writeSync, chownSync, lchownSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { BIN, REPO_ROOT } from '../helpers/paths.js';

export const IS_ROOT = process.getuid?.() === 0;

export function cli(args: string[], input?: Buffer): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN('nydus-image'), ...args], { cwd: REPO_ROOT, input, maxBuffer: 1 << 28, timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26 });
}

import { pattern } from '../helpers/data.js';
export { pattern };

const bjoin = (dir: string, name: Buffer): Buffer => Buffer.concat([Buffer.from(dir), Buffer.from('/'), name]);

export interface TreeOptions {
  /** Also create the big parts (a 300+ entry directory, names with every byte, 2.5 MiB file). */
  full: boolean;
}

/**
 * Every file type: regular (empty, one byte, sparse, multi-chunk), a large directory, symlinks
 * (one with a 4000-byte target), hardlinks, char/block devices, fifo, socket, user./trusted./
 * security. xattrs, names with bytes 0x01..0xff, chown'ed owners and fixed mtimes (set last, so
 * directory mtimes are not disturbed by later creations).
 */
export function makeFullTree(dir: string, opts: TreeOptions = { full: true }): void {
  mkdirSync(join(dir, 'dir/sub'), { recursive: true });
  mkdirSync(join(dir, 'empty-dir'));
  writeFileSync(join(dir, 'empty'), '');
  writeFileSync(join(dir, 'one'), 'x');
  writeFileSync(join(dir, 'dir/exact-4k'), pattern(4096, 1));
  writeFileSync(join(dir, 'dir/sub/multi'), pattern(opts.full ? 2_500_000 : 150_000, 2));
  writeFileSync(join(dir, 'dir/text'), 'hello nydus\n'.repeat(3000));
  const fd = openSync(join(dir, 'sparse'), 'w');
  writeSync(fd, 'head', 0);
  writeSync(fd, 'tail', opts.full ? 2 * 1024 * 1024 + 5000 : 70_000);
  ftruncateSync(fd, opts.full ? 2 * 1024 * 1024 + 9000 : 80_000);
  closeSync(fd);
  writeFileSync(join(dir, 'hl-a'), pattern(10000, 3));
  linkSync(join(dir, 'hl-a'), join(dir, 'dir/hl-b'));
  linkSync(join(dir, 'hl-a'), join(dir, 'dir/sub/hl-c'));
  symlinkSync('a/'.repeat(1998) + 'zz', join(dir, 'long-symlink'));
  symlinkSync('../one', join(dir, 'dir/short-symlink'));
  symlinkSync('dir', join(dir, 'dir-link'));
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  execFileSync('python3', ['-c', 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.close()', join(dir, 'sock')]);
  if (IS_ROOT) {
    execFileSync('mknod', [join(dir, 'chr'), 'c', '1', '7']);
    execFileSync('mknod', [join(dir, 'blk'), 'b', '259', '70000']);
  }
  if (opts.full) {
    mkdirSync(join(dir, 'big'));
    for (let i = 0; i < 320; i++) writeFileSync(join(dir, 'big', `entry-${String(i).padStart(4, '0')}-${'n'.repeat(i % 40)}`), String(i));
    mkdirSync(join(dir, 'bytes'));
    // One name per byte value (except '/' and a lone '.'), plus long names spanning the ranges.
    for (let b = 1; b < 256; b++) if (b !== 0x2f && b !== 0x2e) writeFileSync(bjoin(join(dir, 'bytes'), Buffer.from([b])), '');
    for (let lo = 1; lo < 256; lo += 64) {
      const name = Buffer.from([...Array(64).keys()].map((i) => lo + i).filter((b) => b < 256 && b !== 0x2f));
      writeFileSync(bjoin(join(dir, 'bytes'), Buffer.concat([Buffer.from('r-'), name])), name);
    }
  }
  // xattrs in the three namespaces an image carries; a binary value and a large one.
  const setx = (p: string, n: string, v: string): void => void execFileSync('setfattr', ['-n', n, '-v', v, p]);
  setx(join(dir, 'one'), 'user.mime', 'text/plain');
  setx(join(dir, 'dir'), 'user.bin', '0x000102ff');
  setx(join(dir, 'dir'), 'user.big', `0x${'ab'.repeat(600)}`);
  if (IS_ROOT) {
    setx(join(dir, 'hl-a'), 'trusted.t', 'trusted-value');
    setx(join(dir, 'empty'), 'security.s', 'sec');
    chownSync(join(dir, 'one'), 1234, 5678);
    chownSync(join(dir, 'dir/sub'), 4321, 8765);
    lchownSync(join(dir, 'dir/short-symlink'), 99, 98);
    chownSync(join(dir, 'hl-a'), 65534, 65533);
  }
  // mtimes last, deepest first (creating entries changes the parent's mtime).
  const walk = (p: Buffer, depth: number, out: Array<[Buffer, number]>): void => {
    out.push([p, depth]);
    if (lstatSync(p).isDirectory()) for (const n of readdirSync(p, { encoding: 'buffer' })) walk(Buffer.concat([p, Buffer.from('/'), n]), depth + 1, out);
  };
  const all: Array<[Buffer, number]> = [];
  walk(Buffer.from(dir), 0, all);
  all.sort((a, b) => b[1] - a[1]);
  let t = 1_500_000_000;
  for (const [p, depth] of all) {
    if (depth === 0) continue;
    t += 3607;
    lutimesSync(p, t, t + 0.25);
  }
  // Times a 32-bit or unsigned field would mangle: after 2106 (>= 2^32 s) and before 1970.
  lutimesSync(join(dir, 'one'), 2 ** 32 + 17, 2 ** 32 + 17.5);
  lutimesSync(join(dir, 'empty'), -31_536_000, -31_536_000 + 0.25);
}

export interface Rec {
  type: string;
  mode: string;
  uid: number;
  gid: number;
  mtime: number;
  nlink: number;
  size: number;
  rdev?: string;
  target?: string;
  md5?: string;
  xattrs?: Record<string, string>;
}

const TYPES: Record<number, string> = { 0o100000: 'file', 0o040000: 'dir', 0o120000: 'symlink', 0o020000: 'char', 0o060000: 'block', 0o010000: 'fifo', 0o140000: 'socket' };

/** Every xattr of every path, via getfattr (names are raw bytes, so one dump of the whole tree). */
function xattrsOf(root: string): Map<string, Record<string, string>> {
  const r = spawnSync('getfattr', ['-R', '-P', '-d', '-m', '-', '-e', 'hex', '--absolute-names', root], { maxBuffer: 1 << 26 });
  const out = new Map<string, Record<string, string>>();
  let cur: Record<string, string> | undefined;
  for (const line of r.stdout.toString('latin1').split('\n')) {
    if (line.startsWith('# file: ')) {
      const p = line.slice(8);
      const rel = p === root ? '/' : p.slice(root.length);
      cur = {};
      out.set(rel, cur);
    } else if (cur && line.includes('=')) {
      const i = line.indexOf('=');
      const name = line.slice(0, i);
      // security.selinux etc. of the host filesystem are not part of the image.
      if (/^(user|trusted|security)\./.test(name) && name !== 'security.selinux') cur[name] = line.slice(i + 1);
    }
  }
  return out;
}

/**
 * Records of every entry under `root` keyed by latin1 path ('/' is the root). `mtime` in whole
 * seconds (tar precision); the root's mtime and directory sizes are left out (writer-defined).
 */
export function describe(root: string, opts: { xattrs?: boolean; dirNlink?: boolean } = {}): Map<string, Rec> {
  const out = new Map<string, Rec>();
  const xs = opts.xattrs === false ? new Map() : xattrsOf(root);
  const visit = (p: Buffer, key: string): void => {
    const st = lstatSync(p);
    const type = TYPES[st.mode & 0o170000] ?? 'unknown';
    const r: Rec = {
      type,
      mode: (st.mode & 0o7777).toString(8),
      uid: st.uid,
      gid: st.gid,
      mtime: key === '/' ? 0 : Math.floor(st.mtimeMs / 1000),
      nlink: type === 'dir' && !opts.dirNlink ? 0 : st.nlink,
      size: type === 'dir' ? 0 : st.size,
    };
    if (type === 'char' || type === 'block') r.rdev = `${Math.floor(st.rdev / 256) & 0xfff}:${(st.rdev & 0xff) | ((st.rdev >>> 12) & ~0xff)}`;
    if (type === 'symlink') r.target = readlinkSync(p, { encoding: 'buffer' }).toString('latin1');
    if (type === 'file') r.md5 = createHash('md5').update(readFileSync(p)).digest('hex');
    const x = xs.get(key);
    if (x && Object.keys(x).length) r.xattrs = x;
    out.set(key, r);
    if (type === 'dir') for (const n of readdirSync(p, { encoding: 'buffer' }).sort(Buffer.compare)) visit(Buffer.concat([p, Buffer.from('/'), n]), `${key === '/' ? '' : key}/${n.toString('latin1')}`);
  };
  visit(Buffer.from(root), '/');
  return out;
}

/** Paths that share an inode, as sorted groups. */
export function hardlinkGroups(root: string): string[][] {
  const g = new Map<number, string[]>();
  const visit = (p: Buffer, key: string): void => {
    const st = lstatSync(p);
    if (st.isDirectory()) for (const n of readdirSync(p, { encoding: 'buffer' })) visit(Buffer.concat([p, Buffer.from('/'), n]), `${key}/${n.toString('latin1')}`);
    else if (st.isFile() && st.nlink > 1) g.set(st.ino, [...(g.get(st.ino) ?? []), key]);
  };
  visit(Buffer.from(root), '');
  return [...g.values()].map((x) => x.sort()).sort();
}

/** Sorted plain object of a description (assert.deepEqual shows the differing path). */
export function asObject(m: Map<string, Rec>, drop: (k: string, r: Rec) => boolean = () => false): Record<string, Rec> {
  const o: Record<string, Rec> = {};
  for (const [k, r] of [...m].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) if (!drop(k, r)) o[k] = r;
  return o;
}
