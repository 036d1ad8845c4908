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
  readLatencyMsTotal: number;
  /** Upstream's histograms, by request size bucket (<1K, 1K, 4K, 16K, 64K, 128K, 512K, 1M+): */
  /** cumulative latency (ms) of the requests of each size, */
  latencyMsBySize: number[];
  /** number of requests of each size, */
  countBySize: number[];
  /** and [size][latency bucket (<=1, 20, 50, 100, 500, 1000, 2000, >2000 ms)] counts. */
  latencyBySize: number[][];
}

export function newBackendMetrics(): BackendMetrics {
  return {
    readCount: 0,
    readErrors: 0,
    readBytes: 0,
    readLatencyMsTotal: 0,
    latencyMsBySize: new Array<number>(8).fill(0),
    countBySize: new Array<number>(8).fill(0),
    latencyBySize: Array.from({ length: 8 }, () => new Array<number>(8).fill(0)),
  };
}

const SIZE_BOUNDS = [1024, 4096, 16384, 65536, 131072, 524288, 1048576];

/** Upstream's request_size_index, shared by backend and filesystem metrics. */
export function requestSizeIndex(bytes: number): number {
  let s = 0;
  while (s < SIZE_BOUNDS.length && bytes >= SIZE_BOUNDS[s]!) s++;
  return s;
}

const LATENCY_MS_BOUNDS = [1, 20, 50, 100, 500, 1000, 2000];

/** Records one finished backend read (upstream BackendMetrics::end). */
export function recordBackendRead(m: BackendMetrics, bytes: number, ms: number, failed: boolean): void {
  m.readCount++;
  if (failed) m.readErrors++;
  m.readBytes += bytes;
  m.readLatencyMsTotal += ms;
  const s = requestSizeIndex(bytes);
  const whole = Math.floor(ms);
  let l = 0;
  while (l < LATENCY_MS_BOUNDS.length && whole > LATENCY_MS_BOUNDS[l]!) l++;
  m.latencyMsBySize[s]! += whole;
  m.countBySize[s]!++;
  m.latencyBySize[s]![l]!++;
}
