// The `proxy` block shared by remote backends: route requests through a P2P proxy (Dragonfly
// dfdaemon) as an HTTP forward proxy, health-check it via `ping_url` every `check_interval` seconds,
// and when it is down (or a request through it fails) go to the origin if `fallback` is set.
// Upstream: nydus storage/src/backend/connection.rs (ProxyConfig, Proxy::try_use, check loop).
import { EventEmitter } from 'node:events';
import { BackendError } from '../../util/errors.js';
import { logger } from '../../util/log.js';
import { HttpClient, type HttpRequest, type HttpResponse } from './http.js';

const log = logger('backend-proxy');

export interface ProxyConfig {
  url?: string;
  ping_url?: string;
  /** Default true, as upstream. */
  fallback?: boolean;
  /** Seconds between health checks (fractions allowed here for tests); default 5. */
  check_interval?: number;
  /** Rewrite an https origin URL to http when sending it through the proxy. */
  use_http?: boolean;
}

/** Dragonfly marks errors produced by the proxy itself (not by the origin) with this header. */
const PROXY_ERROR_HEADER = 'x-dragonfly-error-type';

/**
 * Decides, per request, whether it goes through the proxy. Emits `health` (boolean) whenever the
 * proxy's state changes and `check` (boolean) after every ping, so tests can wait for events.
 */
export class ProxyRouter extends EventEmitter {
  proxyUrl: URL;
  readonly fallback: boolean;
  readonly useHttp: boolean;
  readonly #pingUrl: URL | undefined;
  readonly #intervalMs: number;
  readonly #pinger: HttpClient;
  #healthy = true;
  #timer: NodeJS.Timeout | undefined;
  #checking = false;

  constructor(cfg: ProxyConfig, backend: string) {
    super();
    if (!cfg.url) throw new BackendError('ERR_BACKEND_NETWORK', backend, 'proxy.url is empty');
    this.proxyUrl = new URL(cfg.url);
    this.fallback = cfg.fallback ?? true;
    this.useHttp = cfg.use_http ?? false;
    this.#pingUrl = cfg.ping_url ? new URL(cfg.ping_url) : undefined;
    this.#intervalMs = Math.max(10, Math.round((cfg.check_interval && cfg.check_interval > 0 ? cfg.check_interval : 5) * 1000));
    // Pings get their own client; a hung ping delays the next check by at most 5 s (checks never
    // overlap). Not tied to the interval: a 50 ms interval must not turn a slow answer into "down".
    const t = 5000;
    this.#pinger = new HttpClient({ backend, connectTimeoutMs: t, timeoutMs: t, skipVerify: true, maxSockets: 1 });
    if (this.#pingUrl) {
      void this.check();
      this.#timer = setInterval(() => void this.check(), this.#intervalMs);
      this.#timer.unref();
    }
  }

  /** Hot update of the proxy address (PUT /api/v1/config `proxy_url`). */
  setUrl(url: string): void {
    this.proxyUrl = new URL(url);
    this.#healthy = true;
  }

  get healthy(): boolean {
    return this.#healthy;
  }

  #setHealthy(ok: boolean): void {
    if (ok === this.#healthy) return;
    this.#healthy = ok;
    log.info(`proxy ${this.proxyUrl.host} is ${ok ? 'healthy again, routing through it' : 'unhealthy'}${!ok && this.fallback ? ', falling back to the origin' : ''}`);
    this.emit('health', ok);
  }

  /** One health check; 2xx from `ping_url` means healthy. */
  async check(): Promise<boolean> {
    if (!this.#pingUrl || this.#checking) return this.#healthy;
    this.#checking = true;
    let ok = false;
    try {
      const res = await this.#pinger.request({ method: 'GET', url: this.#pingUrl });
      ok = res.status >= 200 && res.status < 300;
      res.discard();
    } catch {
      ok = false;
    } finally {
      this.#checking = false;
    }
    this.#setHealthy(ok);
    this.emit('check', ok);
    return ok;
  }

  /**
   * Sends `req` through the proxy when it is healthy, else (or when the proxied attempt fails with a
   * connection error, a 5xx or a proxy-flagged error) to the origin, if `fallback` allows.
   */
  async send(client: HttpClient, req: HttpRequest): Promise<HttpResponse> {
    if (!this.#healthy) {
      if (this.fallback) return client.request(req);
      throw new BackendError('ERR_BACKEND_NETWORK', client.options.backend, `proxy ${this.proxyUrl.host} is unhealthy and fallback is disabled`, { retryable: true });
    }
    const url = this.useHttp && req.url.protocol === 'https:' ? new URL(req.url.href.replace(/^https:/, 'http:')) : req.url;
    const headers = { ...req.headers, 'x-dragonfly-use-p2p': 'true' };
    try {
      const res = await client.request({ ...req, url, headers, via: this.proxyUrl });
      if ((res.status < 500 && res.header(PROXY_ERROR_HEADER) !== 'proxy') || !this.fallback) return res;
      res.discard();
      log.warn(`proxy ${this.proxyUrl.host} answered HTTP ${res.status}; trying the origin`);
    } catch (err) {
      if (!this.fallback || !(err instanceof BackendError) || !err.retryable || req.signal?.aborted) throw err;
      log.warn(`proxy ${this.proxyUrl.host} failed (${err.message}); trying the origin`);
    }
    // Only a configured health check can bring the proxy back; without one, stay optimistic.
    if (this.#pingUrl) this.#setHealthy(false);
    return client.request(req);
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#pinger.close();
  }
}

/** Sends through `router` when there is one. */
export function sendVia(client: HttpClient, router: ProxyRouter | undefined, req: HttpRequest): Promise<HttpResponse> {
  return router ? router.send(client, req) : client.request(req);
}

/** Reads the `proxy` block (object or the legacy string form) of a backend config; undefined = direct. */
export function proxyRouterFrom(raw: unknown, backend: string): ProxyRouter | undefined {
  const cfg: ProxyConfig | undefined = typeof raw === 'string' ? { url: raw } : raw && typeof raw === 'object' ? (raw as ProxyConfig) : undefined;
  if (!cfg?.url) return undefined;
  return new ProxyRouter(cfg, backend);
}
