// A small worker_threads pool that digests and compresses chunks off the main thread. Jobs carry
// transferred ArrayBuffers (never a view into a larger buffer: posting a subarray clones the
// whole backing store, dependencies.md §6). Results come back in completion order; callers that
// need a deterministic order (the chunk pipeline) await them in submission order.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Compressor, Digester } from '../format/constants.js';
import { NydusError } from '../util/errors.js';

export interface ChunkJob {
  id: number;
  buf: ArrayBuffer;
  length: number;
  compressor: Compressor;
  digester: Digester;
}

export interface ChunkJobResult {
  id: number;
  digest: ArrayBuffer;
  crc32: number;
  compressed: boolean;
  /** Stored bytes: compressed data, or the original bytes when compression did not shrink them. */
  buf: ArrayBuffer;
  length: number;
  error?: string;
}

export interface ProcessedChunk {
  digest: Uint8Array;
  crc32: number;
  compressed: boolean;
  stored: Uint8Array;
  uncompressedSize: number;
}

interface Pending {
  resolve: (r: ProcessedChunk) => void;
  reject: (e: Error) => void;
  size: number;
  worker: number;
}

export class ChunkPool {
  readonly size: number;
  #workers: Worker[] = [];
  #load: number[] = [];
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
  process(data: Uint8Array, compressor: Compressor, digester: Digester): Promise<ProcessedChunk> {
    if (this.#failed) return Promise.reject(this.#failed);
    if (this.#closed) return Promise.reject(new NydusError('ERR_INTERNAL', 'chunk pool is closed'));
    if (data.byteOffset !== 0 || data.byteLength !== data.buffer.byteLength || !(data.buffer instanceof ArrayBuffer)) {
      const copy = new Uint8Array(data.length);
      copy.set(data);
      data = copy;
    }
    let wi = 0;
    for (let i = 1; i < this.#load.length; i++) if (this.#load[i]! < this.#load[wi]!) wi = i;
    const id = this.#nextId++;
    const job: ChunkJob = { id, buf: data.buffer as ArrayBuffer, length: data.length, compressor, digester };
    return new Promise<ProcessedChunk>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, size: data.length, worker: wi });
      this.#load[wi]!++;
      this.#workers[wi]!.postMessage(job, [job.buf]);
    });
  }

  #onResult(wi: number, r: ChunkJobResult): void {
    const p = this.#pending.get(r.id);
    if (!p) return;
    this.#pending.delete(r.id);
    this.#load[wi]!--;
    if (r.error !== undefined) {
      p.reject(new NydusError('ERR_COMPRESSION', `chunk processing failed: ${r.error}`));
      return;
    }
    p.resolve({ digest: new Uint8Array(r.digest), crc32: r.crc32, compressed: r.compressed, stored: new Uint8Array(r.buf, 0, r.length), uncompressedSize: p.size });
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
