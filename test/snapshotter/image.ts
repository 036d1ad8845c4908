// Test images: a busybox-static rootfs in three umoci layers pushed with skopeo, and a counting
// HTTP proxy in front of the registry (bytes the registry served, measured from its side).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export const HELLO = 'hello from layer two\n';
export const BIG_SIZE = 24 << 20;

/** Layer 1: busybox and applets; layer 2: /data/hello.txt; layer 3: 24 MiB of random data. */
export function buildImage(work: string, host: string, repo: string): void {
  const oci = join(work, 'oci');
  const bundle = join(work, 'bundle');
  const run = (cmd: string, args: string[]): void => void execFileSync(cmd, args, { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });
  run('umoci', ['init', '--layout', oci]);
  run('umoci', ['new', '--image', `${oci}:v1`]);
  run('umoci', ['unpack', '--image', `${oci}:v1`, bundle]);
  const rootfs = join(bundle, 'rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  execFileSync('cp', ['/bin/busybox', join(rootfs, 'bin/busybox')]);
  for (const a of ['sh', 'cat', 'echo', 'ls', 'sleep', 'md5sum', 'head', 'wc']) symlinkSync('busybox', join(rootfs, 'bin', a));
  run('umoci', ['repack', '--image', `${oci}:v1`, bundle]);
  mkdirSync(join(rootfs, 'data'), { recursive: true });
  writeFileSync(join(rootfs, 'data/hello.txt'), HELLO);
  run('umoci', ['repack', '--image', `${oci}:v1`, bundle]);
  writeFileSync(join(rootfs, 'data/big.bin'), randomBytes(BIG_SIZE));
  run('umoci', ['repack', '--image', `${oci}:v1`, bundle]);
  run('umoci', ['config', '--image', `${oci}:v1`, '--config.cmd', '/bin/sh']);
  run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${oci}:v1`, `docker://${host}/${repo}:v1`]);
}

export interface CountingProxy {
  host: string;
  /** Response body bytes per request path since the last reset. */
  bytes: Map<string, number>;
  total(match?: RegExp): number;
  reset(): void;
  close(): Promise<void>;
}

export async function countingProxy(upstream: string): Promise<CountingProxy> {
  const bytes = new Map<string, number>();
  const [uh, up] = upstream.split(':');
  const server = http.createServer((req, res) => {
    const path = req.url ?? '/';
    const out = http.request({ host: uh, port: Number(up), method: req.method, path, headers: { ...req.headers, host: upstream } }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.on('data', (d: Buffer) => bytes.set(path, (bytes.get(path) ?? 0) + d.length));
      r.pipe(res);
    });
    out.on('error', () => res.writeHead(502).end());
    req.pipe(out);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    bytes,
    total: (m) => [...bytes].filter(([p]) => !m || m.test(p)).reduce((a, [, n]) => a + n, 0),
    reset: () => bytes.clear(),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
