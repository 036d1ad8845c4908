// Background prefetch (upstream-features §2.11): chunks of the bootstrap prefetch table (or the
// whole image) are fetched into the cache by `threads` workers, in merged requests of up to
// `merging_size`, throttled by a token bucket (`bandwidth_rate`, bytes/s of backend traffic, 0 =
// unlimited). User reads take priority: a worker waits while any user miss is in flight.
// Upstream: storage/src/cache/worker.rs (AsyncWorkerMgr, prefetch rate limiter).
import type { BlobInfo } from '../format/blob-info.js';
import type { ChunkInfo } from '../format/chunk-info.js';
import { logger } from '../util/log.js';
import { sleep } from './backend/retry.js';
import { DEFAULT_MERGE_SIZE, planMergedReads, type MergedRead } from './blob-io.js';
import type { BlobCache } from './cache/blob-cache.js';
import type { UserIoGate } from './io-gate.js';

const log = logger('storage:prefetch');

export interface PrefetchClock {
  /** Milliseconds, monotonic. */
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}
const REAL_CLOCK: PrefetchClock = { now: () => performance.now(), sleep };

/**
 * Token bucket over bytes. Starts empty and refills continuously at `rate` up to one second's
 * worth; a request larger than the balance goes into debt and waits it off, so long-run
 * throughput stays at `rate` whatever the request size.
 */
export class TokenBucket {
  readonly rate: number;
  #tokens = 0;
  #last: number;
  readonly #now: () => number;
  readonly #wait: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Takers are served in order so one large request cannot be starved by small ones. */
  #chain: Promise<void> = Promise.resolve();

  /** `clock` is injectable so tests measure pacing in virtual time, not on a loaded machine. */
  constructor(rate: number, clock: PrefetchClock = REAL_CLOCK) {
    this.rate = rate;
    this.#now = clock.now;
    this.#wait = clock.sleep;
    this.#last = clock.now();
  }

  take(bytes: number, signal?: AbortSignal): Promise<void> {
    if (this.rate <= 0) return Promise.resolve();
    const p = this.#chain.then(async () => {
      const t = this.#now();
      this.#tokens = Math.min(this.rate, this.#tokens + ((t - this.#last) * this.rate) / 1000);
      this.#last = t;
      this.#tokens -= bytes;
      if (this.#tokens < 0) await this.#wait((-this.#tokens / this.rate) * 1000, signal);
    });
    this.#chain = p.catch(() => undefined);
    return p;
  }
}

export interface PrefetchTask {
  blob: BlobInfo;
  chunks: readonly ChunkInfo[];
}

export interface PrefetchOptions {
  /** `threads_count` / `threads` (1–1024). */
  threads?: number;
  /** `merging_size` / `batch_size`: largest merged backend request. */
  mergeSize?: number;
  /** `bandwidth_rate` / `bandwidth_limit`, bytes/s; 0 = unlimited. */
  bandwidthLimit?: number;
  /** Gate shared with the cache's user reads. */
  io?: UserIoGate;
  /** Clock of the bandwidth limiter (tests). */
  clock?: PrefetchClock;
}

export interface PrefetchProgress {
  /** Chunks queued so far. */
  totalChunks: number;
  /** Chunks fetched by prefetch. */
  doneChunks: number;
  /** Chunks already cached (by an earlier run or a user read) when their turn came. */
  skippedChunks: number;
  failedChunks: number;
  /** Compressed bytes requested from the backend. */
  bytes: number;
  requests: number;
  running: boolean;
}

interface Item {
  blob: BlobInfo;
  read: MergedRead;
}

export class Prefetcher {
  readonly progress: PrefetchProgress = { totalChunks: 0, doneChunks: 0, skippedChunks: 0, failedChunks: 0, bytes: 0, requests: 0, running: false };
  readonly #cache: BlobCache;
  readonly #threads: number;
  readonly #mergeSize: number;
  readonly #bucket: TokenBucket;
  readonly #io: UserIoGate | undefined;
  readonly #queue: Item[] = [];
  readonly #abort = new AbortController();
  #workers: Promise<void>[] = [];
  #done: Promise<void> = Promise.resolve();

  constructor(cache: BlobCache, opts: PrefetchOptions = {}) {
    this.#cache = cache;
    this.#threads = Math.max(1, Math.min(1024, opts.threads ?? 8));
    this.#mergeSize = opts.mergeSize && opts.mergeSize > 0 ? opts.mergeSize : DEFAULT_MERGE_SIZE;
    this.#bucket = new TokenBucket(opts.bandwidthLimit ?? 0, opts.clock);
    this.#io = opts.io;
  }

  get stopped(): boolean {
    return this.#abort.signal.aborted;
  }

  /** Queues chunks (in the given order of blobs; each blob's chunks by compressed offset) and starts workers. */
  add(tasks: readonly PrefetchTask[]): void {
    if (this.stopped) return;
    for (const t of tasks) {
      const todo = t.chunks.filter((c) => !this.#cache.isReady(t.blob, c));
      this.progress.skippedChunks += t.chunks.length - todo.length;
      this.progress.totalChunks += t.chunks.length;
      for (const read of planMergedReads(todo, this.#mergeSize, 0, t.blob)) this.#queue.push({ blob: t.blob, read });
    }
    this.#start();
  }

  #start(): void {
    const want = Math.min(this.#threads, this.#queue.length) - this.#workers.length;
    for (let i = 0; i < want; i++) {
      const w: Promise<void> = this.#worker().finally(() => {
        this.#workers = this.#workers.filter((x) => x !== w);
        this.progress.running = this.#workers.length > 0;
      });
      this.#workers.push(w);
    }
    this.progress.running = this.#workers.length > 0;
    this.#done = Promise.all(this.#workers).then(() => undefined);
  }

  async #worker(): Promise<void> {
    const signal = this.#abort.signal;
    for (let item = this.#queue.shift(); item && !signal.aborted; item = this.#queue.shift()) {
      try {
        await this.#io?.whenIdle(signal);
        if (signal.aborted) break;
        await this.#bucket.take(item.read.length, signal);
        // Wait again: a user read may have started while we were throttled.
        await this.#io?.whenIdle(signal);
        const chunks = item.read.chunks.filter((c) => !this.#cache.isReady(item!.blob, c));
        this.progress.skippedChunks += item.read.chunks.length - chunks.length;
        if (chunks.length === 0) continue;
        this.progress.requests++;
        this.progress.bytes += item.read.length;
        await this.#cache.prefetch(item.blob, chunks, { signal, mergeSize: this.#mergeSize });
        this.progress.doneChunks += chunks.length;
      } catch (e) {
        if (signal.aborted) break;
        this.progress.failedChunks += item.read.chunks.length;
        log.debug(`prefetch of ${item.read.chunks.length} chunk(s) of blob ${item.blob.blobId} at ${item.read.offset} failed: ${(e as Error).message}`);
      }
    }
  }

  /** Resolves when the queue is drained (or the prefetcher is stopped). */
  async whenDone(): Promise<void> {
    while (this.#workers.length) await this.#done;
  }

  /** Stops after in-flight requests; queued work is dropped. */
  async stop(): Promise<void> {
    this.#abort.abort(new Error('prefetch stopped'));
    this.#queue.length = 0;
    await Promise.allSettled(this.#workers);
    this.progress.running = false;
  }
}
