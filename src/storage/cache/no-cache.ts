// dummycache / "": no local cache, every read goes to the backend (merged up to the batch size).
// Upstream: storage/src/cache/dummycache.rs.
import type { BlobInfo } from '../../format/blob-info.js';
import type { ChunkInfo } from '../../format/chunk-info.js';
import type { BlobBackend } from '../backend/backend.js';
import type { BlobMeta } from '../../format/blob/index.js';
import { BatchInflateCache, DEFAULT_MERGE_SIZE, loadBlobMetaFromBackend, needsBlobMeta, readChunksFromBackend } from '../blob-io.js';
import type { UserIoGate } from '../io-gate.js';
import { countFetchError, newBlobCacheMetrics, type BlobCache, type BlobCacheMetrics, type CacheView, type ReadChunksOptions } from './blob-cache.js';

export interface NoCacheOptions {
  backend: BlobBackend;
  validate?: boolean;
  mergeSize?: number;
  io?: UserIoGate;
}

export class NoCache implements BlobCache {
  readonly kind = 'dummycache';
  readonly metrics: BlobCacheMetrics = newBlobCacheMetrics();
  readonly #o: NoCacheOptions;
  /** Blob meta of batch blobs (their chunks are located through the CI), loaded once. */
  readonly #metas = new Map<string, Promise<BlobMeta | undefined>>();
  readonly #batches = new BatchInflateCache();

  constructor(o: NoCacheOptions) {
    this.#o = o;
  }

  async open(_blob: BlobInfo): Promise<void> {}

  async readChunks(blob: BlobInfo, chunks: readonly ChunkInfo[], opts: ReadChunksOptions = {}): Promise<Uint8Array[]> {
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

  /** Nothing to fill: prefetching without a cache would only waste bandwidth. */
  async prefetch(_blob: BlobInfo, _chunks: readonly ChunkInfo[]): Promise<void> {}

  isReady(_blob: BlobInfo, _chunk: ChunkInfo | number): boolean {
    return false;
  }

  view(_blob: BlobInfo): CacheView | undefined {
    return undefined;
  }

  async close(): Promise<void> {}
}
