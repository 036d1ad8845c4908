// OCI distribution client used by nydusify: manifests (OCI + docker v2, indexes), blob HEAD/GET
// (streaming), monolithic and chunked uploads from disk, cross-repository mounts.
// Spec: OCI distribution-spec v1.1 (pull, push, "Mounting a blob from another repository").
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import { HttpClient, isTlsMismatch, type HttpResponse, type RequestBody } from '../storage/backend/http.js';
import { RegistryAuth } from '../storage/backend/registry-auth.js';
import { withRetry } from '../storage/backend/retry.js';
import { BackendError, NydusError } from '../util/errors.js';
import { logger, redact } from '../util/log.js';
import type { Credentials } from './docker-config.js';
import { MANIFEST_ACCEPT } from './media-types.js';
import { apiHost, checkDigest } from './reference.js';

const log = logger('registry');

export interface RegistryOptions {
  /** Skip TLS verification, and fall back to plain HTTP when the server does not speak TLS. */
  insecure?: boolean;
  /** Talk plain HTTP from the start. */
  plainHttp?: boolean;
  creds?: Credentials | undefined;
  retries?: number;
  /** Called with the size of every piece of blob data received (getBlob) or sent (uploadBlob). */
  onBytes?: (bytes: number) => void;
}

/** A pass-through that reports the bytes flowing by (progress), or the stream itself without a hook. */
function counted(s: Readable, onBytes: ((n: number) => void) | undefined): Readable {
  if (!onBytes) return s;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      onBytes(chunk.length);
      cb(null, chunk);
    },
  });
  s.on('error', (e) => t.destroy(e));
  t.on('close', () => {
    if (!s.readableEnded) s.destroy();
  });
  return s.pipe(t);
}

export interface FetchedManifest {
  mediaType: string;
  digest: string;
  bytes: Buffer;
  json: Record<string, unknown>;
}

interface Req {
  method: string;
  path: string;
  /** Absolute URL (upload Location); overrides path. */
  url?: URL;
  headers?: Record<string, string>;
  body?: RequestBody;
  scopes: string[];
  what: string;
  /** Blob streams and uploads: no whole-request deadline (sizes of any size; the idle timeout stays). */
  long?: boolean;
}

type RawResponse = HttpResponse;
const drain = (res: HttpResponse): void => res.discard();

export const pullScope = (repo: string): string => `repository:${repo}:pull`;
export const pushScope = (repo: string): string => `repository:${repo}:pull,push`;

export function sha256Digest(b: Uint8Array): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

export class RegistryClient {
  readonly host: string;
  readonly #opts: RegistryOptions;
  readonly #client: HttpClient;
  readonly #auth: RegistryAuth;
  #scheme: 'http' | 'https';

  constructor(host: string, opts: RegistryOptions = {}) {
    this.host = apiHost(host);
    this.#opts = opts;
    this.#scheme = opts.plainHttp ? 'http' : 'https';
    // Layers are big and registries slow to answer a finished upload: a long idle timeout, no deadline.
    this.#client = new HttpClient({ backend: 'registry', connectTimeoutMs: 30_000, timeoutMs: 120_000, skipVerify: opts.insecure ?? false, maxSockets: 16 });
    const basic = opts.creds ? Buffer.from(`${opts.creds.username}:${opts.creds.password}`).toString('base64') : undefined;
    this.#auth = new RegistryAuth(this.#client, { backend: 'registry', basic });
  }

  /** Releases the connection pool. */
  close(): void {
    this.#client.close();
  }

  get scheme(): 'http' | 'https' {
    return this.#scheme;
  }

  get tokenFetches(): number {
    return this.#auth.tokenFetches;
  }

  #url(path: string): URL {
    return new URL(`${this.#scheme}://${this.host}${path}`);
  }

  async #send(r: Req, auth: string | undefined): Promise<RawResponse> {
    const headers = { ...(r.headers ?? {}) };
    if (auth) headers.authorization = auth;
    const url = r.url ?? this.#url(r.path);
    try {
      return await this.#client.request({ method: r.method, url, headers, body: r.body, ...(r.long ? { deadline: false as const } : {}) });
    } catch (e) {
      // containerd's resolver retries insecure registries over plain HTTP the same way.
      if (this.#scheme === 'https' && this.#opts.insecure && isTlsMismatch(e) && !r.url) {
        log.debug(`${this.host} does not speak TLS; using plain HTTP`);
        this.#scheme = 'http';
        return this.#send(r, auth);
      }
      if (this.#scheme === 'https' && isTlsMismatch(e)) {
        throw new BackendError('ERR_REGISTRY', 'registry', `${this.host} does not speak HTTPS (a plain-HTTP registry?): use --plain-http`);
      }
      throw e;
    }
  }

  /** One request with auth handling (one retry after a 401) and retries on network errors/5xx. */
  async request(r: Req): Promise<RawResponse> {
    const policy = { retryLimit: this.#opts.retries ?? 3, baseDelayMs: 100, maxDelayMs: 2000 };
    return withRetry(
      async () => {
        const sent = await this.#auth.header(undefined, r.scopes);
        let res = await this.#send(r, sent);
        if (res.status === 401) {
          const challenge = res.header('www-authenticate');
          // Without anything to retry with, keep the answer: #fail reports it with a hint.
          if (await this.#auth.unauthorized(challenge, sent, undefined, r.scopes)) {
            drain(res);
            res = await this.#send(r, await this.#auth.header(undefined, r.scopes));
          }
        }
        if (res.status >= 500 && r.body === undefined) {
          drain(res);
          throw new BackendError('ERR_BACKEND_HTTP_STATUS', 'registry', `${r.what}: HTTP ${res.status}`, { status: res.status, retryable: true });
        }
        return res;
      },
      policy,
      undefined,
      (err, n, ms) => log.debug(`${r.what}: retry ${n}/${policy.retryLimit} in ${ms} ms: ${(err as Error).message}`),
    );
  }

  async #fail(res: RawResponse, what: string): Promise<never> {
    const body = (await res.readAll(1 << 20).catch(() => Buffer.alloc(0))).toString('utf8');
    let detail = '';
    try {
      const j = JSON.parse(body) as { errors?: Array<{ code?: string; message?: string }> };
      detail = (j.errors ?? []).map((x) => `${x.code ?? ''} ${x.message ?? ''}`.trim()).join('; ');
    } catch {
      detail = body.slice(0, 200);
    }
    const tail = detail ? `: ${redact(detail)}` : '';
    if (res.status === 401) {
      const hint = this.#auth.hasCredentials ? 'credentials were rejected' : 'no credentials found (docker config or flags)';
      throw new BackendError('ERR_BACKEND_AUTH', 'registry', `${what}: unauthorized (HTTP 401), ${hint}${tail}`, { status: 401 });
    }
    if (res.status === 403) throw new BackendError('ERR_BACKEND_AUTH', 'registry', `${what}: access denied (HTTP 403)${tail}`, { status: 403 });
    throw new BackendError('ERR_BACKEND_HTTP_STATUS', 'registry', `${what}: HTTP ${res.status}${tail}`, { status: res.status });
  }

  /** GET /v2/: checks reachability and learns the auth challenge. */
  async ping(): Promise<void> {
    const res = await this.request({ method: 'GET', path: '/v2/', scopes: [], what: `ping ${this.host}` });
    drain(res);
    if (res.status !== 200 && res.status !== 401) await this.#fail(res, `ping ${this.host}`);
  }

  async getManifest(repo: string, reference: string, accept: string[] = MANIFEST_ACCEPT): Promise<FetchedManifest> {
    if (reference.includes(':')) checkDigest(reference, `manifest of ${this.host}/${repo}`);
    const what = `manifest ${this.host}/${repo}:${reference}`;
    const res = await this.request({ method: 'GET', path: `/v2/${repo}/manifests/${reference}`, headers: { accept: accept.join(', ') }, scopes: [pullScope(repo)], what });
    if (res.status === 404) {
      drain(res);
      throw new NydusError('ERR_REGISTRY', `manifest unknown: ${this.host}/${repo}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`);
    }
    if (res.status !== 200) await this.#fail(res, what);
    const bytes = await res.readAll(4 << 20);
    const digest = sha256Digest(bytes);
    if (reference.startsWith('sha256:') && reference !== digest) throw new NydusError('ERR_DIGEST_MISMATCH', `${what}: content digest is ${digest}`);
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    } catch {
      throw new NydusError('ERR_REGISTRY', `${what}: not valid JSON`);
    }
    const ct = (res.header('content-type') ?? '').split(';')[0]!.trim();
    const mediaType = typeof json.mediaType === 'string' ? json.mediaType : ct;
    if (!MANIFEST_ACCEPT.includes(mediaType)) throw new NydusError('ERR_FORMAT_UNSUPPORTED', `${what}: unsupported media type '${mediaType}'`);
    return { mediaType, digest, bytes, json };
  }

  async putManifest(repo: string, reference: string, mediaType: string, bytes: Buffer): Promise<string> {
    const what = `push manifest ${this.host}/${repo}:${reference}`;
    const res = await this.request({ method: 'PUT', path: `/v2/${repo}/manifests/${reference}`, headers: { 'content-type': mediaType }, body: bytes, scopes: [pushScope(repo)], what });
    if (res.status !== 201 && res.status !== 200) await this.#fail(res, what);
    drain(res);
    return sha256Digest(bytes);
  }

  /** Size of a blob, or undefined when the repository does not have it. */
  async headBlob(repo: string, digest: string, scopes = [pullScope(repo)]): Promise<number | undefined> {
    // Digests come from manifests: never let one shape a URL path.
    checkDigest(digest, `blob of ${this.host}/${repo}`);
    const what = `blob ${this.host}/${repo}@${digest}`;
    const res = await this.request({ method: 'HEAD', path: `/v2/${repo}/blobs/${digest}`, scopes, what });
    drain(res);
    if (res.status === 404) return undefined;
    if (res.status !== 200) await this.#fail(res, what);
    return Number(res.header('content-length') ?? 0);
  }

  /** Streams a blob (following storage redirects without our credentials). */
  async getBlob(repo: string, digest: string): Promise<Readable> {
    // Digests come from manifests: never let one shape a URL path.
    checkDigest(digest, `blob of ${this.host}/${repo}`);
    const what = `blob ${this.host}/${repo}@${digest}`;
    let res = await this.request({ method: 'GET', path: `/v2/${repo}/blobs/${digest}`, scopes: [pullScope(repo)], what, long: true });
    for (let hops = 0, loc = res.header('location'); res.status >= 300 && res.status < 400 && loc; hops++, loc = res.header('location')) {
      drain(res);
      if (hops > 5) throw new BackendError('ERR_REGISTRY', 'registry', `${what}: too many redirects`);
      // Storage redirects (presigned URLs) get no registry credentials.
      res = await this.#client.request({ method: 'GET', url: new URL(loc, res.url), deadline: false });
    }
    if (res.status === 404) {
      drain(res);
      throw new NydusError('ERR_REGISTRY', `blob unknown: ${this.host}/${repo}@${digest}`);
    }
    if (res.status !== 200) await this.#fail(res, what);
    return counted(res.stream(), this.#opts.onBytes);
  }

  async getBlobBytes(repo: string, digest: string, limit = 64 << 20): Promise<Buffer> {
    const s = await this.getBlob(repo, digest);
    const parts: Buffer[] = [];
    let n = 0;
    for await (const c of s) {
      n += (c as Buffer).length;
      if (n > limit) {
        s.destroy();
        throw new NydusError('ERR_REGISTRY', `blob ${digest} is larger than ${limit} bytes`);
      }
      parts.push(c as Buffer);
    }
    const b = Buffer.concat(parts);
    if (sha256Digest(b) !== digest) throw new NydusError('ERR_DIGEST_MISMATCH', `blob ${this.host}/${repo}@${digest}: content digest is ${sha256Digest(b)}`);
    return b;
  }

  /** Cross-repository mount; true when the registry linked the blob (201). */
  async mountBlob(repo: string, digest: string, from: string): Promise<boolean> {
    // Digests come from manifests: never let one shape a URL path.
    checkDigest(digest, `blob of ${this.host}/${repo}`);
    const what = `mount ${digest} from ${from} into ${this.host}/${repo}`;
    const q = new URLSearchParams({ mount: digest, from });
    const res = await this.request({ method: 'POST', path: `/v2/${repo}/blobs/uploads/?${q}`, body: Buffer.alloc(0), scopes: [pushScope(repo), pullScope(from)], what });
    drain(res);
    if (res.status === 201) return true;
    if (res.status === 202) {
      // The registry opened an ordinary upload instead: cancel it.
      const loc = res.header('location');
      if (loc) drain(await this.request({ method: 'DELETE', path: '', url: new URL(loc, res.url), scopes: [pushScope(repo)], what }).catch(() => undefined as never));
      return false;
    }
    if (res.status === 401 || res.status === 403) await this.#fail(res, what);
    return false;
  }

  async #startUpload(repo: string, what: string): Promise<URL> {
    const res = await this.request({ method: 'POST', path: `/v2/${repo}/blobs/uploads/`, body: Buffer.alloc(0), scopes: [pushScope(repo)], what });
    if (res.status !== 202) await this.#fail(res, what);
    drain(res);
    const loc = res.header('location');
    if (!loc) throw new BackendError('ERR_REGISTRY', 'registry', `${what}: upload started without a Location`);
    return new URL(loc, res.url);
  }

  /**
   * Uploads `size` bytes of a file (or a Buffer) as blob `digest`. `chunkSize` 0 = one monolithic PUT;
   * otherwise PATCH chunks of that size with Content-Range, then PUT ?digest= to commit.
   */
  async uploadBlob(repo: string, digest: string, src: { path: string; size: number } | Buffer, chunkSize = 0): Promise<void> {
    // Digests come from manifests: never let one shape a URL path.
    checkDigest(digest, `blob of ${this.host}/${repo}`);
    const what = `push blob ${this.host}/${repo}@${digest}`;
    const size = Buffer.isBuffer(src) ? src.length : src.size;
    const part = (start: number, end: number): RequestBody =>
      Buffer.isBuffer(src) ? src.subarray(start, end) : () => counted(createReadStream(src.path, { start, end: end - 1, highWaterMark: 1 << 20 }), this.#opts.onBytes);
    let loc = await this.#startUpload(repo, what);
    const withDigest = (u: URL): URL => {
      const x = new URL(u);
      x.searchParams.set('digest', digest);
      return x;
    };
    if (chunkSize <= 0 || size <= chunkSize) {
      const res = await this.request({ method: 'PUT', path: '', url: withDigest(loc), headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) }, body: size ? part(0, size) : Buffer.alloc(0), scopes: [pushScope(repo)], what, long: true });
      if (res.status !== 201) await this.#fail(res, what);
      drain(res);
      return;
    }
    for (let off = 0; off < size; off += chunkSize) {
      const end = Math.min(size, off + chunkSize);
      const res = await this.request({
        method: 'PATCH',
        path: '',
        url: loc,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(end - off), 'content-range': `${off}-${end - 1}` },
        body: part(off, end),
        scopes: [pushScope(repo)],
        what: `${what} (chunk at ${off})`,
        long: true,
      });
      if (res.status !== 202) await this.#fail(res, `${what} (chunk at ${off})`);
      drain(res);
      const next = res.header('location');
      if (next) loc = new URL(next, res.url);
    }
    const res = await this.request({ method: 'PUT', path: '', url: withDigest(loc), headers: { 'content-length': '0' }, body: Buffer.alloc(0), scopes: [pushScope(repo)], what });
    if (res.status !== 201) await this.#fail(res, what);
    drain(res);
  }
}
