// nydusd configuration: v1 (legacy RafsConfig) JSON, v2 (ConfigV2) JSON or TOML, normalised into one
// shape (upstream-features §2.4–§2.7). Upstream ignores unknown keys; we accept them too but warn once
// per key with its path. A wrong type, or a value upstream rejects, is an error naming the key path; a
// known key asking for something nydus-ts does not do is refused or warned about, never dropped silently.
import { readFileSync, statSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import { ConfigError } from '../util/errors.js';
import { logger } from '../util/log.js';
import { parseLenientJson, stripJsonComments } from './json.js';
import { B, E, I, N, O, S, check, type Field } from './schema.js';

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

const PROXY: Field = O({ url: S, ping_url: S, fallback: B, check_interval: N(0), check_pause_elapsed: I(0), use_http: B, dragonfly_scheduler_endpoint: S });
const MIRROR: Field = O({ host: S, ping_url: S, headers: { t: 'object', fields: {}, open: true }, auth_through: B, health_check_interval: I(0), failure_limit: I(0) });
const HTTP_COMMON: Record<string, Field> = {
  skip_verify: B,
  ca_cert_files: { t: 'strings' },
  client_cert_file: S,
  client_key_file: S,
  timeout: N(0),
  connect_timeout: N(0),
  retry_limit: I(0),
  proxy: { t: 'oneOf', options: [PROXY, S] },
  // Legacy flat proxy keys (upstream docs before the proxy object existed).
  proxy_fallback: B,
  proxy_ping_url: S,
  proxy_check_interval: I(0),
  mirrors: { t: 'array', of: MIRROR },
};
export const BACKEND_SCHEMAS: Record<string, Field> = {
  // Docs' `readahead`/`readahead_sec` are no longer read upstream: unknown keys here (warned about).
  localfs: O({ dir: S, blob_file: S, alt_dirs: { t: 'strings' } }),
  registry: O({ ...HTTP_COMMON, scheme: S, host: S, repo: S, auth: S, registry_token: S, blob_url_scheme: S, blob_redirected_host: S }),
  oss: O({ ...HTTP_COMMON, scheme: S, endpoint: S, bucket_name: S, object_prefix: S, access_key_id: S, access_key_secret: S }),
  s3: O({ ...HTTP_COMMON, scheme: S, endpoint: S, region: S, bucket_name: S, object_prefix: S, access_key_id: S, access_key_secret: S, addressing_style: E('path', 'virtual') }),
  'http-proxy': O({ ...HTTP_COMMON, addr: S, path: S }),
};

// Ranges are checked only when prefetch is enabled, as upstream: nydus-snapshotter writes
// `threads_count: 0` when prefetch is off.
const FS_PREFETCH_V1 = O({ enable: B, threads_count: I(0), merging_size: I(0), bandwidth_rate: I(0), prefetch_all: B, stream_prefetch: B });
const PREFETCH_V2 = O({ enable: B, threads: I(0), threads_count: I(0), batch_size: I(0), merging_size: I(0), bandwidth_limit: I(0), bandwidth_rate: I(0), prefetch_all: B, stream_prefetch: B });
const FILECACHE = O({ work_dir: S, cache_size_limit: I(0), disable_indexed_map: B, enable_encryption: B, enable_convergent_encryption: B, encryption_key: S });
const CACHE_TYPES = ['blobcache', 'filecache', 'fscache', 'dummycache', ''];

const V1: Field = O({
  device: O({
    id: S,
    backend: O({ type: E('localfs', 'localdisk', 'oss', 's3', 'registry'), config: { t: 'any' } }),
    external_backends: { t: 'any' },
    // v1 `cache.prefetch_config` is never read upstream (skip_deserializing): left unknown.
    cache: O({ type: E(...CACHE_TYPES), compressed: B, validate: B, config: FILECACHE }),
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
    filecache: FILECACHE,
    fscache: O({ work_dir: S }),
  }),
  rafs: O({ mode: E('direct', 'cached'), batch_size: I(0, 0x10000000), validate: B, enable_xattr: B, iostats_files: B, access_pattern: B, latest_read_files: B, prefetch: PREFETCH_V2 }),
  overlay: O({ upper_dir: S, work_dir: S }),
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

