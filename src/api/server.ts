// The nydusd HTTP API on a unix socket (upstream /api/v1 paths, methods, bodies and error shapes).
// A bad request never reaches the daemon as an exception: every handler error becomes a JSON body.
import { chmodSync, existsSync, lstatSync, unlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type BlobCacheEntry, ControlError, type DaemonControl, type MetricsKind, type MountRequest } from '../daemon/control.js';
import { describeError, NydusError } from '../util/errors.js';
import { isLogLevel, logger, redact, redactSecrets } from '../util/log.js';

const log = logger('api');
const MAX_BODY = 1 << 20;
/** Linux NAME_MAX: the longest directory entry name a lookup can carry. */
const NAME_MAX = 255;

type Handler = (ctl: DaemonControl, q: URLSearchParams, body: () => Promise<unknown>) => Promise<unknown> | unknown;

const METRICS: Record<string, MetricsKind> = {
  '/api/v1/metrics': 'fs',
  '/api/v1/metrics/files': 'files',
  '/api/v1/metrics/pattern': 'pattern',
  '/api/v1/metrics/backend': 'backend',
  '/api/v1/metrics/blobcache': 'blobcache',
  '/api/v1/metrics/inflight': 'inflight',
};

function bad(msg: string): never {
  throw new ControlError(400, 'INVALID_ARGUMENT', msg);
}

function unsupported(what: string): never {
  throw new ControlError(400, 'INVALID_ARGUMENT', `${what} is not supported by this daemon`);
}

function mountpointOf(q: URLSearchParams): string {
  const m = q.get('mountpoint');
  if (!m) bad('missing query parameter "mountpoint"');
  if (!m.startsWith('/') || m.includes('\0') || m.split('/').some((p) => p === '..' || p === '.')) bad(`invalid mountpoint "${m}": expected an absolute path like /sub`);
  const parts = m.split('/').filter(Boolean);
  // A longer name can never be looked up (the kernel refuses names over NAME_MAX with ENAMETOOLONG).
  const long = parts.find((p) => Buffer.byteLength(p) > NAME_MAX);
  if (long !== undefined) bad(`invalid mountpoint: component "${long.slice(0, 32)}…" is ${Buffer.byteLength(long)} bytes, more than ${NAME_MAX}`);
  // One spelling per mountpoint: "/sub/" and "//sub" are "/sub" (the mount table is keyed by it).
  return '/' + parts.join('/');
}

function mountRequest(b: unknown): MountRequest {
  if (!b || typeof b !== 'object' || Array.isArray(b)) bad('request body must be a JSON object');
  const o = b as Record<string, unknown>;
  if (typeof o.source !== 'string' || !o.source) bad('"source" (bootstrap path) is required');
  if (o.config !== undefined && typeof o.config !== 'string') bad('"config" must be a string holding the config file contents');
  const fsType = o.fs_type === undefined ? 'rafs' : o.fs_type;
  if (typeof fsType !== 'string') bad('"fs_type" must be a string');
  if (o.prefetch_files !== undefined && (!Array.isArray(o.prefetch_files) || o.prefetch_files.some((x) => typeof x !== 'string'))) bad('"prefetch_files" must be an array of strings');
  return { source: o.source, fs_type: fsType, config: (o.config as string | undefined) ?? '', ...(o.prefetch_files ? { prefetch_files: o.prefetch_files as string[] } : {}) };
}

function cacheOp(c: DaemonControl, gc: boolean): Promise<unknown> {
  if (!c.cache) throw new ControlError(501, 'UNSUPPORTED', 'this daemon has no blob cache control');
  return c.cache(gc);
}

/** PUT /api/v1/daemon and /api/v2/daemon: upstream's DaemonConf. */
const configureDaemon: Handler = async (c, _q, body) => {
  const b = (await body()) as Record<string, unknown> | null;
  const level = b && typeof b === 'object' ? b.log_level : undefined;
  // Upstream parses a log::LevelFilter: case-insensitive.
  const l = typeof level === 'string' ? level.toLowerCase() : undefined;
  if (l === undefined || !isLogLevel(l)) bad('expected {"log_level": "off|error|warn|info|debug|trace"}');
  c.setLogLevel(l);
  return undefined;
};

/** A domain or blob id from a query or body: printable, bounded. */
function objectId(v: string | null | undefined, name: string): string | undefined {
  if (v === null || v === undefined) return undefined;
  if (v.length > 1024 || /[\u0000-\u001f\u007f]/.test(v)) bad(`"${name}" must be printable and at most 1024 characters`);
  return v;
}

function blobEntry(b: unknown): BlobCacheEntry {
  if (!b || typeof b !== 'object' || Array.isArray(b)) bad('request body must be a JSON object (a blob cache entry)');
  const o = b as Record<string, unknown>;
  if (typeof o.type !== 'string') bad('"type" (bootstrap or datablob) is required');
  if (typeof o.id !== 'string') bad('"id" (blob id) is required');
  if (o.domain_id !== undefined && typeof o.domain_id !== 'string') bad('"domain_id" must be a string');
  objectId(o.id, 'id');
  objectId(o.domain_id as string | undefined, 'domain_id');
  for (const k of ['config', 'config_v2']) if (o[k] !== undefined && (!o[k] || typeof o[k] !== 'object' || Array.isArray(o[k]))) bad(`"${k}" must be an object`);
  return { type: o.type, id: o.id, domain_id: (o.domain_id as string | undefined) ?? '', ...(o.config !== undefined ? { config: o.config } : {}), ...(o.config_v2 !== undefined ? { config_v2: o.config_v2 } : {}) };
}

const ROUTES: Record<string, Partial<Record<string, Handler>>> = {
  '/api/v1/daemon': { GET: (c) => c.info(), PUT: configureDaemon },
  '/api/v2/daemon': {
    GET: (c) => {
      const { backend_collection: _omit, ...rest } = c.info();
      return rest;
    },
    PUT: configureDaemon,
  },
  '/api/v2/blobs': {
    GET: (c, q) => {
      const domain = objectId(q.get('domain_id'), 'domain_id');
      if (domain === undefined) bad('missing query parameter "domain_id"');
      return c.getBlobObjects({ domain_id: domain, blob_id: objectId(q.get('blob_id'), 'blob_id') });
    },
    PUT: async (c, _q, body) => void c.createBlobObject(blobEntry(await body())),
    DELETE: async (c, q) => {
      const domain = objectId(q.get('domain_id'), 'domain_id');
      const blob = objectId(q.get('blob_id'), 'blob_id');
      if (domain === undefined && blob === undefined) bad('expected query parameter "domain_id" or "blob_id"');
      await c.deleteBlobObject({ domain_id: domain, blob_id: blob });
      return undefined;
    },
  },
  '/api/v1/daemon/events': { GET: (c) => c.events() },
  '/api/v1/daemon/backend': { GET: (c, q) => c.backendInfo(mountpointOf(q)) },
  '/api/v1/daemon/exit': {
    PUT: (c) => {
      setImmediate(() => c.exit());
      return undefined;
    },
  },
  '/api/v1/daemon/start': { PUT: () => undefined },
  '/api/v1/daemon/fuse/sendfd': { PUT: async (c) => void (await (c.sendFd ? c.sendFd() : unsupported('sendfd'))) },
  '/api/v1/daemon/fuse/takeover': { PUT: async (c) => void (await (c.takeover ? c.takeover() : unsupported('takeover'))) },
  '/api/v1/mount': {
    POST: async (c, q, body) => void (await c.mount(mountpointOf(q), mountRequest(await body()))),
    PUT: async (c, q, body) => void (await c.remount(mountpointOf(q), mountRequest(await body()))),
    DELETE: async (c, q) => void (await c.umount(mountpointOf(q))),
  },
  '/api/v1/cache': {
    GET: (c) => cacheOp(c, false),
    PUT: (c) => cacheOp(c, true),
  },
  '/api/v1/config': {
    GET: (c, q) => c.getConfig(q.get('id') ?? undefined),
    PUT: async (c, q, body) => {
      const b = await body();
      if (!b || typeof b !== 'object' || Array.isArray(b)) bad('request body must be a JSON object');
      await c.updateConfig(q.get('id') ?? undefined, b as Record<string, unknown>);
      return undefined;
    },
  },
};

function readBody(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (d: Buffer) => {
      size += d.length;
      if (size > MAX_BODY) {
        // Answer now and discard the rest (destroying the request would drop the 413 with the socket).
        if (parts.length) parts.length = 0;
        reject(new ControlError(413, 'PAYLOAD_TOO_LARGE', `request body larger than ${MAX_BODY} bytes`));
      } else parts.push(d);
    });
    req.on('error', reject);
    req.on('end', () => {
      const text = Buffer.concat(parts).toString('utf8');
      if (!text.trim()) return resolve(null);
      try {
        resolve(JSON.parse(text));
      } catch (e) {
        reject(new ControlError(400, 'INVALID_ARGUMENT', `request body is not valid JSON: ${(e as Error).message}`));
      }
    });
  });
}

/** Every JSON answer (results and errors) passes the one redaction helper: no credential leaves. */
function send(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = body === undefined ? '' : typeof body === 'string' && type !== 'application/json' ? redact(body) : JSON.stringify(redactSecrets(body));
  res.writeHead(status, { Server: 'Nydus API', 'Content-Type': type, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

export async function handle(ctl: DaemonControl, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    if (url.pathname === '/metrics' && method === 'GET') return send(res, 200, await ctl.prometheus(), 'text/plain; version=0.0.4');
    const kind = METRICS[url.pathname];
    let result: unknown;
    if (kind) {
      if (method !== 'GET') throw new ControlError(400, 'METHOD_NOT_ALLOWED', `${method} is not allowed on ${url.pathname}`);
      const latest = url.searchParams.get('latest');
      result = await ctl.metrics(kind, url.searchParams.get('id') ?? undefined, latest === null ? {} : { latest: latest === 'true' });
      if (kind === 'inflight' && Array.isArray(result) && result.length === 0) return send(res, 204, undefined);
    } else {
      const route = ROUTES[url.pathname];
      if (!route) throw new ControlError(404, 'NOT_FOUND', `no such endpoint: ${url.pathname}`);
      const h = route[method];
      // Upstream answers a method an endpoint does not take with 400 (HttpError::BadRequest).
      if (!h) throw new ControlError(400, 'METHOD_NOT_ALLOWED', `${method} is not allowed on ${url.pathname}`);
      result = await h(ctl, url.searchParams, () => readBody(req));
    }
    if (result === undefined) send(res, 204, undefined);
    else send(res, 200, result);
  } catch (e) {
    if (e instanceof ControlError) {
      if (e.status === 413) res.setHeader('Connection', 'close');
      return send(res, e.status, { code: e.code, message: e.message });
    }
    if (e instanceof NydusError) return send(res, 400, { code: e.code, message: describeError(e) });
    log.error(`API request ${req.method} ${req.url} failed: ${describeError(e)}`);
    send(res, 500, { code: 'INTERNAL', message: describeError(e) });
  }
}

/** Starts the API server; the socket is created with mode 0600. */
export async function startApiServer(ctl: DaemonControl, sockPath: string): Promise<Server> {
  if (existsSync(sockPath)) {
    if (!lstatSync(sockPath).isSocket()) throw new NydusError('ERR_API', `API socket path ${sockPath} exists and is not a socket`);
    unlinkSync(sockPath);
  }
  const server = createServer((req, res) => {
    handle(ctl, req, res).catch((e) => log.error(`API: ${describeError(e)}`));
  });
  // Unparsable HTTP (NUL in the request line, oversized headers, bad chunking) never reaches a
  // handler: answer it with the same JSON error shape instead of silently dropping the connection.
  server.on('clientError', (e: NodeJS.ErrnoException, socket) => {
    if (!socket.writable || (e.code === 'ECONNRESET')) return socket.destroy();
    const [status, reason] = e.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large'] : [400, 'Bad Request'];
    const body = JSON.stringify({ code: 'INVALID_ARGUMENT', message: `malformed HTTP request: ${e.code ?? e.message}` });
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nServer: Nydus API\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  });
  const oldMask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(sockPath, () => resolve());
    });
  } finally {
    process.umask(oldMask);
  }
  chmodSync(sockPath, 0o600);
  return server;
}
