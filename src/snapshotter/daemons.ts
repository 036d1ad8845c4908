// nydusd instances for remote snapshots: one per image (daemon_mode "multiple") or one shared
// daemon with an API mount per image ("shared"), as upstream. Daemons are detached so they outlive
// a snapshotter restart; their pid and API socket are in the store and re-attached on start.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { apiCall, apiRequest } from '../api/client.js';
import { findConnectionId, isFuseMounted, unmountFuseSync } from '../fuse/mount.js';
import { NydusError } from '../util/errors.js';
import { logger } from '../util/log.js';
import type { DaemonRecord, MetaStore } from './store.js';

const log = logger('snapshotter');

export type DaemonMode = 'multiple' | 'shared';

export interface DaemonSpec {
  snapshotId: number;
  bootstrap: string;
  /** nydusd v1 config (backend + cache), built only when a daemon must start; written to a 0600 file, never logged. */
  config: () => Promise<Record<string, unknown>>;
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function daemonState(sock: string): Promise<string | undefined> {
  try {
    const r = await apiCall(sock, 'GET', '/api/v1/daemon', undefined, 2000);
    return r.status === 200 ? (r.body as { state?: string }).state : undefined;
  } catch {
    return undefined;
  }
}

/** True if a nydusd (FUSE) mount is at `path`. */
export const isMounted = (path: string): boolean => isFuseMounted(path);

/** Unmounts what a dead or stopped nydusd left: umount, else lazy + connection abort (fuse/). */
export function lazyUmount(path: string): void {
  const conn = findConnectionId(path);
  if (isFuseMounted(path) || conn !== undefined) unmountFuseSync(path, conn);
}

export class DaemonManager {
  /** Starts in flight per daemon id, so concurrent Prepares share one start. */
  readonly #starting = new Map<string, Promise<DaemonRecord>>();
  constructor(
    readonly root: string,
    readonly mode: DaemonMode,
    readonly nydusd: string[],
    readonly store: MetaStore,
    readonly logLevel: string,
    readonly cacheRoot: string,
  ) {}

  mountpointFor(snapshotId: number): string {
    return this.mode === 'shared' ? join(this.root, 'mnt', 'shared', String(snapshotId)) : join(this.root, 'mnt', String(snapshotId));
  }

  cacheDirFor(snapshotId: number): string {
    return join(this.cacheRoot, String(snapshotId));
  }

  /** Keeps live daemons (API answers RUNNING), forgets dead ones and unmounts what they left. */
  async reattach(): Promise<void> {
    for (const d of this.store.daemons()) {
      const ok = pidAlive(d.pid) && (await daemonState(d.apiSock)) === 'RUNNING';
      if (ok) {
        log.info(`re-attached nydusd ${d.id} (pid ${d.pid}) at ${d.mountpoint}`);
        continue;
      }
      log.warn(`nydusd ${d.id} (pid ${d.pid}) is gone; its mounts are re-created on demand`);
      lazyUmount(d.mountpoint);
      this.store.removeDaemon(d.id);
    }
  }

  /** The mountpoint serving the image, starting or re-using its daemon. */
  async ensure(spec: DaemonSpec): Promise<string> {
    const id = this.mode === 'shared' ? `m${spec.snapshotId}` : `d${spec.snapshotId}`;
    const existing = this.store.daemons().find((d) => d.id === id);
    // A shared daemon's API mount is a directory of its FUSE mount, not a kernel mount of its own.
    if (existing && pidAlive(existing.pid) && isMounted(existing.mountPath ? dirname(existing.mountpoint) : existing.mountpoint)) return existing.mountpoint;
    let p = this.#starting.get(id);
    if (!p) {
      p = (this.mode === 'shared' ? this.#mountShared(id, spec) : this.#startOwn(id, spec)).finally(() => this.#starting.delete(id));
      this.#starting.set(id, p);
    }
    return (await p).mountpoint;
  }

  async #spawn(id: string, args: string[], sock: string): Promise<number> {
    const dir = join(this.root, 'socket', id);
    mkdirSync(dir, { recursive: true });
    rmSync(sock, { force: true });
    const logFile = join(this.root, 'logs', `${id}.log`);
    mkdirSync(join(this.root, 'logs'), { recursive: true });
    const fd = openSync(logFile, 'a');
    const [cmd, ...pre] = this.nydusd;
    const child = spawn(cmd!, [...pre, ...args, '--apisock', sock, '--log-level', this.logLevel], { detached: true, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    let exited: string | undefined;
    child.once('exit', (code, sig) => (exited = `exited (${sig ?? code})`));
    child.once('error', (e) => (exited = e.message));
    child.unref();
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (exited) break;
      if ((await daemonState(sock)) === 'RUNNING') return child.pid!;
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!exited) child.kill('SIGKILL');
    const tail = existsSync(logFile)
      ? readFileSync(logFile, 'utf8').trim().split('\n').filter((l) => !l.startsWith('(run with')).slice(-3).join(' | ')
      : '';
    throw new NydusError('ERR_IO', `nydusd ${id} did not start: ${exited ?? 'not RUNNING within 60 s'}${tail ? `: ${tail}` : ''}`);
  }

  async #startOwn(id: string, spec: DaemonSpec): Promise<DaemonRecord> {
    const mountpoint = this.mountpointFor(spec.snapshotId);
    lazyUmount(mountpoint);
    mkdirSync(mountpoint, { recursive: true });
    const dir = join(this.root, 'socket', id);
    mkdirSync(dir, { recursive: true });
    const cfg = join(dir, 'config.json');
    writeFileSync(cfg, JSON.stringify(await spec.config()), { mode: 0o600 });
    const sock = join(dir, 'api.sock');
    const pid = await this.#spawn(id, ['--config', cfg, '--mountpoint', mountpoint, '--bootstrap', spec.bootstrap], sock);
    const rec: DaemonRecord = { id, pid, apiSock: sock, mountpoint, snapshotId: spec.snapshotId };
    this.store.putDaemon(rec);
    log.info(`started nydusd ${id} (pid ${pid}) at ${mountpoint}`);
    return rec;
  }

  async #shared(): Promise<DaemonRecord> {
    const cur = this.store.daemons().find((d) => d.id === 'shared');
    if (cur && pidAlive(cur.pid) && (await daemonState(cur.apiSock)) === 'RUNNING') return cur;
    let p = this.#starting.get('shared');
    if (!p) {
      p = (async () => {
        const mountpoint = join(this.root, 'mnt', 'shared');
        lazyUmount(mountpoint);
        mkdirSync(mountpoint, { recursive: true });
        const sock = join(this.root, 'socket', 'shared', 'api.sock');
        const pid = await this.#spawn('shared', ['--mountpoint', mountpoint], sock);
        const rec: DaemonRecord = { id: 'shared', pid, apiSock: sock, mountpoint, snapshotId: 0 };
        this.store.putDaemon(rec);
        log.info(`started shared nydusd (pid ${pid}) at ${mountpoint}`);
        return rec;
      })().finally(() => this.#starting.delete('shared'));
      this.#starting.set('shared', p);
    }
    return p;
  }

  async #mountShared(id: string, spec: DaemonSpec): Promise<DaemonRecord> {
    const shared = await this.#shared();
    const mountPath = `/${spec.snapshotId}`;
    await apiRequest(shared.apiSock, 'POST', `/api/v1/mount?mountpoint=${encodeURIComponent(mountPath)}`, { source: spec.bootstrap, fs_type: 'rafs', config: JSON.stringify(await spec.config()) });
    const rec: DaemonRecord = { id, pid: shared.pid, apiSock: shared.apiSock, mountpoint: join(shared.mountpoint, String(spec.snapshotId)), snapshotId: spec.snapshotId, mountPath };
    this.store.putDaemon(rec);
    return rec;
  }

  /** Stops (or unmounts from the shared daemon) what serves a snapshot, and drops its cache. */
  async release(snapshotId: number): Promise<void> {
    for (const d of this.store.daemons().filter((x) => x.snapshotId === snapshotId && x.id !== 'shared')) {
      if (d.mountPath) {
        await apiRequest(d.apiSock, 'DELETE', `/api/v1/mount?mountpoint=${encodeURIComponent(d.mountPath)}`).catch((e: Error) => log.warn(`umount ${d.mountPath} from the shared nydusd: ${e.message}`));
      } else {
        await this.#stop(d);
      }
      this.store.removeDaemon(d.id);
      rmSync(join(this.root, 'socket', d.id), { recursive: true, force: true });
    }
    rmSync(this.cacheDirFor(snapshotId), { recursive: true, force: true });
    if (this.mode !== 'shared') rmSync(this.mountpointFor(snapshotId), { recursive: true, force: true });
  }

  async #stop(d: DaemonRecord): Promise<void> {
    if (pidAlive(d.pid)) {
      try {
        process.kill(d.pid, 'SIGTERM');
      } catch {
        /* gone meanwhile */
      }
      const deadline = Date.now() + 10_000;
      while (pidAlive(d.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      if (pidAlive(d.pid)) process.kill(d.pid, 'SIGKILL');
    }
    lazyUmount(d.mountpoint);
    log.info(`stopped nydusd ${d.id} (pid ${d.pid})`);
  }

  /** The shared daemon with no mounts left is stopped too (Cleanup). */
  async stopIdleShared(): Promise<void> {
    const all = this.store.daemons();
    const shared = all.find((d) => d.id === 'shared');
    if (shared && !all.some((d) => d.id !== 'shared' && d.pid === shared.pid)) {
      await this.#stop(shared);
      this.store.removeDaemon('shared');
    }
  }
}
