// Issue 13 acceptance 1 and 2: `nydusd erofs` mounts a v6 zstd image served by nydus-backend-proxy
// (registry backend over HTTP) with kernel EROFS, data on demand through FUSE files on loop devices.
// Bytes are counted at the server. The mount equals the source (contents, modes, owners, xattrs,
// hardlinks); a metadata walk fetches nothing; one small file costs < 4 MiB; after a full read a
// restarted daemon (same, now complete cache) reads everything again with no backend request, its
// loop device on the cache file and no FUSE session; stop (SIGTERM and
// an external umount) leaves no mount and no loop device; after SIGKILL readers get EIO within
// seconds and `umount` alone cleans up.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { mountedFsType } from '../../src/daemon/erofs-ondemand.js';
import { asObject, describe as describeTree, hardlinkGroups, makeFullTree } from '../image/tree-helpers.js';
import { startFaultServer } from '../helpers/http-faults.js';
import { until } from '../helpers/poll.js';
import { BackendProxy, buildImage, mountsUnder, readHash, registryBackend, run, sha256, v1Config, type Built } from '../remote/harness.js';
import { makeBulk, seeded } from '../remote/tree.js';
import { erofsMountUnavailable } from './erofs-mount.js';
import { ErofsDaemon, holdersOf, loopsLeft, loopsOf } from './erofs-ondemand-proc.js';

const MiB = 1 << 20;
const skip = erofsMountUnavailable() ?? (process.getuid?.() === 0 ? undefined : 'needs root');

describe('nydusd erofs: kernel EROFS with on-demand data over HTTP', { skip }, () => {
  let root = '';
  let img: Built;
  let src = '';
  let smallHash = '';
  const proxy = () => new BackendProxy(img.blobDir);
  const needles = (): string[] => [img.blobId, img.boot];

  before(() => {
    root = mkdtempSync('/tmp/erofs-od-');
    src = join(root, 'src');
    makeFullTree(join(src, 'full'));
    // 48 MiB of incompressible data around the small file, so a sloppy fetch would show.
    makeBulk(join(src, 'bulk-a'), 12, 2 * MiB, 'a');
    mkdirSync(join(src, 'opt'));
    const small = seeded('small', 5000);
    smallHash = sha256(small);
    writeFileSync(join(src, 'opt/small.bin'), small);
    makeBulk(join(src, 'zz-bulk-b'), 12, 2 * MiB, 'b');
    img = buildImage(src, join(root, 'img'), { compressor: 'zstd' });
  });
  after(async () => {
    const left = mountsUnder(root);
    const holders = holdersOf(root);
    const loops = img ? await loopsLeft(needles()) : [];
    rmSync(root, { recursive: true, force: true });
    assert.deepEqual(left, [], 'mounts left behind');
    assert.deepEqual(loops, [], `loop devices left behind (other mount namespaces holding ${root}: ${holders.join(', ') || 'none'})`);
  });

  it('equals the source, fetches lazily, and re-reads from the cache without the backend', { timeout: 240_000 }, async (t) => {
    const p = proxy();
    await p.start();
    const d = new ErofsDaemon(join(root, 'a'), join(root, 'a', 'mnt'));
    const config = v1Config({ backend: registryBackend(p.host, 'erofs'), workDir: join(root, 'a', 'cache') });
    (config as { enable_xattr?: boolean }).enable_xattr = true;
    try {
      assert.deepEqual(loopsOf(needles()), [], 'no loop device of this image before');
      await d.start(config, img.boot);
      assert.equal(loopsOf(needles()).length, 2, 'one loop for the blob data, one for the bootstrap');
      const atMount = await p.metrics();
      const walk = await run(['ls', '-lR', d.mnt], 60_000);
      assert.equal(walk.code, 0, walk.err);
      assert.equal((await p.metrics()).bytesServed, atMount.bytesServed, 'a metadata walk fetched data');

      const r = await readHash(join(d.mnt, 'opt/small.bin'), 30_000);
      assert.equal(r.hash, smallHash, `small file: ${r.err}`);
      const m = await p.metrics();
      t.diagnostic(`one 5000-byte file: ${m.bytesServed} bytes in ${m.requests} requests (at mount: ${atMount.bytesServed})`);
      assert.ok(m.bytesServed < 4 * MiB, `server sent ${m.bytesServed} bytes for a 5000-byte file`);
      assert.ok(m.bytesServed > atMount.bytesServed, 'the file data came from the server');

      // Full read through the kernel: contents, modes, owners, xattrs, hardlinks.
      const want = asObject(describeTree(src, { dirNlink: true }));
      assert.deepEqual(asObject(describeTree(d.mnt, { dirNlink: true })), want);
      assert.deepEqual(hardlinkGroups(d.mnt), hardlinkGroups(src));

      // SIGTERM: EROFS, loops and the FUSE mount go, in order.
      await d.kill('SIGTERM');
      assert.deepEqual(await d.exited, { code: 0, signal: null }, d.stderr);
      assert.equal(mountedFsType(d.mnt), undefined, 'EROFS still mounted after SIGTERM');
      assert.deepEqual(await loopsLeft(needles()), [], `loop devices left after SIGTERM (other mount namespaces: ${holdersOf(d.mnt).join(', ') || 'none'})`);
      // (Counted after the stop: background readahead may still have been fetching before it.)
      const full = await p.metrics();

      // Same cache, new daemon: everything again, and the backend sees no request.
      await d.start(config, img.boot);
      const remounted = await p.metrics();
      assert.equal(remounted.bytesServed, full.bytesServed, 'the second mount fetched data');
      // The cache holds every chunk: its file backs the blob's loop device and no FUSE session is started.
      assert.equal(loopsOf([join(root, 'a', 'cache')]).length, 1, 'the blob loop device does not read the cache file');
      assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.includes('fuse.nydusd-erofs') && l.includes(img.boot)), 'a FUSE mount for a fully cached image');
      assert.deepEqual(asObject(describeTree(d.mnt, { dirNlink: true })), want, 'second mount from the cache');
      const again = await p.metrics();
      // The proxy counts its own /metrics requests too: one between the two snapshots.
      assert.equal(again.requests - remounted.requests - 1, 0, `re-read made ${again.requests - remounted.requests - 1} backend requests (${again.bytesServed - remounted.bytesServed} bytes)`);
      assert.equal(again.bytesServed, full.bytesServed);

      // An external umount releases everything and the daemon exits by itself.
      const u = await run(['umount', d.mnt], 20_000);
      assert.equal(u.code, 0, u.err);
      assert.ok(await d.exitedWithin(20_000), 'daemon still running after its EROFS mount was unmounted');
      assert.deepEqual(await loopsLeft(needles()), [], `loops did not autoclear (other mount namespaces: ${holdersOf(d.mnt).join(', ') || 'none'})`);
      assert.ok(!d.stderr.includes('ERROR'), d.stderr);
    } finally {
      await d.clean(needles());
      await p.stop();
    }
  });

  it('SIGKILL of the daemon: cold reads fail with EIO within seconds; umount cleans up', { timeout: 120_000 }, async () => {
    const p = proxy();
    await p.start();
    const d = new ErofsDaemon(join(root, 'k'), join(root, 'k', 'mnt'));
    try {
      await d.start(v1Config({ backend: registryBackend(p.host, 'erofs'), workDir: join(root, 'k', 'cache') }), img.boot);
      const warm = await readHash(join(d.mnt, 'opt/small.bin'), 30_000);
      assert.equal(warm.hash, smallHash, warm.err);
      await d.kill('SIGKILL');
      // A file never read: not in the page cache, so the read needs the dead daemon.
      const cold = await run(['cat', join(d.mnt, 'bulk-a/f0005')], 30_000);
      assert.ok(!cold.timedOut, 'reader hung after the daemon died');
      assert.notEqual(cold.code, 0, 'cold read succeeded without a daemon');
      assert.match(cold.err, /Input\/output error/);
      assert.ok(cold.ms < 10_000, `the error took ${cold.ms} ms`);
      // Metadata stays readable (the bootstrap's loop is a local file). (Pages already read stay too,
      // but only until reclaim or someone's drop_caches evicts them: not asserted.)
      assert.equal((await run(['ls', join(d.mnt, 'zz-bulk-b')], 10_000)).code, 0);
      // Only the EROFS mount is left; unmounting it clears the loops (autoclear) and the FUSE side.
      assert.equal(loopsOf(needles()).length, 2);
      const u = await run(['umount', d.mnt], 20_000);
      assert.equal(u.code, 0, u.err);
      assert.deepEqual(await loopsLeft(needles()), [], `loops did not autoclear (other mount namespaces: ${holdersOf(d.mnt).join(', ') || 'none'})`);
      assert.equal(mountedFsType(d.mnt), undefined);
    } finally {
      await d.clean(needles());
      await p.stop();
    }
  });

  it('prefetch_all fills the cache in the background: a full read after it makes no backend request', { timeout: 120_000 }, async () => {
    const p = proxy();
    await p.start();
    const d = new ErofsDaemon(join(root, 'p'), join(root, 'p', 'mnt'));
    try {
      const config = v1Config({ backend: registryBackend(p.host, 'erofs'), workDir: join(root, 'p', 'cache'), prefetch: { enable: true, prefetch_all: true } });
      await d.start(config, img.boot, ['--log-level', 'info']);
      await until('prefetch to finish', () => /prefetch for .* done .* 0 failed/.test(d.stderr), 60_000);
      const before = await p.metrics();
      assert.ok(before.bytesServed > 40 * MiB, `prefetch fetched only ${before.bytesServed} bytes`);
      const all = await run(['sh', '-c', `find ${d.mnt} -type f -print0 | xargs -0 cat | wc -c`], 60_000);
      assert.equal(all.code, 0, all.err);
      const after = await p.metrics();
      assert.equal(after.requests - before.requests - 1, 0, 'a full read after prefetch still went to the backend');
    } finally {
      await d.clean(needles());
      await p.stop();
    }
  });

  it('SIGKILL while a read waits on a stalled backend: the reader gets EIO within seconds', { timeout: 120_000 }, async () => {
    const origin = await startFaultServer({ [img.blobId]: readFileSync(img.blobPath) });
    const d = new ErofsDaemon(join(root, 's'), join(root, 's', 'mnt'));
    try {
      // A long backend timeout: without the kill, the daemon itself would keep the reader waiting.
      await d.start(v1Config({ backend: registryBackend(`127.0.0.1:${origin.port}`, 'stall', { timeout: 60, connect_timeout: 60, retry_limit: 0 }), workDir: join(root, 's', 'cache') }), img.boot);
      origin.faults.push(...Array.from({ length: 50 }, () => ({ kind: 'stall' }) as const));
      const reader = run(['cat', join(d.mnt, 'zz-bulk-b/f0003')], 60_000);
      await until('the read to reach the stalled server', () => origin.requests.some((r) => r.path.endsWith(img.blobId)), 20_000);
      const t0 = performance.now();
      await d.kill('SIGKILL');
      const r = await reader;
      const waited = performance.now() - t0;
      assert.ok(!r.timedOut, 'reader hung after the daemon died');
      assert.notEqual(r.code, 0, 'read succeeded from a stalled backend');
      assert.match(r.err, /Input\/output error/);
      assert.ok(waited < 10_000, `the reader got its error ${Math.round(waited)} ms after the kill`);
    } finally {
      await d.clean(needles());
      await origin.close();
    }
  });
});
