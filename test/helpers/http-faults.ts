// A loopback HTTP blob server for backend tests that can misbehave on demand: answer 5xx, stall,
// reset the connection, drop mid-body, send a wrong range or too many bytes. Faults are queued and
// consumed one per blob request. It also acts as a forward proxy (absolute-form requests), exposes
// `/ping` whose health tests toggle, and counts requests and bytes served.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Fault =
  | { kind: 'status'; status: number }
  /** Accept the request and never answer. */
  | { kind: 'stall' }
  /** Send headers and `after` bytes, then go silent. */
  | { kind: 'stall-body'; after: number }
  /** Destroy the socket before any response. */
  | { kind: 'reset' }
  /** Send headers, then one body byte every `everyMs` (an idle timer never fires). */
  | { kind: 'trickle'; everyMs: number }
  /** Send headers and `after` bytes, then destroy the socket. */
  | { kind: 'drop'; after: number }
  /** 206 whose Content-Range starts `shift` bytes later than asked. */
  | { kind: 'wrong-range'; shift: number }
  /** 206 with the right Content-Range but `extra` more bytes (chunked, so the client must count). */
  | { kind: 'long'; extra: number };

export interface RequestRecord {
  method: string;
  path: string;
  /** The request came in absolute form, i.e. through us as a proxy. */
  viaProxy: boolean;
  headers: http.IncomingHttpHeaders;
}

export interface FaultServer {
  url: string;
  port: number;
  blobs: Map<string, Buffer>;
  faults: Fault[];
  requests: RequestRecord[];
  bytesServed: number;
  /** `/ping` answers 200 when true, 503 when false. */
  healthy: boolean;
  /** Every blob request is answered with 500 while true (a broken proxy). */
  broken: boolean;
  close(): Promise<void>;
}

/** Blob id = last path segment, without a `sha256:` prefix. */
function blobIdOf(path: string): string {
  const last = path.split('/').pop() ?? '';
  return last.startsWith('sha256:') ? last.slice(7) : last;
}

export async function startFaultServer(blobs: Record<string, Buffer> = {}): Promise<FaultServer> {
  const sockets = new Set<Socket>();
  const state: FaultServer = {
    url: '',
    port: 0,
    blobs: new Map(Object.entries(blobs)),
    faults: [],
    requests: [],
    bytesServed: 0,
    healthy: true,
    broken: false,
    close: async () => {},
  };
  const send = (res: ServerResponse, data: Buffer): void => {
    state.bytesServed += data.length;
    res.write(data);
  };
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const raw = req.url ?? '/';
    const viaProxy = /^https?:\/\//.test(raw);
    const path = new URL(raw, 'http://x').pathname;
    state.requests.push({ method: req.method ?? '', path, viaProxy, headers: req.headers });
    if (path === '/ping') {
      res.writeHead(state.healthy ? 200 : 503).end();
      return;
    }
    if (state.broken) {
      res.writeHead(500).end('broken');
      return;
    }
    const data = state.blobs.get(blobIdOf(path));
    const fault = req.method === 'GET' || req.method === 'HEAD' ? state.faults.shift() : undefined;
    if (fault?.kind === 'status') return void res.writeHead(fault.status, { 'content-length': 0 }).end();
    if (fault?.kind === 'stall') return;
    if (fault?.kind === 'reset') return void req.socket.destroy();
    if (!data) return void res.writeHead(404, { 'content-length': 0 }).end();
    let start = 0;
    let end = data.length - 1;
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (m) {
      start = Number(m[1]);
      end = m[2] ? Math.min(Number(m[2]), data.length - 1) : data.length - 1;
      if (start >= data.length) return void res.writeHead(416, { 'content-range': `bytes */${data.length}`, 'content-length': 0 }).end();
    }
    const body = data.subarray(start, end + 1);
    const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream' };
    if (m) {
      const s = fault?.kind === 'wrong-range' ? start + fault.shift : start;
      headers['content-range'] = `bytes ${s}-${s + body.length - 1}/${data.length}`;
    }
    if (fault?.kind !== 'long') headers['content-length'] = body.length;
    res.writeHead(m ? 206 : 200, headers);
    if (req.method === 'HEAD') return void res.end();
    if (fault?.kind === 'trickle') {
      let i = 0;
      const t = setInterval(() => {
        if (i >= body.length || res.destroyed) return void (clearInterval(t), res.end());
        send(res, body.subarray(i, ++i));
      }, fault.everyMs);
      res.on('close', () => clearInterval(t));
      return;
    }
    if (fault?.kind === 'drop' || fault?.kind === 'stall-body') {
      send(res, body.subarray(0, fault.after));
      // Let the partial body reach the client before the connection dies (or hangs).
      if (fault.kind === 'drop') setTimeout(() => req.socket.destroy(), 20);
      return;
    }
    send(res, body);
    if (fault?.kind === 'long') send(res, Buffer.alloc(fault.extra, 0x5a));
    res.end();
  };
  const server = http.createServer(handler);
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.port = (server.address() as AddressInfo).port;
  state.url = `http://127.0.0.1:${state.port}`;
  state.close = () =>
    new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
  return state;
}
