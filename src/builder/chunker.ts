// Chunking pipeline (spec §3.1–§3.4): cuts file data into chunk-size pieces, digests and compresses
// them on the worker pool, and commits them strictly in submission order: dedup lookup, else
// placement in the blob through the BlobWriter. In-flight chunks are bounded, so memory stays at
// about (maxInFlight × chunk size) whatever the input size.
import { open } from 'node:fs/promises';
import type { BlobInfo } from '../format/blob-info.js';
import type { ChunkInfo } from '../format/chunk-info.js';
import type { Compressor, Digester } from '../format/constants.js';
import { NydusError } from '../util/errors.js';
import type { ChunkPool, ProcessedChunk } from './compress-pool.js';
import type { ChunkDedup } from './dedup.js';

/** The part of BlobWriter the pipeline needs. */
export interface ChunkSink {
  addChunk(c: { digest: Uint8Array; uncompressedSize: number; stored: Uint8Array; compressed: boolean; crc32: number }): Promise<{
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
  maxInFlight?: number;
}

export class ChunkPipeline {
  readonly stats: ChunkStats = { files: 0, bytes: 0, chunks: 0, dedupChunks: 0, storedChunks: 0, storedBytes: 0 };
  #o: ChunkPipelineOptions;
  #max: number;
  #inflight = 0;
  #waiters: Array<() => void> = [];
  #tail: Promise<void> = Promise.resolve();
  #error: unknown;

  constructor(o: ChunkPipelineOptions) {
    this.#o = o;
    this.#max = o.maxInFlight ?? Math.max(4, o.pool.size * 3);
  }

  /** Chunks a file on disk of `size` bytes; its chunks are appended to `out` as they commit. */
  async addFile(path: string | Buffer, size: number, out: ChunkInfo[], name: string): Promise<void> {
    this.stats.files++;
    if (size === 0) return;
    const fh = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
      throw new NydusError('ERR_IO', `cannot read ${name}: ${e.code ?? e.message}`);
    });
    try {
      const cs = this.#o.chunkSize;
      for (let off = 0; off < size; off += cs) {
        const piece = new Uint8Array(Math.min(cs, size - off));
        let got = 0;
        while (got < piece.length) {
          const { bytesRead } = await fh.read(piece, got, piece.length - got, off + got).catch((e: NodeJS.ErrnoException) => {
            throw new NydusError('ERR_IO', `cannot read ${name}: ${e.code ?? e.message}`);
          });
          if (bytesRead === 0) throw new NydusError('ERR_IO', `${name}: file shrank while building (expected ${size} bytes, got ${off + got})`);
          got += bytesRead;
        }
        await this.#submit(piece, off, out);
      }
    } finally {
      await fh.close();
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
          const len = full.length; // read before the buffer is transferred to a worker
          piece = undefined;
          fill = 0;
          await this.#submit(full, off, out);
          off += len;
        }
      }
    }
    if (piece || off !== size) throw new NydusError('ERR_BUILD', `${name}: data ends after ${off + fill} bytes, declared size is ${size}`);
  }

  async #submit(piece: Uint8Array, fileOffset: number, out: ChunkInfo[]): Promise<void> {
    if (this.#error) throw this.#error;
    while (this.#inflight >= this.#max) {
      await new Promise<void>((r) => this.#waiters.push(r));
      if (this.#error) throw this.#error;
    }
    this.#inflight++;
    this.stats.bytes += piece.length; // before process() transfers (detaches) the buffer
    this.stats.chunks++;
    const job = this.#o.pool.process(piece, this.#o.compressor, this.#o.digester);
    job.catch(() => {}); // awaited in order below; avoid an unhandled rejection meanwhile
    this.#tail = this.#tail
      .then(async () => {
        if (this.#error) return;
        const r = await job;
        out.push(await this.#commit(r, fileOffset));
      })
      .catch((e: unknown) => {
        this.#error ??= e;
      })
      .finally(() => {
        this.#inflight--;
        if (this.#error) for (const w of this.#waiters.splice(0)) w();
        else this.#waiters.shift()?.();
      });
  }

  async #commit(r: ProcessedChunk, fileOffset: number): Promise<ChunkInfo> {
    const hit = this.#o.dedup.lookup(r.digest);
    if (hit) {
      this.stats.dedupChunks++;
      return { ...hit, fileOffset };
    }
    const blobIndex = this.#o.dedup.table.ownBlobIndex(this.#o.blobPlaceholder);
    const pl = await this.#o.sink.addChunk({ digest: r.digest, uncompressedSize: r.uncompressedSize, stored: r.stored, compressed: r.compressed, crc32: r.crc32 });
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
    let t: Promise<void>;
    do {
      t = this.#tail;
      await t;
    } while (t !== this.#tail);
    if (this.#error) throw this.#error;
  }
}
