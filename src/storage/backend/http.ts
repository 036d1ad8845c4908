// Shared HTTP layer of the remote backends (registry, s3, oss, http-proxy): node:http/https with
// keep-alive agents, a connect timeout, an idle (read) timeout that restarts on every body chunk,
// a whole-request deadline (wholeRequestDeadlineMs: a server trickling bytes cannot hold a read),
// abort signals, forward-proxy and unix-socket transports, and exact-length ranged bodies.
// Redirects are never followed here: the caller decides (upstream connection.rs does the same).
// Upstream: nydus storage/src/backend/connection.rs.
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { BackendError } from '../../util/errors.js';
import { redact } from '../../util/log.js';

export interface HttpClientOptions {
  /** Backend type, for error messages. */
  backend: string;
  connectTimeoutMs: number;
  /** Longest silence while waiting for headers or between body chunks. */
  timeoutMs: number;
  /** https without certificate verification (config `skip_verify`). */
  skipVerify: boolean;
  /** Connect every request to this unix socket instead of the URL's host (http-proxy backend). */
  socketPath?: string;
  maxSockets?: number;
}

export interface HttpRequest {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  body?: Uint8Array;
  signal?: AbortSignal | undefined;
  /** Send through this HTTP forward proxy (absolute-form request target, RFC 9112 §3.2.2). */
  via?: URL | undefined;
}

/** Config keys every remote backend shares (upstream-features §2.7). */
export interface CommonHttpConfig {
  /** Seconds (fractions allowed); default 5. */
  timeout?: number;
  connect_timeout?: number;
  retry_limit?: number;
  skip_verify?: boolean;
  proxy?: unknown;
}

export function clientOptionsFrom(cfg: CommonHttpConfig, backend: string): HttpClientOptions {
  return { backend, timeoutMs: secondsToMs(cfg.timeout, 5), connectTimeoutMs: secondsToMs(cfg.connect_timeout, 5), skipVerify: cfg.skip_verify ?? false };
}

/**
 * Whole-request deadline, from sending the request to the last body byte: `connect_timeout` plus
 * `timeout` per started MiB of the expected body, plus one more `timeout` for the headers. So a
 * transfer must average about 1 MiB per `timeout` (200 KiB/s with the default 5 s); upstream's
 * reqwest `timeout` is a whole-request limit too, ours only grows it for large ranges.
 */
export function wholeRequestDeadlineMs(o: Pick<HttpClientOptions, 'connectTimeoutMs' | 'timeoutMs'>, expectedBytes: number): number {
  return o.connectTimeoutMs + o.timeoutMs * (1 + Math.ceil(Math.max(0, expectedBytes) / (1 << 20)));
}

/** Converts backend config seconds (fractions allowed) into ms with the upstream 5 s default. */
export function secondsToMs(v: unknown, defaultSeconds: number): number {
  const n = typeof v === 'number' && v > 0 ? v : defaultSeconds;
  return Math.round(n * 1000);
}

/** Maps an HTTP status to a BackendError; 5xx, 408 and 429 are retryable. */
export function statusError(backend: string, status: number, what: string): BackendError {
  if (status === 404) return new BackendError('ERR_BACKEND_NOT_FOUND', backend, `${what}: not found (HTTP 404)`, { status });
  if (status === 401 || status === 403) return new BackendError('ERR_BACKEND_AUTH', backend, `${what}: access denied (HTTP ${status})`, { status });
  const retryable = status >= 500 || status === 408 || status === 429;
  return new BackendError('ERR_BACKEND_HTTP_STATUS', backend, `${what}: unexpected HTTP ${status}`, { status, retryable });
}

export class HttpResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly #res: IncomingMessage;
  readonly #ctl: RequestControl;

  constructor(res: IncomingMessage, ctl: RequestControl) {
    this.#res = res;
    this.#ctl = ctl;
    this.status = res.statusCode ?? 0;
    this.headers = res.headers;
  }

  header(name: string): string | undefined {
    const v = this.headers[name.toLowerCase()];
    return Array.isArray(v) ? v[0] : v;
  }

  /** Drops the body; a keep-alive socket goes back to the pool once the body is drained. */
  discard(): void {
    this.#res.on('end', () => this.#ctl.done());
    this.#res.resume();
  }

  /** Whole body, refusing more than `maxBytes` (token replies, error documents). */
  readAll(maxBytes = 1 << 20): Promise<Buffer> {
    return this.#collect(0, Number.MAX_SAFE_INTEGER, maxBytes, false);
  }

  /** Exactly `n` bytes: a shorter body is a retryable error, a longer one an error; never wrong data. */
  readExact(n: number): Promise<Buffer> {
    return this.#collect(0, n, n, true);
  }

  /** Bytes [skip, skip+take) of a full (200) body; the connection is dropped once the window is filled. */
  readWindow(skip: number, take: number): Promise<Buffer> {
    return this.#collect(skip, take, Number.MAX_SAFE_INTEGER, false);
  }

  #collect(skip: number, take: number, maxBytes: number, exact: boolean): Promise<Buffer> {
    const res = this.#res;
    const ctl = this.#ctl;
    return new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let seen = 0;
      let kept = 0;
      let settled = false;
      const finish = (err: BackendError | undefined): void => {
        if (settled) return;
        settled = true;
        ctl.done();
        if (err) {
          ctl.destroy(err);
          reject(err);
        } else resolve(Buffer.concat(chunks, kept));
      };
      res.on('data', (chunk: Buffer) => {
        if (settled) return;
        ctl.touch();
        const start = seen;
        seen += chunk.length;
        if (seen > maxBytes) {
          finish(new BackendError('ERR_BACKEND_HTTP_STATUS', ctl.backend, `${ctl.what}: body longer than the expected ${maxBytes} bytes`, { retryable: true }));
          return;
        }
        const lo = Math.max(skip, start);
        const hi = Math.min(skip + take, seen);
        if (hi > lo) {
          chunks.push(chunk.subarray(lo - start, hi - start));
          kept += hi - lo;
        }
        // A full-body reply only needs the window: stop reading (and lose the socket) early.
        if (!exact && kept === take && take !== Number.MAX_SAFE_INTEGER) {
          finish(undefined);
          res.destroy();
        }
      });
      res.on('end', () => {
        if (exact && seen !== take) {
          finish(new BackendError('ERR_BACKEND_NETWORK', ctl.backend, `${ctl.what}: short body, got ${seen} of ${take} bytes`, { retryable: true }));
        } else finish(undefined);
      });
      const broken = (e?: unknown): void => {
        if (settled) return;
        finish(ctl.failure ?? ctl.wrap(e ?? new Error('connection closed mid-body'), `${ctl.what}: connection lost after ${seen} bytes`));
      };
      res.on('error', broken);
      res.on('aborted', () => broken());
      res.on('close', () => {
        if (!res.complete) broken();
      });
    });
  }
}

/** Per-request timer and failure state shared by the request and its response body. */
class RequestControl {
  failure: BackendError | undefined;
  #timer: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;
  #ms = 0;
  #onTimeout: () => void = () => {};
  destroy: (err: BackendError) => void = () => {};

  constructor(readonly backend: string, readonly what: string) {}

  arm(ms: number, onTimeout: () => void): void {
    this.#ms = ms;
    this.#onTimeout = onTimeout;
    this.touch();
  }
  /** Fails the request after `ms` whatever arrives meanwhile; cleared by done(). */
  deadline(ms: number, onTimeout: () => void): void {
    this.#deadline = setTimeout(onTimeout, ms);
    this.#deadline.unref?.();
  }
  touch(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#onTimeout(), this.#ms);
    this.#timer.unref?.();
  }
  done(): void {
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#deadline) clearTimeout(this.#deadline);
    this.#timer = undefined;
    this.#deadline = undefined;
    this.#onTimeout = () => {};
  }
  wrap(e: unknown, msg: string): BackendError {
    if (e instanceof BackendError) return e;
    const code = (e as { code?: string }).code;
    const detail = code ?? (e as Error).message ?? String(e);
    return new BackendError('ERR_BACKEND_NETWORK', this.backend, redact(`${msg} (${detail})`), { retryable: true, cause: e });
  }
}

export class HttpClient {
  readonly options: HttpClientOptions;
  readonly #httpAgent: http.Agent;
  readonly #httpsAgent: https.Agent;

  constructor(options: HttpClientOptions) {
    this.options = options;
    const maxSockets = options.maxSockets ?? 32;
    this.#httpAgent = new http.Agent({ keepAlive: true, maxSockets });
    this.#httpsAgent = new https.Agent({ keepAlive: true, maxSockets, rejectUnauthorized: !options.skipVerify });
  }

  /** Sends a request; resolves once the status line and headers have arrived. */
  request(req: HttpRequest): Promise<HttpResponse> {
    const { backend } = this.options;
    const target = req.via ?? req.url;
    const tls = target.protocol === 'https:';
    // Only the path appears in errors: query strings carry presigned credentials.
    const what = `${req.method} ${req.url.host}${req.url.pathname}`;
    const ctl = new RequestControl(backend, what);
    return new Promise<HttpResponse>((resolve, reject) => {
      if (req.signal?.aborted) return reject(req.signal.reason);
      const headers: Record<string, string> = { ...(req.headers ?? {}) };
      if (req.body) headers['content-length'] = String(req.body.length);
      const opts: http.RequestOptions = { method: req.method, headers, agent: tls ? this.#httpsAgent : this.#httpAgent };
      if (this.options.socketPath) {
        opts.socketPath = this.options.socketPath;
        opts.path = req.url.pathname + req.url.search;
      } else {
        opts.hostname = target.hostname.replace(/^\[|\]$/g, '');
        opts.port = target.port || (tls ? 443 : 80);
        opts.path = req.via ? req.url.href : req.url.pathname + req.url.search;
        if (req.via) headers.host = req.url.host;
      }
      const creq = (tls ? https : http).request(opts);
      let answered = false;
      ctl.destroy = (err) => {
        ctl.failure ??= err;
        // Destroy without an error object: the failure is reported through our own promise, and an
        // error passed here could resurface as an 'error' event nobody listens to any more.
        if (answered) creq.destroy();
        else creq.destroy(err);
      };
      const idle = (): void =>
        ctl.destroy(new BackendError('ERR_BACKEND_TIMEOUT', backend, `${what}: no data for ${this.options.timeoutMs} ms`, { retryable: true }));
      ctl.arm(this.options.connectTimeoutMs, () =>
        ctl.destroy(new BackendError('ERR_BACKEND_TIMEOUT', backend, `${what}: connect timed out after ${this.options.connectTimeoutMs} ms`, { retryable: true })),
      );
      const range = /^bytes=(\d+)-(\d+)$/.exec(headers.range ?? '');
      const limit = wholeRequestDeadlineMs(this.options, range ? Number(range[2]) - Number(range[1]) + 1 : 0);
      ctl.deadline(limit, () => ctl.destroy(new BackendError('ERR_BACKEND_TIMEOUT', backend, `${what}: not complete after ${limit} ms (whole-request deadline)`, { retryable: true })));
      creq.on('socket', (s) => {
        const connected = (): void => ctl.arm(this.options.timeoutMs, idle);
        if ((s as { connecting?: boolean }).connecting) s.once(tls && !req.via ? 'secureConnect' : 'connect', connected);
        else connected();
      });
      const onAbort = (): void => ctl.destroy(new BackendError('ERR_BACKEND_NETWORK', backend, `${what}: aborted`, { cause: req.signal?.reason }));
      req.signal?.addEventListener('abort', onAbort, { once: true });
      creq.on('close', () => req.signal?.removeEventListener('abort', onAbort));
      creq.on('error', (e) => {
        ctl.done();
        if (!answered) reject(ctl.failure ?? ctl.wrap(e, `${what}: request failed`));
      });
      creq.on('response', (res) => {
        answered = true;
        ctl.touch();
        resolve(new HttpResponse(res, ctl));
      });
      creq.end(req.body);
    });
  }

  close(): void {
    this.#httpAgent.destroy();
    this.#httpsAgent.destroy();
  }
}

/** `bytes=a-b` for [offset, offset+length). */
export function rangeHeader(offset: number, length: number): string {
  return `bytes=${offset}-${offset + length - 1}`;
}

/**
 * Reads the answer to a ranged GET of [offset, offset+length): 206 must start at `offset` and may be
 * shorter only at the blob end; 200 is a whole body (the range was ignored); 416 means `offset` is at or
 * past the end. Anything else becomes a BackendError from statusError().
 */
export async function readRangeResponse(res: HttpResponse, backend: string, what: string, offset: number, length: number): Promise<Uint8Array> {
  if (res.status === 206) {
    const cr = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.header('content-range') ?? '');
    if (!cr) {
      res.discard();
      throw new BackendError('ERR_BACKEND_HTTP_STATUS', backend, `${what}: 206 without a usable Content-Range`);
    }
    const start = Number(cr[1]);
    const end = Number(cr[2]);
    const total = cr[3] === '*' ? undefined : Number(cr[3]);
    const n = end - start + 1;
    const atEnd = total !== undefined && end + 1 === total;
    if (start !== offset || n > length || n <= 0 || (n < length && !atEnd)) {
      res.discard();
      throw new BackendError('ERR_BACKEND_HTTP_STATUS', backend, `${what}: server sent range ${start}-${end}, asked for ${offset}-${offset + length - 1}`, { retryable: true });
    }
    return res.readExact(n);
  }
  if (res.status === 200) {
    const cl = res.header('content-length');
    const body = await res.readWindow(offset, length);
    const size = cl !== undefined ? Number(cl) : undefined;
    const want = size !== undefined ? Math.max(0, Math.min(length, size - offset)) : body.length;
    if (body.length !== want) {
      throw new BackendError('ERR_BACKEND_NETWORK', backend, `${what}: short body, got ${body.length} of ${want} bytes`, { retryable: true });
    }
    return body;
  }
  res.discard();
  if (res.status === 416) return new Uint8Array(0);
  throw statusError(backend, res.status, what);
}

/** A blob's size from the answer to its HEAD: 200 with a Content-Length; the body is dropped. */
export function blobSizeFromHead(res: HttpResponse, backend: string, blobId: string, what = `cannot stat blob ${blobId}`): number {
  res.discard();
  if (res.status !== 200) throw statusError(backend, res.status, what);
  const n = Number(res.header('content-length'));
  if (!Number.isSafeInteger(n) || n < 0) throw new BackendError('ERR_BACKEND_HTTP_STATUS', backend, `cannot stat blob ${blobId}: no Content-Length`);
  return n;
}
