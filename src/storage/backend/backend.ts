// The storage backend interface: read a byte range of a blob. Backends: localfs, registry, s3, oss,
// http-proxy. create-backend.ts is the only module that knows them all.

export interface BlobBackend {
  /** Backend type name as in the config ("localfs", "registry", ...). */
  readonly type: string;
  /**
   * Reads exactly `length` bytes at `offset` of blob `blobId` (fewer only at the blob's end).
   * Throws BackendError (with `retryable` set for transient failures).
   */
  read(blobId: string, offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array>;
  /** Size of the blob in bytes. */
  blobSize(blobId: string, signal?: AbortSignal): Promise<number>;
  /** Releases sockets, timers. */
  close(): Promise<void>;
  /** Counters for metrics (/api/v1/metrics/backend). */
  readonly metrics: BackendMetrics;
}

export interface BackendMetrics {
  readCount: number;
  readErrors: number;
  readBytes: number;
  /** Histogram-free latency sum for an average. */
  readLatencyMsTotal: number;
}

export function newBackendMetrics(): BackendMetrics {
  return { readCount: 0, readErrors: 0, readBytes: 0, readLatencyMsTotal: 0 };
}
