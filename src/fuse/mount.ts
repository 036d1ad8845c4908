// Mounting without libfuse: open /dev/fuse, hand the fd to mount(8) (`-i`: no mount.fuse helper),
// find the connection id, and tear down in escalating steps: umount → umount -l → abort.
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { logger } from '../util/log.js';

const log = logger('fuse');

export interface MountOptions {
  /** Let other users (and root-squashed callers) in. Default true (the daemon serves containers). */
  allowOther?: boolean;
  /** Kernel-side permission checks from mode/uid/gid. Default true. */
  defaultPermissions?: boolean;
  /** Mount read-only (MS_RDONLY). Default true. */
  readOnly?: boolean;
  /** Source shown in /proc/mounts. Default "nydus". */
  fsname?: string;
  /** Type shown as fuse.<subtype>. */
  subtype?: string;
  /** Cap on READ size (bytes). */
  maxRead?: number;
  /** Extra raw -o options. */
  extra?: string[];
}

export interface Mounted {
  fd: number;
  mountpoint: string;
  /** /sys/fs/fuse/connections/<connId>; undefined if it could not be found. */
  connId: number | undefined;
}

export const FUSE_CONNECTIONS_DIR = '/sys/fs/fuse/connections';

/** Opens /dev/fuse and mounts it on `mountpoint`. The kernel then queues FUSE_INIT on the fd. */
export function mountFuse(mountpoint: string, opts: MountOptions = {}): Mounted {
  const mp = fs.realpathSync(mountpoint);
  const fd = fs.openSync('/dev/fuse', 'r+');
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const o = [`fd=3`, `rootmode=40000`, `user_id=${uid}`, `group_id=${gid}`];
  if (opts.allowOther ?? true) o.push('allow_other');
  if (opts.defaultPermissions ?? true) o.push('default_permissions');
  if (opts.maxRead !== undefined) o.push(`max_read=${opts.maxRead}`);
  if (opts.readOnly ?? true) o.push('ro');
  o.push(...(opts.extra ?? []));
  const type = opts.subtype ? `fuse.${opts.subtype}` : 'fuse';
  // The fd travels as the child's fd 3; mount(2) resolves "fd=3" in the child, which holds the same open file.
  const r = spawnSync('mount', ['-i', '-t', type, '-o', o.join(','), opts.fsname ?? 'nydus', mp], {
    stdio: ['ignore', 'ignore', 'pipe', fd],
    timeout: 10_000,
  });
  if (r.status !== 0) {
    fs.closeSync(fd);
    throw new Error(`mount ${mp} failed: ${r.stderr?.toString().trim() || r.error?.message || `status ${r.status}`}`);
  }
  return { fd, mountpoint: mp, connId: findConnectionId(mp) };
}

/** Decodes the octal escapes mountinfo uses for space, tab, newline and backslash. */
function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The mountinfo line for the topmost mount at `mp` (no stat: a stat would need our own server). */
function mountinfoEntry(mp: string): { major: number; minor: number; fstype: string } | undefined {
  let found: { major: number; minor: number; fstype: string } | undefined;
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f.length < 10 || unescapeMountinfo(f[4]!) !== mp) continue;
    const [maj, min] = f[2]!.split(':').map(Number);
    const sep = f.indexOf('-');
    found = { major: maj!, minor: min!, fstype: f[sep + 1] ?? '' };
  }
  return found;
}

/** The FUSE connection id (the superblock's dev_t as the kernel prints it) of the mount at `mp`. */
export function findConnectionId(mp: string): number | undefined {
  const e = mountinfoEntry(mp);
  if (!e || !e.fstype.startsWith('fuse')) return undefined;
  // Kernel MKDEV: major << 20 | minor. FUSE superblocks are anonymous (major 0), so this is the minor.
  return e.major * 2 ** 20 + e.minor;
}

/**
 * Raises the mount's readahead window (its bdi's read_ahead_kb) to `bytes` if it is smaller. The
 * kernel offers its current window in INIT (128 KiB by default) and only ever lowers it to what we
 * answer, so a cold sequential read would come as 128 KiB READs although max_pages allows 1 MiB:
 * 8× the requests, round trips and chunk lookups. Best effort (needs root): false if not raised.
 */
export function raiseReadahead(mp: string, bytes: number): boolean {
  const e = mountinfoEntry(mp);
  if (!e || !e.fstype.startsWith('fuse')) return false;
  const file = `/sys/class/bdi/${e.major}:${e.minor}${e.fstype === 'fuseblk' ? '-fuseblk' : ''}/read_ahead_kb`;
  try {
    const want = Math.floor(bytes / 1024);
    if (Number(fs.readFileSync(file, 'utf8')) >= want) return false;
    fs.writeFileSync(file, String(want));
    return true;
  } catch {
    return false;
  }
}

/** True if a FUSE filesystem is mounted at `mp` (mountpoint string as in mountinfo, i.e. real path). */
export function isFuseMounted(mp: string): boolean {
  return mountinfoEntry(mp)?.fstype.startsWith('fuse') ?? false;
}

function isFusectlMounted(dir: string): boolean {
  return fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === dir && l.split(' ')[2] === 'fusectl');
}

/**
 * Ends the connection: every pending and future request fails with ENOTCONN, the server's reads ENODEV.
 * Uses /sys/fs/fuse/connections/<id>/abort; where fusectl is not mounted there (containers), mounts it
 * on a private temp dir for the write and unmounts it again, so nothing is left behind.
 */
export function abortConnection(connId: number | undefined): boolean {
  if (connId === undefined) return false;
  const write = (dir: string): boolean => {
    try {
      fs.writeFileSync(`${dir}/${connId}/abort`, '1');
      return true;
    } catch {
      return false; // connection already gone
    }
  };
  if (isFusectlMounted(FUSE_CONNECTIONS_DIR)) return write(FUSE_CONNECTIONS_DIR);
  const tmp = fs.mkdtempSync(join(tmpdir(), 'nydus-fusectl-'));
  try {
    if (spawnSync('mount', ['-t', 'fusectl', 'fusectl', tmp], { stdio: 'ignore', timeout: 5000 }).status !== 0) return false;
    try {
      return write(tmp);
    } finally {
      spawnSync('umount', [tmp], { stdio: 'ignore', timeout: 5000 });
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

export type UnmountStep = 'umount' | 'lazy' | 'abort' | 'none';

/**
 * Synchronous teardown for exit paths: umount, else umount -l plus abort (a lazy unmount with open
 * files keeps the connection alive, so abort it to release the server and any blocked callers).
 */
export function unmountFuseSync(mp: string, connId: number | undefined, timeoutMs = 5000): UnmountStep {
  if (!isFuseMounted(mp)) {
    return abortConnection(connId) ? 'abort' : 'none';
  }
  if (spawnSync('umount', [mp], { stdio: 'ignore', timeout: timeoutMs }).status === 0) return 'umount';
  spawnSync('umount', ['-l', mp], { stdio: 'ignore', timeout: timeoutMs });
  abortConnection(connId);
  return isFuseMounted(mp) ? 'abort' : 'lazy';
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err) => resolve(!err));
  });
}

/** Async variant: the main event loop keeps answering worker requests while umount runs. */
export async function unmountFuse(mp: string, connId: number | undefined, timeoutMs = 5000): Promise<UnmountStep> {
  if (!isFuseMounted(mp)) return abortConnection(connId) ? 'abort' : 'none';
  if (await run('umount', [mp], timeoutMs)) return 'umount';
  log.debug(`umount ${mp} failed (busy?), trying lazy unmount`);
  await run('umount', ['-l', mp], timeoutMs);
  abortConnection(connId);
  if (isFuseMounted(mp)) {
    log.warn(`${mp} still mounted after umount -l; connection ${connId ?? '?'} aborted`);
    return 'abort';
  }
  return 'lazy';
}

/** Rejects with `what timed out after N ms` if `p` does not settle in time. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
