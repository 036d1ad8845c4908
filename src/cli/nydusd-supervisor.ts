// nydusd failover: a supervising parent keeps the FUSE connection alive across crashes and upgrades
// of the process that serves it (upstream: --supervisor/--id/--upgrade, failover policy "resend").
//
// Node cannot pass file descriptors over unix sockets, so the roles are parent and child:
// - The supervisor (`nydusd ... --supervisor SUP`) opens /dev/fuse, mounts, and never reads a FUSE
//   request. It starts the serving child with the fd as stdio[3] plus an IPC channel, keeps what the
//   connection's INIT negotiated and the mount table the child reports, and respawns the child when it
//   dies. It listens on SUP for upgrade requests (`nydusd --upgrade --supervisor SUP --id ID`) and
//   upgrades on SIGUSR2/SIGHUP.
// - The child is nydusd itself (same argv, NYDUSD_SUPERVISED_CHILD=1): it rebuilds the mount table
//   with the same indexes (so the same inode numbers; file handles are stateless), loads its FUSE
//   workers, waits for the supervisor's "go" (the old child is dead by then), asks the kernel to
//   resend the requests the dead child had read (FUSE_NOTIFY_RESEND), and serves.
// The connection ends only when the supervisor goes: its fd is then the last one (the child exits
// when the IPC channel closes), so users see ENOTCONN, never a hang.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { SavedMount } from '../daemon/daemon.js';
import type { InitInfo } from '../fuse/index.js';
import { abortConnection, isFuseMounted, mountFuse, unmountFuse } from '../fuse/mount.js';
import { NydusError } from '../util/errors.js';
import { logger } from '../util/log.js';

const log = logger('supervisor');
export const CHILD_ENV = 'NYDUSD_SUPERVISED_CHILD';
/** The inherited /dev/fuse fd in the child (stdio[3]). */
const FUSE_FD = 3;
/**
 * Children dying this many times in a row before serving (a crash at start, not kills at random
 * moments) end the daemon: the connection is aborted, so users get ENOTCONN instead of waiting forever.
 */
const MAX_QUICK_DEATHS = 20;
/** Delay before the n-th consecutive restart of a child that died before serving: 0, 100 ms, 200 ms ... 2 s. */
const restartDelayMs = (n: number): number => Math.min(2000, Math.max(0, n - 1) * 100);

/** Supervisor → child. */
type ToChild =
  | { t: 'state'; mountpoint: string; connId: number | undefined; init: InitInfo | undefined; mounts: SavedMount[] | undefined; resend: boolean }
  | { t: 'go' };
/** Child → supervisor. */
type FromChild =
  | { t: 'prepared' }
  | { t: 'serving'; init: InitInfo | undefined }
  | { t: 'mounts'; mounts: SavedMount[] }
  | { t: 'stopping' };

export function isSupervisedChild(): boolean {
  return process.env[CHILD_ENV] === '1' && typeof process.send === 'function';
}

// ---------------------------------------------------------------- child side

export interface ChildLink {
  mountpoint: string;
  restore: SavedMount[] | undefined;
  /** NydusDaemon options: serve the inherited fd; report the mount table. */
  adopt: { fd: number; connId: number | undefined; init: InitInfo | undefined; resend: boolean; gate: () => Promise<void> };
  onMountsChanged: (mounts: SavedMount[]) => void;
  /** Tell the supervisor this child now serves (and what INIT negotiated, for the next one). */
  serving(init: InitInfo | undefined): void;
  /** A deliberate stop (API exit, signal, unmounted): the supervisor ends too instead of respawning. */
  stopping(): void;
}

/** In the child: receives the supervisor's state; exits at once if the supervisor goes away. */
export async function childLink(): Promise<ChildLink> {
  const send = (m: FromChild): void => {
    try {
      process.send!(m);
    } catch {
      /* supervisor gone: 'disconnect' ends this process */
    }
  };
  // Without the supervisor nobody would restart us or own the mount: end, so the connection ends too.
  // (SIGKILL, not exit(): process.exit would wait for FUSE workers blocked in read(2) forever.)
  let leaving = false;
  process.on('disconnect', () => {
    if (!leaving) process.kill(process.pid, 'SIGKILL');
  });
  // A crash hands over to a successor the same way (exit would also wait on blocked workers).
  process.on('uncaughtException', (e) => {
    process.stderr.write(`nydusd: fatal: ${e.stack ?? String(e)}\n`);
    process.kill(process.pid, 'SIGKILL');
  });
  let live = false; // the mount table is reported once serving, never half-restored
  let go!: () => void;
  const gone = new Promise<void>((r) => (go = r));
  const state = await new Promise<Extract<ToChild, { t: 'state' }>>((resolve) => {
    process.on('message', (m: ToChild) => {
      if (m.t === 'state') resolve(m);
      else if (m.t === 'go') go();
    });
  });
  return {
    mountpoint: state.mountpoint,
    restore: state.mounts,
    adopt: {
      fd: FUSE_FD,
      connId: state.connId,
      init: state.init,
      resend: state.resend,
      gate: () => {
        send({ t: 'prepared' });
        return gone;
      },
    },
    onMountsChanged: (mounts) => {
      if (live) send({ t: 'mounts', mounts });
    },
    serving: (init) => {
      live = true;
      send({ t: 'serving', init });
    },
    stopping: () => {
      send({ t: 'stopping' });
      // The channel must not keep this process alive once the daemon has stopped.
      leaving = true;
      process.channel?.unref();
    },
  };
}

// ---------------------------------------------------------------- supervisor side

export interface SupervisorOptions {
  /** nydusd's own arguments, given to every child unchanged. */
  argv: string[];
  mountpoint: string;
  /** Upstream --supervisor: here the unix socket this supervisor listens on for upgrades. */
  socket: string;
  id: string | undefined;
  fsname: string;
}

interface Child {
  proc: ChildProcess;
  exited: Promise<void>;
  prepared: Promise<void>;
  serving: Promise<void>;
  served?: boolean;
}

/** Runs the supervisor until the filesystem is unmounted or a signal stops it; returns the exit code. */
export async function runSupervisor(o: SupervisorOptions): Promise<number> {
  const m = mountFuse(o.mountpoint, { fsname: o.fsname, subtype: 'nydusd' });
  log.info(`mounted ${m.mountpoint} (connection ${m.connId ?? '?'}); serving child starts`);
  let init: InitInfo | undefined;
  let mounts: SavedMount[] | undefined;
  let entry = [...process.execArgv, process.argv[1]!];
  let current: Child | undefined;
  let stopping = false;
  let everServed = false;
  let quickDeaths = 0;
  let upgrading: Promise<void> | undefined;
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));

  const start = (old: Child | undefined): Child => {
    const proc = spawn(process.execPath, [...entry, ...o.argv], {
      stdio: ['ignore', 'inherit', 'inherit', m.fd, 'ipc'],
      env: { ...process.env, [CHILD_ENV]: '1' },
      serialization: 'advanced',
    });
    let onPrepared!: () => void;
    let onServing!: () => void;
    let failed!: (e: Error) => void;
    const prepared = new Promise<void>((res, rej) => ((onPrepared = res), (failed = rej)));
    const serving = new Promise<void>((res, rej) => {
      onServing = res;
      const prev = failed;
      failed = (e) => (prev(e), rej(e));
    });
    prepared.catch(() => undefined);
    serving.catch(() => undefined);
    const exited = new Promise<void>((res) => proc.once('exit', () => res()));
    const c: Child = { proc, exited, prepared, serving, served: false };
    proc.on('message', (msg: FromChild) => {
      // Only the child in charge (or the one taking over) may change what the next one inherits.
      switch (msg.t) {
        case 'prepared':
          onPrepared();
          // Failover: nobody else serves; an upgrade sends 'go' once the old child is dead.
          if (!old) proc.send({ t: 'go' } satisfies ToChild);
          return;
        case 'serving':
          if (msg.init) init = msg.init;
          everServed = true;
          c.served = true;
          quickDeaths = 0;
          onServing();
          return;
        case 'mounts':
          if (c === current) mounts = msg.mounts;
          return;
        case 'stopping':
          if (c === current) stopping = true;
          return;
      }
    });
    proc.once('exit', (code, signal) => {
      failed(new Error(`child ${proc.pid} exited (${signal ?? code}) before serving`));
      if (c !== current) return;
      if (stopping || !isFuseMounted(m.mountpoint)) return finish(code ?? 0);
      if (!c.served && ++quickDeaths >= MAX_QUICK_DEATHS) {
        log.error(`serving child died ${quickDeaths} times in a row before serving; giving up`);
        stopping = true;
        abortConnection(m.connId);
        return void unmountFuse(m.mountpoint, m.connId).finally(() => finish(1));
      }
      log.warn(`serving child ${proc.pid} died (${signal ?? `exit ${code}`}); starting another on the same connection`);
      const delay = restartDelayMs(quickDeaths);
      if (delay === 0) current = start(undefined);
      else {
        setTimeout(() => {
          if (!stopping && c === current) current = start(undefined);
        }, delay);
      }
    });
    proc.send({ t: 'state', mountpoint: m.mountpoint, connId: m.connId, init, mounts, resend: old !== undefined || everServed || quickDeaths > 0 } satisfies ToChild);
    return c;
  };

  const finish = (code: number): void => {
    server?.close();
    try {
      closeSync(m.fd);
    } catch {
      /* already closed */
    }
    resolveDone(code);
  };

  /** Hot upgrade: a new child (optionally from another nydusd build) takes over, the old one is killed. */
  const upgrade = (newEntry?: string[]): Promise<void> => {
    if (upgrading) return upgrading;
    if (stopping) return Promise.reject(new NydusError('ERR_SUPERVISOR', 'nydusd is stopping'));
    if (!current || current.proc.exitCode !== null || current.proc.signalCode !== null) {
      return Promise.reject(new NydusError('ERR_SUPERVISOR', 'the serving child is restarting; try again'));
    }
    upgrading = (async () => {
      await current!.serving.catch(() => undefined); // never hand over in the middle of a start
      const old = current!;
      const prevEntry = entry;
      if (newEntry) entry = newEntry;
      const next = start(old);
      try {
        await Promise.race([next.prepared, next.exited.then(() => Promise.reject(new Error('new child exited before taking over')))]);
      } catch (e) {
        entry = prevEntry;
        throw new NydusError('ERR_SUPERVISOR', `upgrade failed: ${(e as Error).message}; the old child keeps serving`);
      }
      // (If the old child crashed meanwhile, a respawned one may serve instead: it goes too.)
      const prev = [...new Set([old, current!])];
      current = next;
      // SIGKILL, not a graceful stop: what the old child had read is resent to the new one.
      for (const p of prev) p.proc.kill('SIGKILL');
      await Promise.all(prev.map((p) => p.exited));
      next.proc.send({ t: 'go' } satisfies ToChild);
      await next.serving;
      log.info(`upgraded: child ${next.proc.pid} serves ${m.mountpoint}`);
    })().finally(() => (upgrading = undefined));
    return upgrading;
  };

  let signalled = false;
  const stop = (sig: NodeJS.Signals): void => {
    if (signalled) return;
    signalled = true;
    stopping = true;
    log.info(`stopping (${sig})`);
    void (async () => {
      await unmountFuse(m.mountpoint, m.connId).catch(() => abortConnection(m.connId));
      const c = current;
      if (c && c.proc.exitCode === null && c.proc.signalCode === null) {
        const t = setTimeout(() => c.proc.kill('SIGKILL'), 5000);
        await c.exited;
        clearTimeout(t);
      }
      finish(128 + (sig === 'SIGINT' ? 2 : 15));
    })();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const onUpgradeSignal = (): void => void upgrade().catch((e: unknown) => log.error((e as Error).message));
  process.on('SIGUSR2', onUpgradeSignal);
  process.on('SIGHUP', onUpgradeSignal);

  let server: Server | undefined;
  try {
    server = await listenControl(o.socket, o.id, upgrade);
  } catch (e) {
    await unmountFuse(m.mountpoint, m.connId);
    closeSync(m.fd);
    throw e;
  }
  current = start(undefined);
  const code = await done;
  process.off('SIGTERM', stop);
  process.off('SIGINT', stop);
  process.off('SIGUSR2', onUpgradeSignal);
  process.off('SIGHUP', onUpgradeSignal);
  return code;
}

/** Control socket protocol: one JSON line each way. */
interface ControlRequest {
  op: 'upgrade';
  id?: string;
  /** node arguments before nydusd's own (execArgv + entry script) of the build to run. */
  entry?: string[];
}

/** True when something accepts connections on the unix socket at `path`. */
function socketAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection(path);
    const done = (alive: boolean): void => {
      c.destroy();
      resolve(alive);
    };
    c.once('connect', () => done(true));
    c.once('error', () => done(false));
    c.setTimeout(2000, () => done(false));
  });
}

async function listenControl(wanted: string, id: string | undefined, upgrade: (entry?: string[]) => Promise<void>): Promise<Server> {
  let path = wanted;
  if (existsSync(path)) {
    if (!lstatSync(path).isSocket()) throw new NydusError('ERR_SUPERVISOR', `--supervisor ${path} exists and is not a socket`);
    // Upstream's nydus-snapshotter listens on --supervisor itself (it speaks SCM_RIGHTS, which Node
    // cannot): never steal its socket; listen beside it.
    if (await socketAlive(path)) {
      path = `${wanted}.nydus-ts`;
      log.warn(`--supervisor ${wanted} is served by another process; nydus-ts upgrades listen on ${path}`);
      if (existsSync(path)) unlinkSync(path);
    } else {
      unlinkSync(path);
    }
  }
  // nydus-snapshotter passes <root>/supervisor/<id>.sock without creating the directory for us.
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const server = createServer((sock: Socket) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => undefined);
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) {
        if (buf.length > 65536) sock.destroy();
        return;
      }
      const reply = (r: { ok: boolean; message?: string }): void => void sock.end(JSON.stringify(r) + '\n');
      let req: ControlRequest;
      try {
        req = JSON.parse(buf.slice(0, nl)) as ControlRequest;
      } catch {
        return reply({ ok: false, message: 'request is not JSON' });
      }
      if (req.op !== 'upgrade') return reply({ ok: false, message: `unknown op ${String(req.op)}` });
      if (id !== undefined && req.id !== undefined && req.id !== id) return reply({ ok: false, message: `this supervisor serves id ${id}, not ${req.id}` });
      const entry = Array.isArray(req.entry) && req.entry.length > 0 && req.entry.every((x) => typeof x === 'string') ? req.entry : undefined;
      upgrade(entry).then(() => reply({ ok: true }), (e: unknown) => reply({ ok: false, message: (e as Error).message }));
    });
  });
  const oldMask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(new NydusError('ERR_SUPERVISOR', `--supervisor ${path}: ${e.message}`)));
      server.listen(path, () => resolve());
    });
  } finally {
    process.umask(oldMask);
  }
  return server;
}

/**
 * `nydusd --upgrade --supervisor SUP`: asks the supervisor listening on SUP to replace its serving
 * child with one running this nydusd build (upstream's takeover, mapped onto the parent/child model).
 */
export function requestTakeover(socket: string, id: string | undefined, timeoutMs = 120_000): Promise<void> {
  const req: ControlRequest = { op: 'upgrade', ...(id !== undefined ? { id } : {}), entry: [...process.execArgv, process.argv[1]!] };
  return new Promise((resolve, reject) => {
    const sock = createConnection(socket);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new NydusError('ERR_SUPERVISOR', `takeover via ${socket} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(JSON.stringify(req) + '\n'));
    sock.on('data', (d: string) => (buf += d));
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(new NydusError('ERR_SUPERVISOR', `cannot reach the supervisor at ${socket}: ${e.message}`));
    });
    sock.on('close', () => {
      clearTimeout(timer);
      let r: { ok?: boolean; message?: string } = {};
      try {
        r = JSON.parse(buf.trim() || '{}') as typeof r;
      } catch {
        /* handled below */
      }
      if (r.ok) resolve();
      else reject(new NydusError('ERR_SUPERVISOR', `takeover refused: ${r.message ?? 'no answer from the supervisor'}`));
    });
  });
}

/**
 * The process nydus-snapshotter starts with `--upgrade`: it does not mount. Without --apisock it
 * takes over at once; with it, it waits in state INIT for PUT /api/v1/daemon/fuse/takeover (as
 * upstream), which makes the supervisor at SUP switch to a child of this build. The serving child
 * then owns the API socket named in the supervisor's arguments, so this process exits.
 */
export async function runUpgrade(socket: string, id: string | undefined, apisock: string | undefined): Promise<number> {
  if (!apisock) {
    await requestTakeover(socket, id);
    log.info(`took over the connection supervised at ${socket}`);
    return 0;
  }
  const { ControlError } = await import('../daemon/control.js');
  const { NYDUSD_VERSION } = await import('../daemon/daemon.js');
  let state: 'INIT' | 'RUNNING' = 'INIT';
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const waiting = (): never => {
    throw new ControlError(400, 'INVALID_ARGUMENT', 'this nydusd was started with --upgrade and waits for PUT /api/v1/daemon/fuse/takeover');
  };
  const ctl: import('../daemon/control.js').DaemonControl = {
    info: () => ({
      version: { package_ver: NYDUSD_VERSION, git_commit: 'nydus-ts', build_time: '', profile: 'release', rustc: `node ${process.version}` },
      id: id ?? null,
      supervisor: socket,
      state,
      backend_collection: {},
    }),
    setLogLevel: waiting,
    events: () => ({ max_errors: 0, total_errors: 0, max_size: 0, total_size: 0, errors: [] }),
    mount: waiting,
    remount: waiting,
    umount: waiting,
    backendInfo: waiting,
    metrics: waiting,
    getConfig: waiting,
    updateConfig: waiting,
    getBlobObjects: waiting,
    createBlobObject: waiting,
    deleteBlobObject: waiting,
    prometheus: async () => '',
    exit: () => resolveDone(),
    takeover: async () => {
      await requestTakeover(socket, id);
      state = 'RUNNING';
      // Let the 204 go out first; the new child re-binds the socket path itself.
      setImmediate(resolveDone);
    },
  };
  await (await import('../api/server.js')).startApiServer(ctl, apisock);
  const stop = (): void => resolveDone();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  await done;
  // Exit without closing the server: closing unlinks the socket path, which the serving child may
  // have bound again by now (same --apisock).
  process.exit(0);
}
