// Public face of storage/: backends, chunk I/O, blob caches, prefetch, per-mount manager.
export type { BlobBackend, BackendMetrics } from './backend/backend.js';
export { newBackendMetrics, requestSizeIndex } from './backend/backend.js';
export { createBackend, registerBackend, registeredBackends, type BackendFactory } from './backend/create-backend.js';
export { LocalFsBackend, createLocalFsBackend, type LocalFsConfig } from './backend/localfs.js';
export * from './blob-io.js';
export * from './cache/blob-cache.js';
export { PersistedChunkMap } from './cache/chunk-map.js';
export { FileCache, BLOB_DATA_FILE_SUFFIX, type FileCacheOptions } from './cache/file-cache.js';
export { NoCache, type NoCacheOptions } from './cache/no-cache.js';
export { UserIoGate } from './io-gate.js';
export { Prefetcher, TokenBucket, type PrefetchOptions, type PrefetchProgress, type PrefetchTask } from './prefetch.js';
export { BlobCacheManager, MIN_PREFETCH_BANDWIDTH, openMountStorage, type BlobCacheManagerOptions } from './blob-cache-manager.js';
