// Generated source trees and tree comparison for the distribution tests and bench.
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Deterministic bytes (sha256 counter stream): incompressible, reproducible between runs. */
export function pseudoRandom(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let off = 0, i = 0; off < size; i++) {
    const h = createHash('sha256').update(`${seed}:${i}`).digest();
    off += h.copy(out, off);
  }
  return out;
}

/** Compressible text of about `size` bytes. */
function text(seed: string, size: number): Buffer {
  const lines: string[] = [];
  let n = 0;
  for (let i = 0; n < size; i++) {
    const l = `${seed} line ${i}: the quick brown fox jumps over the lazy dog ${i % 97}\n`;
    lines.push(l);
    n += l.length;
  }
  return Buffer.from(lines.join('')).subarray(0, size);
}

/**
 * A rootfs-like tree of about `mib` MiB: random binaries, text, many small files, a symlink, a
 * hardlink, an empty file, odd modes/owners and fixed mtimes (so metadata comparisons mean something).
 */
export function makeTree(root: string, seed: string, mib: number): void {
  const w = (rel: string, data: Buffer, mode = 0o644): void => {
    const p = join(root, rel);
    writeFileSync(p, data);
    chmodSync(p, mode);
  };
  for (const d of ['bin', 'etc/conf.d', 'usr/lib/deep/er/still', 'var/empty', 'small']) mkdirSync(join(root, d), { recursive: true });
  const big = Math.max(1, Math.floor(mib / 2));
  for (let i = 0; i < big; i++) w(`bin/tool${i}`, pseudoRandom(`${seed}-bin${i}`, 1 << 20), 0o755);
  w('etc/conf.d/app.conf', text(seed, 400 * 1024));
  w('etc/hosts', Buffer.from('127.0.0.1 localhost\n'));
  w('etc/shadow', Buffer.from('root:*:19000:0:99999:7:::\n'), 0o640);
  chownSync(join(root, 'etc/shadow'), 0, 42);
  w('usr/lib/deep/er/still/lib.so', pseudoRandom(`${seed}-lib`, 300 * 1024 + 123), 0o755);
  w('usr/lib/owned', Buffer.from('owned by 1000\n'), 0o600);
  chownSync(join(root, 'usr/lib/owned'), 1000, 1000);
  w('empty', Buffer.alloc(0));
  for (let i = 0; i < 40; i++) w(`small/f${String(i).padStart(2, '0')}`, pseudoRandom(`${seed}-s${i}`, 1000 + i * 97));
  w('last.bin', pseudoRandom(`${seed}-last`, 512 * 1024 + 7));
  symlinkSync('../bin/tool0', join(root, 'usr/tool-link'));
  linkSync(join(root, 'etc/hosts'), join(root, 'etc/hosts.hardlink'));
  const t = new Date('2023-04-05T06:07:08Z');
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      if (!e.isSymbolicLink()) utimesSync(p, t, t);
    }
  };
  walk(root);
  utimesSync(root, t, t);
}

export interface Entry {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size?: number;
  nlink?: number;
  mtime?: number;
  target?: string;
  sha256?: string;
}

/** Path -> metadata + content digest, for comparing a mount with its source. */
export function snapshot(root: string): Map<string, Entry> {
  const out = new Map<string, Entry>();
  const walk = (rel: string): void => {
    const p = join(root, rel);
    const st = lstatSync(p);
    const e: Entry = { type: st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other', mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
    if (st.isFile()) {
      e.size = st.size;
      e.nlink = st.nlink;
      e.mtime = Math.floor(st.mtimeMs / 1000);
      e.sha256 = createHash('sha256').update(readFileSync(p)).digest('hex');
    } else if (st.isSymbolicLink()) {
      e.target = readlinkSync(p);
    } else if (st.isDirectory()) {
      e.mtime = Math.floor(st.mtimeMs / 1000);
    }
    out.set(rel || '.', e);
    if (st.isDirectory()) for (const n of readdirSync(p).sort()) walk(rel ? `${rel}/${n}` : n);
  };
  walk('');
  return out;
}

/** Every regular file (relative paths), largest first. */
export function filesOf(snap: Map<string, Entry>): string[] {
  return [...snap].filter(([, e]) => e.type === 'file').sort((a, b) => (b[1].size ?? 0) - (a[1].size ?? 0)).map(([p]) => p);
}

export function treeBytes(snap: Map<string, Entry>): number {
  let n = 0;
  for (const e of snap.values()) n += e.size ?? 0;
  return n;
}
