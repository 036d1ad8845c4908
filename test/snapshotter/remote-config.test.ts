// The nydusd config the snapshotter derives from a bootstrap snapshot's labels, against a real
// docker-registry with htpasswd auth: credentials from the pull labels or DOCKER_CONFIG, plain-HTTP
// detection, clear errors.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { RegistryClient, sha256Digest } from '../../src/convert/registry.js';
import { defaultConfig } from '../../src/snapshotter/config.js';
import { remoteConfigFn } from '../../src/snapshotter/remote.js';
import { hasDockerRegistry, startRegistry } from '../helpers/registry.js';

const skip = hasDockerRegistry() ? false : 'docker-registry is not installed';

describe('snapshotter remote config', { skip }, () => {
  test('credentials from labels or DOCKER_CONFIG; plain HTTP learnt; missing layer and labels named', async () => {
    const reg = await startRegistry({ auth: 'htpasswd' });
    const dir = mkdtempSync(join(tmpdir(), 'snap-rc-'));
    const saved = process.env.DOCKER_CONFIG;
    try {
      const blob = Buffer.from('bootstrap layer');
      const digest = sha256Digest(blob);
      await new RegistryClient(reg.host, { plainHttp: true, creds: { username: 'alice', password: 's3cret' } }).uploadBlob('a/b', digest, blob);
      const fn = remoteConfigFn(defaultConfig());
      const base = { 'containerd.io/snapshot/cri.image-ref': `${reg.host}/a/b:v1`, 'containerd.io/snapshot/cri.layer-digest': digest };
      process.env.DOCKER_CONFIG = dir;
      const cfg = (await fn({ ...base, 'containerd.io/snapshot/pullusername': 'alice', 'containerd.io/snapshot/pullsecret': 's3cret' }, '/c')) as { device: { backend: { config: Record<string, unknown> }; cache: { config: Record<string, unknown> } } };
      assert.equal(cfg.device.backend.config.scheme, 'http');
      assert.equal(cfg.device.backend.config.host, reg.host);
      assert.equal(cfg.device.backend.config.repo, 'a/b');
      assert.equal(cfg.device.backend.config.auth, Buffer.from('alice:s3cret').toString('base64'));
      assert.equal(cfg.device.cache.config.work_dir, '/c');
      await assert.rejects(fn(base, '/c'), (e: Error) => /401|unauthorized/i.test(e.message) && !e.message.includes('s3cret'));
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from('alice:s3cret').toString('base64') } } }));
      const fromDocker = (await fn(base, '/c')) as typeof cfg;
      assert.equal(fromDocker.device.backend.config.auth, Buffer.from('alice:s3cret').toString('base64'));
      await assert.rejects(fn({ ...base, 'containerd.io/snapshot/cri.layer-digest': sha256Digest(Buffer.from('x')) }, '/c'), /layer sha256:[0-9a-f]{64} is not in/);
      await assert.rejects(fn({}, '/c'), /no containerd\.io\/snapshot\/cri\.image-ref label/);
    } finally {
      if (saved === undefined) delete process.env.DOCKER_CONFIG;
      else process.env.DOCKER_CONFIG = saved;
      rmSync(dir, { recursive: true, force: true });
      await reg.close();
    }
  });
});
