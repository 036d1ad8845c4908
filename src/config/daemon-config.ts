// nydusd configuration: v1 (legacy RafsConfig) JSON, v2 (ConfigV2) JSON or TOML, normalised into one
// shape (upstream-features §2.4–§2.7). Upstream ignores unknown keys; we accept them too but warn once
// per key with its path. A wrong type, or a value upstream rejects, is an error naming the key path; a
// known key asking for something nydus-ts does not do is refused or warned about, never dropped silently.
import { readFileSync, statSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import { ConfigError } from '../util/errors.js';
import { logger } from '../util/log.js';
import { parseLenientJson, stripJsonComments } from './json.js';
import { B, D, E, I, N, O, S, check, type Field } from './schema.js';

const log = logger('config');

/** Receives one line per ignored or unsupported key; the default logs it as a warning. */
export type ConfigWarn = (message: string) => void;
const logWarn: ConfigWarn = (m) => log.warn(m);

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

const PROXY: Field = D(O({
  url: D(S, 'proxy base URL (Dragonfly dfdaemon); empty: go to the origin', '""'),
  ping_url: D(S, 'health endpoint polled every check_interval', '""'),
  fallback: D(B, 'go to the origin when the proxy is unhealthy or fails', 'true'),
  check_interval: D(N(0), 'seconds between health checks', '5'),
  check_pause_elapsed: D(I(0), 'pause health checks after this many idle seconds', '300', 'health checks are not paused; a non-zero value is warned about'),
  use_http: D(B, 'rewrite an https origin URL to http when going through the proxy', 'false'),
  dragonfly_scheduler_endpoint: D(S, 'Dragonfly SDK mode', '""', 'not supported: warned about; proxy.url is used as an HTTP proxy'),
}), 'P2P proxy in front of the backend (an object, or a URL string with the legacy proxy_* keys)');
const MIRROR: Field = O({
  host: D(S, 'mirror base URL'),
  ping_url: D(S, 'health endpoint of the mirror', '""'),
  headers: D({ t: 'object', fields: {}, open: true }, 'extra request headers sent to the mirror', '{}'),
  auth_through: D(B, 'send the registry credentials to the mirror too', 'false'),
  health_check_interval: D(I(0), 'seconds between health checks', '5'),
  failure_limit: D(I(0), 'failures before the mirror is skipped', '5'),
});
const HTTP_COMMON: Record<string, Field> = {
  skip_verify: D(B, 'skip TLS certificate verification', 'false'),
  ca_cert_files: D({ t: 'strings' }, 'extra CA certificates (PEM files) added to the system roots', '[]'),
  client_cert_file: D(S, 'client certificate for mutual TLS (with client_key_file)'),
  client_key_file: D(S, 'client key for mutual TLS (with client_cert_file)'),
  timeout: D(N(0), 'request timeout in seconds', '5'),
  connect_timeout: D(N(0), 'connect timeout in seconds', '5'),
  retry_limit: D(I(0), 'retries of a failed request', '0'),
  proxy: { t: 'oneOf', options: [PROXY, S], doc: PROXY.doc! },
  // Legacy flat proxy keys (upstream docs before the proxy object existed).
  proxy_fallback: D(B, 'legacy: proxy.fallback when proxy is a URL string', 'true'),
  proxy_ping_url: D(S, 'legacy: proxy.ping_url when proxy is a URL string', '""'),
  proxy_check_interval: D(I(0), 'legacy: proxy.check_interval when proxy is a URL string', '5'),
  mirrors: D({ t: 'array', of: MIRROR }, 'registry mirrors tried before the registry (older upstream releases)', '[]'),
};
const scheme = D(S, 'URL scheme; only "http" turns TLS off', '"https"');
export const BACKEND_SCHEMAS: Record<string, Field> = {
  // Docs' `readahead`/`readahead_sec` are no longer read upstream: unknown keys here (warned about).
  localfs: O({
    dir: D(S, 'directory holding <blob id> files (dir or blob_file is required)', '""'),
    blob_file: D(S, 'one blob file', '""'),
    alt_dirs: D({ t: 'strings' }, 'more directories searched when a blob is not in dir', '[]'),
  }),
  registry: O({
    ...HTTP_COMMON,
    scheme,
    host: D(S, 'registry host[:port] (required)'),
    repo: D(S, 'repository, e.g. library/ubuntu (required)'),
    auth: D(S, 'base64 of user:password (IMAGE_PULL_AUTH in the environment overrides it)'),
    registry_token: D(S, 'bearer token'),
    blob_url_scheme: D(S, 'scheme for redirected blob URLs', '""'),
    blob_redirected_host: D(S, 'host that replaces the one of redirected blob URLs', '""'),
  }),
  oss: O({
    ...HTTP_COMMON,
    scheme,
    endpoint: D(S, 'OSS endpoint'),
    bucket_name: D(S, 'bucket'),
    object_prefix: D(S, 'prefix of blob object names', '""'),
    access_key_id: D(S, 'access key id'),
    access_key_secret: D(S, 'access key secret'),
  }),
  s3: O({
    ...HTTP_COMMON,
    scheme,
    endpoint: D(S, 'S3 endpoint without scheme', '"s3.amazonaws.com"'),
    region: D(S, 'region (required)'),
    bucket_name: D(S, 'bucket'),
    object_prefix: D(S, 'prefix of blob object names', '""'),
    access_key_id: D(S, 'access key id'),
    access_key_secret: D(S, 'access key secret'),
    addressing_style: D(E('path', 'virtual'), 'bucket in the path or in the host name', '"path"'),
  }),
  'http-proxy': O({
    ...HTTP_COMMON,
    addr: D(S, 'http(s):// URL or absolute path of a unix socket'),
    path: D(S, 'URL path prefix of blobs (not used over a unix socket)', '""'),
  }),
};

// Ranges are checked only when prefetch is enabled, as upstream: nydus-snapshotter writes
// `threads_count: 0` when prefetch is off.
const STREAM_PREFETCH = D(B, 'rangeless whole-blob GET through a Dragonfly proxy', 'false', 'not supported: true is warned about; chunk prefetch is used');
const FS_PREFETCH_V1 = O({
  enable: D(B, 'prefetch (the bootstrap\'s prefetch list, then the whole image with prefetch_all)', 'false'),
  threads_count: D(I(0), 'prefetch workers, 1..1024 when enabled', '8'),
  merging_size: D(I(0), 'largest merged backend request, at most 0x10000000', '1048576'),
  bandwidth_rate: D(I(0), 'prefetch bytes per second, 0 = unlimited', '0'),
  prefetch_all: D(B, 'prefetch the whole image after the listed files', 'true'),
  stream_prefetch: STREAM_PREFETCH,
});
const PREFETCH_V2 = O({
  enable: D(B, 'prefetch', 'false'),
  threads: D(I(0), 'prefetch workers, 1..1024 when enabled (alias threads_count)', '8'),
  threads_count: D(I(0), 'alias of threads', '8'),
  batch_size: D(I(0), 'largest merged backend request, at most 0x10000000 (alias merging_size)', '1048576'),
  merging_size: D(I(0), 'alias of batch_size', '1048576'),
  bandwidth_limit: D(I(0), 'prefetch bytes per second, 0 = unlimited (alias bandwidth_rate)', '0'),
  bandwidth_rate: D(I(0), 'alias of bandwidth_limit', '0'),
  prefetch_all: D(B, 'prefetch the whole image after the listed files', 'false'),
  stream_prefetch: STREAM_PREFETCH,
});
const FILECACHE = O({
  work_dir: D(S, 'cache directory (<blob id>.blob.data + chunk maps)', '"."'),
  cache_size_limit: D(I(0), 'nydus-ts extension: bytes of chunk data kept, least recently used blobs evicted; 0 = unlimited', '0'),
  disable_indexed_map: D(B, 'deprecated upstream: in-memory digest map for v5', 'false', 'true is warned about and ignored'),
  enable_encryption: D(B, 'AES-128-XTS cache encryption', 'false', 'not supported: true is refused'),
  enable_convergent_encryption: D(B, 'convergent IVs for encrypted caches', 'false', 'no effect (no encryption)'),
  encryption_key: D(S, 'hex 32-byte key for cache encryption', '""', 'no effect (no encryption)'),
});
const CACHE_TYPES = ['blobcache', 'filecache', 'fscache', 'dummycache', ''];
const CACHE_TYPE = D(E(...CACHE_TYPES), 'blobcache/filecache: local files; dummycache or "": no cache', '""', 'fscache is served by the file cache in the same work_dir (warned about)');
const CACHE_COMPRESSED = D(B, 'cache raw compressed chunks', 'false', 'true is warned about; the cache keeps uncompressed data');
const EXTERNAL = D({ t: 'any' }, 'external backends for blobs outside the image', '[]', 'not supported: a non-empty value is warned about, external blobs fail to read');
const MODE = D(E('direct', 'cached'), 'direct: metadata read in place; cached: loaded in memory (v5)', 'v1: required; v2: "direct"', 'accepted; metadata is always decoded lazily from one in-memory buffer');
const FLAGS = {
  enable_xattr: D(B, 'serve extended attributes', 'false'),
  iostats_files: D(B, 'per-file I/O counters (/api/v1/metrics/files)', 'false'),
  access_pattern: D(B, 'record the access pattern (/api/v1/metrics/pattern)', 'false'),
  latest_read_files: D(B, 'record files read since the last query', 'false'),
};
const BACKEND_TYPES = D(E('localfs', 'localdisk', 'oss', 's3', 'registry'), 'backend kind (required)', undefined, 'localdisk is refused');

export const V1: Field = O({
  device: O({
    id: D(S, 'instance id (metrics)', '""'),
    backend: O({ type: BACKEND_TYPES, config: D({ t: 'any' }, 'the backend\'s keys (see Backends below)') }),
    external_backends: EXTERNAL,
    // v1 `cache.prefetch_config` is never read upstream (skip_deserializing): left unknown.
    cache: O({ type: CACHE_TYPE, compressed: CACHE_COMPRESSED, validate: D(B, 'verify chunk digests read from the cache', 'false'), config: FILECACHE }),
  }),
  mode: MODE,
  digest_validate: D(B, 'verify chunk digests', 'false'),
  ...FLAGS,
  amplify_io: D(I(0, 0x10000000), 'user reads are amplified to this many bytes', '1048576'),
  fs_prefetch: FS_PREFETCH_V1,
});

export const V2: Field = O({
  version: D(I(2, 2), 'must be 2'),
  id: D(S, 'instance id (metrics)', '""'),
  backend: { t: 'object', fields: { type: { ...BACKEND_TYPES, t: 'enum', values: ['localfs', 'localdisk', 'oss', 's3', 'registry', 'http-proxy'] }, ...Object.fromEntries(Object.keys(BACKEND_SCHEMAS).map((k) => [k, D({ t: 'any' }, `the ${k} backend's keys (see Backends below); only the selected type's section is read`)])) } },
  external_backends: EXTERNAL,
  cache: O({
    type: CACHE_TYPE,
    compressed: CACHE_COMPRESSED,
    validate: D(B, 'verify chunk digests read from the cache', 'false'),
    prefetch: PREFETCH_V2,
    filecache: FILECACHE,
    fscache: O({ work_dir: D(S, 'fscache directory (served by the file cache here)', '"."') }),
  }),
  rafs: O({ mode: MODE, batch_size: D(I(0, 0x10000000), 'user reads are amplified to this many bytes', '1048576'), validate: D(B, 'verify chunk digests', 'false'), ...FLAGS, prefetch: PREFETCH_V2 }),
  overlay: O({ upper_dir: D(S, 'writable userspace overlay (with --writable)', undefined, 'not supported (mounts are read-only; put an overlay on top)'), work_dir: D(S, 'overlay work directory', undefined, 'not supported') }),
});

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});

/** Collects what a config asks for that nydus-ts ignores, then reports it in one go. */
class Notes {
  readonly unknown: string[] = [];
  readonly unsupported: string[] = [];
  constructor(readonly source: string) {}
  emit(warn: ConfigWarn): void {
    for (const p of this.unknown) warn(`${this.source}: ignoring unknown key "${p}"`);
    for (const m of this.unsupported) warn(`${this.source}: ${m}`);
  }
}

function prefetchFrom(p: Obj, v1: boolean, path: string, source: string, notes: Notes): PrefetchConfig {
  const bw = Number(p.bandwidth_limit ?? p.bandwidth_rate ?? 0);
  const threads = Number(p.threads ?? p.threads_count ?? 8);
  const batchSize = Number(p.batch_size ?? p.merging_size ?? 1 << 20);
  const enable = p.enable === true;
  if (enable) {
    const tKey = p.threads !== undefined ? 'threads' : 'threads_count';
    if (threads < 1 || threads > 1024) throw new ConfigError(`${source}: ${path}.${tKey}: must be 1..1024 when prefetch is enabled, got ${threads}`);
    const bKey = p.batch_size !== undefined ? 'batch_size' : 'merging_size';
    if (batchSize > 0x10000000) throw new ConfigError(`${source}: ${path}.${bKey}: must be at most ${0x10000000}`);
    if (p.stream_prefetch === true) notes.unsupported.push(`${path}.stream_prefetch: whole-blob stream prefetch is not supported; chunk prefetch is used`);
  }
  return { enable, threads: Math.min(1024, Math.max(1, threads)), batchSize, bandwidthLimit: bw, prefetchAll: (p.prefetch_all as boolean | undefined) ?? v1 };
}

function normaliseBackend(type: string, config: unknown, path: string, source: string, notes: Notes): BackendConfig {
  const schema = BACKEND_SCHEMAS[type];
  if (!schema) throw new ConfigError(`${source}: ${path}.type: backend "${type}" is not supported`);
  check(config ?? {}, schema, path, source, notes.unknown);
  const cfg = { ...obj(config) };
  if (typeof cfg.proxy === 'string') {
    // v1 docs: "proxy": "http://p2p-proxy:65001" with sibling proxy_* keys.
    cfg.proxy = { url: cfg.proxy, fallback: cfg.proxy_fallback ?? true, ping_url: cfg.proxy_ping_url ?? '', check_interval: cfg.proxy_check_interval ?? 5 };
    delete cfg.proxy_fallback;
    delete cfg.proxy_ping_url;
    delete cfg.proxy_check_interval;
  }
  const proxy = obj(cfg.proxy);
  if (typeof proxy.dragonfly_scheduler_endpoint === 'string' && proxy.dragonfly_scheduler_endpoint) {
    notes.unsupported.push(`${path}.proxy.dragonfly_scheduler_endpoint: Dragonfly SDK mode is not supported; ${proxy.url ? 'using proxy.url as an HTTP proxy' : 'going to the origin directly'}`);
  }
  if (typeof proxy.check_pause_elapsed === 'number' && proxy.check_pause_elapsed > 0) {
    notes.unsupported.push(`${path}.proxy.check_pause_elapsed: health checks are not paused when idle; ignored`);
  }
  if ((cfg.client_cert_file === undefined) !== (cfg.client_key_file === undefined)) {
    throw new ConfigError(`${source}: ${path}: client_cert_file and client_key_file must be given together`);
  }
  if (type === 'localfs' && !cfg.dir && !cfg.blob_file) throw new ConfigError(`${source}: ${path}: localfs needs "dir" or "blob_file"`);
  if (type === 'registry' && (!cfg.host || !cfg.repo)) throw new ConfigError(`${source}: ${path}: registry needs "host" and "repo"`);
  if (type === 'registry' && process.env.IMAGE_PULL_AUTH) cfg.auth = process.env.IMAGE_PULL_AUTH;
  return { type, config: cfg };
}

type CacheType = FsConfig['cache']['type'];
function cacheTypeOf(t: unknown): CacheType {
  return t === 'filecache' || t === 'blobcache' ? 'blobcache' : t === 'fscache' ? 'fscache' : 'dummycache';
}

/** Cache keys that ask for what nydus-ts does not do: encryption is refused, `compressed` noted. */
function cacheChecks(cache: Obj, filecache: Obj, cachePath: string, filecachePath: string, source: string, notes: Notes): void {
  if (filecache.enable_encryption === true) {
    throw new ConfigError(`${source}: ${filecachePath}.enable_encryption: cache encryption is not supported by nydus-ts (set it to false)`);
  }
  if (cache.compressed === true && cacheTypeOf(cache.type) === 'blobcache') {
    notes.unsupported.push(`${cachePath}.compressed: the cache keeps uncompressed data (.blob.data); compressed caching is not supported, ignored`);
  }
  if (filecache.disable_indexed_map === true) {
    notes.unsupported.push(`${filecachePath}.disable_indexed_map: deprecated upstream; the chunk map is chosen per blob here, ignored`);
  }
}

function externalBackendChecks(v: unknown, path: string, notes: Notes): void {
  if (Array.isArray(v) ? v.length > 0 : v !== undefined && v !== null) {
    notes.unsupported.push(`${path}: external backends are not supported; images with external blobs will fail to read them`);
  }
}

/** Parses a config object (v1 or v2) into the normalised form; ignored keys go to `warn`. */
export function normaliseConfig(raw: unknown, source: string, warn: ConfigWarn = logWarn): FsConfig {
  const r = obj(raw);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(`${source}: expected a JSON object`);
  const notes = new Notes(source);
  let out: FsConfig;
  if ('version' in r) {
    check(raw, V2, '', source, notes.unknown);
    const backend = obj(r.backend);
    const type = String(backend.type ?? '');
    if (!type) throw new ConfigError(`${source}: backend.type is required`);
    const cache = obj(r.cache);
    const rafs = obj(r.rafs);
    cacheChecks(cache, obj(cache.filecache), 'cache', 'cache.filecache', source, notes);
    externalBackendChecks(r.external_backends, 'external_backends', notes);
    out = {
      id: String(r.id ?? ''),
      backend: normaliseBackend(type, backend[type], `backend.${type}`, source, notes),
      cache: {
        type: cacheTypeOf(cache.type),
        compressed: cache.compressed === true,
        validate: cache.validate === true,
        workDir: String(obj(cache.filecache).work_dir ?? obj(cache.fscache).work_dir ?? '.'),
        sizeLimit: Number(obj(cache.filecache).cache_size_limit ?? 0),
        prefetch: prefetchFrom(obj(cache.prefetch), false, 'cache.prefetch', source, notes),
      },
      rafs: {
        mode: (rafs.mode as 'direct' | 'cached' | undefined) ?? 'direct',
        batchSize: Number(rafs.batch_size ?? 1 << 20),
        validate: rafs.validate === true || cache.validate === true,
        enableXattr: rafs.enable_xattr === true,
        iostatsFiles: rafs.iostats_files === true,
        accessPattern: rafs.access_pattern === true,
        latestReadFiles: rafs.latest_read_files === true,
        prefetch: prefetchFrom(obj(rafs.prefetch), false, 'rafs.prefetch', source, notes),
      },
    };
  } else {
    check(raw, V1, '', source, notes.unknown);
    if (!('device' in r)) throw new ConfigError(`${source}: "device" is required (or "version": 2 for a v2 config)`);
    const device = obj(r.device);
    const backend = obj(device.backend);
    if (!backend.type) throw new ConfigError(`${source}: device.backend.type is required`);
    const cache = obj(device.cache);
    cacheChecks(cache, obj(cache.config), 'device.cache', 'device.cache.config', source, notes);
    externalBackendChecks(device.external_backends, 'device.external_backends', notes);
    const prefetch = prefetchFrom(obj(r.fs_prefetch), true, 'fs_prefetch', source, notes);
    const validate = r.digest_validate === true;
    out = {
      id: String(device.id ?? ''),
      backend: normaliseBackend(String(backend.type), backend.config, 'device.backend.config', source, notes),
      cache: {
        type: cacheTypeOf(cache.type),
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
  notes.emit(warn);
  return out;
}

/**
 * Parses config text as upstream does: v2 JSON, then v2 TOML, then v1 JSON. JSON may carry the
 * comments and trailing commas of upstream's documentation examples.
 */
export function parseConfigText(text: string, source: string, warn: ConfigWarn = logWarn): FsConfig {
  if (text.length > 1 << 20) throw new ConfigError(`${source}: larger than 1 MiB`);
  let json: unknown;
  let jsonError: ConfigError | undefined;
  try {
    json = parseLenientJson(text, source);
  } catch (e) {
    jsonError = e as ConfigError;
  }
  if (!jsonError) return normaliseConfig(json, source, warn);
  // Not JSON: a v2 TOML file (upstream accepts only v2 in TOML).
  if (stripJsonComments(text).trimStart().startsWith('{')) throw jsonError;
  let toml: Record<string, unknown>;
  try {
    toml = parseToml(text) as Record<string, unknown>;
  } catch (e) {
    const first = String((e as Error).message).split('\n')[0];
    throw new ConfigError(`${source}: neither JSON nor TOML: ${first}`);
  }
  if (toml.version === undefined) throw new ConfigError(`${source}: a TOML config must be v2 ("version = 2")`);
  return normaliseConfig(toml, source, warn);
}

export function loadConfigFile(path: string, warn: ConfigWarn = logWarn): FsConfig {
  let text: string;
  try {
    if (statSync(path).size > 1 << 20) throw new ConfigError(`config ${path}: larger than 1 MiB`);
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`config ${path}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseConfigText(text, `config ${path}`, warn);
}

/** The `--localfs-dir` shortcut: localfs backend + blobcache in the same directory. */
export function localfsDirConfig(dir: string): FsConfig {
  return normaliseConfig({ device: { backend: { type: 'localfs', config: { dir } }, cache: { type: 'blobcache', config: { work_dir: dir } } }, mode: 'direct' }, '--localfs-dir');
}

