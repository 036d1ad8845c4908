// The one HTTP client of nydus-ts (the remote backends and nydusify's registry client), on undici:
// keep-alive pools, a connect timeout, an idle timeout (headers, and between body chunks), a
// whole-request deadline (wholeRequestDeadlineMs: a server trickling bytes cannot hold a read),
// abort signals, HTTP(S)_PROXY/NO_PROXY and P2P forward proxies (undici ProxyAgent: absolute-form
// for http, CONNECT tunnels for https), unix-socket transport, `ca_cert_files` and mutual TLS, and
// exact-length ranged bodies. Redirects are never followed here: the caller decides (upstream
// connection.rs does the same). Errors name method, host and path only (query strings carry
// presigned credentials). Upstream: nydus storage/src/backend/connection.rs.
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import tls from 'node:tls';
import { Agent, ProxyAgent, type Dispatcher } from 'undici';
import { BackendError, ConfigError } from '../../util/errors.js';
import { logger, redact } from '../../util/log.js';
import { packageVersion } from '../../util/version.js';

const log = logger('http');

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
  /** Trusted CAs for https (system roots plus `ca_cert_files`); unset = node's defaults. */
  ca?: Array<string | Buffer>;
  /** Client certificate and key (PEM) for mutual TLS (`client_cert_file`, `client_key_file`). */
  cert?: Buffer;
  key?: Buffer;
  /** Environment for HTTP(S)_PROXY / NO_PROXY (tests pass their own). */
  env?: NodeJS.ProcessEnv;
}

/** A request body: bytes, or a factory of a fresh stream per attempt (uploads from files). */
export type RequestBody = Uint8Array | (() => Readable);

export interface HttpRequest {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  body?: RequestBody | undefined;
  /**
   * Whole-request deadline: computed from the Range header by default; `false` for transfers of
   * unknown size (nydusify's layer streams and uploads), which keep only the idle timeout.
   */
  deadline?: false;
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
  /** Extra PEM CA bundles trusted besides the system roots. */
  ca_cert_files?: string[];
  client_cert_file?: string;
  client_key_file?: string;
}

function readPem(path: string, key: string, backend: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new ConfigError(`backend ${backend}: ${key} ${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

export function clientOptionsFrom(cfg: CommonHttpConfig, backend: string): HttpClientOptions {
  const o: HttpClientOptions = { backend, timeoutMs: secondsToMs(cfg.timeout, 5), connectTimeoutMs: secondsToMs(cfg.connect_timeout, 5), skipVerify: cfg.skip_verify ?? false };
  const files = cfg.ca_cert_files ?? [];
  // `ca` replaces node's trust store, so the system roots go first.
  if (files.length) o.ca = [...tls.rootCertificates, ...files.map((f, i) => readPem(f, `ca_cert_files[${i}]`, backend))];
  if (cfg.client_cert_file && cfg.client_key_file) {
    o.cert = readPem(cfg.client_cert_file, 'client_cert_file', backend);
    o.key = readPem(cfg.client_key_file, 'client_key_file', backend);
  }
  return o;
}

/**
 * The forward proxy the environment names for `url` (curl's and upstream's HTTP client's convention):
 * http_proxy/HTTP_PROXY for http, https_proxy/HTTPS_PROXY for https, else all_proxy/ALL_PROXY; none when
 * no_proxy/NO_PROXY has `*` or a matching host, domain suffix (`.example.com` or `example.com`), or host:port.
 */
export function envProxyFor(url: URL, env: NodeJS.ProcessEnv = process.env): URL | undefined {
  const get = (n: string): string | undefined => env[n.toLowerCase()] || env[n.toUpperCase()] || undefined;
  const raw = (url.protocol === 'https:' ? get('https_proxy') : get('http_proxy')) ?? get('all_proxy');
  if (!raw) return undefined;
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  for (let entry of (get('no_proxy') ?? '').split(/[\s,]+/)) {
    entry = entry.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return undefined;
    let eport: string | undefined;
    const m = /^(.*):(\d+)$/.exec(entry);
    if (m && !entry.includes(']') && (m[1]!.match(/:/g) ?? []).length === 0) [entry, eport] = [m[1]!, m[2]];
    entry = entry.replace(/^\[|\]$/g, '').replace(/^\*?\./, '.');
    if (eport && eport !== port) continue;
    if (host === entry.replace(/^\./, '') || (entry.startsWith('.') ? host.endsWith(entry) : host.endsWith(`.${entry}`))) return undefined;
  }
  try {
    return new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`);
  } catch {
    throw new ConfigError(`proxy environment variable for ${url.protocol.slice(0, -1)}: not a URL`);
  }
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
  readonly headers: Record<string, string | string[] | undefined>;
  /** The URL asked for (to resolve a relative Location). */
  readonly url: URL;
  readonly #body: Dispatcher.ResponseData['body'];
  readonly #ctl: RequestControl;

  constructor(data: Dispatcher.ResponseData, url: URL, ctl: RequestControl) {
    this.status = data.statusCode;
    this.headers = data.headers;
    this.url = url;
    this.#body = data.body;
    this.#ctl = ctl;
    // undici destroys an unread body with the transport error (reset, deadline, abort): without a
    // listener that would be an uncaught exception. Readers see the error through their iterator.
    data.body.on('error', () => {});
    data.body.once('close', () => ctl.done());
  }

  header(name: string): string | undefined {
    const v = this.headers[name.toLowerCase()];
    return Array.isArray(v) ? v[0] : v;
  }

  /** Drops the body (a small one is drained so the keep-alive socket goes back to the pool). */
  discard(): void {
    this.#body.dump({ limit: 256 << 10 }).catch(() => {});
  }

  /** The body as a stream (layers of any size); errors are BackendErrors. Idle timeout still applies. */
  stream(): Readable {
    const ctl = this.#ctl;
    const body = this.#body;
    // Re-emit transport failures in our typed, redacted form.
    const orig = body.emit.bind(body) as (ev: string | symbol, ...a: unknown[]) => boolean;
    body.emit = ((ev: string | symbol, ...a: unknown[]) => (ev === 'error' ? orig(ev, ctl.failure ?? ctl.wrap(a[0], `${ctl.what}: connection lost`)) : orig(ev, ...a))) as typeof body.emit;
    return body;
  }

  /** Whole body, refusing more than `maxBytes` (token replies, manifests, error documents). */
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

  async #collect(skip: number, take: number, maxBytes: number, exact: boolean): Promise<Buffer> {
    const ctl = this.#ctl;
    const body = this.#body;
    const chunks: Buffer[] = [];
    let seen = 0;
    let kept = 0;
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        const start = seen;
        seen += chunk.length;
        if (seen > maxBytes) {
          throw new BackendError('ERR_BACKEND_HTTP_STATUS', ctl.backend, `${ctl.what}: body longer than the expected ${maxBytes} bytes`, { retryable: true });
        }
        const lo = Math.max(skip, start);
        const hi = Math.min(skip + take, seen);
        if (hi > lo) {
          chunks.push(chunk.subarray(lo - start, hi - start));
          kept += hi - lo;
        }
        // A full-body reply only needs the window: stop reading (and lose the socket) early.
        if (!exact && kept === take && take !== Number.MAX_SAFE_INTEGER) break;
      }
    } catch (e) {
      throw ctl.failure ?? ctl.wrap(e, `${ctl.what}: connection lost after ${seen} bytes`);
    } finally {
      if (!body.destroyed && !body.readableEnded) body.destroy();
      ctl.done();
    }
    if (exact && seen !== take) {
      throw new BackendError('ERR_BACKEND_NETWORK', ctl.backend, `${ctl.what}: short body, got ${seen} of ${take} bytes`, { retryable: true });
    }
    return Buffer.concat(chunks, kept);
  }
}

/** Per-request deadline, abort wiring and failure state shared by the request and its response body. */
class RequestControl {
  failure: BackendError | undefined;
  readonly abort = new AbortController();
  #deadline: NodeJS.Timeout | undefined;
  #unlink: (() => void) | undefined;

  constructor(readonly backend: string, readonly what: string, readonly idleMs: number) {}

  /** Fails the request with `err` (reported through our promise, never an unhandled event). */
  fail(err: BackendError): void {
    this.failure ??= err;
    this.abort.abort(err);
  }
  /** Fails the request after `ms` whatever arrives meanwhile; cleared by done(). */
  deadline(ms: number, err: () => BackendError): void {
    this.#deadline = setTimeout(() => this.fail(err()), ms);
    this.#deadline.unref?.();
  }
  link(signal: AbortSignal | undefined, err: () => BackendError): void {
    if (!signal) return;
    const onAbort = (): void => this.fail(err());
    signal.addEventListener('abort', onAbort, { once: true });
    this.#unlink = () => signal.removeEventListener('abort', onAbort);
  }
  done(): void {
    if (this.#deadline) clearTimeout(this.#deadline);
    this.#deadline = undefined;
    this.#unlink?.();
    this.#unlink = undefined;
  }
  wrap(e: unknown, msg: string): BackendError {
    if (e instanceof BackendError) return e;
    if ((e as { code?: string }).code === 'UND_ERR_BODY_TIMEOUT') return new BackendError('ERR_BACKEND_TIMEOUT', this.backend, `${this.what}: no data for ${this.idleMs} ms`, { retryable: true, cause: e });
    return wrapTransportError(e, this.backend, msg);
  }
}

/** Maps undici's and node's transport errors to a retryable BackendError (timeouts keep their own code). */
function wrapTransportError(e: unknown, backend: string, msg: string): BackendError {
  const err = e as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = err?.code && !err.code.startsWith('UND_ERR') ? err.code : (err?.cause?.code ?? err?.code);
  const detail = [code, (err?.cause?.message ?? err?.message)?.trim()].filter(Boolean).join(': ') || String(e);
  return new BackendError('ERR_BACKEND_NETWORK', backend, redact(`${msg} (${detail})`), { retryable: true, cause: e });
}

/** True for errors that mean "an HTTPS client talked to a plain-HTTP server". */
export function isTlsMismatch(e: unknown): boolean {
  const parts: string[] = [];
  for (let x = e as { message?: string; code?: string; cause?: unknown } | undefined, i = 0; x && i < 4; x = x.cause as typeof x, i++) parts.push(`${x.code ?? ''} ${x.message ?? ''}`);
  return /wrong.version.number|EPROTO|packet.length.too.long|http response to https client/i.test(parts.join(' '));
}

const USER_AGENT = `nydus-ts/${packageVersion()}`;

export class HttpClient {
  readonly options: HttpClientOptions;
  readonly #direct: Agent;
  readonly #proxies = new Map<string, ProxyAgent>();
  readonly #tls: Record<string, unknown>;
  #closed = false;

  constructor(options: HttpClientOptions) {
    this.options = options;
    this.#tls = {
      rejectUnauthorized: !options.skipVerify,
      ...(options.ca ? { ca: options.ca } : {}),
      ...(options.cert ? { cert: options.cert, key: options.key } : {}),
      timeout: options.connectTimeoutMs,
    };
    this.#direct = new Agent({ ...this.#pool(), connect: { ...this.#tls, ...(options.socketPath ? { socketPath: options.socketPath } : {}) } });
  }

  #pool(): Agent.Options {
    const t = this.options.timeoutMs;
    return { connections: this.options.maxSockets ?? 32, headersTimeout: t, bodyTimeout: t };
  }

  /** A forward proxy: plain http in absolute form (proxies see and may cache it), https through CONNECT. */
  #proxy(proxy: URL): ProxyAgent {
    let a = this.#proxies.get(proxy.href);
    if (!a) {
      const t = { timeout: this.options.connectTimeoutMs };
      a = new ProxyAgent({ uri: proxy.href, proxyTunnel: false, ...this.#pool(), requestTls: this.#tls, proxyTls: t, connect: t });
      this.#proxies.set(proxy.href, a);
    }
    return a;
  }

  /** Sends a request; resolves once the status line and headers have arrived. */
  async request(req: HttpRequest): Promise<HttpResponse> {
    const { backend, timeoutMs, connectTimeoutMs } = this.options;
    // HTTP(S)_PROXY from the environment applies to direct requests (not via a configured P2P proxy).
    const proxy = this.options.socketPath ? undefined : (req.via ?? envProxyFor(req.url, this.options.env));
    const dispatcher = proxy ? this.#proxy(proxy) : this.#direct;
    const what = `${req.method} ${req.url.host}${req.url.pathname}`;
    const ctl = new RequestControl(backend, what, timeoutMs);
    if (req.signal?.aborted) throw new BackendError('ERR_BACKEND_NETWORK', backend, `${what}: aborted`, { cause: req.signal.reason });
    // After close() (daemon shutdown, umount) nothing is retried: the pools are gone.
    if (this.#closed) throw new BackendError('ERR_BACKEND_NETWORK', backend, `${what}: the backend is closed`);
    ctl.link(req.signal, () => new BackendError('ERR_BACKEND_NETWORK', backend, `${what}: aborted`, { cause: req.signal?.reason }));
    const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...(req.headers ?? {}) };
    if (req.deadline !== false) {
      const range = /^bytes=(\d+)-(\d+)$/.exec(headers.range ?? '');
      const limit = wholeRequestDeadlineMs(this.options, range ? Number(range[2]) - Number(range[1]) + 1 : 0);
      ctl.deadline(limit, () => new BackendError('ERR_BACKEND_TIMEOUT', backend, `${what}: not complete after ${limit} ms (whole-request deadline)`, { retryable: true }));
    }
    const t0 = performance.now();
    try {
      const body = typeof req.body === 'function' ? req.body() : req.body;
      const data = await dispatcher.request({
        origin: req.url.origin,
        path: req.url.pathname + req.url.search,
        method: req.method as Dispatcher.HttpMethod,
        headers,
        body: body ?? null,
        signal: ctl.abort.signal,
      });
      log.trace(`${what} → HTTP ${data.statusCode} in ${(performance.now() - t0).toFixed(1)} ms${headers.range ? ` (${headers.range})` : ''}${proxy ? ` via ${proxy.host}` : ''}`);
      return new HttpResponse(data, req.url, ctl);
    } catch (e) {
      ctl.done();
      if (ctl.failure) throw ctl.failure;
      const code = (e as { code?: string }).code;
      if (code === 'UND_ERR_CONNECT_TIMEOUT') throw new BackendError('ERR_BACKEND_TIMEOUT', backend, `${what}: connect timed out after ${connectTimeoutMs} ms`, { retryable: true, cause: e });
      if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') throw new BackendError('ERR_BACKEND_TIMEOUT', backend, `${what}: no data for ${timeoutMs} ms`, { retryable: true, cause: e });
      if (this.#closed) throw new BackendError('ERR_BACKEND_NETWORK', backend, `${what}: the backend was closed`, { cause: e });
      throw ctl.wrap(e, `${what}: request failed`);
    }
  }

  close(): void {
    this.#closed = true;
    void this.#direct.destroy().catch(() => {});
    for (const a of this.#proxies.values()) void a.destroy().catch(() => {});
    this.#proxies.clear();
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
