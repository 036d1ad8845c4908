// A small HTTP forward proxy for tests of HTTP(S)_PROXY: absolute-form requests are relayed, CONNECT
// is tunnelled; every use is recorded as "GET http://h:p/path" or "CONNECT h:p". Callers close() it.
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';

export interface ForwardProxy {
  url: string;
  seen: string[];
  close(): void;
}

export async function startForwardProxy(): Promise<ForwardProxy> {
  const seen: string[] = [];
  const server = http.createServer((q, s) => {
    seen.push(`${q.method} ${q.url}`);
    const u = new URL(q.url!);
    const up = http.request({ host: u.hostname, port: u.port, method: q.method, path: u.pathname + u.search, headers: q.headers }, (r) => {
      s.writeHead(r.statusCode!, r.headers);
      r.pipe(s);
    });
    up.on('error', () => s.destroy());
    q.pipe(up);
  });
  server.on('connect', (q, sock) => {
    seen.push(`CONNECT ${q.url}`);
    const [h, p] = q.url!.split(':');
    const up = net.connect(Number(p), h, () => {
      sock.write('HTTP/1.1 200 Connection established\r\n\r\n');
      up.pipe(sock);
      sock.pipe(up);
    });
    up.on('error', () => sock.destroy());
    sock.on('error', () => up.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}
