// Issue 5 (2): lazy loading, counted at the server. A 500 MiB v6 zstd image (incompressible data,
// ~3000 files including one 1 MiB file) is served by nydus-backend-proxy; mounting and walking the
// whole tree fetch no file data, and reading the one 1 MiB file makes the server send < 4 MiB in
// total, blob meta included.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BackendProxy, buildImage, mountsUnder, nydusdSkip, Nydusd, readHash, registryBackend, run, sha256, v1Config, type Built } from './harness.js';
import { makeBulk, seeded } from './tree.js';

const skip = nydusdSkip();
const MiB = 1 << 20;

describe('lazy loading of a 500 MiB image over nydus-backend-proxy', { skip }, () => {
  let root = '';
  let img: Built;
  let oneHash = '';

  before(() => {
    root = mkdtempSync('/tmp/remote-lazy-');
    const src = join(root, 'src');
    // 496 MiB in 2 MiB files, 3000 small files, and the 1 MiB target in the middle of the tree.
    makeBulk(join(src, 'bulk-a'), 124, 2 * MiB, 'a');
    mkdirSync(join(src, 'usr/share/small'), { recursive: true });
    for (let i = 0; i < 3000; i++) writeFileSync(join(src, 'usr/share/small', `s${i}`), seeded(`s${i}`, 100 + (i % 50) * 37));
    const one = seeded('the-one', MiB);
    oneHash = sha256(one);
    mkdirSync(join(src, 'opt/app'), { recursive: true });
    writeFileSync(join(src, 'opt/app/one.bin'), one);
    makeBulk(join(src, 'zz-bulk-b'), 124, 2 * MiB, 'b');
    img = buildImage(src, join(root, 'img'), { compressor: 'zstd' });
    rmSync(src, { recursive: true, force: true });
  });
  after(() => {
    for (const m of mountsUnder(root)) assert.fail(`leaked mount ${m}`);
    rmSync(root, { recursive: true, force: true });
  });

  it('reading one 1 MiB file fetches < 4 MiB from the server; metadata walks fetch none', { timeout: 90_000 }, async (t) => {
    const proxy = new BackendProxy(img.blobDir);
    await proxy.start();
    const d = new Nydusd(join(root, 'd'), join(root, 'd', 'mnt'));
    try {
      await d.start(v1Config({ backend: registryBackend(proxy.host, 'lazy'), workDir: join(root, 'd', 'cache') }), img.boot);
      const atMount = (await proxy.metrics()).bytesServed;
      const walk = await run(['find', d.mnt, '-printf', '%s\\n'], 60_000);
      assert.equal(walk.code, 0, walk.err);
      assert.equal(walk.out.trim().split('\n').length, 1 + 7 + 124 * 2 + 3000 + 1, 'entries seen by find (root, 7 dirs, files)');
      const afterWalk = (await proxy.metrics()).bytesServed;
      assert.equal(afterWalk, atMount, 'stat/readdir of the whole tree fetched file data');

      const r = await readHash(join(d.mnt, 'opt/app/one.bin'));
      assert.equal(r.hash, oneHash, 'content of the 1 MiB file');
      const m = await proxy.metrics();
      t.diagnostic(`served ${m.bytesServed} bytes in ${m.requests} requests (mount: ${atMount}); blob is ${img.blobId.slice(0, 12)}…`);
      assert.ok(m.bytesServed < 4 * MiB, `server sent ${m.bytesServed} bytes for a 1 MiB read of a 500 MiB image`);
      assert.ok(m.bytesServed >= MiB * 0.99, 'the file data did come from the server');
    } finally {
      await d.stop();
      await proxy.stop();
    }
  });
});
