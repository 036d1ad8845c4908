// nydus-snapshotter's TOML config, upstream key names where they apply:
//   root, address, daemon_mode, [daemon] nydusd_config nydusd_path, [log] level,
//   [cache_manager] cache_dir, [remote] skip_ssl_verify.
// Unknown keys are errors naming the key (like the daemon's strict JSON config).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { ConfigError } from '../util/errors.js';
import { isLogLevel, type LogLevel } from '../util/log.js';
import type { DaemonMode } from './daemons.js';

export interface SnapshotterConfig {
  root: string;
  address: string;
  daemonMode: DaemonMode;
  /** nydusd JSON config template (backend/cache filled per image), or undefined for the built-in one. */
  nydusdConfig: string | undefined;
  /** argv of nydusd; undefined: this package's bin/nydusd.js. */
  nydusdPath: string | undefined;
  logLevel: LogLevel;
  cacheDir: string | undefined;
  skipSslVerify: boolean;
}

export const DEFAULT_ROOT = '/var/lib/containerd-nydus';
export const DEFAULT_ADDRESS = '/run/containerd-nydus/containerd-nydus-grpc.sock';

const KEYS: Record<string, string[] | null> = {
  version: null,
  root: null,
  address: null,
  daemon_mode: null,
  daemon: ['nydusd_config', 'nydusd_path', 'fs_driver'],
  log: ['level'],
  cache_manager: ['cache_dir'],
  remote: ['skip_ssl_verify'],
};

function str(v: unknown, key: string, file: string): string {
  if (typeof v !== 'string') throw new ConfigError(`${file}: "${key}" must be a string`);
  return v;
}

export function parseConfig(text: string, file: string): SnapshotterConfig {
  const require = createRequire(import.meta.url);
  const { parse } = require('smol-toml') as { parse(s: string): Record<string, unknown> };
  let t: Record<string, unknown>;
  try {
    t = parse(text);
  } catch (e) {
    throw new ConfigError(`${file}: not valid TOML: ${(e as Error).message.split('\n')[0]}`);
  }
  for (const [k, v] of Object.entries(t)) {
    if (!(k in KEYS)) throw new ConfigError(`${file}: unknown key "${k}"`);
    const sub = KEYS[k];
    if (sub) {
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(`${file}: "${k}" must be a table`);
      for (const s of Object.keys(v)) if (!sub.includes(s)) throw new ConfigError(`${file}: unknown key "${k}.${s}"`);
    }
  }
  const tab = (k: string): Record<string, unknown> => (t[k] as Record<string, unknown> | undefined) ?? {};
  const cfg = defaultConfig();
  if (t.root !== undefined) cfg.root = str(t.root, 'root', file);
  cfg.address = t.address !== undefined ? str(t.address, 'address', file) : cfg.address;
  if (t.daemon_mode !== undefined) {
    const m = str(t.daemon_mode, 'daemon_mode', file);
    // Upstream renamed "multiple" to "dedicated"; both mean one nydusd per image.
    if (m === 'multiple' || m === 'dedicated') cfg.daemonMode = 'multiple';
    else if (m === 'shared') cfg.daemonMode = 'shared';
    else throw new ConfigError(`${file}: "daemon_mode" must be "multiple", "dedicated" or "shared", not "${m}"`);
  }
  const d = tab('daemon');
  if (d.nydusd_config !== undefined) cfg.nydusdConfig = str(d.nydusd_config, 'daemon.nydusd_config', file);
  if (d.nydusd_path !== undefined) cfg.nydusdPath = str(d.nydusd_path, 'daemon.nydusd_path', file);
  if (d.fs_driver !== undefined && d.fs_driver !== 'fusedev') throw new ConfigError(`${file}: "daemon.fs_driver" must be "fusedev" (the only driver here)`);
  const l = tab('log');
  if (l.level !== undefined) {
    const lv = str(l.level, 'log.level', file);
    if (!isLogLevel(lv)) throw new ConfigError(`${file}: "log.level" must be one of trace, debug, info, warn, error`);
    cfg.logLevel = lv;
  }
  const c = tab('cache_manager');
  if (c.cache_dir !== undefined && c.cache_dir !== '') cfg.cacheDir = str(c.cache_dir, 'cache_manager.cache_dir', file);
  const r = tab('remote');
  if (r.skip_ssl_verify !== undefined) {
    if (typeof r.skip_ssl_verify !== 'boolean') throw new ConfigError(`${file}: "remote.skip_ssl_verify" must be true or false`);
    cfg.skipSslVerify = r.skip_ssl_verify;
  }
  return cfg;
}

export function defaultConfig(): SnapshotterConfig {
  return { root: DEFAULT_ROOT, address: DEFAULT_ADDRESS, daemonMode: 'multiple', nydusdConfig: undefined, nydusdPath: undefined, logLevel: 'info', cacheDir: undefined, skipSslVerify: false };
}

export function loadConfig(file: string): SnapshotterConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseConfig(text, file);
}

export const cacheRoot = (c: SnapshotterConfig): string => c.cacheDir ?? join(c.root, 'cache');
