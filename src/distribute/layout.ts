// Names and files of the distribution layout (seed: nydusdfile/{serverfile, <dir>...}), the nydusd
// v1 config a bundle carries, and the state files through which clean removes exactly what start
// created (and nothing else).
import { existsSync, readFileSync, readdirSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';

export const SERVER_DIR = 'serverfile';
export const BLOBS_DIR = 'nydusblobs';
export const BOOTSTRAP = 'rootfs.meta';
export const CONFIG = 'httpserver.json';
export const SERVER_SERVICE = 'nydusd_http_server';
export const SERVER_STATE = '.nydus-distribute.json';
export const NODE_STATE = '.nydus-distribute-node.json';
/** In a self-contained bundle: the Node runtime, the bundled programs and native addons. */
export const RUNTIME_DIR = 'nydus';
export const DEFAULT_PORT = 8000;

/**
 * Backend timeouts a node uses. Small on purpose: a read of an uncached chunk while the server is
 * gone must fail with EIO within ~(1 + retry_limit) × connect_timeout, not hang an application.
 */
export const BACKEND_TIMEOUTS = { timeout: 5, connect_timeout: 3, retry_limit: 2 };

/** A directory name becomes the registry repo in /v2/<repo>/blobs/...: one safe path segment. */
export function checkImageName(name: string, source: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) || name === SERVER_DIR) {
    throw new Error(`directory name '${name}' (${source}) cannot name a bundle: use letters, digits, '.', '_' or '-' (and not '${SERVER_DIR}')`);
  }
}

export interface NydusdV1Config {
  device: {
    backend: { type: 'registry'; config: { scheme: 'http'; host: string; repo: string; timeout: number; connect_timeout: number; retry_limit: number } };
    cache: { type: 'blobcache'; config: { work_dir: string } };
  };
  mode: 'direct';
  digest_validate: boolean;
  enable_xattr: boolean;
  iostats_files: boolean;
  fs_prefetch: { enable: boolean; prefetch_all: boolean; threads_count: number; merging_size: number };
}

/** The bundle's httpserver.json: the registry backend is how upstream nydusd reaches nydus-backend-proxy. */
export function nydusdConfig(host: string, port: number, repo: string, prefetch = false, workDir = './cache'): NydusdV1Config {
  const h = host.includes(':') ? `[${host}]` : host;
  return {
    device: {
      backend: { type: 'registry', config: { scheme: 'http', host: `${h}:${port}`, repo, ...BACKEND_TIMEOUTS } },
      cache: { type: 'blobcache', config: { work_dir: workDir } },
    },
    mode: 'direct',
    digest_validate: false,
    enable_xattr: true,
    iostats_files: false,
    fs_prefetch: { enable: prefetch, prefetch_all: true, threads_count: 4, merging_size: 1 << 20 },
  };
}

/** The config a node actually runs: the bundle's, with the cache dir made absolute and prefetch chosen at start. */
export function runtimeConfig(bundleConfig: NydusdV1Config, bundleDir: string, prefetch: boolean): NydusdV1Config {
  const c = structuredClone(bundleConfig);
  const wd = c.device.cache.config.work_dir || './cache';
  c.device.cache.config.work_dir = isAbsolute(wd) ? wd : resolve(bundleDir, wd);
  c.fs_prefetch = { ...c.fs_prefetch, enable: prefetch || c.fs_prefetch.enable, prefetch_all: true };
  return c;
}

export function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export function writeJson(file: string, v: unknown): void {
  writeFileSync(file, JSON.stringify(v, null, 2) + '\n');
}

/**
 * Records paths as they are created, so clean can undo them. A path that existed before is not
 * recorded (it is not ours), except when an earlier run of ours recorded it.
 */
export class Created {
  readonly paths: string[];
  constructor(previous: string[] = []) {
    this.paths = [...previous];
  }
  /** Call before creating `p`. */
  willCreate(p: string): void {
    if (!existsSync(p) && !this.paths.includes(p)) this.paths.push(p);
  }
  /** Records a path known to be ours although it exists already (written by a tool we ran). */
  record(p: string): void {
    if (!this.paths.includes(p)) this.paths.push(p);
  }
  /** mkdir -p, recording each directory level it makes. */
  mkdirp(p: string, mkdir: (p: string) => void): void {
    const missing: string[] = [];
    for (let d = p; !existsSync(d); d = dirname(d)) missing.unshift(d);
    for (const d of missing) {
      this.willCreate(d);
      mkdir(d);
    }
  }
}

/**
 * Removes recorded paths, deepest first: files always, directories recursively when `recursive`
 * says so for that directory (our own cache/upper dirs), else only when empty. Returns what was
 * left because it held something we did not create.
 */
export function removeCreated(paths: string[], recursive: (p: string) => boolean = () => false): string[] {
  const left: string[] = [];
  const sorted = [...new Set(paths)].sort((a, b) => b.split('/').length - a.split('/').length || b.localeCompare(a));
  for (const p of sorted) {
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st) continue;
    if (!st.isDirectory()) rmSync(p, { force: true });
    else if (recursive(p)) rmSync(p, { recursive: true, force: true });
    else if (readdirSync(p).length === 0) rmdirSync(p);
    else left.push(p);
  }
  return left;
}
