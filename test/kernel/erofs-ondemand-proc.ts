// Running `nydusd erofs` in tests: spawn, wait for the EROFS mount (polling, never a sleep), stop by
// PID, and always leave no EROFS mount and no loop device of ours behind.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mountedFsType } from '../../src/daemon/erofs-ondemand.js';
import { BIN } from '../helpers/paths.js';
import { until } from '../helpers/poll.js';

/** `losetup` lines (NAME BACK-FILE) whose backing file mentions any of `needles`. */
export function loopsOf(needles: string[]): string[] {
  const r = spawnSync('losetup', ['-l', '-n', '-O', 'NAME,BACK-FILE'], { encoding: 'utf8', timeout: 10_000 });
  return (r.stdout ?? '').split('\n').map((l) => l.trim()).filter((l) => l && needles.some((n) => l.includes(n)));
}

/**
 * Processes in other mount namespaces that still see a mount under `path` (an unshare'd namespace
 * created while the mount existed keeps a private copy, which pins the loop devices until it exits).
 */
export function holdersOf(path: string): string[] {
  const own = readlinkSync('/proc/self/ns/mnt');
  const seen = new Map<string, string>();
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const ns = readlinkSync(`/proc/${pid}/ns/mnt`);
      if (ns === own || seen.has(ns)) continue;
      if (readFileSync(`/proc/${pid}/mountinfo`, 'utf8').includes(` ${path}`)) seen.set(ns, `${pid} ${readFileSync(`/proc/${pid}/comm`, 'utf8').trim()}`);
    } catch {
      /* gone meanwhile */
    }
  }
  return [...seen.values()];
}

/** Polls until no loop device mentions `needles`; returns what is left after `ms`. */
export async function loopsLeft(needles: string[], ms = 30_000): Promise<string[]> {
  await until('loop devices to detach', () => loopsOf(needles).length === 0, ms).catch(() => undefined);
  return loopsOf(needles);
}

export class ErofsDaemon {
  proc: ChildProcess | undefined;
  stderr = '';
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> = Promise.resolve({ code: null, signal: null });
  #gone = true;

  constructor(readonly dir: string, readonly mnt: string) {
    mkdirSync(mnt, { recursive: true });
  }

  get running(): boolean {
    return !this.#gone;
  }

  async start(config: Record<string, unknown>, boot: string, extra: string[] = []): Promise<void> {
    const cfg = join(this.dir, 'erofs-config.json');
    writeFileSync(cfg, JSON.stringify(config));
    const p = spawn(process.execPath, [BIN('nydusd'), 'erofs', '--config', cfg, '--mountpoint', this.mnt, '--bootstrap', boot, '--log-level', 'warn', ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc = p;
    this.#gone = false;
    this.stderr = '';
    p.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-20_000)));
    this.exited = new Promise((resolve) => p.once('exit', (code, signal) => resolve({ code, signal })));
    void this.exited.then(() => (this.#gone = true));
    await until(`nydusd erofs to mount ${this.mnt}`, () => {
      if (this.#gone) throw new Error(`nydusd erofs exited before mounting: ${this.stderr}`);
      return mountedFsType(this.mnt) === 'erofs';
    }, 30_000, 5); // a fine step: bench/eval times this wait as the mount time
  }

  /** Waits up to `ms` for the process to exit; true if it did. */
  async exitedWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([this.exited.then(() => true), new Promise<boolean>((res) => (timer = setTimeout(() => res(false), ms)))]);
    clearTimeout(timer);
    return r;
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    if (this.#gone) return;
    this.proc!.kill(signal);
    if (!(await this.exitedWithin(15_000))) {
      this.proc!.kill('SIGKILL');
      await this.exitedWithin(5_000);
    }
  }

  /** For `finally`: stop the daemon, then remove whatever is left (a dead daemon's mount, loops). */
  async clean(needles: string[]): Promise<void> {
    await this.kill('SIGTERM');
    if (mountedFsType(this.mnt) === 'erofs' && spawnSync('umount', [this.mnt], { timeout: 10_000 }).status !== 0) spawnSync('umount', ['-l', this.mnt], { timeout: 10_000 });
    // Autoclear detaches them once nothing holds them (another mount namespace may, for a while).
    for (const l of await loopsLeft(needles, 30_000)) spawnSync('losetup', ['-d', l.split(/\s+/)[0]!], { timeout: 10_000 });
  }
}
