// Shared HTTP layer of the remote backends (registry, s3, oss, http-proxy): node:http/https with
// keep-alive agents, a connect timeout, an idle (read) timeout that restarts on every body chunk,
// a whole-request deadline (wholeRequestDeadlineMs: a server trickling bytes cannot hold a read),
// abort signals, forward-proxy and unix-socket transports, and exact-length ranged bodies.
// Redirects are never followed here: the caller decides (upstream connection.rs does the same).
// Upstream: nydus storage/src/backend/connection.rs.
import { readFileSync } from 'node:fs';
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { BackendError, ConfigError } from '../../util/errors.js';
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
  /** Trusted CAs for https (system roots plus `ca_cert_files`); unset = node's defaults. */
  ca?: Array<string | Buffer>;
  /** Client certificate and key (PEM) for mutual TLS (`client_cert_file`, `client_key_file`). */
  cert?: Buffer;
  key?: Buffer;
  /** Environment for HTTP(S)_PROXY / NO_PROXY (tests pass their own). */
  env?: NodeJS.ProcessEnv;
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

function proxyAuthorization(proxy: URL): Record<string, string> {
  if (!proxy.username) return {};
  const cred = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
  return { 'proxy-authorization': `Basic ${Buffer.from(cred).toString('base64')}` };
}

/** https through an HTTP forward proxy: each pooled connection is a CONNECT tunnel, then TLS inside it. */
class TunnelAgent extends https.Agent {
  constructor(readonly proxy: URL, options: https.AgentOptions) {
    super(options);
  }

  override createConnection(opts: http.RequestOptions, callback?: (err: Error | null, stream: Duplex) => void): undefined {
    // Node's Agent passes a callback and accepts the socket later through it.
    const options = opts as tls.ConnectionOptions & { host?: string; port?: number };
    const cb = (err: Error | null, s?: Socket): void => callback?.(err, s as Duplex);
    const target = `${options.host}:${options.port}`;
    const creq = http.request({ host: this.proxy.hostname.replace(/^\[|\]$/g, ''), port: this.proxy.port || 80, method: 'CONNECT', path: target, agent: false, headers: { host: target, ...proxyAuthorization(this.proxy) } });
    creq.once('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        cb(new Error(`proxy ${this.proxy.host} answered CONNECT with HTTP ${res.statusCode}`));
        return;
      }
      const servername = options.servername ?? (options.host && !/^[\d.]+$|:/.test(options.host) ? options.host : undefined);
      const t = tls.connect({ ...options, socket, ...(servername ? { servername } : {}) });
      t.once('secureConnect', () => cb(null, t));
      t.once('error', (e) => cb(e));
    });
    creq.once('error', (e) => cb(e));
    creq.end();
    return undefined;
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
  readonly #httpsOptions: https.AgentOptions;
  #tunnels = new Map<string, TunnelAgent>();

  constructor(options: HttpClientOptions) {
    this.options = options;
    const maxSockets = options.maxSockets ?? 32;
    this.#httpAgent = new http.Agent({ keepAlive: true, maxSockets });
    this.#httpsOptions = { keepAlive: true, maxSockets, rejectUnauthorized: !options.skipVerify, ...(options.ca ? { ca: options.ca } : {}), ...(options.cert ? { cert: options.cert, key: options.key } : {}) };
    this.#httpsAgent = new https.Agent(this.#httpsOptions);
  }

  #tunnel(proxy: URL): TunnelAgent {
    let a = this.#tunnels.get(proxy.href);
    if (!a) this.#tunnels.set(proxy.href, (a = new TunnelAgent(proxy, this.#httpsOptions)));
    return a;
  }

  /** Sends a request; resolves once the status line and headers have arrived. */
  request(req: HttpRequest): Promise<HttpResponse> {
    const { backend } = this.options;
    // HTTP(S)_PROXY from the environment applies to direct requests (not via a configured P2P proxy).
    const envProxy = req.via || this.options.socketPath ? undefined : envProxyFor(req.url, this.options.env);
    const tunnel = envProxy && req.url.protocol === 'https:' ? this.#tunnel(envProxy) : undefined;
    const via = req.via ?? (tunnel ? undefined : envProxy);
    const target = via ?? req.url;
    const tls = target.protocol === 'https:';
    // Only the path appears in errors: query strings carry presigned credentials.
    const what = `${req.method} ${req.url.host}${req.url.pathname}`;
    const ctl = new RequestControl(backend, what);
    return new Promise<HttpResponse>((resolve, reject) => {
      if (req.signal?.aborted) return reject(req.signal.reason);
      const headers: Record<string, string> = { ...(req.headers ?? {}) };
      if (req.body) headers['content-length'] = String(req.body.length);
      const opts: http.RequestOptions = { method: req.method, headers, agent: tunnel ?? (tls ? this.#httpsAgent : this.#httpAgent) };
      if (this.options.socketPath) {
        opts.socketPath = this.options.socketPath;
        opts.path = req.url.pathname + req.url.search;
      } else {
        opts.hostname = target.hostname.replace(/^\[|\]$/g, '');
        opts.port = target.port || (tls ? 443 : 80);
        opts.path = via ? req.url.href : req.url.pathname + req.url.search;
        if (via) headers.host = req.url.host;
        if (via && via === envProxy) Object.assign(headers, proxyAuthorization(envProxy));
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
        if ((s as { connecting?: boolean }).connecting) s.once(tls && !via ? 'secureConnect' : 'connect', connected);
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
    for (const a of this.#tunnels.values()) a.destroy();
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
