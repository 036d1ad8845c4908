// Test images: a busybox-static rootfs in three umoci layers pushed with skopeo, and a counting
// HTTP proxy in front of the registry (bytes the registry served, measured from its side).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { makeBootstrapLayer } from '../../src/convert/manifest.js';
import { MT_OCI_MANIFEST, type ImageConfig, type Manifest } from '../../src/convert/media-types.js';
import { RegistryClient, sha256Digest } from '../../src/convert/registry.js';

export const HELLO = 'hello from layer two\n';
export const BIG_SIZE = 24 << 20;

/** Layer 1: busybox and applets; layer 2: /data/hello.txt; layer 3: 24 MiB of random data. */
export function buildImage(work: string, host: string, repo: string): void {
  const oci = join(work, 'oci');
  const bundle = join(work, 'bundle');
  const run = (cmd: string, args: string[]): void => void execFileSync(cmd, args, { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });
  run('umoci', ['init', '--layout', oci]);
  run('umoci', ['new', '--image', `${oci}:v1`]);
  const rootfs = join(bundle, 'rootfs');
  // repack diffs against the image the bundle was unpacked from: unpack afresh for each layer.
  const layer = (add: () => void): void => {
    rmSync(bundle, { recursive: true, force: true });
    run('umoci', ['unpack', '--image', `${oci}:v1`, bundle]);
    add();
    run('umoci', ['repack', '--image', `${oci}:v1`, bundle]);
  };
  layer(() => {
    mkdirSync(join(rootfs, 'bin'), { recursive: true });
    execFileSync('cp', ['/bin/busybox', join(rootfs, 'bin/busybox')]);
    for (const a of ['sh', 'cat', 'echo', 'ls', 'sleep', 'md5sum', 'head', 'tail', 'wc']) symlinkSync('busybox', join(rootfs, 'bin', a));
  });
  layer(() => {
    mkdirSync(join(rootfs, 'data'), { recursive: true });
    writeFileSync(join(rootfs, 'data/hello.txt'), HELLO);
  });
  layer(() => writeFileSync(join(rootfs, 'data/big.bin'), randomBytes(BIG_SIZE)));
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

/**
 * Pushes `repo:to`, a copy of the Nydus image `repo:from` whose bootstrap layer is corrupt
 * (a valid layer tar holding garbage for image/image.boot) or missing from the registry.
 * Returns the new bootstrap layer's digest.
 */
export async function pushBadBootstrap(host: string, repo: string, from: string, to: string, how: 'corrupt' | 'missing'): Promise<string> {
  const client = new RegistryClient(host, { plainHttp: true });
  const m = (await client.getManifest(repo, from)).json as unknown as Manifest;
  const config = JSON.parse((await client.getBlobBytes(repo, m.config.digest)).toString('utf8')) as ImageConfig;
  const last = m.layers.at(-1)!;
  // Both start as a valid layer tar holding garbage for image/image.boot (the registry refuses a
  // manifest naming unknown blobs); the missing one is then deleted from the registry.
  const l = makeBootstrapLayer(randomBytes(16384));
  await client.uploadBlob(repo, l.digest, l.gz);
  Object.assign(last, { digest: l.digest, size: l.gz.length });
  config.rootfs.diff_ids[config.rootfs.diff_ids.length - 1] = l.diffId;
  const cfg = Buffer.from(JSON.stringify(config));
  await client.uploadBlob(repo, sha256Digest(cfg), cfg);
  m.config = { ...m.config, digest: sha256Digest(cfg), size: cfg.length };
  await client.putManifest(repo, to, m.mediaType ?? MT_OCI_MANIFEST, Buffer.from(JSON.stringify(m)));
  if (how === 'missing') {
    const r = await fetch(`http://${host}/v2/${repo}/blobs/${l.digest}`, { method: 'DELETE' });
    if (r.status !== 202) throw new Error(`registry DELETE blob: HTTP ${r.status}`);
  }
  return last.digest;
}
