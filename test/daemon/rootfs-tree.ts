// A small root-filesystem-like tree for mount fidelity tests: real host binaries (sh, ls, cat and
// the shared libraries ldd names, copied with the host's merged-/usr symlinks so `chroot` works),
// /etc/os-release, a few /usr/share files, plus synthetic special cases (hardlinks, devices, fifo,
// socket, xattrs, sparse files, odd modes/owners, ns mtimes, non-UTF-8 names). And a snapshot of
// a tree that compares everything a mount must reproduce.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync, existsSync, ftruncateSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync,
  readlinkSync, realpathSync, symlinkSync, writeFileSync, writeSync, chmodSync, lchownSync, chownSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

function pseudoRandom(n: number, seed: number): Buffer {
  const b = Buffer.alloc((n + 3) & ~3);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < b.length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeUInt32LE(x >>> 0, i);
  }
  return b.subarray(0, n);
}

/** Copies host path `p` into `root` at the same place; symlinks are recreated and followed. */
function addHostPath(root: string, p: string, seen = new Set<string>()): void {
  const dir = realpathSync(dirname(p));
  const full = join(dir, basename(p));
  if (seen.has(full)) return;
  seen.add(full);
  mkdirSync(join(root, dir), { recursive: true });
  const st = lstatSync(full);
  const dst = join(root, full);
  if (st.isSymbolicLink()) {
    const target = readlinkSync(full);
    if (!existsSync(dst)) symlinkSync(target, dst);
    addHostPath(root, resolve(dir, target), seen);
  } else if (st.isFile() && !existsSync(dst)) {
    execFileSync('cp', ['-p', full, dst]);
  }
}

function lddPaths(bin: string): string[] {
  const out = spawnSync('ldd', [bin], { encoding: 'utf8' }).stdout ?? '';
  return [...out.matchAll(/(\/[^\s]+) \(0x/g)].map((m) => m[1]!);
}

/** Builds the tree in `root` (must exist, empty). Needs root for mknod/chown/trusted.* xattrs. */
export function buildRootfsTree(root: string): void {
  // The host's merged-/usr top-level symlinks (bin -> usr/bin, lib -> usr/lib, ...).
  for (const top of ['bin', 'sbin', 'lib', 'lib64']) {
    const h = `/${top}`;
    if (existsSync(h) && lstatSync(h).isSymbolicLink()) symlinkSync(readlinkSync(h), join(root, top));
  }
  const seen = new Set<string>();
  for (const bin of ['/bin/sh', '/bin/ls', '/bin/cat']) {
    addHostPath(root, bin, seen);
    for (const lib of lddPaths(realpathSync(bin))) addHostPath(root, lib, seen);
  }
  addHostPath(root, '/etc/os-release', seen);
  for (const d of ['/usr/share/base-files', '/usr/share/doc/adduser', '/usr/share/common-licenses']) {
    if (!existsSync(d)) continue;
    for (const n of readdirSync(d).slice(0, 12)) {
      const st = lstatSync(join(d, n));
      if (st.isFile() || st.isSymbolicLink()) addHostPath(root, join(d, n), seen);
    }
  }

  const s = join(root, 'srv/t');
  mkdirSync(join(s, 'data'), { recursive: true });
  writeFileSync(join(s, 'data/random-2.5M'), pseudoRandom(2_621_440 + 123, 7)); // multi-chunk, incompressible
  writeFileSync(join(s, 'data/text'), 'nydus rootfs line\n'.repeat(40_000)); // compressible
  writeFileSync(join(s, 'data/empty'), '');
  writeFileSync(join(s, 'data/one-byte'), 'x');
  // Hardlinks: three names in two directories.
  mkdirSync(join(s, 'hl'));
  writeFileSync(join(s, 'hl/a'), pseudoRandom(70_000, 3));
  linkSync(join(s, 'hl/a'), join(s, 'hl/b'));
  linkSync(join(s, 'hl/a'), join(s, 'data/c-hardlink'));
  // Symlinks.
  mkdirSync(join(s, 'ln'));
  symlinkSync('../data/text', join(s, 'ln/rel'));
  symlinkSync('/etc/os-release', join(s, 'ln/abs'));
  symlinkSync('does/not/exist', join(s, 'ln/dangling'));
  symlinkSync('x/'.repeat(150) + 'end', join(s, 'ln/long'));
  lchownSync(join(s, 'ln/rel'), 42, 43);
  // Devices, fifo, socket.
  mkdirSync(join(root, 'dev'));
  execFileSync('mknod', ['-m', '0666', join(root, 'dev/null'), 'c', '1', '3']);
  execFileSync('mknod', ['-m', '0620', join(root, 'dev/tty0'), 'c', '4', '0']);
  execFileSync('mknod', ['-m', '0660', join(root, 'dev/loop7'), 'b', '7', '7']);
  execFileSync('mknod', ['-m', '0600', join(root, 'dev/bigminor'), 'b', '259', '300000']);
  execFileSync('mkfifo', ['-m', '0640', join(s, 'fifo')]);
  execFileSync('python3', ['-c', 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])', join(s, 'sock')]);
  // Sparse: data, a 5 MiB hole, data, a trailing hole.
  const fd = openSync(join(s, 'data/sparse'), 'w');
  writeSync(fd, pseudoRandom(4096, 9), 0, 4096, 0);
  writeSync(fd, 'middle', 5 << 20);
  ftruncateSync(fd, (6 << 20) + 77);
  closeSync(fd);
  // Modes and owners.
  writeFileSync(join(s, 'setuid'), '#!/bin/sh\n');
  chmodSync(join(s, 'setuid'), 0o4755);
  writeFileSync(join(s, 'no-perms'), 'secret');
  chmodSync(join(s, 'no-perms'), 0o000);
  writeFileSync(join(s, 'owned'), 'owned by 1234:5678');
  chownSync(join(s, 'owned'), 1234, 5678);
  mkdirSync(join(s, 'sticky'));
  chmodSync(join(s, 'sticky'), 0o1777);
  mkdirSync(join(s, 'setgid-dir'));
  chownSync(join(s, 'setgid-dir'), 65534, 65534);
  chmodSync(join(s, 'setgid-dir'), 0o2775);
  writeFileSync(Buffer.concat([Buffer.from(join(s, 'name-')), Buffer.from([0xc3, 0x28, 0xfe])]), 'non-utf8 name');
  writeFileSync(join(s, 'ünïcødé ☃'), 'utf8 name');
  // Xattrs (user.* and trusted.*; binary values; on a file and a directory).
  execFileSync('setfattr', ['-n', 'user.mime', '-v', 'text/plain', join(s, 'data/text')]);
  execFileSync('setfattr', ['-n', 'user.bin', '-v', '0x00ff10', join(s, 'data/text')]);
  execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', join(s, 'sticky')]);
  execFileSync('setfattr', ['-n', 'user.empty', join(s, 'hl/a')]);
  // Nanosecond mtimes, old and in the future; directories last (adding entries changes them).
  execFileSync('touch', ['-h', '-d', '1995-03-04 05:06:07.123456789', join(s, 'data/one-byte'), join(s, 'ln/abs')]);
  execFileSync('touch', ['-d', '2100-01-01 00:00:00.000000001', join(s, 'owned')]);
  execFileSync('touch', ['-d', '2001-02-03 04:05:06.5', join(s, 'hl'), join(s, 'ln')]);
}

export interface SnapEntry {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: string;
  size?: number;
  nlink: number;
  rdev?: number;
  sha256?: string;
  target?: string;
}

/** path (relative, '.' for the root; names as latin1 so non-UTF-8 bytes survive) → entry; plus hardlink groups. */
export function snapshot(top: string): { entries: Map<string, SnapEntry>; linkGroups: string[][] } {
  const entries = new Map<string, SnapEntry>();
  const byIno = new Map<bigint, string[]>();
  const rec = (rel: Buffer): void => {
    const abs = Buffer.concat([Buffer.from(top + '/'), rel]);
    const st = lstatSync(abs, { bigint: true });
    const key = rel.length ? rel.toString('latin1') : '.';
    const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : st.isFIFO() ? 'fifo' : st.isSocket() ? 'sock' : st.isCharacterDevice() ? 'chr' : 'blk';
    const e: SnapEntry = { type, mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid), mtimeNs: String(st.mtimeNs), nlink: Number(st.nlink) };
    if (type !== 'dir') e.size = Number(st.size);
    if (type === 'chr' || type === 'blk') e.rdev = Number(st.rdev);
    if (type === 'file') {
      e.sha256 = createHash('sha256').update(readFileSync(abs)).digest('hex');
      if (st.nlink > 1n) byIno.set(st.ino, [...(byIno.get(st.ino) ?? []), key]);
    }
    if (type === 'link') e.target = readlinkSync(abs, { encoding: 'buffer' }).toString('latin1');
    entries.set(key, e);
    if (type === 'dir') {
      for (const n of readdirSync(abs, { encoding: 'buffer' })) rec(rel.length ? Buffer.concat([rel, Buffer.from('/'), n]) : n);
    }
  };
  rec(Buffer.alloc(0));
  const linkGroups = [...byIno.values()].map((g) => g.sort()).sort((a, b) => a[0]!.localeCompare(b[0]!));
  return { entries: new Map([...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))), linkGroups };
}

/** `getfattr -R -h -d -m - -e hex .` run inside `top`, as path → sorted attribute lines. */
export function xattrDump(top: string): Map<string, string[]> {
  const r = spawnSync('getfattr', ['-R', '-h', '-d', '-m', '-', '-e', 'hex', '.'], { cwd: top, encoding: 'latin1', maxBuffer: 64 << 20 });
  const out = new Map<string, string[]>();
  let cur = '';
  for (const line of (r.stdout ?? '').split('\n')) {
    if (line.startsWith('# file: ')) cur = line.slice(8);
    else if (line.trim()) out.set(cur, [...(out.get(cur) ?? []), line].sort());
  }
  return new Map([...out].sort());
}
