// A FUSE session on the main thread: mounts, starts the worker threads that serve /dev/fuse,
// answers their requests for slow work, and reports when the session is over.
//
// Events: 'init' (InitInfo), 'message' (msg, workerIndex), 'workerError' (Error), 'closed'.
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker, type TransferListItem } from 'node:worker_threads';
import { encodeOutHeader, FUSE_NOTIFY_RESEND, MAX_OPCODE, OPCODE_NAMES, OUT_HEADER_SIZE } from './abi.js';
import { DEFAULT_PROTOCOL_OPTIONS, type InitInfo, type ProtocolOptions } from './dispatch.js';
import { errnoOf } from './errno.js';
import { abortConnection, isFuseMounted, mountFuse, raiseReadahead, unmountFuse, unmountFuseSync, withTimeout, type MountOptions, type UnmountStep } from './mount.js';
import type { MainMessage, WorkerData, WorkerMessage } from './worker.js';
import { logger } from '../util/log.js';

const log = logger('fuse');

export interface RequestSource {
  workerIndex: number;
}

export interface SessionOptions {
  /** File URL (string or URL) of a compiled ESM module exporting createFileSystem(initData, ctx). */
  fsModule: string | URL;
  /** Structured-cloned into every worker; SharedArrayBuffers inside are shared, not copied. */
  initData?: unknown;
  /** Worker threads serving /dev/fuse. Default: max(2, cores) — one worker has much worse latency. */
  workers?: number;
  protocol?: Partial<ProtocolOptions>;
  mount?: MountOptions;
  /** Answers WorkerContext.request(). Return withTransfer(value, list) to move buffers instead of copying. */
  onRequest?: (msg: unknown, from: RequestSource) => unknown;
  /** Receives WorkerContext.postToMain() messages (also emitted as 'message'). */
  onMessage?: (msg: unknown, from: RequestSource) => void;
  /** Time allowed for workers to load and the kernel's INIT to be answered. Default 10 s. */
  initTimeoutMs?: number;
  /** Readahead window set on the mount after INIT (raiseReadahead); default: the protocol's maxReadahead. 0 = leave the kernel's. */
  readahead?: number;
}

export interface SessionStats {
  /** Requests per opcode name (only opcodes seen). */
  requests: Record<string, number>;
  /** Error replies per opcode name. */
  errors: Record<string, number>;
  total: number;
}

const kTransfer = Symbol('fuse.transfer');
interface TransferReply {
  [kTransfer]: true;
  value: unknown;
  transfer: TransferListItem[];
}

/** Wrap an onRequest result so `transfer` buffers are moved to the worker instead of copied. */
export function withTransfer(value: unknown, transfer: TransferListItem[]): TransferReply {
  return { [kTransfer]: true, value, transfer };
}

/** FuseSession.adopt extras. */
export interface AdoptOptions {
  /** Ask the kernel to resend what an earlier server read but never answered. Default: when `init` is given. */
  resend?: boolean;
  /** Awaited (workers loaded, not yet reading) before resending and serving: e.g. until the old server is dead. */
  gate?: () => Promise<void>;
}

export class FuseSession extends EventEmitter {
  readonly mountpoint: string;
  readonly connId: number | undefined;
  init: InitInfo | undefined;
  /** Resolves once every worker has exited and the device fd is closed. */
  readonly closed: Promise<void>;
  private readonly statsBuf = new SharedArrayBuffer(8 * 2 * (MAX_OPCODE + 1));
  private readonly workers: Worker[] = [];
  private alive = 0;
  private fdOpen = true;
  /** Set for a session on a connection another process mounted (failover): its INIT, if already answered. */
  private adopted: { init: InitInfo | undefined; resend: boolean; gate: (() => Promise<void>) | undefined } | undefined;
  private resolveClosed!: () => void;

  private constructor(
    private readonly fd: number,
    mountpoint: string,
    connId: number | undefined,
    private readonly opts: SessionOptions,
  ) {
    super();
    this.mountpoint = mountpoint;
    this.connId = connId;
    this.closed = new Promise((r) => (this.resolveClosed = r));
  }

  /** Mounts at `mountpoint`, starts the workers and resolves after the kernel's INIT was answered. */
  static async mount(mountpoint: string, opts: SessionOptions): Promise<FuseSession> {
    const m = mountFuse(mountpoint, opts.mount);
    const s = new FuseSession(m.fd, m.mountpoint, m.connId, opts);
    try {
      await withTimeout(s.start(), opts.initTimeoutMs ?? 10_000, `FUSE init on ${m.mountpoint}`);
    } catch (e) {
      unmountFuseSync(s.mountpoint, s.connId);
      await withTimeout(s.closed, 5000, 'worker shutdown').catch(() => s.terminateWorkers());
      throw e;
    }
    return s;
  }

  /**
   * Serves a connection mounted by another process (a supervisor holding the /dev/fuse fd, which
   * this process inherited as `fd`). With `init` (the connection's INIT was answered by an earlier
   * server that died or is being replaced), the workers skip INIT and the kernel is asked to resend
   * every request the earlier server had read but not answered (FUSE_NOTIFY_RESEND) before they
   * start reading. Without it, this is the first server and answers INIT as usual. Ending such a
   * session (all workers gone) only closes this process's fd; the mount belongs to the supervisor.
   */
  static async adopt(fd: number, mountpoint: string, connId: number | undefined, init: InitInfo | undefined, opts: SessionOptions & AdoptOptions): Promise<FuseSession> {
    const s = new FuseSession(fd, mountpoint, connId, opts);
    s.adopted = { init, resend: opts.resend ?? init !== undefined, gate: opts.gate };
    try {
      // Generous: users already wait for this takeover, and a slow start beats a failed one.
      await withTimeout(s.start(), opts.initTimeoutMs ?? 60_000, `FUSE takeover of ${mountpoint}`);
    } catch (e) {
      s.terminateWorkers();
      throw e;
    }
    return s;
  }

  /** Asks the kernel to queue again the requests read from this connection but never answered. */
  private requestResend(): boolean {
    const b = Buffer.alloc(OUT_HEADER_SIZE);
    // A notification: unique 0, the code in the error field (positive, so not via errno negation).
    encodeOutHeader(b, OUT_HEADER_SIZE, -FUSE_NOTIFY_RESEND, 0n);
    try {
      fs.writeSync(this.fd, b);
      return true;
    } catch (e) {
      log.warn(`FUSE_NOTIFY_RESEND on ${this.mountpoint} failed: ${(e as Error).message}`);
      return false;
    }
  }

  private start(): Promise<void> {
    const n = Math.max(1, this.opts.workers ?? Math.max(2, availableParallelism()));
    const protocol: ProtocolOptions = { ...DEFAULT_PROTOCOL_OPTIONS, ...this.opts.protocol };
    const adoptInit = this.adopted?.init;
    return new Promise<void>((resolve, reject) => {
      this.once('init', () => resolve());
      this.once('startFailed', (e: Error) => reject(e));
      let ready = 0;
      const onReady = (): void => {
        if (++ready < n || !adoptInit) return;
        // Every worker is loaded and holding. Once the previous server is gone (gate), re-queue what
        // it had taken, then serve. Kernels before 7.40 (6.9) lack FUSE_NOTIFY_RESEND: requests the
        // old server held then stay unanswered until the connection ends.
        void (this.adopted!.gate?.() ?? Promise.resolve()).then(() => {
          if (this.adopted!.resend && adoptInit.kernelMinor >= 40) this.requestResend();
          for (const w of this.workers) w.postMessage({ t: 'go' } satisfies MainMessage);
          this.init = adoptInit;
          this.emit('init', adoptInit);
        }, (e: unknown) => this.emit('startFailed', e instanceof Error ? e : new Error(String(e))));
      };
      this.on('workerReady', onReady);
      const spawn = (i: number): void => {
        const data: WorkerData = {
          fd: this.fd,
          fsModule: String(this.opts.fsModule),
          initData: this.opts.initData,
          protocol,
          stats: this.statsBuf,
          workerIndex: i,
          // The kernel insists on room for max_write plus the largest header (FUSE_MIN_READ_BUFFER slack).
          bufSize: protocol.maxWrite + 8192,
          ...(adoptInit ? { adopt: adoptInit, hold: true } : {}),
        };
        const w = new Worker(new URL('./worker.js', import.meta.url), { workerData: data });
        this.alive++;
        w.on('message', (m: WorkerMessage) => this.onWorkerMessage(w, i, m));
        w.on('error', (e) => {
          log.error(`worker ${i}: ${e.message}`);
          this.emit('workerError', e);
          this.emit('startFailed', e);
        });
        w.on('exit', () => this.onWorkerExit());
        this.workers.push(w);
      };
      // The first worker answers INIT alone; loading the others at the same time would only slow
      // it down on a small machine (every worker imports the filesystem code), so they follow.
      this.once('firstReady', () => {
        for (let i = 1; i < n; i++) spawn(i);
      });
      // The previous server died before answering INIT: have the kernel queue INIT again.
      if (!adoptInit && this.adopted?.resend) this.requestResend();
      spawn(0);
      if (adoptInit) for (let i = 1; i < n; i++) spawn(i); // no INIT to answer: load all at once
    });
  }

  private onWorkerMessage(w: Worker, workerIndex: number, m: WorkerMessage): void {
    switch (m.t) {
      case 'init':
        if (!this.init) {
          this.init = m.info as InitInfo;
          const ra = this.opts.readahead ?? this.opts.protocol?.maxReadahead ?? DEFAULT_PROTOCOL_OPTIONS.maxReadahead;
          if (ra > 0 && raiseReadahead(this.mountpoint, ra)) log.debug(`readahead of ${this.mountpoint} raised to ${ra >> 10} KiB`);
          this.emit('init', this.init);
        }
        return;
      case 'req':
        void this.answer(w, workerIndex, m.id, m.msg);
        return;
      case 'msg':
        this.opts.onMessage?.(m.msg, { workerIndex });
        this.emit('message', m.msg, workerIndex);
        return;
      case 'fatal': {
        const e = new Error(`worker ${workerIndex}: ${m.message}`);
        log.error(e.message);
        this.emit('workerError', e);
        this.emit('startFailed', e);
        return;
      }
      case 'ready':
        if (!this.adopted?.init) this.emit('firstReady');
        this.emit('workerReady');
        return;
      case 'ended':
        return;
    }
  }

  private async answer(w: Worker, workerIndex: number, id: number, msg: unknown): Promise<void> {
    let reply: MainMessage;
    let transfer: TransferListItem[] | undefined;
    try {
      if (!this.opts.onRequest) throw new Error('no onRequest handler on the main thread');
      let value = await this.opts.onRequest(msg, { workerIndex });
      if (value && typeof value === 'object' && kTransfer in value) {
        transfer = (value as TransferReply).transfer;
        value = (value as TransferReply).value;
      }
      reply = { t: 'res', id, ok: true, value };
    } catch (e) {
      reply = { t: 'res', id, ok: false, errno: errnoOf(e), message: e instanceof Error ? e.message : String(e) };
    }
    try {
      w.postMessage(reply, transfer);
    } catch {
      /* worker already gone */
    }
  }

  private onWorkerExit(): void {
    if (--this.alive > 0) return;
    if (this.fdOpen) {
      this.fdOpen = false;
      fs.closeSync(this.fd);
    }
    // All workers gone but still mounted (crash): closing the last fd aborted the connection; drop the dead mount.
    // (Not for an adopted connection: the supervisor still holds it and starts another server.)
    if (!this.adopted && isFuseMounted(this.mountpoint)) unmountFuseSync(this.mountpoint, this.connId);
    this.emit('startFailed', new Error('all FUSE workers exited'));
    this.emit('closed');
    this.resolveClosed();
  }

  private terminateWorkers(): void {
    for (const w of this.workers) void w.terminate();
  }

  /** Per-opcode counters summed over all workers. */
  stats(): SessionStats {
    const a = new BigInt64Array(this.statsBuf);
    const out: SessionStats = { requests: {}, errors: {}, total: 0 };
    for (let op = 0; op <= MAX_OPCODE; op++) {
      const n = Number(Atomics.load(a, op));
      const e = Number(Atomics.load(a, MAX_OPCODE + 1 + op));
      const name = OPCODE_NAMES[op] ?? `OP${op}`;
      if (n) out.requests[name] = n;
      if (e) out.errors[name] = e;
      out.total += n;
    }
    return out;
  }

  get isClosed(): boolean {
    return this.alive === 0;
  }

  /** umount → umount -l → abort, then waits for the workers to see ENODEV and exit. */
  async unmount(timeoutMs = 5000): Promise<UnmountStep> {
    if (this.isClosed) return 'none';
    const step = await unmountFuse(this.mountpoint, this.connId, timeoutMs);
    try {
      await withTimeout(this.closed, timeoutMs, `FUSE session end on ${this.mountpoint}`);
    } catch (e) {
      // The superblock can outlive our umount (a copy of the mount in another mount namespace), and
      // then the workers stay blocked in read(2): no terminate() reaches them and process.exit()
      // would wait for them forever. Ending the connection wakes them with ENODEV.
      if (step !== 'abort' && abortConnection(this.connId)) {
        log.warn(`${this.mountpoint}: the connection outlived the unmount; aborted it`);
        const ended = await withTimeout(this.closed, timeoutMs, 'FUSE session end after abort').then(() => true, () => false);
        if (ended) return 'abort';
      }
      // Workers stuck (should not happen after abort): force them down so the process can exit.
      this.terminateWorkers();
      throw e;
    }
    return step;
  }

  /** For process 'exit' handlers, where nothing asynchronous runs any more. */
  unmountSync(): UnmountStep {
    if (this.isClosed) return 'none';
    return unmountFuseSync(this.mountpoint, this.connId);
  }
}

/**
 * Makes a daemon exit leave no hung mount: on 'exit' unmount synchronously; on SIGTERM/SIGINT
 * unmount, then exit with 128+signal. Returns a function removing the handlers.
 * (SIGKILL cannot be caught; then the kernel aborts the connection when our /dev/fuse fd closes,
 * and accesses fail with ENOTCONN instead of hanging until someone unmounts.)
 */
export function installExitHandlers(sessions: FuseSession | FuseSession[]): () => void {
  const list = Array.isArray(sessions) ? sessions : [sessions];
  const onExit = (): void => {
    for (const s of list) s.unmountSync();
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    void Promise.allSettled(list.map((s) => s.unmount())).finally(() => process.exit(128 + (sig === 'SIGINT' ? 2 : 15)));
  };
  process.on('exit', onExit);
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return () => {
    process.off('exit', onExit);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
}
