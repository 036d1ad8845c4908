// Registry backend: blobs are `scheme://host/v2/<repo>/blobs/sha256:<id>`, read with ranged GETs and
// sized with HEAD. Handles registry auth (registry-auth.ts), 3xx redirects to blob storage (followed
// by hand, never carrying Authorization to another origin, cached per blob), optional mirrors tried
// before the registry, and the P2P `proxy` block. Upstream: nydus storage/src/backend/registry.rs.
import { BackendError } from '../../util/errors.js';
import { logger } from '../../util/log.js';
import { newBackendMetrics, type BackendMetrics, type BlobBackend } from './backend.js';
import { HttpClient, clientOptionsFrom, rangeHeader, readRangeResponse, statusError, blobSizeFromHead, type CommonHttpConfig, type HttpResponse } from './http.js';
import { proxyRouterFrom, sendVia, type ProxyRouter } from './proxy.js';
import { RegistryAuth } from './registry-auth.js';
import { remoteBlobSize, remoteRead, retryPolicyFrom, type RemoteReadState, type RetryPolicy } from './retry.js';

const log = logger('registry');
const BACKEND = 'registry';
const MAX_REDIRECTS = 5;
const REDIRECT_CACHE_MAX = 1024;

export interface RegistryMirrorConfig {
  /** `http(s)://host[:port]`, or a bare host that takes the registry's scheme. */
  host: string;
  headers?: Record<string, string>;
  /** Send the registry credentials to this mirror too. */
  auth_through?: boolean;
  /** Consecutive failures before the mirror is skipped for `health_check_interval` seconds. */
  failure_limit?: number;
  health_check_interval?: number;
}

export interface RegistryConfig extends CommonHttpConfig {
  /** "https" (default); only "http" disables TLS. */
  scheme?: string;
  host: string;
  repo: string;
  auth?: string;
  registry_token?: string;
  /** Rewrite the scheme of redirect targets (e.g. storage reachable only over http). */
  blob_url_scheme?: string;
  /** Rewrite the host of redirect targets. */
  blob_redirected_host?: string;
  mirrors?: RegistryMirrorConfig[];
}

interface Mirror {
  base: URL;
  headers: Record<string, string>;
  authThrough: boolean;
  failureLimit: number;
  cooldownMs: number;
  failures: number;
  skipUntil: number;
}

const BLOB_ID = /^[0-9a-f]{64}$/;

export class RegistryBackend implements BlobBackend, RemoteReadState {
  readonly type = BACKEND;
  readonly metrics: BackendMetrics = newBackendMetrics();
  readonly auth: RegistryAuth;
  readonly #cfg: RegistryConfig;
  readonly #client: HttpClient;
  readonly #router: ProxyRouter | undefined;
  readonly policy: RetryPolicy;
  readonly #base: URL;
  readonly #mirrors: Mirror[];
  readonly #redirects = new Map<string, URL>();
  readonly sizes = new Map<string, number>();

  /** `now` (epoch ms) drives token refresh; injectable so tests need not wait out a lifetime. */
  constructor(cfg: RegistryConfig, opts: { now?: () => number } = {}) {
    if (!cfg.host || !cfg.repo) throw new BackendError('ERR_BACKEND_NOT_FOUND', BACKEND, 'registry backend needs `host` and `repo`');
    this.#cfg = cfg;
    const scheme = cfg.scheme === 'http' ? 'http' : 'https';
    this.#base = new URL(`${scheme}://${cfg.host}`);
    this.#client = new HttpClient(clientOptionsFrom(cfg, BACKEND));
    this.#router = proxyRouterFrom(cfg.proxy, BACKEND);
    this.policy = retryPolicyFrom(cfg.retry_limit);
    this.auth = new RegistryAuth(this.#client, { backend: BACKEND, basic: cfg.auth || undefined, token: cfg.registry_token || undefined, defaultScope: `repository:${cfg.repo}:pull`, now: opts.now });
    this.#mirrors = (cfg.mirrors ?? []).map((m) => ({
      base: new URL(m.host.includes('://') ? m.host : `${scheme}://${m.host}`),
      headers: m.headers ?? {},
      authThrough: m.auth_through ?? false,
      failureLimit: m.failure_limit && m.failure_limit > 0 ? m.failure_limit : 5,
      cooldownMs: (m.health_check_interval && m.health_check_interval > 0 ? m.health_check_interval : 5) * 1000,
      failures: 0,
      skipUntil: 0,
    }));
  }

  get proxy(): ProxyRouter | undefined {
    return this.#router;
  }

  #blobUrl(base: URL, blobId: string): URL {
    return new URL(`/v2/${this.#cfg.repo}/blobs/sha256:${blobId}`, base);
  }

  #checkId(blobId: string): void {
    if (!BLOB_ID.test(blobId)) throw new BackendError('ERR_BACKEND_NOT_FOUND', BACKEND, `invalid blob id "${blobId.slice(0, 80)}": expected 64 hex digits`);
  }

  async read(blobId: string, offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    this.#checkId(blobId);
    return remoteRead(this, blobId, offset, length, signal, () => this.#readOnce(blobId, offset, length, `blob ${blobId} [${offset}, +${length})`, signal));
  }

  async #readOnce(blobId: string, offset: number, length: number, what: string, signal?: AbortSignal): Promise<Uint8Array> {
    const range = { range: rangeHeader(offset, length) };
    const cached = this.#redirects.get(blobId);
    if (cached) {
      const res = await sendVia(this.#client, this.#router, { method: 'GET', url: cached, headers: range, signal });
      // Presigned storage URLs expire: on refusal drop the cached one and ask the registry again.
      if (res.status !== 401 && res.status !== 403 && res.status !== 404) return readRangeResponse(res, BACKEND, `cannot read ${what} from ${cached.host}`, offset, length);
      res.discard();
      this.#redirects.delete(blobId);
    }
    const res = await this.#fetch('GET', blobId, range, signal);
    return readRangeResponse(res, BACKEND, `cannot read ${what}`, offset, length);
  }

  async blobSize(blobId: string, signal?: AbortSignal): Promise<number> {
    this.#checkId(blobId);
    return remoteBlobSize(this, blobId, signal, async () => blobSizeFromHead(await this.#fetch('HEAD', blobId, {}, signal), BACKEND, blobId));
  }

  /** Mirrors first (skipping ones in cooldown), then the registry; fails over on retryable errors. */
  async #fetch(method: string, blobId: string, extra: Record<string, string>, signal?: AbortSignal): Promise<HttpResponse> {
    const now = Date.now();
    for (const m of this.#mirrors) {
      if (m.skipUntil > now) continue;
      try {
        const headers = { ...m.headers, ...extra };
        const auth = m.authThrough ? await this.auth.header(signal) : undefined;
        if (auth) headers.authorization = auth;
        const res = await this.#follow(method, this.#blobUrl(m.base, blobId), headers, blobId, signal);
        if (res.status < 500 && res.status !== 401 && res.status !== 403) {
          m.failures = 0;
          return res;
        }
        res.discard();
        throw statusError(BACKEND, res.status, `mirror ${m.base.host}`);
      } catch (err) {
        if (signal?.aborted) throw err;
        if (++m.failures >= m.failureLimit) m.skipUntil = Date.now() + m.cooldownMs;
        log.warn(`mirror ${m.base.host} failed for blob ${blobId} (${(err as Error).message}); trying the next source`);
      }
    }
    return this.#fromRegistry(method, blobId, extra, signal);
  }

  /** The registry itself, with the 401 → challenge → retry dance (at most two auth rounds). */
  async #fromRegistry(method: string, blobId: string, extra: Record<string, string>, signal?: AbortSignal): Promise<HttpResponse> {
    const url = this.#blobUrl(this.#base, blobId);
    for (let round = 0; ; round++) {
      const auth = await this.auth.header(signal);
      const headers = { ...extra };
      if (auth) headers.authorization = auth;
      const res = await this.#follow(method, url, headers, blobId, signal);
      if (res.status !== 401) return res;
      const challenge = res.header('www-authenticate');
      res.discard();
      if (round >= 2) throw new BackendError('ERR_BACKEND_AUTH', BACKEND, `cannot access blob ${blobId}: registry keeps answering HTTP 401`, { status: 401 });
      if (!(await this.auth.unauthorized(challenge, auth, signal))) throw this.auth.refused();
    }
  }

  /**
   * Sends the request and follows 3xx by hand. Authorization goes only to the origin it was meant for;
   * redirect targets (usually presigned storage URLs) get none. The final URL is cached per blob.
   */
  async #follow(method: string, url: URL, headers: Record<string, string>, blobId: string, signal?: AbortSignal): Promise<HttpResponse> {
    let current = url;
    let hdrs = headers;
    for (let hop = 0; ; hop++) {
      const res = await sendVia(this.#client, this.#router, { method, url: current, headers: hdrs, signal });
      if (res.status < 300 || res.status >= 400 || res.status === 304) {
        if (hop > 0 && res.status < 300) this.#remember(blobId, current);
        return res;
      }
      const location = res.header('location');
      res.discard();
      if (!location) throw new BackendError('ERR_BACKEND_HTTP_STATUS', BACKEND, `blob ${blobId}: HTTP ${res.status} without Location`, { status: res.status });
      if (hop >= MAX_REDIRECTS) throw new BackendError('ERR_BACKEND_HTTP_STATUS', BACKEND, `blob ${blobId}: more than ${MAX_REDIRECTS} redirects`);
      const next = new URL(location, current);
      if (hop === 0) {
        if (this.#cfg.blob_url_scheme) next.protocol = `${this.#cfg.blob_url_scheme.replace(/:$/, '')}:`;
        if (this.#cfg.blob_redirected_host) next.host = this.#cfg.blob_redirected_host;
      }
      if (next.origin !== current.origin) {
        const { authorization: _dropped, ...rest } = hdrs;
        hdrs = rest;
      }
      current = next;
    }
  }

  #remember(blobId: string, url: URL): void {
    if (this.#redirects.size >= REDIRECT_CACHE_MAX) {
      const first = this.#redirects.keys().next();
      if (!first.done) this.#redirects.delete(first.value);
    }
    this.#redirects.set(blobId, url);
  }

  async close(): Promise<void> {
    this.#router?.close();
    this.#client.close();
  }
}

/** Factory for create-backend.ts: `config` is the backend's own config object. */
export function createRegistryBackend(config: Record<string, unknown> | RegistryConfig, opts: { now?: () => number } = {}): RegistryBackend {
  return new RegistryBackend(config as RegistryConfig, opts);
}
