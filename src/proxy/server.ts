// nydus-backend-proxy: serves a directory of blobs (files named by sha256 hex) with the registry blob
// API, so nydusd's registry backend (`scheme: http`) can read them. Routes:
//   GET|HEAD /<repo...>/blobs/sha256:<64 hex>   (e.g. /v2/library/ubuntu/blobs/sha256:…)
//   GET|HEAD /<64 hex>                          (static file, as upstream mounts the dir at /)
//   GET /metrics                                (our extension: JSON byte/request counters)
// Differences from upstream (contrib/nydus-backend-proxy, Rocket): a range is answered 206 with a
// correct `Content-Range: bytes s-e/size`, any number of repo segments is accepted.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseRange } from './range.js';

export interface BackendProxyOptions {
  blobsDir: string;
}

export interface BackendProxyMetrics {
  requests: number;
  bytesServed: number;
  notFound: number;
  rangeRequests: number;
}

const HEX64 = /^[0-9a-f]{64}$/;

export class BackendProxyServer {
  readonly server: http.Server;
  readonly metrics: BackendProxyMetrics = { requests: 0, bytesServed: 0, notFound: 0, rangeRequests: 0 };
  readonly #dir: string;

  constructor(opts: BackendProxyOptions) {
    this.#dir = opts.blobsDir;
    this.server = http.createServer((req, res) => {
      this.#handle(req, res).catch(() => {
        if (!res.headersSent) this.#plain(res, 500, 'internal error\n');
        else res.destroy();
      });
    });
    this.server.keepAliveTimeout = 30_000;
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** Stops accepting, lets in-flight responses finish, then drops idle keep-alive sockets. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
  }

  #plain(res: ServerResponse, status: number, body: string, extra: Record<string, string> = {}): void {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), ...extra });
    res.end(body);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.metrics.requests++;
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      return this.#plain(res, 400, 'bad request path\n');
    }
    if (path === '/metrics' && req.method === 'GET') {
      const body = JSON.stringify(this.metrics);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    let hex: string | undefined;
    const m = /^\/(?:[^/]+\/)+blobs\/([^/]+)$/.exec(path);
    if (m) {
      const digest = m[1]!;
      if (!digest.startsWith('sha256:')) return this.#plain(res, 400, 'digest must be sha256:<64 hex>\n');
      hex = digest.slice(7);
    } else if (/^\/[^/]+$/.test(path)) {
      hex = path.slice(1);
    }
    // Only 64 lower-case hex digits ever reach the filesystem: no traversal, no odd names.
    if (hex === undefined || !HEX64.test(hex)) return this.#plain(res, hex === undefined ? 404 : 400, hex === undefined ? 'not found\n' : 'invalid digest\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return this.#plain(res, 405, 'method not allowed\n', { allow: 'GET, HEAD' });
    const file = join(this.#dir, hex);
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile()) {
      this.metrics.notFound++;
      return this.#plain(res, 404, 'blob unknown\n');
    }
    const size = st.size;
    const headers: Record<string, string | number> = {
      'content-type': 'application/octet-stream',
      'docker-content-digest': `sha256:${hex}`,
      'accept-ranges': 'bytes',
      etag: `"sha256:${hex}"`,
    };
    const range = req.method === 'GET' ? parseRange(req.headers.range, size) : { kind: 'none' as const };
    if (range.kind === 'unsatisfiable') {
      return this.#plain(res, 416, 'range not satisfiable\n', { 'content-range': `bytes */${size}` });
    }
    let start = 0;
    let end = size - 1;
    if (range.kind === 'range') {
      this.metrics.rangeRequests++;
      ({ start, end } = range);
      headers['content-range'] = `bytes ${start}-${end}/${size}`;
    }
    headers['content-length'] = end - start + 1;
    res.writeHead(range.kind === 'range' ? 206 : 200, headers);
    if (req.method === 'HEAD' || size === 0) {
      res.end();
      return;
    }
    // Streamed from disk: a multi-GiB blob never sits in memory.
    const stream = createReadStream(file, { start, end });
    stream.on('data', (chunk) => {
      this.metrics.bytesServed += chunk.length;
    });
    await pipeline(stream, res).catch(() => res.destroy());
  }
}
