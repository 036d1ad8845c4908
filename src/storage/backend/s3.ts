// S3 backend (and the object-store base OSS shares): objects are `<object_prefix><blob_id>` in
// `bucket_name`, read with signed ranged GETs and sized with HEAD. S3 defaults to path-style
// `scheme://endpoint/bucket/key` as upstream; `addressing_style: "virtual"` gives
// `scheme://bucket.endpoint/key`. Upstream: nydus storage/src/backend/{s3,object_storage}.rs.
import { BackendError } from '../../util/errors.js';
import { newBackendMetrics, type BackendMetrics, type BlobBackend } from './backend.js';
import { HttpClient, clientOptionsFrom, rangeHeader, readRangeResponse, blobSizeFromHead, type CommonHttpConfig } from './http.js';
import { proxyRouterFrom, sendVia, type ProxyRouter } from './proxy.js';
import { remoteBlobSize, remoteRead, retryPolicyFrom, type RemoteReadState, type RetryPolicy } from './retry.js';
import { EMPTY_SHA256, signV4 } from './sigv4.js';

export interface ObjectStoreConfig extends CommonHttpConfig {
  /** "https" (default) or "http". */
  scheme?: string;
  endpoint?: string;
  bucket_name: string;
  object_prefix?: string;
  access_key_id?: string;
  access_key_secret?: string;
}

export interface S3Config extends ObjectStoreConfig {
  region: string;
  /** Our extension: "path" (default, as upstream) or "virtual" (bucket in the host name). */
  addressing_style?: 'path' | 'virtual';
}

/** Shared read path of S3 and OSS; subclasses build URLs and sign. */
export abstract class ObjectStoreBackend implements BlobBackend, RemoteReadState {
  readonly type: string;
  readonly metrics: BackendMetrics = newBackendMetrics();
  protected readonly cfg: ObjectStoreConfig;
  protected readonly scheme: string;
  readonly #client: HttpClient;
  readonly #router: ProxyRouter | undefined;
  readonly policy: RetryPolicy;
  readonly sizes = new Map<string, number>();

  constructor(type: string, cfg: ObjectStoreConfig) {
    if (!cfg.bucket_name) throw new BackendError('ERR_BACKEND_NOT_FOUND', type, `${type} backend needs \`bucket_name\``);
    this.type = type;
    this.cfg = cfg;
    this.scheme = cfg.scheme === 'http' ? 'http' : 'https';
    this.#client = new HttpClient(clientOptionsFrom(cfg, type));
    this.#router = proxyRouterFrom(cfg.proxy, type);
    this.policy = retryPolicyFrom(cfg.retry_limit);
  }

  protected abstract objectUrl(key: string): URL;
  /** Returns the headers to send, with the signature; called per attempt (dates must be fresh). */
  protected abstract sign(method: string, url: URL, key: string, headers: Record<string, string>): Record<string, string>;

  protected get signed(): boolean {
    return Boolean(this.cfg.access_key_id && this.cfg.access_key_secret);
  }

  #key(blobId: string): string {
    if (!/^[A-Za-z0-9._-]+$/.test(blobId)) throw new BackendError('ERR_BACKEND_NOT_FOUND', this.type, `invalid blob id "${blobId.slice(0, 80)}"`);
    return `${this.cfg.object_prefix ?? ''}${blobId}`;
  }

  async #send(method: string, blobId: string, extra: Record<string, string>, signal?: AbortSignal) {
    const key = this.#key(blobId);
    const url = this.objectUrl(key);
    const headers = this.signed ? this.sign(method, url, key, extra) : extra;
    return sendVia(this.#client, this.#router, { method, url, headers, signal });
  }

  async read(blobId: string, offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    const what = `cannot read blob ${blobId} [${offset}, +${length}) from ${this.type}`;
    return remoteRead(this, blobId, offset, length, signal, async () =>
      readRangeResponse(await this.#send('GET', blobId, { range: rangeHeader(offset, length) }, signal), this.type, what, offset, length),
    );
  }

  async blobSize(blobId: string, signal?: AbortSignal): Promise<number> {
    return remoteBlobSize(this, blobId, signal, async () => blobSizeFromHead(await this.#send('HEAD', blobId, {}, signal), this.type, blobId, `cannot stat blob ${blobId} in ${this.type}`));
  }

  async close(): Promise<void> {
    this.#router?.close();
    this.#client.close();
  }
}

export class S3Backend extends ObjectStoreBackend {
  readonly #s3: S3Config;
  constructor(cfg: S3Config) {
    if (!cfg.region) throw new BackendError('ERR_BACKEND_NOT_FOUND', 's3', 's3 backend needs `region`');
    super('s3', cfg);
    this.#s3 = cfg;
  }

  protected objectUrl(key: string): URL {
    const endpoint = this.#s3.endpoint || 's3.amazonaws.com';
    const path = key.split('/').map(encodeURIComponent).join('/');
    return this.#s3.addressing_style === 'virtual'
      ? new URL(`${this.scheme}://${this.#s3.bucket_name}.${endpoint}/${path}`)
      : new URL(`${this.scheme}://${endpoint}/${encodeURIComponent(this.#s3.bucket_name)}/${path}`);
  }

  protected sign(method: string, url: URL, _key: string, headers: Record<string, string>): Record<string, string> {
    return signV4({
      method,
      url,
      headers,
      payloadHash: EMPTY_SHA256,
      region: this.#s3.region,
      service: 's3',
      accessKeyId: this.#s3.access_key_id ?? '',
      secretAccessKey: this.#s3.access_key_secret ?? '',
      contentSha256Header: true,
    }).headers;
  }
}

export function createS3Backend(config: Record<string, unknown> | S3Config): S3Backend {
  return new S3Backend(config as S3Config);
}
