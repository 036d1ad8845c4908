// nydus-snapshotter with a real containerd 1.6 + runc (private mount namespace, own sockets and
// roots) and a real docker-registry: an OCI image pulled by ctr and a Nydus image (converted by our
// nydusify) pulled by `nydus-snapshotter pull`, both run with `ctr run --snapshotter nydus`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BIN } from '../helpers/paths.js';
import { startRegistry, type RegistryHandle } from '../helpers/registry.js';
import { Containerd, containerdMissing } from './harness.js';
import { BIG_SIZE, HELLO, buildImage, countingProxy, type CountingProxy } from './image.js';

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
});
