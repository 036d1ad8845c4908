// What the API server may ask of the daemon. The api/ layer depends only on this interface.

export type DaemonState = 'INIT' | 'READY' | 'RUNNING' | 'STOPPED' | 'UNKNOWN';

export interface MountRequest {
  source: string;
  fs_type: string;
  /** The config file contents (v1 or v2 JSON), as upstream's API carries it. */
  config: string;
  prefetch_files?: string[];
}

export interface BackendInstance {
  backend_type: 'Rafs';
  mountpoint: string;
  mounted_time: string;
  config: unknown;
}

export interface DaemonInfo {
  version: { package_ver: string; git_commit: string; build_time: string; profile: string; rustc: string };
  id: string | null;
  supervisor: string | null;
  state: DaemonState;
  backend_collection: Record<string, BackendInstance>;
}

/** PUT /api/v2/blobs body (upstream BlobCacheEntry). */
export interface BlobCacheEntry {
  type: string;
  id: string;
  domain_id: string;
  config?: unknown;
  config_v2?: unknown;
}

/** Query of GET/DELETE /api/v2/blobs (upstream BlobCacheObjectId). */
export interface BlobObjectId {
  domain_id?: string | undefined;
  blob_id?: string | undefined;
}

export type MetricsKind = 'fs' | 'files' | 'pattern' | 'backend' | 'blobcache' | 'inflight';

/** An error the API turns into an HTTP status with an upstream-shaped body. */
export class ControlError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export interface DaemonControl {
  info(): DaemonInfo;
  setLogLevel(level: string): void;
  events(): { max_errors: number; total_errors: number; max_size: number; total_size: number; errors: string[] };
  mount(mountpoint: string, req: MountRequest): Promise<void>;
  remount(mountpoint: string, req: MountRequest): Promise<void>;
  umount(mountpoint: string): Promise<void>;
  /** Superblock summary of the fs at `mountpoint` (GET /daemon/backend). */
  backendInfo(mountpoint: string): unknown;
  /** `id` selects a mount (its mountpoint or config id); undefined is fine when exactly one exists. */
  metrics(kind: MetricsKind, id: string | undefined, opts: { latest?: boolean }): Promise<unknown>;
  getConfig(id: string | undefined): unknown;
  updateConfig(id: string | undefined, body: Record<string, unknown>): Promise<void>;
  /**
   * Blob cache usage per work_dir, and with `gc` a garbage collection first (our extension,
   * GET/PUT /api/v1/cache): caches of blobs no mount uses are deleted, then LRU blobs until within
   * `cache_size_limit`.
   */
  cache?(gc: boolean): Promise<unknown>;
  getBlobObjects(q: BlobObjectId & { domain_id: string }): BlobCacheEntry[];
  createBlobObject(e: BlobCacheEntry): void;
  /** With a domain: drop registered entries; without: delete an unused blob's cache files. */
  deleteBlobObject(q: BlobObjectId): Promise<void>;
  /** Prometheus text exposition of every counter (our extension, GET /metrics). */
  prometheus(): Promise<string>;
  exit(): void;
  /** PUT /api/v1/daemon/fuse/sendfd: hand the FUSE connection and state to the supervisor. */
  sendFd?(): Promise<void>;
  /** PUT /api/v1/daemon/fuse/takeover: (a daemon started with --upgrade) take over from the old one. */
  takeover?(): Promise<void>;
}
