// Running the real nydusd binary in tests: spawn, wait for the mount by polling (never a sleep),
// stop by signal, and always leave the mountpoint clean (umount → umount -l → abort the connection),
// so a failing test cannot leave a FUSE mount behind that would hang later `ls` calls in CI.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { apiCall } from '../../src/api/client.js';
import { findConnectionId, isFuseMounted, unmountFuse } from '../../src/fuse/mount.js';
import { BIN } from '../helpers/paths.js';
import { until } from '../helpers/poll.js';

export interface NydusdProc {
  proc: ChildProcess;
  pid: number;
  /** Real path of the mountpoint (as /proc/mounts shows it). */
  mnt: string;
  apisock: string | undefined;
  connId: number | undefined;
  stderr(): string;
  /** Settles with the exit status once the process is gone. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface StartOptions {
  /** A config object (written to `<dir>/nydusd.json`) or the path of a config file. */
  config: object | string;
  mnt: string;
  bootstrap: string;
  /** Use exactly these nydusd arguments (config/mnt/bootstrap then only locate the mount). */
  rawArgs?: string[];
  /** Where the generated config and API socket go. */
  dir: string;
  apisock?: boolean;
  extraArgs?: string[];
  cwd?: string;
  timeoutMs?: number;
}

export async function waitFor(cond: () => boolean, timeoutMs: number, what: string, stepMs = 20): Promise<void> {
  await until(what, cond, timeoutMs, stepMs);
}

/** Starts nydusd and resolves once the FUSE mount answers a stat of its root. */
export async function startNydusd(o: StartOptions): Promise<NydusdProc> {
  const cfgPath = typeof o.config === 'string' ? o.config : join(o.dir, 'nydusd.json');
  if (typeof o.config !== 'string') writeFileSync(cfgPath, JSON.stringify(o.config, null, 2));
  const apisock = o.apisock ? join(o.dir, 'api.sock') : undefined;
  const args = [BIN('nydusd'), '--config', cfgPath, '--mountpoint', o.mnt, '--bootstrap', o.bootstrap, '--log-level', 'warn'];
  if (apisock) args.push('--apisock', apisock);
  args.push(...(o.extraArgs ?? []));
  if (o.rawArgs) args.splice(1, args.length - 1, ...o.rawArgs);
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: o.cwd });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  let gone = false;
  void exited.then(() => (gone = true));
  const mnt = realpathSync(o.cwd ? join(o.cwd, o.mnt) : o.mnt);
  const d: NydusdProc = { proc, pid: proc.pid!, mnt, apisock, connId: undefined, stderr: () => err, exited };
  try {
    await waitFor(() => gone || isFuseMounted(mnt), o.timeoutMs ?? 30_000, `nydusd to mount ${mnt}`);
    if (gone) throw new Error(`nydusd exited before mounting: ${err.trim()}`);
    d.connId = findConnectionId(mnt);
    statSync(mnt); // the first request: INIT is done once this answers
    if (apisock) await waitFor(() => existsSync(apisock), 10_000, 'the API socket');
  } catch (e) {
    await killAndClean(d);
    throw e;
  }
  return d;
}

/** Waits for exit up to `ms`; true if it exited. */
export async function exitedWithin(d: NydusdProc, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([d.exited.then(() => true), new Promise<boolean>((res) => (timer = setTimeout(() => res(false), ms)))]);
  clearTimeout(timer);
  return r;
}

/** Unmounts whatever is left at the mountpoint (a dead daemon's mount included). */
export async function cleanMount(mnt: string, connId: number | undefined): Promise<void> {
  if (isFuseMounted(mnt)) await unmountFuse(mnt, connId ?? findConnectionId(mnt), 5000);
  if (isFuseMounted(mnt)) spawnSync('umount', ['-l', mnt], { stdio: 'ignore', timeout: 5000 });
}

/** For `finally`: SIGTERM, then SIGKILL if it lingers; then the mount is cleaned whatever happened. */
export async function killAndClean(d: NydusdProc): Promise<void> {
  if (d.proc.exitCode === null && d.proc.signalCode === null) {
    d.proc.kill('SIGTERM');
    if (!(await exitedWithin(d, 10_000))) {
      d.proc.kill('SIGKILL');
      await exitedWithin(d, 5_000);
    }
  }
  await cleanMount(d.mnt, d.connId);
}

export async function apiJson(d: NydusdProc, path: string): Promise<Record<string, unknown>> {
  if (!d.apisock) throw new Error('started without --apisock');
  const r = await apiCall(d.apisock, 'GET', path);
  if (r.status !== 200) throw new Error(`GET ${path}: HTTP ${r.status} ${r.text}`);
  return r.body as Record<string, unknown>;
}

export interface BackendCounters {
  read_count: number;
  read_amount_total: number;
  read_errors: number;
}
export async function backendMetrics(d: NydusdProc): Promise<BackendCounters> {
  const m = await apiJson(d, '/api/v1/metrics/backend');
  return { read_count: Number(m.read_count), read_amount_total: Number(m.read_amount_total), read_errors: Number(m.read_errors) };
}

/** Upstream-shaped v1 config: localfs backend + blobcache. */
export function localfsConfig(blobDir: string, workDir: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    device: {
      backend: { type: 'localfs', config: { dir: blobDir } },
      cache: { type: 'blobcache', config: { work_dir: workDir } },
    },
    mode: 'direct',
    digest_validate: false,
    iostats_files: false,
    enable_xattr: true,
    ...extra,
  };
}

/** Fuse mounts under `root` (for the leak check at the end of a test file). */
export function fuseMountsUnder(root: string): string[] {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => (f[2] ?? '').startsWith('fuse') && (f[1] ?? '').startsWith(root))
    .map((f) => f[1]!);
}

export function fuseUsable(): string | undefined {
  if (!existsSync('/dev/fuse')) return 'no /dev/fuse';
  if (process.getuid?.() !== 0) return 'needs root (mount)';
  return undefined;
}
