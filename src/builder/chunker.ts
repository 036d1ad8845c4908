// Chunking pipeline (spec §3.1–§3.4): cuts file data into chunk-size pieces, has the worker pool
// read, digest and compress them, and commits them strictly in submission order: dedup lookup,
// else placement in the blob through the BlobWriter. Chunks are queued in batches of about
// BATCH_BYTES (many small files per worker message); many batches are in flight at once, so
// reading runs ahead of compression, bounded by maxInFlightBytes of uncompressed data whatever the
// input size. The commit order (and so the blob layout) is the plain file/chunk order, as if each
// chunk were processed alone.
import type { BlobInfo } from '../format/blob-info.js';
import type { ChunkInfo } from '../format/chunk-info.js';
import type { Compressor, Digester } from '../format/constants.js';
import { NydusError } from '../util/errors.js';
import type { ChunkPool, ChunkSource, ProcessedChunk } from './compress-pool.js';
import type { ChunkDedup } from './dedup.js';

/** The part of BlobWriter the pipeline needs. */
export interface ChunkSink {
  addChunk(c: { digest: Uint8Array; uncompressedSize: number; stored: Uint8Array; compressed: boolean; crc32: number; batch?: boolean }): Promise<{
    index: number;
    compressedOffset: number;
    uncompressedOffset: number;
    compressedSize: number;
    flags: number;
  }>;
}

export interface ChunkStats {
  /** Regular files whose data went through the pipeline. */
  files: number;
  /** Uncompressed bytes read from those files. */
  bytes: number;
  /** Chunk references created. */
  chunks: number;
  /** Chunk references satisfied by an existing chunk (this build, parent or chunk dict). */
  dedupChunks: number;
  /** Chunks written to this build's blob. */
  storedChunks: number;
  /** Bytes written for those chunks. */
  storedBytes: number;
}

export interface ChunkPipelineOptions {
  pool: ChunkPool;
  dedup: ChunkDedup;
  sink: ChunkSink;
  chunkSize: number;
  compressor: Compressor;
  digester: Digester;
  /** Blob table entry to reserve for this build's blob when its first chunk is stored. */
  blobPlaceholder: () => BlobInfo;
  /** Batches (worker jobs) in flight. */
  maxInFlight?: number;
  /** Uncompressed bytes in flight (read ahead, queued or being compressed); default max(32 MiB, 6 chunks). */
  maxInFlightBytes?: number;
  /** --batch-size (0 = off): single-chunk files under half of it go into batch chunks. */
  batchSize?: number;
}

/** A worker message carries about this much data: amortises the hand-off over many small files. */
const BATCH_BYTES = 1 << 20;
/** …and at most this many chunks (bounds per-batch bookkeeping for tiny files). */
const BATCH_ITEMS = 512;

interface Item {
  src: ChunkSource;
  out: ChunkInfo[];
  fileOffset: number;
}

export class ChunkPipeline {
  readonly stats: ChunkStats = { files: 0, bytes: 0, chunks: 0, dedupChunks: 0, storedChunks: 0, storedBytes: 0 };
  #o: ChunkPipelineOptions;
  #max: number;
  #maxBytes: number;
  #inflight = 0;
  #inflightBytes = 0;
  #batch: Item[] = [];
  #batchBytes = 0;
  #waiters: Array<() => void> = [];
  #tail: Promise<void> = Promise.resolve();
  #error: unknown;

  constructor(o: ChunkPipelineOptions) {
    this.#o = o;
    this.#max = o.maxInFlight ?? Math.max(4, o.pool.size * 16);
    this.#maxBytes = o.maxInFlightBytes ?? Math.max(32 << 20, 6 * o.chunkSize);
  }

  /**
   * Chunks a file on disk of `size` bytes; its chunks are appended to `out` as they commit. The
   * workers read the file later (only `size` bytes; a shorter file fails the build), so this
   * usually returns before any data is read: read errors surface from a later call or flush().
   */
  async addFile(path: string | Buffer, size: number, out: ChunkInfo[], name: string): Promise<void> {
    if (this.#error) throw this.#error;
    this.stats.files++;
    if (size === 0) return;
    const bytes = typeof path === 'string' ? Buffer.from(path) : path;
    const cs = this.#o.chunkSize;
    const raw = this.#batched(size);
    for (let off = 0; off < size; off += cs) {
      const length = Math.min(cs, size - off);
      await this.#submit({ src: { path: bytes, offset: off, length, name, fileSize: size, ...(raw ? { raw } : {}) }, out, fileOffset: off }, length);
    }
  }

  /** Chunks exactly `size` bytes from `src` (e.g. a tar entry body). */
  async addStream(src: AsyncIterable<Uint8Array>, size: number, out: ChunkInfo[], name: string): Promise<void> {
    this.stats.files++;
    const cs = this.#o.chunkSize;
    let off = 0;
    let piece: Uint8Array | undefined;
    let fill = 0;
    for await (const buf of src) {
      let p = 0;
      while (p < buf.length) {
        if (off + fill >= size && !piece) throw new NydusError('ERR_BUILD', `${name}: more data than its declared size ${size}`);
        piece ??= new Uint8Array(Math.min(cs, size - off));
        const n = Math.min(piece.length - fill, buf.length - p);
        piece.set(buf.subarray(p, p + n), fill);
        fill += n;
        p += n;
        if (fill === piece.length) {
          const full = piece;
          const len = full.length;
          piece = undefined;
          fill = 0;
          await this.#submit({ src: { data: full, ...(this.#batched(size) ? { raw: true } : {}) }, out, fileOffset: off }, len);
          off += len;
        }
      }
    }
    if (piece || off !== size) throw new NydusError('ERR_BUILD', `${name}: data ends after ${off + fill} bytes, declared size is ${size}`);
  }

  /** Upstream's rule: a file of exactly one chunk smaller than half the batch size is batched. */
  #batched(fileSize: number): boolean {
    const b = this.#o.batchSize ?? 0;
    return b > 0 && fileSize <= this.#o.chunkSize && fileSize * 2 < b;
  }

  async #submit(item: Item, length: number): Promise<void> {
    if (this.#error) throw this.#error;
    this.stats.bytes += length;
    this.stats.chunks++;
    this.#batch.push(item);
    this.#batchBytes += length;
    if (this.#batchBytes >= BATCH_BYTES || this.#batch.length >= BATCH_ITEMS) await this.#dispatch();
  }

  /** Sends the open batch to the pool once the in-flight limits allow; its commit joins the `#tail` chain. */
  async #dispatch(): Promise<void> {
    const items = this.#batch;
    const bytes = this.#batchBytes;
    this.#batch = [];
    this.#batchBytes = 0;
    if (items.length === 0) return;
    // A batch larger than the byte limit alone still goes (when nothing else is in flight).
    while (!this.#error && (this.#inflight >= this.#max || (this.#inflightBytes > 0 && this.#inflightBytes + bytes > this.#maxBytes))) {
      await new Promise<void>((r) => this.#waiters.push(r));
    }
    if (this.#error) throw this.#error;
    this.#inflight++;
    this.#inflightBytes += bytes;
    const job = this.#o.pool.run(
      items.map((it) => it.src),
      this.#o.compressor,
      this.#o.digester,
    );
    job.catch(() => {}); // awaited in order below; avoid an unhandled rejection meanwhile
    this.#tail = this.#tail
      .then(async () => {
        if (this.#error) return;
        const rs = await job;
        for (let i = 0; i < items.length; i++) {
          const it = items[i]!;
          it.out.push(await this.#commit(rs[i]!, it.fileOffset, it.src.raw === true));
        }
      })
      .catch((e: unknown) => {
        this.#error ??= e;
      })
      .finally(() => {
        this.#inflight--;
        this.#inflightBytes -= bytes;
        // Only one producer waits at a time; it re-checks the limits itself.
        for (const w of this.#waiters.splice(0)) w();
      });
  }

  async #commit(r: ProcessedChunk, fileOffset: number, batch: boolean): Promise<ChunkInfo> {
    const hit = this.#o.dedup.lookup(r.digest);
    if (hit) {
      this.stats.dedupChunks++;
      return { ...hit, fileOffset };
    }
    const blobIndex = this.#o.dedup.table.ownBlobIndex(this.#o.blobPlaceholder);
    const pl = await this.#o.sink.addChunk({ digest: r.digest, uncompressedSize: r.uncompressedSize, stored: r.stored, compressed: r.compressed, crc32: r.crc32, ...(batch ? { batch } : {}) });
    const c: ChunkInfo = {
      digest: r.digest,
      blobIndex,
      flags: pl.flags,
      compressedSize: pl.compressedSize,
      uncompressedSize: r.uncompressedSize,
      compressedOffset: pl.compressedOffset,
      uncompressedOffset: pl.uncompressedOffset,
      fileOffset,
      index: pl.index,
      crc32: r.crc32,
    };
    this.#o.dedup.add(c);
    this.stats.storedChunks++;
    this.stats.storedBytes += pl.compressedSize;
    return c;
  }

  /** Waits until every submitted chunk is committed; rethrows the first failure. */
  async flush(): Promise<void> {
    await this.#dispatch();
    let t: Promise<void>;
    do {
      t = this.#tail;
      await t;
    } while (t !== this.#tail);
    if (this.#error) throw this.#error;
  }
}
