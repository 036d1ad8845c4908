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

/** Removes credentials from text that may quote a URL, header or config. */
export function redact(s: string): string {
  return s
    .replace(/(authorization:\s*)(\S+\s+)?\S+/gi, '$1<redacted>')
    .replace(/("(?:auth|registry_token|access_key_secret|secret_access_key|access_key_id|password|token)"\s*:\s*)"[^"]*"/gi, '$1"<redacted>"')
    .replace(/(\/\/)[^/@\s:]+:[^/@\s]+@/g, '$1<redacted>@')
    .replace(/([?&](?:X-Amz-Signature|X-Amz-Credential|Signature|token)=)[^&\s]+/gi, '$1<redacted>');
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
