// Worker thread of the chunk pool: reads file ranges, then digest + CRC-32C + compression of each
// chunk (spec §3.2, §3.3), a batch per message. Reads are asynchronous with up to MAX_READS in
// flight (shared queue across this worker's jobs): on a cold cache the disk sees a queue instead
// of one read at a time, and reads of the next files proceed on libuv's threads while this thread
// compresses. Buffers arrive and leave as transferred ArrayBuffers, so nothing is structured-cloned.
import { close, open, read } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { compressChunk } from '../format/compress.js';
import { crc32c, digest } from '../format/digest.js';
import type { ChunkJob, ChunkJobResult } from './compress-pool.js';

const port = parentPort;
if (!port) throw new Error('compress-worker must run in a worker thread');

/** Concurrent file reads per worker (libuv's pool has 4 threads; a deeper queue keeps them busy). */
const MAX_READS = 16;

// Read buffers are recycled (power-of-two size classes, ≤ POOL_BYTES kept): a fresh ArrayBuffer per
// file left tens of MiB of garbage per worker between GCs (V8 collects external memory late),
// which showed up as ~150 MiB of peak RSS on a 100k-files build.
const POOL_BYTES = 16 << 20;
const free = new Map<number, ArrayBuffer[]>();
let pooled = 0;

function sizeClass(n: number): number {
  return n <= 4096 ? 4096 : 2 ** Math.ceil(Math.log2(n));
}

function getBuffer(len: number): Uint8Array {
  const cap = sizeClass(len);
  const ab = free.get(cap)?.pop();
  if (ab) {
    pooled -= cap;
    return new Uint8Array(ab, 0, len);
  }
  return new Uint8Array(new ArrayBuffer(cap), 0, len);
}

function putBuffer(b: Uint8Array): void {
  const cap = b.buffer.byteLength;
  if (pooled + cap > POOL_BYTES || cap !== sizeClass(cap)) return;
  let list = free.get(cap);
  if (!list) free.set(cap, (list = []));
  list.push(b.buffer as ArrayBuffer);
  pooled += cap;
}

class Task {
  readonly job: ChunkJob;
  readonly digests: Uint8Array;
  readonly meta: Uint32Array;
  readonly stored: Uint8Array[];
  /** Pooled read buffers of this batch, returned to the pool once the batch is packed. */
  readonly reads: Uint8Array[] = [];
  remaining: number;
  /** Set once an item failed: later items are still read (to settle) but not compressed. */
  failed = false;
  error: Extract<ChunkJobResult, { error: string }> | undefined;

  constructor(job: ChunkJob) {
    const n = job.lengths.length;
    this.job = job;
    this.digests = new Uint8Array(32 * n);
    this.meta = new Uint32Array(3 * n);
    this.stored = new Array<Uint8Array>(n);
    this.remaining = n;
  }

  /**
   * Records a failed item. The batch reports once every item has settled, and then its lowest
   * failing item, so the error does not depend on which read finished first.
   */
  fail(item: number, kind: 'io' | 'shrank' | 'other', error: string, got?: number): void {
    if (!this.error || item < this.error.item) this.error = { id: this.job.id, error, item, kind, ...(got !== undefined ? { got } : {}) };
    this.failed = true;
    this.#settled();
  }

  /** Digest, CRC and compression of item i; posts the batch when it was the last one. */
  process(i: number, data: Uint8Array): void {
    if (!this.failed) {
      try {
        if (!this.job.compressOnly) {
          this.digests.set(digest(data, this.job.digester).subarray(0, 32), 32 * i);
          this.meta[3 * i] = crc32c(data);
        }
        const c = this.job.raw?.[i] ? { data, compressed: false } : compressChunk(data, this.job.compressor);
        this.meta[3 * i + 1] = c.compressed ? 1 : 0;
        this.stored[i] = c.compressed ? c.data : data;
      } catch (e) {
        this.fail(i, 'other', (e as Error).message);
        return;
      }
    }
    this.#settled();
  }

  #settled(): void {
    if (--this.remaining > 0) return;
    if (this.error) port!.postMessage(this.error);
    else this.#post();
  }

  #post(): void {
    // Pack every stored chunk into one buffer: one transfer, and native compressor outputs (which
    // we may not detach) are copied exactly once.
    let total = 0;
    for (const s of this.stored) total += s.length;
    const data = new Uint8Array(total);
    let off = 0;
    for (let i = 0; i < this.stored.length; i++) {
      data.set(this.stored[i]!, off);
      off += this.stored[i]!.length;
      this.meta[3 * i + 2] = off;
    }
    for (const b of this.reads.splice(0)) putBuffer(b);
    const r: ChunkJobResult = { id: this.job.id, digests: this.digests.buffer as ArrayBuffer, meta: this.meta.buffer as ArrayBuffer, data: data.buffer as ArrayBuffer };
    port!.postMessage(r, [r.digests, r.meta, r.data]);
  }
}

const queue: Array<{ task: Task; i: number }> = [];
let reading = 0;

function pump(): void {
  while (reading < MAX_READS && queue.length > 0) {
    const { task, i } = queue.shift()!;
    reading++;
    readItem(task, i);
  }
}

/** open → read (until `length` bytes) → close; a short file is an error, extra bytes are ignored. */
function readItem(task: Task, i: number): void {
  const { job } = task;
  const path = Buffer.from(job.paths.buffer, job.paths.byteOffset + (i > 0 ? job.pathEnds[i - 1]! : 0), job.pathEnds[i]! - (i > 0 ? job.pathEnds[i - 1]! : 0));
  const len = job.lengths[i]!;
  const pos = job.offsets[i]!;
  const done = (fd: number | undefined, err: (() => void) | undefined, data?: Uint8Array): void => {
    const finish = (): void => {
      reading--;
      pump(); // queue the next reads before this thread blocks in compression
      if (err) err();
      else task.process(i, data!);
    };
    if (fd === undefined) finish();
    else close(fd, finish);
  };
  open(path, 'r', (e, fd) => {
    if (e) return done(undefined, () => task.fail(i, 'io', e.code ?? e.message));
    const buf = getBuffer(len);
    task.reads.push(buf);
    let got = 0;
    const step = (): void => {
      read(fd, buf, got, len - got, pos + got, (e2, n) => {
        if (e2) return done(fd, () => task.fail(i, 'io', e2.code ?? e2.message));
        if (n === 0) return done(fd, () => task.fail(i, 'shrank', 'short read', pos + got));
        got += n;
        if (got < len) step();
        else done(fd, undefined, buf);
      });
    };
    step();
  });
}

port.on('message', (job: ChunkJob) => {
  const task = new Task(job);
  let b = 0;
  const ready: Array<[number, Uint8Array]> = [];
  for (let i = 0; i < job.lengths.length; i++) {
    if (job.offsets[i]! >= 0) queue.push({ task, i });
    else ready.push([i, new Uint8Array(job.bufs[b++]!, 0, job.lengths[i])]);
  }
  pump();
  for (const [i, data] of ready) task.process(i, data);
});
