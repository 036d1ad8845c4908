// nydusify convert output as upstream writes it (issue 18, acceptance 5) and hostile source
// manifests (issue 11, defect 6), against a real docker-registry. A hostile registry is the real one
// behind a small rewriting proxy (the real registry refuses such manifests on push).
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { MT_OCI_CONFIG, MT_OCI_INDEX, MT_OCI_LAYER_GZIP, MT_OCI_MANIFEST, type Index, type Manifest } from '../../src/convert/media-types.js';
import { RegistryClient, sha256Digest } from '../../src/convert/registry.js';
import { encodeTarHeader, padding } from '../../src/image/tar-writer.js';
import { BIN } from '../helpers/paths.js';
import { hasDockerRegistry, startRegistry, type RegistryHandle } from '../helpers/registry.js';

const hasSkopeo = (): boolean => {
  try {
    execFileSync('skopeo', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const skip = !hasDockerRegistry() ? 'docker-registry is not installed' : !hasSkopeo() ? 'skopeo is not installed' : false;

function nydusify(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    execFile(process.execPath, [BIN('nydusify'), ...args], { maxBuffer: 1 << 26 }, (err, stdout, stderr) => ok({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

function oneFileTar(name: string, data: Buffer): Buffer {
  const h = encodeTarHeader({ path: Buffer.from(name), type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1700000000, mtimeNsec: 0, size: data.length });
  return Buffer.concat([h, data, Buffer.alloc(padding(data.length)), Buffer.alloc(1024)]);
}

/** Pushes a one-layer OCI image; returns the manifest digest and the layer's gzip bytes. */
async function pushImage(c: RegistryClient, repo: string, tag: string, content: string, arch = 'amd64'): Promise<{ digest: string; size: number; layer: Buffer; manifest: Manifest }> {
  const tar = oneFileTar('hello.txt', Buffer.from(content));
  const layer = gzipSync(tar);
  await c.uploadBlob(repo, sha256Digest(layer), layer);
  const cfg = Buffer.from(JSON.stringify({ architecture: arch, os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [sha256Digest(tar)] }, history: [{ created_by: 'test' }] }));
  await c.uploadBlob(repo, sha256Digest(cfg), cfg);
  const manifest: Manifest = { schemaVersion: 2, mediaType: MT_OCI_MANIFEST, config: { mediaType: MT_OCI_CONFIG, digest: sha256Digest(cfg), size: cfg.length }, layers: [{ mediaType: MT_OCI_LAYER_GZIP, digest: sha256Digest(layer), size: layer.length }] };
  const bytes = Buffer.from(JSON.stringify(manifest));
  await c.putManifest(repo, tag, MT_OCI_MANIFEST, bytes);
  return { digest: sha256Digest(bytes), size: bytes.length, layer, manifest };
}

interface Proxy {
  host: string;
  /** GET /v2/<repo>/manifests/<tag> → this body (as an OCI manifest). */
  manifests: Map<string, Buffer>;
  /** GET /v2/<repo>/blobs/<digest> → these bytes instead of the registry's. */
  blobs: Map<string, Buffer>;
  close(): Promise<void>;
}

/** A registry front that lies: rewritten manifests and substituted blob bytes; the rest is forwarded. */
async function startLyingProxy(upstream: string): Promise<Proxy> {
  const manifests = new Map<string, Buffer>();
  const blobs = new Map<string, Buffer>();
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const fake = req.method === 'GET' || req.method === 'HEAD' ? (manifests.get(path) ?? blobs.get(path)) : undefined;
    if (fake) {
      res.writeHead(200, { 'content-type': manifests.has(path) ? MT_OCI_MANIFEST : 'application/octet-stream', 'content-length': fake.length });
      return void res.end(req.method === 'HEAD' ? undefined : fake);
    }
    const up = http.request({ host: upstream.split(':')[0], port: Number(upstream.split(':')[1]), method: req.method, path: req.url, headers: { ...req.headers, host: upstream } }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    manifests,
    blobs,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

describe('nydusify convert output and hostile manifests', { skip, timeout: 240_000 }, () => {
  let reg: RegistryHandle;
  let client: RegistryClient;
  let work: string;
  let src: Awaited<ReturnType<typeof pushImage>>;
  const flags = ['--source-insecure', '--target-insecure'];

  before(async () => {
    reg = await startRegistry();
    client = new RegistryClient(reg.host, { plainHttp: true });
    work = mkdtempSync(join(tmpdir(), 'nydusify-out-'));
    src = await pushImage(client, 'test/src', 'v1', 'hello from the source image\n');
  });
  after(async () => {
    await reg?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('the nydus manifest carries upstream annotations; --with-referrer adds subject', async () => {
    const r = await nydusify(['convert', '--source', `${reg.host}/test/src:v1`, '--target', `${reg.host}/test/src:nydus`, '--with-referrer', ...flags, '--work-dir', join(work, 'w1')]);
    assert.equal(r.code, 0, r.stderr);
    const m = (await client.getManifest('test/src', 'nydus')).json as unknown as Manifest;
    assert.deepEqual(m.annotations, {
      'containerd.io/snapshot/nydus-builder-version': 'v0.1.0',
      'containerd.io/snapshot/nydus-fs-version': '6',
      'containerd.io/snapshot/nydus-source-digest': src.digest,
      'containerd.io/snapshot/nydus-source-reference': `${reg.host}/test/src:v1`,
    });
    assert.deepEqual(m.subject, { mediaType: MT_OCI_MANIFEST, digest: src.digest, size: src.size });
    const plain = await nydusify(['convert', '--source', `${reg.host}/test/src:v1`, '--target', `${reg.host}/test/src:plain`, '--fs-version', '5', ...flags, '--work-dir', join(work, 'w1b')]);
    assert.equal(plain.code, 0, plain.stderr);
    const pm = (await client.getManifest('test/src', 'plain')).json as unknown as Manifest;
    assert.equal(pm.subject, undefined, 'no subject without --with-referrer');
    assert.equal(pm.annotations?.['containerd.io/snapshot/nydus-fs-version'], '5');
  });

  test('--merge-platform: one index with the OCI and the nydus manifest (skopeo inspect --raw)', async () => {
    // Another repository: the source manifest and its blobs must be copied next to the nydus one.
    const r = await nydusify(['convert', '--source', `${reg.host}/test/src:v1`, '--target', `${reg.host}/test/merged:v1`, '--merge-platform', '--platform', 'linux/amd64', ...flags, '--work-dir', join(work, 'w2')]);
    assert.equal(r.code, 0, r.stderr);
    const raw = execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/test/merged:v1`], { encoding: 'utf8' });
    const idx = JSON.parse(raw) as Index;
    assert.equal(idx.mediaType, MT_OCI_INDEX);
    assert.equal(idx.manifests.length, 2, raw);
    const [oci, nydus] = idx.manifests as [Index['manifests'][0], Index['manifests'][0]];
    assert.equal(oci.digest, src.digest);
    assert.deepEqual(oci.platform, { os: 'linux', architecture: 'amd64' });
    assert.deepEqual(nydus.platform, { os: 'linux', architecture: 'amd64', 'os.features': ['nydus.remoteimage.v1'] });
    assert.equal(nydus.artifactType, 'application/vnd.nydus.image.manifest.v1+json');
    // Both manifests are really there, and skopeo can read each of them.
    for (const d of idx.manifests) {
      const one = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/test/merged@${d.digest}`], { encoding: 'utf8' })) as Manifest;
      assert.equal(one.schemaVersion, 2);
    }
    // nydusify check picks the nydus manifest of the merged index as the target.
    const chk = await nydusify(['check', '--source', `${reg.host}/test/src:v1`, '--target', `${reg.host}/test/merged:v1`, '--platform', 'linux/amd64', '--multi-platform', ...flags, '--work-dir', join(work, 'chk2')]);
    assert.equal(chk.code, 0, chk.stderr + chk.stdout);
    // --multi-platform on a plain nydus manifest: refused, naming the rule.
    const single = await nydusify(['check', '--target', `${reg.host}/test/src:nydus`, '--multi-platform', ...flags, '--work-dir', join(work, 'chk2b')]);
    assert.notEqual(single.code, 0);
    assert.match(single.stderr, /--multi-platform: the target is a single manifest/);
    // Upstream's alias and environment variable for --merge-platform.
    const alias = await nydusify(['convert', '--source', `${reg.host}/test/src:v1`, '--target', `${reg.host}/test/merged:alias`, '--multi-platform', ...flags, '--work-dir', join(work, 'w2b')]);
    assert.equal(alias.code, 0, alias.stderr);
    assert.equal((JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/test/merged:alias`], { encoding: 'utf8' })) as Index).manifests.length, 2);
  });

  test('--merge-platform on a 2-platform index: every OCI manifest next to its nydus one', async () => {
    const amd = await pushImage(client, 'test/multi', 'amd', 'amd64 content\n', 'amd64');
    const arm = await pushImage(client, 'test/multi', 'arm', 'arm64 content\n', 'arm64');
    const index: Index = { schemaVersion: 2, mediaType: MT_OCI_INDEX, manifests: [
      { mediaType: MT_OCI_MANIFEST, digest: amd.digest, size: amd.size, platform: { os: 'linux', architecture: 'amd64' } },
      { mediaType: MT_OCI_MANIFEST, digest: arm.digest, size: arm.size, platform: { os: 'linux', architecture: 'arm64' } },
    ] };
    await client.putManifest('test/multi', 'v1', MT_OCI_INDEX, Buffer.from(JSON.stringify(index)));
    const r = await nydusify(['convert', '--source', `${reg.host}/test/multi:v1`, '--target', `${reg.host}/test/multi:merged`, '--merge-platform', '--all-platforms', ...flags, '--work-dir', join(work, 'w4')]);
    assert.equal(r.code, 0, r.stderr);
    const idx = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/test/multi:merged`], { encoding: 'utf8' })) as Index;
    assert.deepEqual(idx.manifests.map((d) => [d.platform?.architecture, d.platform?.['os.features'] ?? []]), [['amd64', []], ['arm64', []], ['amd64', ['nydus.remoteimage.v1']], ['arm64', ['nydus.remoteimage.v1']]]);
    assert.deepEqual(idx.manifests.slice(0, 2).map((d) => d.digest), [amd.digest, arm.digest]);
    for (const d of idx.manifests.slice(2)) {
      const m = (await client.getManifest('test/multi', d.digest)).json as unknown as Manifest;
      const want = d.platform!.architecture === 'amd64' ? amd.digest : arm.digest;
      assert.equal(m.annotations?.['containerd.io/snapshot/nydus-source-digest'], want, 'each nydus manifest names its own source manifest');
    }
    // A re-conversion of the merged index converts only the OCI entries.
    const again = await nydusify(['convert', '--source', `${reg.host}/test/multi:merged`, '--target', `${reg.host}/test/multi:again`, '--all-platforms', ...flags, '--work-dir', join(work, 'w4b')]);
    assert.equal(again.code, 0, again.stderr);
  });

  test('--platform not matching a single-manifest source: converted with a warning', async () => {
    const r = await nydusify(['convert', '--source', `${reg.host}/test/src:v1`, '--target', `${reg.host}/test/src:arm`, '--platform', 'linux/arm64', ...flags, '--work-dir', join(work, 'w3')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /WARN.*--platform linux\/arm64 does not match .*linux\/amd64/);
  });

  test('a layer digest with a path in it is refused before any file is made', async () => {
    const proxy = await startLyingProxy(reg.host);
    try {
      const cases: Array<[string, RegExp]> = [
        ['sha256:/../../x', /invalid digest "sha256:\/\.\.\/\.\.\/x"/],
        [`sha256:${'a'.repeat(63)}`, /sha256 needs 64 lowercase hex digits/],
        [`md5:${'a'.repeat(32)}`, /invalid digest/],
      ];
      for (const [i, [digest, want]] of cases.entries()) {
        const evil = { ...src.manifest, layers: [{ ...src.manifest.layers[0]!, digest }] };
        proxy.manifests.set(`/v2/test/src/manifests/evil${i}`, Buffer.from(JSON.stringify(evil)));
        const base = join(work, `evil${i}`);
        const wd = join(base, 'a', 'b', 'work');
        mkdirSync(wd, { recursive: true });
        const r = await nydusify(['convert', '--source', `${proxy.host}/test/src:evil${i}`, '--target', `${reg.host}/test/evil:${i}`, '--plain-http', '--work-dir', wd]);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, want);
        assert.match(r.stderr, /layer 1/);
        assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
        assert.doesNotMatch(r.stderr, /internal error|at .*\.js:\d+/);
        assert.deepEqual(readdirSync(join(base, 'a', 'b')), ['work'], 'nothing created next to the work dir');
        assert.deepEqual(readdirSync(join(base, 'a')), ['b']);
        assert.deepEqual(readdirSync(base), ['a']);
        assert.ok(!existsSync(join(base, 'x')));
      }
    } finally {
      await proxy.close();
    }
  });

  test('a layer whose bytes do not match its digest is a one-line error naming the layer', async () => {
    const proxy = await startLyingProxy(reg.host);
    try {
      const other = gzipSync(oneFileTar('hello.txt', Buffer.from('tampered content\n')));
      const layerDigest = src.manifest.layers[0]!.digest;
      proxy.blobs.set(`/v2/test/src/blobs/${layerDigest}`, other);
      const r = await nydusify(['convert', '--source', `${proxy.host}/test/src:v1`, '--target', `${reg.host}/test/tampered:v1`, '--plain-http', '--work-dir', join(work, 'w5')]);
      assert.notEqual(r.code, 0);
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`layer 1 \\(${layerDigest}\\).*digest ${sha256Digest(other)}`));
      assert.doesNotMatch(r.stderr, /internal error|Digest already called/);
    } finally {
      await proxy.close();
    }
  });
});
