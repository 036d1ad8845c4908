// Issue 13: `nydusd erofs` goes through the same storage layer as nydusd's FUSE mode, so every
// backend works: localfs, http-proxy (nydus-backend-proxy), s3 (s3rver) and the registry backend
// (Debian docker-registry). Each kernel EROFS mount's whole tree equals the source; nothing is left.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hasDockerRegistry, pushBlob, startRegistry } from '../helpers/registry.js';
import { startS3rver } from '../helpers/s3rver.js';
import { BackendProxy, buildImage, hashTree, hashTreeAsync, mountsUnder, registryBackend, v1Config, type Built, type FsOpts } from '../remote/harness.js';
import { makeSmallTree } from '../remote/tree.js';
import { erofsMountUnavailable } from './erofs-mount.js';
import { ErofsDaemon, holdersOf, loopsLeft } from './erofs-ondemand-proc.js';

const skip = erofsMountUnavailable();

describe('nydusd erofs over every backend: full tree equality', { skip }, () => {
  let root = '';
  let img: Built;
  let want: Map<string, string>;
  let blob: Buffer;
  let n = 0;

  before(() => {
    root = mkdtempSync('/tmp/erofs-backends-');
    makeSmallTree(join(root, 'src'));
    img = buildImage(join(root, 'src'), join(root, 'img'));
    want = hashTree(join(root, 'src'));
    blob = readFileSync(img.blobPath);
  });
  after(async () => {
    const left = mountsUnder(root);
    const holders = holdersOf(root);
    const loops = img ? await loopsLeft([img.blobId, img.boot]) : [];
    rmSync(root, { recursive: true, force: true });
    assert.deepEqual(left, [], 'mounts left behind');
    assert.deepEqual(loops, [], `loop devices left behind (other mount namespaces holding ${root}: ${holders.join(', ') || 'none'})`);
  });

  /** `backend` goes into a v1 config; a function gets the cache dir and returns a whole config. */
  async function mountAndCompare(backend: FsOpts['backend'] | ((cache: string) => Record<string, unknown>)): Promise<void> {
    const dir = join(root, `m${n++}`);
    const d = new ErofsDaemon(dir, join(dir, 'mnt'));
    try {
      const cache = join(dir, 'cache');
      await d.start(typeof backend === 'function' ? backend(cache) : v1Config({ backend, workDir: cache }), img.boot);
      assert.deepEqual(await hashTreeAsync(d.mnt), want, 'mounted tree differs from the source');
      await d.kill('SIGTERM');
      assert.deepEqual(await d.exited, { code: 0, signal: null }, d.stderr);
    } finally {
      await d.clean([img.blobId, img.boot]);
    }
  }

  it('localfs', { timeout: 60_000 }, () => mountAndCompare({ type: 'localfs', config: { dir: img.blobDir } }));

  it('http-proxy (nydus-backend-proxy)', { timeout: 60_000 }, async () => {
    const p = new BackendProxy(img.blobDir);
    await p.start();
    try {
      // (http-proxy exists only in v2 configs.)
      await mountAndCompare((cache) => ({
        version: 2,
        backend: { type: 'http-proxy', 'http-proxy': { addr: `http://${p.host}`, path: '', timeout: 5, connect_timeout: 5, retry_limit: 2 } },
        cache: { type: 'blobcache', filecache: { work_dir: cache } },
        rafs: { mode: 'direct', validate: true },
      }));
      assert.ok((await p.metrics()).bytesServed >= blob.length * 0.9, 'the data came from the proxy');
    } finally {
      await p.stop();
    }
  });

  it('s3 (s3rver)', { timeout: 60_000 }, async () => {
    const s3 = await startS3rver();
    try {
      await s3.put(`erofs/${img.blobId}`, blob);
      await mountAndCompare({
        type: 's3',
        config: { scheme: 'http', endpoint: s3.endpoint, region: 'us-east-1', bucket_name: s3.bucket, object_prefix: 'erofs/', access_key_id: s3.accessKeyId, access_key_secret: s3.secretAccessKey, timeout: 5, connect_timeout: 5, retry_limit: 2 },
      });
    } finally {
      await s3.close();
    }
  });

  it('registry (docker-registry)', { timeout: 60_000, skip: hasDockerRegistry() ? false : 'docker-registry not installed' }, async () => {
    const reg = await startRegistry({ auth: 'none' });
    try {
      assert.equal(await pushBlob(reg, 'library/erofs', blob), img.blobId);
      await mountAndCompare(registryBackend(reg.host, 'library/erofs'));
    } finally {
      await reg.close();
    }
  });
});
