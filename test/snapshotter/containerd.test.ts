// nydus-snapshotter with a real containerd 1.6 + runc (private mount namespace, own sockets and
// roots) and a real docker-registry: an OCI image pulled by ctr and a Nydus image (converted by our
// nydusify) pulled by `nydus-snapshotter pull`, both run with `ctr run --snapshotter nydus`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createRequire } from 'node:module';
import { BIN, REPO_ROOT } from '../helpers/paths.js';
import { until } from '../helpers/poll.js';
import { startRegistry, type RegistryHandle } from '../helpers/registry.js';
import { Containerd, containerdMissing } from './harness.js';
import { BIG_SIZE, HELLO, buildImage, countingProxy, pushBadBootstrap, type CountingProxy } from './image.js';
import { grpc, services } from '../../src/snapshotter/proto.js';

/** containerd's CRI plugin ImageService (runtime.v1), as the kubelet calls it. */
function cri(sock: string, method: 'PullImage' | 'RemoveImage', image: string): Promise<{ image_ref?: string }> {
  const loader = createRequire(import.meta.url)('@grpc/proto-loader') as typeof import('@grpc/proto-loader');
  const def = loader.loadSync(join(REPO_ROOT, 'proto/k8s/cri-image.proto'), { keepCase: true, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { runtime: { v1: { ImageService: new (a: string, c: unknown) => Record<string, (r: unknown, o: object, cb: (e: Error | null, r: { image_ref?: string }) => void) => void> & { close(): void } } } };
  const c = new pkg.runtime.v1.ImageService(`unix://${sock}`, grpc.credentials.createInsecure());
  return new Promise((ok, fail) => c[method]!({ image: { image } }, { deadline: Date.now() + 120_000 }, (e, r) => (c.close(), e ? fail(e) : ok(r))));
}

/** Snapshots.Cleanup straight on the snapshotter's socket (ctr 1.6 has no command for it). */
function snapshotterCleanup(sock: string): Promise<void> {
  const c = new (services().Snapshots!)(`unix://${sock}`, grpc.credentials.createInsecure()) as unknown as { Cleanup(r: unknown, o: object, cb: (e: Error | null) => void): void; close(): void };
  return new Promise((ok, fail) => c.Cleanup({ snapshotter: 'nydus' }, { deadline: Date.now() + 60_000 }, (e) => (c.close(), e ? fail(e) : ok())));
}

const skip = containerdMissing();

function nydusify(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((ok) => execFile(process.execPath, [BIN('nydusify'), ...args], { maxBuffer: 1 << 24 }, (err, _o, stderr) => ok({ code: err ? 1 : 0, stderr })));
}

describe('nydus-snapshotter with containerd', { skip, timeout: 300_000 }, () => {
  let reg: RegistryHandle;
  let proxy: CountingProxy;
  let cd: Containerd;
  let work: string;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'snap-img-'));
    reg = await startRegistry();
    buildImage(work, reg.host, 'test/bb');
    const r = await nydusify(['convert', '--source', `${reg.host}/test/bb:v1`, '--target', `${reg.host}/test/bb:nydus`, '--source-insecure', '--target-insecure', '--work-dir', join(work, 'conv')]);
    assert.equal(r.code, 0, r.stderr);
    proxy = await countingProxy(reg.host);
    cd = await Containerd.start();
    await cd.startSnapshotter();
  });
  after(async () => {
    await cd?.close();
    await proxy?.close();
    await reg?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const diag = (): string => `\n--- snapshotter.log\n${cd.log('snapshotter.log')}\n--- containerd.log\n${cd.log('containerd.log')}`;

  test('OCI image: ctr pull + ctr run through the nydus snapshotter', async () => {
    const ref = `${reg.host}/test/bb:v1`;
    const p = await cd.ctr(['images', 'pull', '--plain-http', '--snapshotter', 'nydus', ref]);
    assert.equal(p.code, 0, p.stderr + diag());
    const r = await cd.ctr(['run', '--rm', '--snapshotter', 'nydus', ref, 'oci-1', '/bin/sh', '-c', 'cat /data/hello.txt; wc -c < /data/big.bin']);
    assert.equal(r.code, 0, r.stderr + diag());
    assert.equal(r.stdout.replace(/\r/g, ''), `${HELLO}${BIG_SIZE}\n`);
  });

  test('Nydus image: our pull fetches only the bootstrap, ctr run reads lazily', async () => {
    const ref = `${proxy.host}/test/bb:nydus`;
    proxy.reset();
    const p = await cd.pull(['--plain-http', ref]);
    assert.equal(p.code, 0, p.stderr + diag());
    assert.match(p.stdout, /\(1 layers unpacked, [1-9]\d* remote\)/);
    const r = await cd.ctr(['run', '--rm', '--snapshotter', 'nydus', ref, 'nydus-1', '/bin/sh', '-c', 'cat /data/hello.txt']);
    assert.equal(r.code, 0, r.stderr + diag());
    assert.equal(r.stdout.replace(/\r/g, ''), HELLO);
    const fetched = proxy.total(/\/blobs\//);
    // The image's blobs hold the 24 MiB random file; the container never read it.
    assert.ok(fetched < BIG_SIZE / 4, `fetched ${fetched} bytes of blobs for a ${BIG_SIZE}-byte image`);
    process.stderr.write(`# nydus run: ${fetched} blob bytes fetched from the registry (image data ${BIG_SIZE}+ bytes)\n`);
    assert.ok(cd.mountsUnder(join(cd.snapRoot, 'mnt')).length >= 1, 'nydusd mount present while the image is in use');
    assert.ok(existsSync(join(cd.snapRoot, 'cache')) && readdirSync(join(cd.snapRoot, 'cache')).length > 0);
  });

  test('Nydus image through CRI PullImage (CRI labels), then ctr run: lazy too', async () => {
    const ref = `${proxy.host}/test/bb:nydus`;
    cd.allowPlainHttp(proxy.host);
    const before = cd.processes('nydusd.js').length;
    proxy.reset();
    const pulled = await cri(cd.sock, 'PullImage', ref);
    assert.match(pulled.image_ref ?? '', /^sha256:/);
    assert.match(cd.log('snapshotter.log'), /cri\.image-layers/);
    const r = await cd.ctr(['run', '--rm', '--snapshotter', 'nydus', ref, 'cri-1', '/bin/cat', '/data/hello.txt'], undefined, 'k8s.io');
    assert.equal(r.code, 0, r.stderr + diag());
    assert.equal(r.stdout.replace(/\r/g, ''), HELLO);
    const fetched = proxy.total(/\/blobs\//);
    assert.ok(fetched < BIG_SIZE / 4, `fetched ${fetched} bytes of blobs for a ${BIG_SIZE}-byte image`);
    process.stderr.write(`# CRI pull + run: ${fetched} blob bytes fetched from the registry\n`);
    await cri(cd.sock, 'RemoveImage', ref);
    // containerd's GC removes the image's snapshots; the bootstrap's nydusd goes with them.
    await until('the CRI image nydusd to stop', () => cd.processes('nydusd.js').length === before, 60_000, 200);
  });

  test('restart: the running container keeps reading, a new container starts after the restart; a dead nydusd is replaced', async () => {
    const ref = `${proxy.host}/test/bb:nydus`;
    const d = await cd.ctr(['run', '-d', '--snapshotter', 'nydus', ref, 'long-1', '/bin/sh', '-c', 'while true; do sleep 1; done']);
    assert.equal(d.code, 0, d.stderr + diag());
    const nydusd = cd.processes('nydusd.js');
    assert.equal(nydusd.length, 1, `one nydusd for the image: ${nydusd}`);
    await cd.stopSnapshotter('SIGKILL');
    // Data never read before (the tail of the big file) comes through the still-running nydusd.
    const e = await cd.ctr(['tasks', 'exec', '--exec-id', 'e1', 'long-1', '/bin/sh', '-c', 'cat /data/hello.txt; tail -c 3000000 /data/big.bin | wc -c']);
    assert.equal(e.code, 0, e.stderr + diag());
    assert.equal(e.stdout.replace(/\r/g, ''), `${HELLO}3000000\n`);
    await cd.startSnapshotter();
    assert.match(cd.log('snapshotter.log'), /re-attached nydusd/);
    const r = await cd.ctr(['run', '--rm', '--snapshotter', 'nydus', ref, 'nydus-2', '/bin/sh', '-c', 'cat /data/hello.txt']);
    assert.equal(r.code, 0, r.stderr + diag());
    assert.equal(r.stdout.replace(/\r/g, ''), HELLO);
    assert.deepEqual(cd.processes('nydusd.js'), nydusd, 'the same nydusd serves the image after the restart');
    await cd.ctr(['tasks', 'kill', '-s', 'SIGKILL', 'long-1']);
    await cd.ctr(['tasks', 'delete', '-f', 'long-1']);
    const rm = await cd.ctr(['containers', 'rm', 'long-1']);
    assert.equal(rm.code, 0, rm.stderr);
    // A nydusd that died is replaced (its dead FUSE mount unmounted) on the next container.
    process.kill(nydusd[0]!, 'SIGKILL');
    await until('nydusd to exit', () => !existsSync(`/proc/${nydusd[0]}`), 20_000);
    const again = await cd.ctr(['run', '--rm', '--snapshotter', 'nydus', ref, 'nydus-4', '/bin/cat', '/data/hello.txt']);
    assert.equal(again.code, 0, again.stderr + diag());
    assert.equal(again.stdout.replace(/\r/g, ''), HELLO);
    const now = cd.processes('nydusd.js');
    assert.equal(now.length, 1);
    assert.notEqual(now[0], nydusd[0]);
  });

  test('bad input: a corrupt or missing bootstrap layer fails with the layer named; other images keep running', async () => {
    const corrupt = await pushBadBootstrap(reg.host, 'test/bb', 'nydus', 'corrupt', 'corrupt');
    const missing = await pushBadBootstrap(reg.host, 'test/bb', 'nydus', 'missing', 'missing');
    const pm = await cd.pull(['--plain-http', `${proxy.host}/test/bb:missing`]);
    assert.notEqual(pm.code, 0);
    assert.ok(pm.stderr.includes(missing) && /blob unknown/.test(pm.stderr), pm.stderr);
    assert.equal(pm.stderr.trim().split('\n').length, 1, `one line: ${pm.stderr}`);
    const pc = await cd.pull(['--plain-http', `${proxy.host}/test/bb:corrupt`]);
    assert.equal(pc.code, 0, pc.stderr + diag());
    const rc = await cd.ctr(['run', '--rm', '--snapshotter', 'nydus', `${proxy.host}/test/bb:corrupt`, 'bad-1', '/bin/sh', '-c', 'echo never']);
    assert.notEqual(rc.code, 0);
    assert.ok(rc.stderr.includes(`nydus bootstrap layer ${corrupt}`), rc.stderr);
    process.stderr.write(`# missing: ${pm.stderr.trim()}\n# corrupt: ${rc.stderr.trim()}\n`);
    await cd.ctr(['containers', 'rm', 'bad-1']);
    const ok = await cd.ctr(['run', '--rm', '--snapshotter', 'nydus', `${proxy.host}/test/bb:nydus`, 'nydus-3', '/bin/cat', '/data/hello.txt']);
    assert.equal(ok.code, 0, ok.stderr + diag());
    assert.equal(ok.stdout.replace(/\r/g, ''), HELLO);
  });

  test('cleanup: ctr image rm + Cleanup leave no mount, no nydusd, no cache, no snapshot dirs', async () => {
    for (const tag of ['nydus', 'corrupt']) {
      const r = await cd.ctr(['images', 'rm', '--sync', `${proxy.host}/test/bb:${tag}`]);
      assert.equal(r.code, 0, r.stderr);
    }
    const r = await cd.ctr(['images', 'rm', '--sync', `${reg.host}/test/bb:v1`]);
    assert.equal(r.code, 0, r.stderr);
    await snapshotterCleanup(cd.snapSock);
    const left = await cd.ctr(['snapshots', '--snapshotter', 'nydus', 'ls']);
    assert.deepEqual(left.stdout.trim().split('\n').slice(1), [], 'no snapshots left');
    assert.deepEqual(cd.mountsUnder(cd.snapRoot), []);
    assert.deepEqual(cd.processes('nydusd.js'), []);
    assert.deepEqual(readdirSync(join(cd.snapRoot, 'cache')), []);
    assert.deepEqual(readdirSync(join(cd.snapRoot, 'snapshots')), []);
  });

  test('daemon_mode shared (from the TOML config): one nydusd, an API mount per image, stopped by Cleanup', async () => {
    await cd.stopSnapshotter();
    const cfg = join(cd.dir, 'snapshotter.toml');
    writeFileSync(cfg, `version = 1\nroot = "${cd.snapRoot}"\naddress = "${cd.snapSock}"\ndaemon_mode = "shared"\n[log]\nlevel = "debug"\n[cache_manager]\ncache_dir = "${join(cd.snapRoot, 'cache')}"\n`);
    await cd.startSnapshotter(['--config', cfg]);
    const ref = `${proxy.host}/test/bb:nydus`;
    const p = await cd.pull(['--plain-http', ref]);
    assert.equal(p.code, 0, p.stderr + diag());
    for (const id of ['sh-1', 'sh-2']) {
      const r = await cd.ctr(['run', '--rm', '--snapshotter', 'nydus', ref, id, '/bin/cat', '/data/hello.txt']);
      assert.equal(r.code, 0, r.stderr + diag());
      assert.equal(r.stdout.replace(/\r/g, ''), HELLO);
    }
    assert.equal(cd.processes('nydusd.js').length, 1);
    assert.ok(cd.mountsUnder(join(cd.snapRoot, 'mnt', 'shared')).length >= 1);
    const rm = await cd.ctr(['images', 'rm', '--sync', ref]);
    assert.equal(rm.code, 0, rm.stderr);
    await snapshotterCleanup(cd.snapSock);
    assert.deepEqual(cd.processes('nydusd.js'), []);
    assert.deepEqual(cd.mountsUnder(cd.snapRoot), []);
    assert.deepEqual(readdirSync(join(cd.snapRoot, 'cache')), []);
  });

  test('our pull of the OCI original unpacks every layer through the same snapshotter', async () => {
    const ref = `${proxy.host}/test/bb:v1`;
    const p = await cd.pull(['--plain-http', ref]);
    assert.equal(p.code, 0, p.stderr + diag());
    assert.match(p.stdout, /\(3 layers unpacked, 0 remote\)/);
    const r = await cd.ctr(['run', '--rm', '--snapshotter', 'nydus', ref, 'oci-2', '/bin/sh', '-c', 'cat /data/hello.txt; md5sum /data/big.bin | head -c 32 | wc -c']);
    assert.equal(r.code, 0, r.stderr + diag());
    assert.equal(r.stdout.replace(/\r/g, ''), `${HELLO}32\n`);
    assert.deepEqual(cd.processes('nydusd.js'), [], 'no nydusd for an OCI image');
  });
});
