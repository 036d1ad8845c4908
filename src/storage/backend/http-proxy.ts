// http-proxy backend: a plain HTTP blob server (e.g. a node-local cache) at `addr`, either an
// `http(s)://` URL or the path of a unix socket. Blobs are `<path>/<blob_id>`; size from HEAD,
// data from ranged GETs. Upstream: nydus storage/src/backend/http_proxy.rs (the unix-socket form
// ignores `path`, per upstream-features §2.7).
import { statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { BackendError } from '../../util/errors.js';
import { newBackendMetrics, type BackendMetrics, type BlobBackend } from './backend.js';
import { HttpClient, clientOptionsFrom, rangeHeader, readRangeResponse, blobSizeFromHead, type CommonHttpConfig } from './http.js';
import { proxyRouterFrom, sendVia, type ProxyRouter } from './proxy.js';
import { remoteBlobSize, remoteRead, retryPolicyFrom, type RemoteReadState, type RetryPolicy } from './retry.js';

const BACKEND = 'http-proxy';

export interface HttpProxyConfig extends CommonHttpConfig {
  addr: string;
  path?: string;
}

export class HttpProxyBackend implements BlobBackend, RemoteReadState {
  readonly type = BACKEND;
  readonly metrics: BackendMetrics = newBackendMetrics();
  readonly #base: URL;
  readonly #client: HttpClient;
  readonly #router: ProxyRouter | undefined;
  readonly policy: RetryPolicy;
  readonly sizes = new Map<string, number>();

  constructor(cfg: HttpProxyConfig) {
    const addr = cfg.addr ?? '';
    const opts = clientOptionsFrom(cfg, BACKEND);
    if (/^https?:\/\//.test(addr)) {
      const base = new URL(addr);
      const prefix = `${base.pathname.replace(/\/+$/, '')}/${(cfg.path ?? '').replace(/^\/+|\/+$/g, '')}`;
      base.pathname = prefix.replace(/\/+/g, '/').replace(/\/?$/, '/');
      this.#base = base;
    } else if (isAbsolute(addr) && statSync(addr, { throwIfNoEntry: false })?.isSocket()) {
      opts.socketPath = addr;
      this.#base = new URL('http://localhost/');
    } else {
      throw new BackendError('ERR_BACKEND_NOT_FOUND', BACKEND, `addr "${addr}" is neither an http(s) URL nor an existing unix socket`);
    }
    this.#client = new HttpClient(opts);
    this.#router = opts.socketPath ? undefined : proxyRouterFrom(cfg.proxy, BACKEND);
    this.policy = retryPolicyFrom(cfg.retry_limit);
  }

  #url(blobId: string): URL {
    if (!/^[A-Za-z0-9._:-]+$/.test(blobId)) throw new BackendError('ERR_BACKEND_NOT_FOUND', BACKEND, `invalid blob id "${blobId.slice(0, 80)}"`);
    return new URL(blobId, this.#base);
  }

  async read(blobId: string, offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    const url = this.#url(blobId);
    const what = `cannot read blob ${blobId} [${offset}, +${length})`;
    return remoteRead(this, blobId, offset, length, signal, async () =>
      readRangeResponse(await sendVia(this.#client, this.#router, { method: 'GET', url, headers: { range: rangeHeader(offset, length) }, signal }), BACKEND, what, offset, length),
    );
  }

  async blobSize(blobId: string, signal?: AbortSignal): Promise<number> {
    const url = this.#url(blobId);
    return remoteBlobSize(this, blobId, signal, async () => blobSizeFromHead(await sendVia(this.#client, this.#router, { method: 'HEAD', url, signal }), BACKEND, blobId));
  }

  get proxy(): ProxyRouter | undefined {
    return this.#router;
  }

  async close(): Promise<void> {
    this.#router?.close();
    this.#client.close();
  }
}

export function createHttpProxyBackend(config: Record<string, unknown> | HttpProxyConfig): HttpProxyBackend {
  return new HttpProxyBackend(config as HttpProxyConfig);
}
