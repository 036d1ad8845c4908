// Typed errors with stable codes. One place (errnoOf) maps them to errno for FUSE and the API.
// Codes follow ERR_<AREA>_<WHAT>.
import { constants as osConstants } from 'node:os';

export type ErrorCode =
  | 'ERR_FORMAT_BAD_MAGIC'
  | 'ERR_FORMAT_TRUNCATED'
  | 'ERR_FORMAT_INVALID'
  | 'ERR_FORMAT_UNSUPPORTED'
  | 'ERR_DIGEST_MISMATCH'
  | 'ERR_COMPRESSION'
  | 'ERR_BACKEND_NOT_FOUND'
  | 'ERR_BACKEND_HTTP_STATUS'
  | 'ERR_BACKEND_NETWORK'
  | 'ERR_BACKEND_TIMEOUT'
  | 'ERR_BACKEND_AUTH'
  | 'ERR_CACHE_CORRUPT'
  | 'ERR_CACHE_CLOSED'
  | 'ERR_CONFIG_INVALID'
  | 'ERR_CLI_USAGE'
  | 'ERR_IO'
  | 'ERR_FS'
  | 'ERR_BUILD'
  | 'ERR_TAR_UNSAFE'
  | 'ERR_REGISTRY'
  | 'ERR_API'
  | 'ERR_SUPERVISOR'
  | 'ERR_INTERNAL';

export class NydusError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Corrupt or unsupported on-disk data; `structure` names what was being decoded. */
export class FormatError extends NydusError {
  readonly structure: string;
  readonly offset: number | undefined;
  constructor(code: ErrorCode, structure: string, message: string, offset?: number, options?: ErrorOptions) {
    super(code, `${structure}: ${message}${offset !== undefined ? ` (at offset ${offset})` : ''}`, options);
    this.structure = structure;
    this.offset = offset;
  }
}

/** A backend (localfs, registry, s3, ...) failed; `retryable` tells the retry loop whether to try again. */
export class BackendError extends NydusError {
  readonly backend: string;
  readonly status: number | undefined;
  readonly retryable: boolean;
  constructor(code: ErrorCode, backend: string, message: string, opts: { status?: number; retryable?: boolean; cause?: unknown } = {}) {
    super(code, message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.backend = backend;
    this.status = opts.status;
    this.retryable = opts.retryable ?? false;
  }
}

/** A filesystem-level outcome with a definite errno (positive). */
export class FsError extends NydusError {
  readonly errno: number;
  constructor(errno: number, message: string, options?: ErrorOptions) {
    super('ERR_FS', message, options);
    this.errno = errno;
  }
}

/** A user mistake on the command line: printed with a usage hint, exit code 2. */
export class UsageError extends NydusError {
  constructor(message: string) {
    super('ERR_CLI_USAGE', message);
  }
}

export class ConfigError extends NydusError {
  constructor(message: string) {
    super('ERR_CONFIG_INVALID', message);
  }
}

const E = osConstants.errno;

/** The single error → errno mapping (positive errno). */
export function errnoOf(err: unknown): number {
  if (err instanceof FsError) return err.errno;
  if (err instanceof NydusError) {
    switch (err.code) {
      case 'ERR_BACKEND_TIMEOUT':
        return E.EIO;
      case 'ERR_CLI_USAGE':
      case 'ERR_CONFIG_INVALID':
        return E.EINVAL;
      default:
        return E.EIO;
    }
  }
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'string') {
    const n = (E as Record<string, number>)[(err as { code: string }).code];
    if (typeof n === 'number') return n;
  }
  return E.EIO;
}

/** Message for a user: one line, no stack. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    let msg = err.message;
    let cause = (err as { cause?: unknown }).cause;
    while (cause instanceof Error && !msg.includes(cause.message)) {
      msg += `: ${cause.message}`;
      cause = (cause as { cause?: unknown }).cause;
    }
    return msg.replace(/\s*\n\s*/g, ' ');
  }
  return String(err);
}
