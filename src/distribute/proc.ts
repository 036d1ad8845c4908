// Small process helpers for nydus-distribute: bounded child runs, pid files, /proc lookups, and
// where the sibling nydus-ts executables live. Everything is bounded in time because the things we
// drive (umount on FUSE, systemctl) can hang when a daemon or the network is gone.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NydusError } from '../util/errors.js';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs a command with a hard time limit (SIGKILL by pid on expiry); never throws for exit codes. */
export function run(cmd: string, args: string[], opts: { timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => { if (stdout.length < 1 << 20) stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { if (stderr.length < 1 << 20) stderr += d; });
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid) try { process.kill(child.pid, 'SIGKILL'); } catch { /* already gone */ }
    }, opts.timeoutMs ?? 60_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new NydusError('ERR_IO', `cannot run ${cmd}: ${e.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A zombie answers kill(0) but is dead for our purposes.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export function readPid(file: string): number | undefined {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 1 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** argv of a live process ([] when gone); used to make sure a pid file still names our process. */
export function cmdlineOf(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `cond` every `stepMs` until it is true or `timeoutMs` passes. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 100): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() >= end) return false;
    await sleep(stepMs);
  }
}

/** SIGTERM, wait, then SIGKILL; true once the process is gone. */
export async function terminate(pid: number, graceMs = 10_000): Promise<boolean> {
  if (!isAlive(pid)) return true;
  try { process.kill(pid, 'SIGTERM'); } catch { return true; }
  if (await waitFor(() => !isAlive(pid), graceMs, 50)) return true;
  try { process.kill(pid, 'SIGKILL'); } catch { return true; }
  return waitFor(() => !isAlive(pid), 5_000, 50);
}

/** PID 1 is systemd and its runtime dir exists: then services are systemd units, else supervised processes. */
export function systemdAvailable(): boolean {
  const forced = process.env.NYDUS_DISTRIBUTE_SERVICE;
  if (forced === 'process') return false;
  if (forced === 'systemd') return true;
  try {
    return readFileSync('/proc/1/comm', 'utf8').trim() === 'systemd' && existsSync('/run/systemd/system');
  } catch {
    return false;
  }
}

/** Root of this nydus-ts install (holds bin/ and package.json), found from this compiled module. */
export function installRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(d, 'package.json')) && existsSync(join(d, 'bin'))) return d;
    d = dirname(d);
  }
  throw new NydusError('ERR_INTERNAL', 'cannot find the nydus-ts install root (bin/ next to package.json)');
}

/** Running from a self-contained bundle: its launchers sit next to this (bundled) module. */
function bundledDir(): string | undefined {
  const d = dirname(fileURLToPath(import.meta.url));
  return existsSync(join(d, 'nydusd.cjs')) ? d : undefined;
}

/** argv prefix to run a sibling tool (nydusd, nydus-image, ...) with this same node binary. */
export function toolArgv(tool: string): string[] {
  const env = process.env[`NYDUS_DISTRIBUTE_${tool.toUpperCase().replace(/-/g, '_')}`];
  if (env) return env.split(' ').filter(Boolean);
  const b = bundledDir();
  if (b) return [process.execPath, join(b, `${tool}.cjs`)];
  return [process.execPath, join(installRoot(), 'bin', `${tool}.js`)];
}
