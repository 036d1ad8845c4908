// Test helpers: mount memfs under a fresh tmp dir, always unmount; build an on-disk reference copy
// of a memfs description so command-line tools can be compared against a real filesystem.
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FuseSession, type SessionOptions } from '../session.js';
import { withTimeout } from '../mount.js';
import { patternBytes, type MemFsInit, type MemNode } from './memfs.js';

export const MEMFS_MODULE = new URL('./memfs.js', import.meta.url).href;

export interface Mounted {
  session: FuseSession;
  mnt: string;
  dir: string;
}

/** Mounts memfs(init) at <fresh tmp>/mnt, runs fn, then unmounts (bounded) and removes the tmp dir. */
export async function withMemfsMount<T>(init: MemFsInit, opts: Partial<SessionOptions>, fn: (m: Mounted) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(join(tmpdir(), 'nydus-fuse-'));
  const mnt = join(dir, 'mnt');
  fs.mkdirSync(mnt);
  const session = await FuseSession.mount(mnt, { fsModule: MEMFS_MODULE, initData: init, workers: 2, ...opts });
  try {
    return await fn({ session, mnt: session.mountpoint, dir });
  } finally {
    await withTimeout(session.unmount(), 10_000, 'unmount').catch(() => session.unmountSync());
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command without blocking the event loop (our own server may need it). */
export function run(cmd: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: opts.cwd, timeout: opts.timeoutMs ?? 30_000, maxBuffer: 64 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export function sh(script: string, cwd?: string): Promise<RunResult> {
  return run('bash', ['-c', script], cwd !== undefined ? { cwd } : {});
}

/** Writes the description to `root` as real files (as root: chown, mknod, xattrs, times). */
export function materialize(root: string, tree: MemNode & { type: 'dir' }): void {
  const links: Array<[string, string]> = [];
  const dirs: Array<[string, MemNode]> = [];
  const walk = (path: string, node: MemNode, ino: { n: number }): void => {
    ino.n++;
    switch (node.type) {
      case 'dir':
        if (path !== root) fs.mkdirSync(path);
        for (const [name, child] of Object.entries(node.entries)) walk(join(path, name), child, ino);
        dirs.push([path, node]);
        break;
      case 'file':
        fs.writeFileSync(path, node.content !== undefined ? node.content : patternBytes(node.pattern ?? ino.n, 0, node.size ?? 0));
        break;
      case 'symlink':
        fs.symlinkSync(node.target, path);
        break;
      case 'hardlink':
        ino.n--; // shares its target's inode number in memfs
        links.push([join(root, node.target), path]);
        fs.linkSync(join(root, node.target), path);
        return;
      case 'chardev':
      case 'blockdev':
        spawnSync('mknod', [path, node.type === 'chardev' ? 'c' : 'b', String(node.major), String(node.minor)]);
        break;
      case 'fifo':
        spawnSync('mkfifo', [path]);
        break;
      case 'socket':
        throw new Error('materialize: sockets unsupported');
    }
    if (node.type !== 'dir') finish(path, node);
  };
  const finish = (path: string, node: MemNode): void => {
    if (node.type === 'hardlink') return;
    for (const [k, v] of Object.entries(node.xattrs ?? {})) {
      spawnSync('setfattr', ['-n', k, '-v', typeof v === 'string' ? v : `0x${Buffer.from(v).toString('hex')}`, path]);
    }
    fs.lchownSync(path, node.uid ?? 0, node.gid ?? 0);
    if (node.type !== 'symlink') fs.chmodSync(path, node.mode ?? (node.type === 'dir' ? 0o755 : 0o644));
    const t = node.mtime ?? 1_700_000_000;
    fs.lutimesSync(path, t, t);
  };
  walk(root, tree, { n: 0 });
  // Directories last (children change their mtime), deepest first.
  for (const [p, n] of dirs) finish(p, n);
}
