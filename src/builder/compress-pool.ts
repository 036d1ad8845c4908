// A small worker_threads pool that reads, digests and compresses chunks off the main thread.
// A job is a batch of chunks (~1 MiB of small files, or one big chunk): one message each way per
// batch, not per chunk, since postMessage round trips dominated the hand-off for small files. A
// chunk is either a byte range of a file, which the worker reads itself (so file I/O never runs on
// the main thread), or a buffer (tar streams), transferred — never a view into a larger buffer:
// posting a subarray clones the whole backing store (dependencies.md §6). Results come back in
// completion order; callers that need a deterministic order (the chunk pipeline) await them in
// submission order.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Compressor, Digester } from '../format/constants.js';
import { NydusError } from '../util/errors.js';

/** One chunk to process: a file byte range (read by the worker) or bytes in hand. */
export type ChunkSource = (
  | { path: Uint8Array; offset: number; length: number; name: string; fileSize: number }
  | { data: Uint8Array }
) & {
  /** Digest and CRC only, no compression (a chunk that goes into a --batch-size batch). */
  raw?: boolean;
};

/** Wire format of a job: item i is a file range when offsets[i] >= 0, else the next of `bufs`. */
export interface ChunkJob {
  id: number;
  compressor: Compressor;
  digester: Digester;
  lengths: number[];
  offsets: number[];
  /** Path bytes of all file items, concatenated; item i's path ends at pathEnds[i]. */
  paths: Uint8Array;
  pathEnds: number[];
  bufs: ArrayBuffer[];
  /** raw[i] = 1: item i is not compressed (absent when no item is raw). */
  raw?: Uint8Array;
  /** Compression only: no digest, no CRC (--batch-size batches). */
  compressOnly?: boolean;
}

/** Wire format of a result. Item i: digest at 32·i, meta[3i..3i+2] = crc32, compressed, end of its stored bytes in `data`. */
export type ChunkJobResult =
  | { id: number; digests: ArrayBuffer; meta: ArrayBuffer; data: ArrayBuffer; error?: undefined }
  | { id: number; error: string; item: number; kind: 'io' | 'shrank' | 'other'; got?: number };

export interface ProcessedChunk {
  digest: Uint8Array;
  crc32: number;
  compressed: boolean;
  stored: Uint8Array;
  uncompressedSize: number;
}

interface Pending {
  resolve: (r: ProcessedChunk[]) => void;
  reject: (e: Error) => void;
  items: ChunkSource[];
  /** Uncompressed size per item (transferred buffers read as empty afterwards). */
  lengths: number[];
  bytes: number;
  worker: number;
}

export class ChunkPool {
  readonly size: number;
  #workers: Worker[] = [];
  /** Uncompressed bytes queued per worker: new jobs go to the least loaded one. */
  #load: number[] = [];
  #rr = 0;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #failed: Error | undefined;
  #closed = false;

  constructor(size = Math.max(1, Math.min(2, availableParallelism()))) {
    this.size = size;
    for (let i = 0; i < size; i++) {
      const w = new Worker(new URL('./compress-worker.js', import.meta.url));
      w.on('message', (r: ChunkJobResult) => this.#onResult(i, r));
      w.on('error', (e) => this.#fail(new NydusError('ERR_INTERNAL', `chunk worker failed: ${e.message}`)));
      w.on('exit', (code) => {
        if (!this.#closed && code !== 0) this.#fail(new NydusError('ERR_INTERNAL', `chunk worker exited with code ${code}`));
      });
      this.#workers.push(w);
      this.#load.push(0);
    }
  }

  /**
   * Digests and compresses `data`, which must own its whole ArrayBuffer (it is transferred and
   * becomes unusable for the caller).
   */
  async process(data: Uint8Array, compressor: Compressor, digester: Digester): Promise<ProcessedChunk> {
    const [r] = await this.run([{ data }], compressor, digester);
    return r!;
  }

  /**
   * Compresses `data` off the main thread as compressChunk does (stored raw when not smaller);
   * `data` is transferred when it owns its whole buffer, else copied.
   */
  async compress(data: Uint8Array, compressor: Compressor): Promise<{ data: Uint8Array; compressed: boolean }> {
    const [r] = await this.run([{ data }], compressor, 'blake3', true);
    return { data: r!.stored, compressed: r!.compressed };
  }

  /** Reads (file items), digests and compresses a batch; results are in item order. Buffers are transferred. */
  run(items: ChunkSource[], compressor: Compressor, digester: Digester, compressOnly = false): Promise<ProcessedChunk[]> {
    if (this.#failed) return Promise.reject(this.#failed);
    if (this.#closed) return Promise.reject(new NydusError('ERR_INTERNAL', 'chunk pool is closed'));
    if (items.length === 0) return Promise.resolve([]);
    const lengths: number[] = [];
    const offsets: number[] = [];
    const pathEnds: number[] = [];
    const bufs: ArrayBuffer[] = [];
    const pathParts: Uint8Array[] = [];
    let pathLen = 0;
    let bytes = 0;
    let raw: Uint8Array | undefined;
    for (const [i, it] of items.entries()) {
      if (it.raw) (raw ??= new Uint8Array(items.length))[i] = 1;
      if ('data' in it) {
        let d = it.data;
        if (d.byteOffset !== 0 || d.byteLength !== d.buffer.byteLength || !(d.buffer instanceof ArrayBuffer)) d = d.slice();
        bufs.push(d.buffer as ArrayBuffer);
        lengths.push(d.length);
        offsets.push(-1);
      } else {
        pathParts.push(it.path);
        pathLen += it.path.length;
        lengths.push(it.length);
        offsets.push(it.offset);
      }
      pathEnds.push(pathLen);
      bytes += lengths[lengths.length - 1]!;
    }
    // One fresh buffer for all paths: cheap to clone, whatever pool the path Buffers came from.
    const paths = new Uint8Array(pathLen);
    let p = 0;
    for (const part of pathParts) {
      paths.set(part, p);
      p += part.length;
    }
    // Least queued bytes; ties rotate, so idle workers share the work instead of worker 0 taking all.
    let wi = this.#rr;
    for (let k = 1; k < this.#load.length; k++) {
      const i = (this.#rr + k) % this.#load.length;
      if (this.#load[i]! < this.#load[wi]!) wi = i;
    }
    this.#rr = (wi + 1) % this.#load.length;
    const id = this.#nextId++;
    const job: ChunkJob = { id, compressor, digester, lengths, offsets, paths, pathEnds, bufs, ...(raw ? { raw } : {}), ...(compressOnly ? { compressOnly } : {}) };
    return new Promise<ProcessedChunk[]>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, items, lengths, bytes, worker: wi });
      this.#load[wi]! += bytes;
      this.#workers[wi]!.postMessage(job, bufs);
    });
  }

  #onResult(wi: number, r: ChunkJobResult): void {
    const p = this.#pending.get(r.id);
    if (!p) return;
    this.#pending.delete(r.id);
    this.#load[wi]! -= p.bytes;
    if (r.error !== undefined) {
      const it = p.items[r.item];
      if (it && 'path' in it && r.kind === 'io') p.reject(new NydusError('ERR_IO', `cannot read ${it.name}: ${r.error}`));
      else if (it && 'path' in it && r.kind === 'shrank') p.reject(new NydusError('ERR_IO', `${it.name}: file shrank while building (expected ${it.fileSize} bytes, got ${r.got})`));
      else p.reject(new NydusError('ERR_COMPRESSION', `chunk processing failed: ${r.error}`));
      return;
    }
    const meta = new Uint32Array(r.meta);
    const out: ProcessedChunk[] = [];
    let start = 0;
    for (let i = 0; i < p.items.length; i++) {
      const end = meta[3 * i + 2]!;
      out.push({
        digest: new Uint8Array(r.digests, 32 * i, 32),
        crc32: meta[3 * i]!,
        compressed: meta[3 * i + 1] === 1,
        stored: new Uint8Array(r.data, start, end - start),
        uncompressedSize: p.lengths[i]!,
      });
      start = end;
    }
    p.resolve(out);
  }

  #fail(e: Error): void {
    if (this.#failed) return;
    this.#failed = e;
    for (const p of this.#pending.values()) p.reject(e);
    this.#pending.clear();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.#workers.map((w) => w.terminate()));
    this.#workers = [];
  }
}
