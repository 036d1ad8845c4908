// Minimal leveled logger to stderr (or a rotated log file, nydusd --log-file). Secrets must never be
// passed in; redact() strips the usual suspects.
import { closeSync, createReadStream, createWriteStream, fstatSync, openSync, readdirSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'off';
const ORDER: Record<LogLevel, number> = { trace: 0, debug: 1, info: 2, warn: 3, error: 4, off: 5 };

let current: LogLevel = (process.env.NYDUS_LOG_LEVEL as LogLevel | undefined) ?? 'info';
let sink: (line: string) => void = (line) => process.stderr.write(line + '\n');

export function setLogLevel(level: LogLevel): void {
  current = level;
}
export function getLogLevel(): LogLevel {
  return current;
}
export function isLogLevel(s: string): s is LogLevel {
  return s in ORDER;
}
/** Tests capture log lines through this. */
export function setLogSink(fn: (line: string) => void): void {
  sink = fn;
}

/** Keys whose values are credentials wherever they appear (backend configs, mirrors, proxies, caches). */
const SECRET_KEYS = 'auth|registry_token|access_key_secret|secret_access_key|access_key_id|session_token|password|passwd|token|bearer|encryption_key|authorization|proxy-authorization|cookie|x-[\\w-]*token';
const SECRET_KEY = new RegExp(`^(?:${SECRET_KEYS})$`, 'i');
const SECRET_JSON = new RegExp(`("(?:${SECRET_KEYS})"\\s*:\\s*)"(?:[^"\\\\]|\\\\.)*"`, 'gi');
export const REDACTED = '<redacted>';
const ADDRESS_KEY = /^(?:host|url|endpoint|addr|proxy|proxy_url|ping_url)$/i;

/** Removes credentials from text that may quote a URL, header or config. */
export function redact(s: string): string {
  return s
    .replace(/((?:proxy-)?authorization:\s*)(\S+\s+)?\S+/gi, `$1${REDACTED}`)
    .replace(SECRET_JSON, `$1"${REDACTED}"`)
    // URL userinfo: "user:password@" and a bare token as user ("//ghp_xxx@host").
    .replace(/(\/\/)[^/@\s:"]+(?::[^/@\s"]*)?@/g, `$1${REDACTED}@`)
    .replace(/([?&](?:X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|token|access_token)=)[^&\s"]+/gi, `$1${REDACTED}`);
}

/**
 * A deep copy of a JSON-like value with every credential replaced: values under secret keys (any
 * depth, header names included) and, in every other string, URL userinfo, Authorization headers and
 * signed-URL query tokens (redact()). The one helper for API answers; log lines go through redact().
 */
export function redactSecrets<T>(v: T): T {
  const walk = (x: unknown, depth: number): unknown => {
    if (typeof x === 'string') return redact(x);
    if (!x || typeof x !== 'object' || depth > 64) return x;
    if (Array.isArray(x)) return x.map((e) => walk(e, depth + 1));
    const out: Record<string, unknown> = {};
    for (const [k, e] of Object.entries(x as Record<string, unknown>)) {
      if (SECRET_KEY.test(k) && e !== '' && e !== null && e !== undefined) out[k] = REDACTED;
      // A scheme-less "user:password@host" (old registry configs) has no "//" for redact() to see.
      else if (typeof e === 'string' && ADDRESS_KEY.test(k)) out[k] = redact(e.replace(/^[^/@\s]+@/, `${REDACTED}@`));
      else out[k] = walk(e, depth + 1);
    }
    return out;
  };
  return walk(v, 0) as T;
}

function emit(level: LogLevel, area: string, msg: string): void {
  if (ORDER[level] < ORDER[current]) return;
  sink(`[${new Date().toISOString()}] ${level.toUpperCase()} ${area}: ${redact(msg)}`);
}

export interface Logger {
  trace(msg: string): void;
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  enabled(level: LogLevel): boolean;
}

export function logger(area: string): Logger {
  return {
    trace: (m) => emit('trace', area, m),
    debug: (m) => emit('debug', area, m),
    info: (m) => emit('info', area, m),
    warn: (m) => emit('warn', area, m),
    error: (m) => emit('error', area, m),
    enabled: (l) => ORDER[l] >= ORDER[current],
  };
}

/** Compressed rotated files kept next to the log (upstream: flexi_logger Cleanup::KeepCompressedFiles(10)). */
export const LOG_ROTATED_KEEP = 10;

/** `<dir>/<stem>_r<YYYY-MM-DD_HH-MM-SS>[.restart-NNNN]<ext>`, as flexi_logger's Naming::Timestamps. */
function rotatedName(dir: string, stem: string, ext: string, now: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  const ts = `${now.getFullYear()}-${p(now.getMonth() + 1)}-${p(now.getDate())}_${p(now.getHours())}-${p(now.getMinutes())}-${p(now.getSeconds())}`;
  const taken = new Set(readdirSync(dir));
  for (let i = 0; ; i++) {
    const name = `${stem}_r${ts}${i ? `.restart-${String(i).padStart(4, '0')}` : ''}${ext}`;
    if (!taken.has(name) && !taken.has(`${name}.gz`) && !taken.has(`${name}.gz.tmp`)) return join(dir, name);
  }
}

/**
 * Sends log lines to `path` (appended; ".log" added when it has no extension, as upstream), rotating
 * it once it would pass `rotationMiB` MiB (0 = never): the full file is renamed to
 * `<stem>_r<timestamp><ext>` beside it, then gzip-compressed in the background to `<that>.gz`, and the
 * oldest compressed files beyond LOG_ROTATED_KEEP are removed. Returns the path written to. Line
 * writes are synchronous so the last lines before an exit are kept.
 */
export function logToFile(path: string, rotationMiB = 0): string {
  const file = resolve(extname(path) ? path : `${path}.log`);
  const dir = dirname(file);
  const ext = extname(file);
  const stem = basename(file, ext);
  const limit = rotationMiB > 0 ? Math.max(1, Math.floor(rotationMiB * 1024 * 1024)) : 0;
  let fd = openSync(file, 'a', 0o644);
  let size = fstatSync(fd).size;
  const fail = (what: string, e: unknown): void => void process.stderr.write(`log file ${file}: ${what}: ${(e as Error).message}\n`);
  const compress = (rotated: string): void => {
    const tmp = `${rotated}.gz.tmp`;
    // Loaded here, not at start-up: every FUSE worker thread imports this module.
    Promise.all([import('node:stream/promises'), import('node:zlib')])
      .then(([{ pipeline }, { createGzip }]) => pipeline(createReadStream(rotated), createGzip(), createWriteStream(tmp, { mode: 0o644 })))
      .then(() => {
        renameSync(tmp, `${rotated}.gz`);
        unlinkSync(rotated);
        const old = readdirSync(dir).filter((n) => n.startsWith(`${stem}_r`) && n.endsWith(`${ext}.gz`)).sort();
        for (const n of old.slice(0, Math.max(0, old.length - LOG_ROTATED_KEEP))) unlinkSync(join(dir, n));
      })
      .catch((e: unknown) => fail(`compressing ${rotated}`, e));
  };
  const rotate = (): void => {
    closeSync(fd);
    const rotated = rotatedName(dir, stem, ext, new Date());
    renameSync(file, rotated);
    fd = openSync(file, 'a', 0o644);
    size = 0;
    compress(rotated);
  };
  sink = (line) => {
    const buf = Buffer.from(line + '\n');
    try {
      if (limit && size > 0 && size + buf.length > limit) rotate();
      writeSync(fd, buf);
      size += buf.length;
    } catch (e) {
      // A full or vanished disk must not take the daemon down; fall back to stderr.
      fail('write failed', e);
      process.stderr.write(line + '\n');
    }
  };
  return file;
}
