// dummycache / "": no local cache, every read goes to the backend (merged up to the batch size).
// Upstream: storage/src/cache/dummycache.rs.
//
// The kernel asks for a chunk in readahead-sized pieces (128 KiB by default, 1 MiB chunks), so without
// memory of the last chunks each piece would fetch and decompress the whole chunk again. So: one
// fetch per chunk however many readers wait for it (in-flight map), and the last few decoded chunks
// (verified when validation is on) kept in a small LRU.
import type { BlobInfo } from '../../format/blob-info.js';
import type { ChunkInfo } from '../../format/chunk-info.js';
import type { BlobBackend } from '../backend/backend.js';
import type { BlobMeta } from '../../format/blob/index.js';
import { BatchInflateCache, DEFAULT_MERGE_SIZE, checkChunkRecord, loadBlobMetaFromBackend, needsBlobMeta, readChunksFromBackend } from '../blob-io.js';
import type { UserIoGate } from '../io-gate.js';
import { countFetchError, newBlobCacheMetrics, type BlobCache, type BlobCacheMetrics, type CacheView, type ReadChunksOptions } from './blob-cache.js';

/** Decoded chunks kept in memory by default: a sequential reader's current chunk plus readahead. */
export const NO_CACHE_KEEP_CHUNKS = 16;

export interface NoCacheOptions {
  backend: BlobBackend;
  validate?: boolean;
  mergeSize?: number;
  io?: UserIoGate;
  /** Decoded chunks kept in memory (0 = none: every read goes to the backend). */
  keepChunks?: number;
}

interface Kept {
  digest: Uint8Array;
  data: Uint8Array;
}

/**
 * A chunk's data is identified by its place in the blob (and, when validating, its digest). The
 * uncompressed place is part of it: the chunks of one batch share their compressed place.
 */
function placeKey(blob: BlobInfo, c: ChunkInfo): string {
  return `${blob.blobId}:${c.compressedOffset}:${c.compressedSize}:${c.uncompressedOffset}:${c.uncompressedSize}:${c.flags}`;
}

function sameDigest(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

export class NoCache implements BlobCache {
  readonly kind = 'dummycache';
  readonly metrics: BlobCacheMetrics = newBlobCacheMetrics();
  readonly #o: NoCacheOptions;
  readonly #keep: number;
  readonly #lru = new Map<string, Kept>();
  readonly #inflight = new Map<string, { digest: Uint8Array; p: Promise<Uint8Array> }>();
  /** Blob meta of batch blobs (their chunks are located through the CI), loaded once. */
  readonly #metas = new Map<string, Promise<BlobMeta | undefined>>();
  readonly #batches = new BatchInflateCache();

  constructor(o: NoCacheOptions) {
    this.#o = o;
    this.#keep = o.keepChunks ?? NO_CACHE_KEEP_CHUNKS;
  }

  async open(_blob: BlobInfo): Promise<void> {}

  /** A kept or in-flight copy usable for `c`: with validation only one checked against the same digest. */
  #usable(k: { digest: Uint8Array } | undefined, c: ChunkInfo): boolean {
    return k !== undefined && (!this.#o.validate || sameDigest(k.digest, c.digest));
  }

  async readChunks(blob: BlobInfo, chunks: readonly ChunkInfo[], opts: ReadChunksOptions = {}): Promise<Uint8Array[]> {
    for (const c of chunks) checkChunkRecord(blob, c);
    const out = new Array<Uint8Array | Promise<Uint8Array>>(chunks.length);
    const toFetch: ChunkInfo[] = [];
    const fetchKeys = new Map<string, number>();
    chunks.forEach((c, i) => {
      const key = placeKey(blob, c);
      const kept = this.#lru.get(key);
      if (this.#usable(kept, c)) {
        this.#lru.delete(key);
        this.#lru.set(key, kept!);
        this.metrics.hits++;
        out[i] = kept!.data;
        return;
      }
      const fl = this.#inflight.get(key);
      if (this.#usable(fl, c)) {
        this.metrics.inflightJoins++;
        out[i] = fl!.p;
        return;
      }
      if (!fetchKeys.has(key)) {
        fetchKeys.set(key, toFetch.length);
        toFetch.push(c);
      }
    });
    if (toFetch.length > 0) {
      const fetched = this.#fetch(blob, toFetch, opts);
      const keys = [...fetchKeys.keys()];
      keys.forEach((key, j) => {
        const p = fetched.then((d) => d[j]!);
        p.catch(() => undefined);
        this.#inflight.set(key, { digest: toFetch[j]!.digest, p });
      });
      void fetched.then(
        (datas) => {
          keys.forEach((key, j) => {
            this.#inflight.delete(key);
            this.#remember(key, toFetch[j]!.digest, datas[j]!);
          });
        },
        () => keys.forEach((key) => this.#inflight.delete(key)),
      );
      chunks.forEach((c, i) => {
        if (out[i] !== undefined) return;
        const j = fetchKeys.get(placeKey(blob, c))!;
        out[i] = fetched.then((d) => d[j]!);
      });
    }
    return Promise.all(out);
  }

  #fetch(blob: BlobInfo, chunks: ChunkInfo[], opts: ReadChunksOptions): Promise<Uint8Array[]> {
    const run = async (): Promise<Uint8Array[]> => {
      this.metrics.misses += chunks.length;
      const mergeSize = this.#o.mergeSize && this.#o.mergeSize > 0 ? this.#o.mergeSize : DEFAULT_MERGE_SIZE;
      try {
        return await readChunksFromBackend(
          this.#o.backend,
          blob,
          chunks,
          mergeSize,
          {
            validate: this.#o.validate ?? false,
            batches: this.#batches,
            ...(opts.signal ? { signal: opts.signal } : {}),
            onBackendRead: (n) => {
              this.metrics.backendReads++;
              this.metrics.backendBytes += n;
            },
          },
          needsBlobMeta(blob) ? await this.#meta(blob) : undefined,
        );
      } catch (err) {
        countFetchError(this.metrics, err);
        throw err;
      }
    };
    return this.#o.io ? this.#o.io.run(run) : run();
  }

  #meta(blob: BlobInfo): Promise<BlobMeta | undefined> {
    let p = this.#metas.get(blob.blobId);
    if (!p) {
      p = loadBlobMetaFromBackend(this.#o.backend, blob);
      this.#metas.set(blob.blobId, p);
      p.catch(() => this.#metas.delete(blob.blobId));
    }
    return p;
  }

  #remember(key: string, digest: Uint8Array, data: Uint8Array): void {
    if (this.#keep <= 0) return;
    this.#lru.delete(key);
    this.#lru.set(key, { digest, data });
    while (this.#lru.size > this.#keep) this.#lru.delete(this.#lru.keys().next().value!);
  }

  /** Nothing to fill: prefetching without a cache would only waste bandwidth. */
  async prefetch(_blob: BlobInfo, _chunks: readonly ChunkInfo[]): Promise<void> {}

  isReady(_blob: BlobInfo, _chunk: ChunkInfo | number): boolean {
    return false;
  }

  view(_blob: BlobInfo): CacheView | undefined {
    return undefined;
  }

  async close(): Promise<void> {
    this.#lru.clear();
  }
}
