// Minimal leveled logger to stderr. Secrets must never be passed in; redact() strips the usual suspects.
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
