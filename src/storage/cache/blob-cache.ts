// The blob cache contract shared by FileCache (blobcache/filecache) and NoCache (dummycache), and
// the counters /api/v1/metrics/blobcache reports. Upstream: storage/src/cache/mod.rs BlobCache.
import type { BlobInfo } from '../../format/blob-info.js';
import type { ChunkInfo } from '../../format/chunk-info.js';
import { NydusError } from '../../util/errors.js';

export { isChunkReady } from '../../format/blob/chunk-map.js';

/** What a FUSE worker needs to serve warm reads itself: ready bits + the cache data file. */
export interface CacheView {
  /**
   * Ready bitmap over a SharedArrayBuffer, MSB first like the chunk_map file (§8). A bit is set
   * only after the chunk's bytes are durably in `dataPath`, so a set bit means "pread is valid".
   */
  bitmap: Uint8Array;
  /** Absolute path of `<blob_id>.blob.data` (chunk i at its uncompressed offset). */
  dataPath: string;
  /**
   * Verify a chunk's digest before serving it from the cache (validation on, or a blob that does not
   * vouch for chunk places); a mismatch is a miss, and the main thread drops and re-fetches it.
   */
  verify: boolean;
  /**
   * [seqlock, last access] (cache-quota.ts): readers load [0] before testing a bit and after reading
   * the bytes; odd or changed means an eviction ran, so the read is a miss. Workers store [1].
   */
  state?: Int32Array;
  /**
   * Chunks already verified in this process (v5 without validation: verify once): a reader that
   * verified one sets its bit; cleared when another bootstrap's cache writes the same file.
   */
  trusted?: Uint8Array;
}

export interface ReadChunksOptions {
  signal?: AbortSignal;
  /** Overrides the cache's merge size for this call (prefetch uses `merging_size`). */
  mergeSize?: number;
}

export interface BlobCache {
  readonly kind: 'filecache' | 'dummycache';
  /** Prepares a blob (cache files, bitmap); reads call it implicitly. */
  open(blob: BlobInfo): Promise<void>;
  /** Decompressed bytes of each chunk, in input order. Rejects if any chunk fails. */
  readChunks(blob: BlobInfo, chunks: readonly ChunkInfo[], opts?: ReadChunksOptions): Promise<Uint8Array[]>;
  /** Fetches the chunks that are not ready into the cache; no data returned. */
  prefetch(blob: BlobInfo, chunks: readonly ChunkInfo[], opts?: ReadChunksOptions): Promise<void>;
  /** A number is a chunk index (blobs whose chunks are numbered). */
  isReady(blob: BlobInfo, chunk: ChunkInfo | number): boolean;
  /** Undefined for caches without a data file (NoCache) or blobs not opened yet. */
  view(blob: BlobInfo): CacheView | undefined;
  readonly metrics: BlobCacheMetrics;
  /** Waits for pending cache writes, closes files. */
  close(): Promise<void>;
}

export interface BlobCacheMetrics {
  /** Chunks served from the cache file. */
  hits: number;
  /** Chunks a user read had to fetch. */
  misses: number;
  /** Chunks whose fetch was already in flight (joined instead of fetched again). */
  inflightJoins: number;
  /** Backend requests and bytes (compressed) issued by the cache. */
  backendReads: number;
  backendBytes: number;
  /** Chunks / uncompressed bytes brought in by prefetch. */
  prefetchChunks: number;
  prefetchBytes: number;
  /** Chunks whose data did not match their digest (never cached). */
  digestFailures: number;
  /** Chunk fetches that failed for any reason. */
  fetchErrors: number;
  /** Cache file writes that failed (data still served, chunk not marked ready). */
  cacheWriteErrors: number;
  /** Ready chunks whose cached bytes were short or failed validation (dropped and fetched again). */
  cacheRevalidationFailures: number;
}

export function newBlobCacheMetrics(): BlobCacheMetrics {
  return { hits: 0, misses: 0, inflightJoins: 0, backendReads: 0, backendBytes: 0, prefetchChunks: 0, prefetchBytes: 0, digestFailures: 0, fetchErrors: 0, cacheWriteErrors: 0, cacheRevalidationFailures: 0 };
}

/** Counts a failed chunk fetch (and a digest mismatch among them). */
export function countFetchError(metrics: BlobCacheMetrics, err: unknown): void {
  metrics.fetchErrors++;
  if (err instanceof NydusError && err.code === 'ERR_DIGEST_MISMATCH') metrics.digestFailures++;
}
