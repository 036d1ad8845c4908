// What the daemon needs from storage for one mount: chunk reads for workers' cache misses, the cache
// views workers read warm chunks from, prefetch, and metrics. storage/ implements the pieces; this
// file only names the contract the daemon codes against.
import type { BlobInfo } from '../format/blob-info.js';
import type { ChunkInfo } from '../format/chunk-info.js';

export interface MountStorage {
  /** Uncompressed bytes of each chunk, fetched (merged, verified) and cached. */
  readChunks(chunks: ChunkInfo[]): Promise<Uint8Array[]>;
  /** Per blob index: shared ready bitmap + cache data path, or undefined without a file cache. */
  cacheViews(): Array<{ bitmap: Uint8Array; dataPath: string } | undefined>;
  /** Starts background prefetch of these chunks (bootstrap prefetch table, --prefetch-files, prefetch_all). */
  prefetch(chunks: ChunkInfo[]): void;
  /** Resolves when queued prefetch work is finished, with its progress counters. */
  prefetchDone?(): Promise<{ doneChunks: number; skippedChunks: number; failedChunks: number; bytes: number } | undefined>;
  metrics(): { backend: Record<string, unknown>; blobcache: Record<string, unknown> };
  /** Hot update of backend auth / proxy (PUT /api/v1/config). */
  updateConfig?(patch: { registryAuth?: string; proxyUrl?: string }): void;
  close(): Promise<void>;
}

export type MountStorageFactory = (blobs: readonly BlobInfo[], config: import('../config/daemon-config.js').FsConfig) => Promise<MountStorage>;
