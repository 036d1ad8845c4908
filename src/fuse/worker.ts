// Worker thread entry: loads the filesystem module, then serves /dev/fuse.
//
// Loop design (the fast path must not pay for the slow one):
// - While nothing is pending, the worker blocks in read(2) on /dev/fuse (readSync). That is the
//   cheapest way to wait: no event-loop turn and no thread-pool hop per request (≈23 µs round trip).
// - When a filesystem method returns a Promise (slow path) or a main-thread request is outstanding,
//   a blocking read would freeze this thread's event loop and starve that Promise. So the worker
//   switches to fs.read() on the libuv pool: its event loop keeps running, the Promise settles and
//   its reply is written, while the next request can still arrive and be served at once.
// - As soon as nothing is pending after a request, it goes back to blocking reads.
// Every worker uses at most one pool thread this way; libuv's pool (UV_THREADPOOL_SIZE, default 4)
// is per process, so keep workers-in-async-mode below that or raise it in the daemon.
import { parentPort, workerData } from 'node:worker_threads';
import { FuseChannel, SESSION_ENDED } from './channel.js';
import { Dispatcher, type InitInfo, type ProtocolOptions } from './dispatch.js';
import { FsError } from './errno.js';
import type { FileSystemModule, LowLevelFileSystem, Transferable, WorkerContext } from './filesystem.js';

export interface WorkerData {
  fd: number;
  fsModule: string;
  initData: unknown;
  protocol: ProtocolOptions;
  stats: SharedArrayBuffer;
  workerIndex: number;
  bufSize: number;
  /** Failover: the connection's INIT was answered by an earlier server; use what it negotiated. */
  adopt?: InitInfo;
  /** Do not read /dev/fuse before the main thread says 'go' (after it asked the kernel to resend). */
  hold?: boolean;
}

/** Worker → main messages. */
export type WorkerMessage =
  | { t: 'ready' }
  | { t: 'init'; info: unknown }
  | { t: 'req'; id: number; msg: unknown }
  | { t: 'msg'; msg: unknown }
  | { t: 'ended'; writeErrors: number }
  | { t: 'fatal'; message: string };

/** Main → worker messages. */
export type MainMessage =
  | { t: 'res'; id: number; ok: true; value: unknown }
  | { t: 'res'; id: number; ok: false; errno?: number; message: string }
  | { t: 'go' };

const port = parentPort!;
const wd = workerData as WorkerData;
const chan = new FuseChannel(wd.fd);
const buf = Buffer.allocUnsafe(wd.bufSize);
let dispatcher: Dispatcher | undefined;
let fsImpl: LowLevelFileSystem | undefined;

// Main-thread request/response: request ids are per worker.
let nextId = 1;
const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
let go: (() => void) | undefined;
port.on('message', (m: MainMessage) => {
  if (m.t === 'go') return go?.();
  if (m.t !== 'res') return;
  const w = waiting.get(m.id);
  if (!w) return;
  waiting.delete(m.id);
  if (m.ok) w.resolve(m.value);
  else w.reject(m.errno !== undefined ? new FsError(m.errno, m.message) : new Error(m.message));
});

const ctx: WorkerContext = {
  workerIndex: wd.workerIndex,
  postToMain(msg: unknown, transfer?: Transferable[]) {
    port.postMessage({ t: 'msg', msg } satisfies WorkerMessage, transfer);
  },
  request<T>(msg: unknown, transfer?: Transferable[]): Promise<T> {
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      port.postMessage({ t: 'req', id, msg } satisfies WorkerMessage, transfer);
    });
  },
};

function busy(): boolean {
  return dispatcher!.pending > 0 || waiting.size > 0;
}

function serveOne(n: number): void {
  try {
    dispatcher!.handle(buf, n);
  } catch (e) {
    // A dispatcher bug must not kill the worker (the kernel would wait forever for this reply).
    port.postMessage({ t: 'fatal', message: `dispatch: ${(e as Error).stack ?? String(e)}` } satisfies WorkerMessage);
  }
}

function pump(): void {
  while (!chan.ended) {
    if (busy()) return readAsync();
    const n = chan.readSync(buf);
    if (n === SESSION_ENDED) break;
    serveOne(n);
  }
  finish();
}

function readAsync(): void {
  chan.read(buf, (err, n) => {
    if (err) {
      port.postMessage({ t: 'fatal', message: `read /dev/fuse: ${String(err)}` } satisfies WorkerMessage);
      return finish();
    }
    if (n === SESSION_ENDED) return finish();
    serveOne(n);
    pump();
  });
}

function finish(): void {
  if (dispatcher && !dispatcher.destroyed) {
    try {
      fsImpl?.destroy?.();
    } catch {
      /* ignore: the session is over */
    }
  }
  port.postMessage({ t: 'ended', writeErrors: chan.writeErrors } satisfies WorkerMessage);
  // Pending timers or fetches of the filesystem must not keep a dead session's thread alive.
  process.exit(0);
}

async function start(): Promise<void> {
  const mod = (await import(wd.fsModule)) as FileSystemModule;
  if (typeof mod.createFileSystem !== 'function') throw new Error(`${wd.fsModule} does not export createFileSystem`);
  fsImpl = await mod.createFileSystem(wd.initData, ctx);
  dispatcher = new Dispatcher(fsImpl, wd.protocol, chan, new BigInt64Array(wd.stats));
  dispatcher.onInit = (info) => port.postMessage({ t: 'init', info } satisfies WorkerMessage);
  if (wd.adopt) dispatcher.adoptInit(wd.adopt);
  const started = wd.hold ? new Promise<void>((r) => (go = r)) : undefined;
  port.postMessage({ t: 'ready' } satisfies WorkerMessage);
  if (started) await started;
  pump();
}

start().catch((e: unknown) => {
  port.postMessage({ t: 'fatal', message: `worker start: ${(e as Error).stack ?? String(e)}` } satisfies WorkerMessage);
  process.exit(1);
});
