// nydusd configuration: v1 (legacy RafsConfig) and v2 (ConfigV2) JSON, normalised into one shape
// (upstream-features §2.4–§2.7). Every key is checked; an unknown key or a wrong type is an error
// naming the key path.
import { readFileSync, statSync } from 'node:fs';
import { ConfigError } from '../util/errors.js';
import { parseLenientJson } from './json.js';
import { B, E, I, N, O, S, check, type Field } from './schema.js';

export interface PrefetchConfig {
  enable: boolean;
  threads: number;
  /** Max merged backend request (merging_size / batch_size). */
  batchSize: number;
  /** Bytes per second, 0 = unlimited. */
  bandwidthLimit: number;
  prefetchAll: boolean;
}

export interface BackendConfig {
  type: string;
  /** The backend's own object (validated against its schema here, interpreted by the backend). */
  config: Record<string, unknown>;
}

export interface FsConfig {
  id: string;
  backend: BackendConfig;
  cache: {
    type: 'blobcache' | 'dummycache' | 'fscache';
    compressed: boolean;
    validate: boolean;
    workDir: string;
    /** `cache_size_limit` (our extension): bytes of chunk data kept in work_dir, LRU blobs evicted; 0 = unlimited. */
    sizeLimit: number;
    prefetch: PrefetchConfig;
  };
  rafs: {
    mode: 'direct' | 'cached';
    /** amplify_io / batch_size: user reads are amplified to this many bytes. */
    batchSize: number;
    validate: boolean;
    enableXattr: boolean;
    iostatsFiles: boolean;
    accessPattern: boolean;
    latestReadFiles: boolean;
    prefetch: PrefetchConfig;
  };
}

const PROXY: Field = O({ url: S, ping_url: S, fallback: B, check_interval: N(0), check_pause_elapsed: I(0), use_http: B, dragonfly_scheduler_endpoint: S });
const HTTP_COMMON: Record<string, Field> = {
  skip_verify: B,
  ca_cert_files: { t: 'strings' },
  timeout: N(0),
  connect_timeout: N(0),
  retry_limit: I(0),
  proxy: { t: 'oneOf', options: [PROXY, S] },
  // Legacy flat proxy keys (upstream docs before the proxy object existed).
  proxy_fallback: B,
  proxy_ping_url: S,
  proxy_check_interval: I(0),
  mirrors: { t: 'oneOf', options: [{ t: 'any' }] },
};
export const BACKEND_SCHEMAS: Record<string, Field> = {
  localfs: O({ dir: S, blob_file: S, alt_dirs: { t: 'strings' }, readahead: B, readahead_sec: I(0) }),
  registry: O({ ...HTTP_COMMON, scheme: S, host: S, repo: S, auth: S, registry_token: S, blob_url_scheme: S, blob_redirected_host: S }),
  oss: O({ ...HTTP_COMMON, scheme: S, endpoint: S, bucket_name: S, object_prefix: S, access_key_id: S, access_key_secret: S }),
  s3: O({ ...HTTP_COMMON, scheme: S, endpoint: S, region: S, bucket_name: S, object_prefix: S, access_key_id: S, access_key_secret: S, addressing_style: E('path', 'virtual') }),
  'http-proxy': O({ ...HTTP_COMMON, addr: S, path: S }),
};

const FS_PREFETCH_V1 = O({ enable: B, threads_count: I(1, 1024), merging_size: I(0, 0x10000000), bandwidth_rate: I(0), prefetch_all: B, stream_prefetch: B });
const PREFETCH_V2 = O({ enable: B, threads: I(1, 1024), threads_count: I(1, 1024), batch_size: I(0, 0x10000000), merging_size: I(0, 0x10000000), bandwidth_limit: I(0), bandwidth_rate: I(0), prefetch_all: B, stream_prefetch: B });
const CACHE_TYPES = ['blobcache', 'filecache', 'fscache', 'dummycache', ''];

const V1: Field = O({
  device: O({
    id: S,
    backend: O({ type: E('localfs', 'localdisk', 'oss', 's3', 'registry'), config: { t: 'any' } }),
    external_backends: { t: 'any' },
    cache: O({ type: E(...CACHE_TYPES), compressed: B, validate: B, config: O({ work_dir: S, cache_size_limit: I(0), disable_indexed_map: B, enable_encryption: B, enable_convergent_encryption: B, encryption_key: S }), prefetch_config: FS_PREFETCH_V1 }),
  }),
  mode: E('direct', 'cached'),
  digest_validate: B,
  iostats_files: B,
  enable_xattr: B,
  access_pattern: B,
  latest_read_files: B,
  amplify_io: I(0, 0x10000000),
  fs_prefetch: FS_PREFETCH_V1,
});

const V2: Field = O({
  version: I(2, 2),
  id: S,
  backend: { t: 'object', fields: { type: E('localfs', 'localdisk', 'oss', 's3', 'registry', 'http-proxy'), ...Object.fromEntries(Object.keys(BACKEND_SCHEMAS).map((k) => [k, { t: 'any' } as Field])) } },
  external_backends: { t: 'any' },
  cache: O({
    type: E(...CACHE_TYPES),
    compressed: B,
    validate: B,
    prefetch: PREFETCH_V2,
    filecache: O({ work_dir: S, cache_size_limit: I(0), disable_indexed_map: B, enable_encryption: B, enable_convergent_encryption: B, encryption_key: S }),
    fscache: O({ work_dir: S }),
  }),
  rafs: O({ mode: E('direct', 'cached'), batch_size: I(0, 0x10000000), validate: B, enable_xattr: B, iostats_files: B, access_pattern: B, latest_read_files: B, prefetch: PREFETCH_V2 }),
  overlay: O({ upper_dir: S, work_dir: S }),
});

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});

function prefetchFrom(p: Obj, v1: boolean): PrefetchConfig {
  const bw = Number(p.bandwidth_limit ?? p.bandwidth_rate ?? 0);
  return {
    enable: p.enable === true,
    threads: Number(p.threads ?? p.threads_count ?? 8),
    batchSize: Number(p.batch_size ?? p.merging_size ?? 1 << 20),
    bandwidthLimit: bw,
    prefetchAll: (p.prefetch_all as boolean | undefined) ?? v1,
  };
}

function normaliseBackend(type: string, config: unknown, path: string, source: string): BackendConfig {
  const schema = BACKEND_SCHEMAS[type];
  if (!schema) throw new ConfigError(`${source}: ${path}.type: backend "${type}" is not supported`);
  check(config ?? {}, schema, path, source);
  const cfg = { ...obj(config) };
  if (typeof cfg.proxy === 'string') {
    // v1 docs: "proxy": "http://p2p-proxy:65001" with sibling proxy_* keys.
    cfg.proxy = { url: cfg.proxy, fallback: cfg.proxy_fallback ?? true, ping_url: cfg.proxy_ping_url ?? '', check_interval: cfg.proxy_check_interval ?? 5 };
    delete cfg.proxy_fallback;
    delete cfg.proxy_ping_url;
    delete cfg.proxy_check_interval;
  }
  if (type === 'localfs' && !cfg.dir && !cfg.blob_file) throw new ConfigError(`${source}: ${path}: localfs needs "dir" or "blob_file"`);
  if (type === 'registry' && (!cfg.host || !cfg.repo)) throw new ConfigError(`${source}: ${path}: registry needs "host" and "repo"`);
  if (type === 'registry' && process.env.IMAGE_PULL_AUTH) cfg.auth = process.env.IMAGE_PULL_AUTH;
  return { type, config: cfg };
}

/** Parses a config object (v1 or v2) into the normalised form. */
export function normaliseConfig(raw: unknown, source: string): FsConfig {
  const r = obj(raw);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(`${source}: expected a JSON object`);
  if ('version' in r) {
    check(raw, V2, '', source);
    const backend = obj(r.backend);
    const type = String(backend.type ?? '');
    if (!type) throw new ConfigError(`${source}: backend.type is required`);
    const cache = obj(r.cache);
    const rafs = obj(r.rafs);
    const cacheType = String(cache.type ?? '');
    return {
      id: String(r.id ?? ''),
      backend: normaliseBackend(type, backend[type], `backend.${type}`, source),
      cache: {
        type: cacheType === 'filecache' || cacheType === 'blobcache' ? 'blobcache' : cacheType === 'fscache' ? 'fscache' : 'dummycache',
        compressed: cache.compressed === true,
        validate: cache.validate === true,
        workDir: String(obj(cache.filecache).work_dir ?? obj(cache.fscache).work_dir ?? '.'),
        sizeLimit: Number(obj(cache.filecache).cache_size_limit ?? 0),
        prefetch: prefetchFrom(obj(cache.prefetch), false),
      },
      rafs: {
        mode: (rafs.mode as 'direct' | 'cached' | undefined) ?? 'direct',
        batchSize: Number(rafs.batch_size ?? 1 << 20),
        validate: rafs.validate === true || cache.validate === true,
        enableXattr: rafs.enable_xattr === true,
        iostatsFiles: rafs.iostats_files === true,
        accessPattern: rafs.access_pattern === true,
        latestReadFiles: rafs.latest_read_files === true,
        prefetch: prefetchFrom(obj(rafs.prefetch), false),
      },
    };
  }
  check(raw, V1, '', source);
  if (!('device' in r)) throw new ConfigError(`${source}: "device" is required (or "version": 2 for a v2 config)`);
  const device = obj(r.device);
  const backend = obj(device.backend);
  if (!backend.type) throw new ConfigError(`${source}: device.backend.type is required`);
  const cache = obj(device.cache);
  const cacheType = String(cache.type ?? '');
  const prefetch = prefetchFrom(obj(r.fs_prefetch), true);
  const validate = r.digest_validate === true;
  return {
    id: String(device.id ?? ''),
    backend: normaliseBackend(String(backend.type), backend.config, 'device.backend.config', source),
    cache: {
      type: cacheType === 'filecache' || cacheType === 'blobcache' ? 'blobcache' : cacheType === 'fscache' ? 'fscache' : 'dummycache',
      compressed: cache.compressed === true,
      validate: cache.validate === true || validate,
      workDir: String(obj(cache.config).work_dir ?? '.'),
      sizeLimit: Number(obj(cache.config).cache_size_limit ?? 0),
      prefetch,
    },
    rafs: {
      // Upstream makes `mode` mandatory in v1; we default it to direct (the only mode that matters here).
      mode: (r.mode as 'direct' | 'cached' | undefined) ?? 'direct',
      batchSize: Number(r.amplify_io ?? 1 << 20),
      validate,
      enableXattr: r.enable_xattr === true,
      iostatsFiles: r.iostats_files === true,
      accessPattern: r.access_pattern === true,
      latestReadFiles: r.latest_read_files === true,
      prefetch,
    },
  };
}

export function parseConfigText(text: string, source: string): FsConfig {
  if (text.length > 1 << 20) throw new ConfigError(`${source}: larger than 1 MiB`);
  return normaliseConfig(parseLenientJson(text, source), source);
}

export function loadConfigFile(path: string): FsConfig {
  let text: string;
  try {
    if (statSync(path).size > 1 << 20) throw new ConfigError(`config ${path}: larger than 1 MiB`);
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`config ${path}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseConfigText(text, `config ${path}`);
}

/** The `--localfs-dir` shortcut: localfs backend + blobcache in the same directory. */
export function localfsDirConfig(dir: string): FsConfig {
  return normaliseConfig({ device: { backend: { type: 'localfs', config: { dir } }, cache: { type: 'blobcache', config: { work_dir: dir } } }, mode: 'direct' }, '--localfs-dir');
}

/** A copy safe to show over the API: secrets blanked. */
export function withoutSecrets(c: FsConfig): FsConfig {
  const cfg = { ...c.backend.config };
  for (const k of ['auth', 'registry_token', 'access_key_id', 'access_key_secret']) if (k in cfg) cfg[k] = '';
  return { ...c, backend: { ...c.backend, config: cfg } };
}
