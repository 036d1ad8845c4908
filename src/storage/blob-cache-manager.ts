// Storage for one mount: the backend, one blob cache for all of the mount's blobs, and the
// prefetcher. Its methods match the daemon's MountStorage contract (daemon/mount-storage.ts), so
// the daemon's storage factory is `openMountStorage(blobs, config)`.
// Upstream: storage/src/factory.rs (BlobFactory) + rafs/src/fs.rs prefetch wiring.
import type { FsConfig } from '../config/daemon-config.js';
import type { BlobInfo } from '../format/blob-info.js';
import type { ChunkInfo } from '../format/chunk-info.js';
import { NydusError } from '../util/errors.js';
import { logger } from '../util/log.js';
import type { BackendMetrics, BlobBackend } from './backend/backend.js';
import { createBackend } from './backend/create-backend.js';
import type { BlobCache, BlobCacheMetrics, CacheView } from './cache/blob-cache.js';
import { FileCache } from './cache/file-cache.js';
import { NoCache } from './cache/no-cache.js';
import { UserIoGate } from './io-gate.js';
import { Prefetcher, type PrefetchOptions, type PrefetchProgress } from './prefetch.js';

const log = logger('storage');

/** Upstream raises any non-zero prefetch bandwidth limit below 16 MiB/s to 16 MiB/s (§2.5, §2.11). */
export const MIN_PREFETCH_BANDWIDTH = 16 << 20;

export interface BlobCacheManagerOptions {
  backend: BlobBackend;
  /** Normalised cache type; "fscache" is served by the file cache here. */
  cacheType: 'blobcache' | 'dummycache' | 'fscache';
  workDir: string;
  /** `cache_size_limit` in bytes, 0 = unlimited. */
  sizeLimit?: number;
  validate: boolean;
  /** User-read merge/amplification size (`amplify_io`, `rafs.batch_size`). */
  mergeSize: number;
  useBlobMeta?: boolean;
  prefetch: PrefetchOptions;
}

/** BlobCacheManager.metrics(): raw counters of the backend, the cache and prefetch. */
export interface StorageMetrics {
  backend: { type: string } & BackendMetrics;
  blobcache: { type: BlobCache['kind']; readyChunks: number; totalChunks: number; prefetch: PrefetchProgress | undefined } & BlobCacheMetrics;
}

export class BlobCacheManager {
  readonly backend: BlobBackend;
  readonly cache: BlobCache;
  readonly io = new UserIoGate();
  readonly #prefetchOpts: PrefetchOptions;
  #blobs: readonly BlobInfo[] = [];
  #prefetcher: Prefetcher | undefined;

  constructor(o: BlobCacheManagerOptions) {
    this.backend = o.backend;
    if (o.cacheType === 'fscache') log.warn('cache type "fscache" is not supported; using the file cache in the same work_dir');
    this.cache =
      o.cacheType === 'dummycache'
        ? new NoCache({ backend: o.backend, validate: o.validate, mergeSize: o.mergeSize, io: this.io })
        : new FileCache({ workDir: o.workDir, sizeLimit: o.sizeLimit ?? 0, backend: o.backend, validate: o.validate, mergeSize: o.mergeSize, useBlobMeta: o.useBlobMeta ?? true, io: this.io });
    this.#prefetchOpts = { ...o.prefetch, io: this.io };
  }

  /** Options from a normalised daemon config (creates the backend). */
  static fromConfig(cfg: FsConfig, backend: BlobBackend = createBackend(cfg.backend.type, cfg.backend.config)): BlobCacheManager {
    const p = cfg.rafs.prefetch.enable ? cfg.rafs.prefetch : cfg.cache.prefetch;
    const bw = p.bandwidthLimit > 0 ? Math.max(p.bandwidthLimit, MIN_PREFETCH_BANDWIDTH) : 0;
    return new BlobCacheManager({
      backend,
      cacheType: cfg.cache.type,
      workDir: cfg.cache.workDir,
      sizeLimit: cfg.cache.sizeLimit,
      validate: cfg.rafs.validate || cfg.cache.validate,
      mergeSize: cfg.rafs.batchSize,
      prefetch: { threads: p.threads, mergeSize: p.batchSize, bandwidthLimit: bw },
    });
  }

  /** Opens (creates or reuses) the cache files of every blob of the mount. */
  async open(blobs: readonly BlobInfo[]): Promise<void> {
    this.#blobs = blobs;
    await Promise.all(blobs.map((b) => this.cache.open(b)));
  }

  get blobs(): readonly BlobInfo[] {
    return this.#blobs;
  }

  #blob(blobIndex: number): BlobInfo {
    const b = this.#blobs[blobIndex];
    if (!b) throw new NydusError('ERR_FORMAT_INVALID', `Chunk refers to blob index ${blobIndex}, but the mount has ${this.#blobs.length} blob(s)`);
    return b;
  }

  /** Uncompressed bytes of each chunk (any blobs), in input order. */
  async readChunks(chunks: readonly ChunkInfo[]): Promise<Uint8Array[]> {
    const groups = new Map<number, number[]>();
    chunks.forEach((c, i) => {
      const g = groups.get(c.blobIndex);
      if (g) g.push(i);
      else groups.set(c.blobIndex, [i]);
    });
    const out = new Array<Uint8Array>(chunks.length);
    await Promise.all(
      [...groups].map(async ([blobIndex, idx]) => {
        const datas = await this.cache.readChunks(this.#blob(blobIndex), idx.map((i) => chunks[i]!));
        idx.forEach((i, k) => (out[i] = datas[k]!));
      }),
    );
    return out;
  }

  /** Per blob index: what workers need for warm reads (undefined without a file cache). */
  cacheViews(): Array<CacheView | undefined> {
    return this.#blobs.map((b) => this.cache.view(b));
  }

  /** Starts (or extends) background prefetch of these chunks. */
  prefetch(chunks: readonly ChunkInfo[]): void {
    if (this.cache.kind === 'dummycache') return;
    this.#prefetcher ??= new Prefetcher(this.cache, this.#prefetchOpts);
    const byBlob = new Map<number, ChunkInfo[]>();
    for (const c of chunks) {
      const g = byBlob.get(c.blobIndex);
      if (g) g.push(c);
      else byBlob.set(c.blobIndex, [c]);
    }
    this.#prefetcher.add([...byBlob].filter(([i]) => this.#blobs[i]).map(([i, cs]) => ({ blob: this.#blobs[i]!, chunks: cs })));
  }

  get prefetcher(): Prefetcher | undefined {
    return this.#prefetcher;
  }

  metrics(): StorageMetrics {
    const cache = this.cache;
    const ready = cache instanceof FileCache ? this.#blobs.reduce((n, b) => n + cache.readyCount(b), 0) : 0;
    return {
      backend: { type: this.backend.type, ...this.backend.metrics },
      blobcache: {
        type: this.cache.kind,
        ...this.cache.metrics,
        readyChunks: ready,
        totalChunks: this.#blobs.reduce((n, b) => n + b.chunkCount, 0),
        prefetch: this.#prefetcher ? { ...this.#prefetcher.progress } : undefined,
      },
    };
  }

  async close(): Promise<void> {
    await this.#prefetcher?.stop();
    await this.cache.close();
    await this.backend.close();
  }
}

/** The daemon's storage factory: backend + cache + prefetcher for one mount's blobs. */
export async function openMountStorage(blobs: readonly BlobInfo[], config: FsConfig): Promise<BlobCacheManager> {
  const m = BlobCacheManager.fromConfig(config);
  try {
    await m.open(blobs);
  } catch (e) {
    await m.close().catch(() => undefined);
    throw e;
  }
  return m;
}
