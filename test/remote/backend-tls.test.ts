// Issue 18: config keys that ask for TLS and proxy behaviour are honoured by nydusd end to end. A real
// docker-registry sits behind an https front with a private CA (openssl): the registry backend reads
// the whole tree with `ca_cert_files`, fails with EIO without it, and goes through an HTTPS_PROXY
// (CONNECT tunnel) when the environment names one.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startForwardProxy, type ForwardProxy } from '../helpers/forward-proxy.js';
import { BIN } from '../helpers/paths.js';
import { hasDockerRegistry, pushBlob, startRegistry, type RegistryHandle } from '../helpers/registry.js';
import { buildImage, hashTree, hashTreeAsync, mountsUnder, nydusdSkip, readHash, v1Config, waitFor, type Built } from './harness.js';
import { makeSmallTree } from './tree.js';

const skip = nydusdSkip() ?? (hasDockerRegistry() ? undefined : 'docker-registry not installed');

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

describe('registry backend over https: ca_cert_files and HTTPS_PROXY', { skip }, () => {
  let root = '';
  let img: Built;
  let want: Map<string, string>;
  let reg: RegistryHandle;
  let tlsPort = 0;
  let proxy: ForwardProxy;
  const servers: net.Server[] = [];
  let caCert = '';
  const repo = 'library/nydus-tls';
  let n = 0;

  before(async () => {
    root = mkdtempSync('/tmp/backend-tls-');
    makeSmallTree(join(root, 'src'));
    img = buildImage(join(root, 'src'), join(root, 'img'));
    want = hashTree(join(root, 'src'));
    reg = await startRegistry();
    await pushBlob(reg, repo, readFileSync(img.blobPath));
    caCert = join(root, 'ca.crt');
    const key = join(root, 'ca.key');
    spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', caCert, '-days', '2', '-subj', '/CN=registry', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    // TLS front for the registry: requests are relayed as they are.
    const front = https.createServer({ cert: readFileSync(caCert), key: readFileSync(key) }, (q, s) => {
      const up = http.request({ host: '127.0.0.1', port: Number(reg.host.split(':')[1]), method: q.method, path: q.url, headers: q.headers }, (r) => {
        s.writeHead(r.statusCode!, r.headers);
        r.pipe(s);
      });
      up.on('error', () => s.destroy());
      q.pipe(up);
    });
    proxy = await startForwardProxy();
    servers.push(front);
    tlsPort = await listen(front);
  });
  after(async () => {
    proxy?.close();
    for (const s of servers) {
      (s as http.Server).closeAllConnections();
      s.close();
    }
    await reg?.close();
    for (const m of mountsUnder(root)) assert.fail(`leaked mount ${m}`);
    rmSync(root, { recursive: true, force: true });
  });

  /** Runs nydusd with this registry config (and environment) on the image; `body` gets the mountpoint. */
  async function withNydusd(extra: Record<string, unknown>, env: Record<string, string>, body: (mnt: string) => Promise<void>): Promise<void> {
    const dir = join(root, `m${n++}`);
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt, { recursive: true });
    const cfg = join(dir, 'config.json');
    const backend = { type: 'registry', config: { scheme: 'https', host: `127.0.0.1:${tlsPort}`, repo, timeout: 5, connect_timeout: 5, retry_limit: 0, ...extra } };
    writeFileSync(cfg, JSON.stringify(v1Config({ backend, workDir: join(dir, 'cache') })));
    const apisock = join(dir, 'api.sock');
    const p = spawn(process.execPath, [BIN('nydusd'), '--config', cfg, '--mountpoint', mnt, '--bootstrap', img.boot, '--apisock', apisock, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
    let err = '';
    let exited = false;
    p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    p.once('exit', () => (exited = true));
    try {
      await waitFor(`nydusd to mount ${mnt}`, 20_000, () => {
        if (exited) throw new Error(`nydusd exited before mounting: ${err}`);
        return mountsUnder(mnt).includes(mnt) && existsSync(apisock);
      });
      await body(mnt);
    } finally {
      if (!exited) {
        p.kill('SIGTERM');
        await waitFor('nydusd to exit', 10_000, () => exited).catch(() => p.kill('SIGKILL'));
      }
      if (mountsUnder(mnt).includes(mnt)) spawnSync('umount', ['-l', mnt], { timeout: 10_000 });
    }
  }

  it('ca_cert_files: the whole tree reads back through https', { timeout: 90_000 }, async () => {
    await withNydusd({ ca_cert_files: [caCert] }, {}, async (mnt) => {
      assert.deepEqual(await hashTreeAsync(mnt), want);
    });
  });

  it('without ca_cert_files the private CA is not trusted: EIO, not data', { timeout: 90_000 }, async () => {
    await withNydusd({}, {}, async (mnt) => {
      const r = await readHash(join(mnt, 'bin/mid'), 30_000);
      assert.equal(r.hash, undefined, 'read must fail');
      assert.match(r.err, /Input\/output error/);
    });
  });

  it('HTTPS_PROXY: reads go through a CONNECT tunnel; NO_PROXY sends them direct', { timeout: 90_000 }, async () => {
    const tunnels = proxy.seen;
    tunnels.length = 0;
    await withNydusd({ ca_cert_files: [caCert] }, { HTTPS_PROXY: proxy.url }, async (mnt) => {
      assert.deepEqual(await hashTreeAsync(mnt), want);
    });
    assert.ok(tunnels.length > 0 && tunnels.every((t) => t === `CONNECT 127.0.0.1:${tlsPort}`), `tunnels: ${tunnels.join(' ')}`);
    tunnels.length = 0;
    await withNydusd({ ca_cert_files: [caCert] }, { HTTPS_PROXY: proxy.url, NO_PROXY: '127.0.0.1' }, async (mnt) => {
      assert.deepEqual(await hashTreeAsync(mnt), want);
    });
    assert.deepEqual(tunnels, [], 'NO_PROXY host went direct');
  });
});
