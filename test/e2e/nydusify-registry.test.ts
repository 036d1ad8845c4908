// The converter's OCI distribution client against a real docker-registry 2.8: no auth, htpasswd
// and token auth; monolithic and chunked uploads; cross-repo mount; clear 404/401 errors.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { normaliseConfig } from '../../src/config/daemon-config.js';
import { dockerCredentials } from '../../src/convert/docker-config.js';
import { nydusdConfig } from '../../src/convert/mount.js';
import { MT_OCI_CONFIG, MT_OCI_MANIFEST } from '../../src/convert/media-types.js';
import { parseImageRef } from '../../src/convert/reference.js';
import { RegistryClient, sha256Digest } from '../../src/convert/registry.js';
import { hasDockerRegistry, startRegistry, type RegistryHandle } from '../helpers/registry.js';

const skip = hasDockerRegistry() ? false : 'docker-registry is not installed';

async function roundTrip(reg: RegistryHandle, client: RegistryClient): Promise<void> {
  const repo = 'test/rt';
  const data = randomBytes(300_000);
  const digest = sha256Digest(data);
  const dir = mkdtempSync(join(tmpdir(), 'nydusify-reg-'));
  try {
    const file = join(dir, 'blob');
    writeFileSync(file, data);
    assert.equal(await client.headBlob(repo, digest), undefined);
    // Chunked: 3 PATCHes of 128 KiB max, then PUT ?digest=.
    await client.uploadBlob(repo, digest, { path: file, size: data.length }, 128 * 1024);
    assert.equal(await client.headBlob(repo, digest), data.length);
    const small = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
    await client.uploadBlob(repo, sha256Digest(small), small);
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT_OCI_MANIFEST, config: { mediaType: MT_OCI_CONFIG, digest: sha256Digest(small), size: small.length }, layers: [] }));
    await client.putManifest(repo, 'v1', MT_OCI_MANIFEST, manifest);
    const got = await client.getManifest(repo, 'v1');
    assert.equal(got.mediaType, MT_OCI_MANIFEST);
    assert.equal(got.digest, sha256Digest(manifest));
    assert.deepEqual(await client.getBlobBytes(repo, digest), data);
    assert.equal(await client.mountBlob('test/other', digest, repo), true);
    assert.equal(await client.headBlob('test/other', digest), data.length);
    await assert.rejects(client.getManifest(repo, 'nope'), /manifest unknown: 127\.0\.0\.1:\d+\/test\/rt:nope/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  void reg;
}

describe('nydusify registry client', { skip }, () => {
  test('parseImageRef follows docker naming', () => {
    assert.deepEqual(parseImageRef('ubuntu'), { host: 'docker.io', repo: 'library/ubuntu', tag: 'latest', digest: undefined });
    assert.deepEqual(parseImageRef('127.0.0.1:5000/a/b:v1'), { host: '127.0.0.1:5000', repo: 'a/b', tag: 'v1', digest: undefined });
    assert.throws(() => parseImageRef('Foo/Bar'), /bad repository/);
  });

  test("mount's generated nydusd config passes the daemon's strict config parser", () => {
    const cfg = nydusdConfig({ scheme: 'http', host: '127.0.0.1:5000', repo: 'a/b', auth: Buffer.from('u:p').toString('base64'), insecure: true, cacheDir: '/tmp/c', prefetch: true });
    const fs = normaliseConfig(cfg, 'nydusify mount');
    assert.equal(fs.backend.type, 'registry');
    assert.equal(fs.rafs.enableXattr, true);
  });

  test('no auth: chunked upload, manifest, mount, 404', async () => {
    const reg = await startRegistry();
    try {
      await roundTrip(reg, new RegistryClient(reg.host, { insecure: true }));
    } finally {
      await reg.close();
    }
  });

  test('htpasswd: credentials from DOCKER_CONFIG; wrong password is a one-line 401 error', async () => {
    const reg = await startRegistry({ auth: 'htpasswd' });
    const dir = mkdtempSync(join(tmpdir(), 'nydusify-dc-'));
    try {
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from('alice:s3cret').toString('base64') } } }));
      const creds = dockerCredentials(reg.host, join(dir, 'config.json'));
      assert.equal(creds?.username, 'alice');
      await roundTrip(reg, new RegistryClient(reg.host, { plainHttp: true, creds }));
      const bad = new RegistryClient(reg.host, { plainHttp: true, creds: { username: 'alice', password: 'wrong' } });
      await assert.rejects(bad.getManifest('test/rt', 'v1'), (e: Error) => /unauthorized \(HTTP 401\), credentials were rejected/.test(e.message) && !e.message.includes('wrong'));
      const anon = new RegistryClient(reg.host, { plainHttp: true });
      await assert.rejects(anon.getManifest('test/rt', 'v1'), /no credentials found/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await reg.close();
    }
  });

  test('token auth: bearer flow with token cache', async () => {
    const reg = await startRegistry({ auth: 'token' });
    try {
      const client = new RegistryClient(reg.host, { insecure: true, creds: { username: 'alice', password: 's3cret' } });
      await roundTrip(reg, client);
      // One token per distinct scope set, not one per request.
      assert.ok(client.tokenFetches <= 4, `token fetches: ${client.tokenFetches}`);
    } finally {
      await reg.close();
    }
  });
});
