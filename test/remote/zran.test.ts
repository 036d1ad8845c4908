// Issue 17 (2, 3): zero-conversion `targz-ref` images. Real gzip layers (tar + gzip -1 / -9, a
// multi-member gzip split inside a file, umoci's layer) get only a bootstrap and a ref blob (CI +
// zran contexts); the layer itself is pushed unchanged to docker-registry and nydusd reads file data
// from it through the index. Every file equals the source; one small file costs one context, not
// the layer; `nydus-image check` verifies every chunk against the layer; bad layers fail with one
// line naming the layer.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BIN, REPO_ROOT } from '../helpers/paths.js';
import { hasDockerRegistry, pushBlob, startRegistry, type RegistryHandle } from '../helpers/registry.js';
import { hashTree, hashTreeAsync, mountsUnder, nydusdSkip, Nydusd, readHash, registryBackend, sha256, v1Config } from './harness.js';
import { makeSmallTree } from './tree.js';
import { extractBootstrap } from '../../src/convert/manifest.js';
import { ANNO_NYDUS_BLOB, ANNO_NYDUS_BOOTSTRAP, type Manifest } from '../../src/convert/media-types.js';
import { ANNO_NYDUS_REF_LAYER } from '../../src/convert/oci-ref.js';
import { RegistryClient } from '../../src/convert/registry.js';

const skip = nydusdSkip() ?? (hasDockerRegistry() ? undefined : 'docker-registry not installed');
const MiB = 1 << 20;

function sh(cmd: string, args: string[], opts: { cwd?: string } = {}): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts, maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

function gzip(data: Buffer, level: number): Buffer {
  const r = spawnSync('gzip', [`-${level}`, '-c', '-n'], { input: data, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`gzip: ${r.stderr}`);
  return r.stdout;
}

function nydusImage(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN('nydus-image'), ...args], { cwd: REPO_ROOT, encoding: 'utf8', maxBuffer: 1 << 26 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/**
 * An eStargz-shaped layer: every tar entry its own gzip member (big file data split every 1 MiB),
 * a `stargz.index.json` entry, then the footer member whose FEXTRA field names the TOC offset.
 */
function estargz(tar: Buffer): Buffer {
  const members: Buffer[] = [];
  let p = 0;
  while (p + 512 <= tar.length && !tar.subarray(p, p + 512).every((b) => b === 0)) {
    const size = parseInt(tar.subarray(p + 124, p + 136).toString('latin1').replace(/\0.*$/, '').trim() || '0', 8);
    const end = p + 512 + Math.ceil(size / 512) * 512;
    for (let q = p; q < end; q += MiB) members.push(gzip(tar.subarray(q, Math.min(end, q + MiB)), 6));
    p = end;
  }
  const tocOffset = members.reduce((n, m) => n + m.length, 0);
  const toc = Buffer.from(JSON.stringify({ version: 1, entries: [] }));
  const th = Buffer.alloc(512);
  th.write('stargz.index.json', 0);
  th.write('0000644\0', 100);
  th.write('0000000\0', 108);
  th.write('0000000\0', 116);
  th.write(toc.length.toString(8).padStart(11, '0') + '\0', 124);
  th.write('00000000000\0', 136);
  th.write('0', 156);
  th.write('ustar\x0000', 257);
  th.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of th) sum += b;
  th.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  members.push(gzip(Buffer.concat([th, toc, Buffer.alloc(Math.ceil(toc.length / 512) * 512 - toc.length), Buffer.alloc(1024)]), 6));
  const payload = Buffer.from(`${tocOffset.toString(16).padStart(16, '0')}STARGZ`);
  const extra = Buffer.concat([Buffer.from('SG'), Buffer.from([payload.length, 0]), payload]);
  const footer = Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, extra.length, 0]), extra, Buffer.from([3, 0]), Buffer.alloc(8)]);
  members.push(footer);
  return Buffer.concat(members);
}

interface RefImage {
  layer: Buffer;
  layerId: string;
  boot: string;
  meta: Buffer;
  metaId: string;
  dir: string;
}

/** `nydus-image create --type targz-ref` of one layer file; the ref blob goes to --blob-dir. */
function buildRef(root: string, name: string, layer: Buffer, type = 'targz-ref'): RefImage {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const layerId = sha256(layer);
  writeFileSync(join(dir, layerId), layer);
  const boot = join(dir, 'bootstrap');
  const r = nydusImage(['create', '--type', type, '-B', boot, '-D', join(dir, 'blobs'), '--output-json', join(dir, 'out.json'), join(dir, layerId)]);
  assert.equal(r.code, 0, r.err);
  const out = JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8')) as { blobs: string[] };
  assert.deepEqual(out.blobs, [layerId], 'the data blob is the layer, named by its digest');
  const files = readdirSync(join(dir, 'blobs'));
  assert.equal(files.length, 1, `the blob dir holds only the ref blob: ${files.join(', ')}`);
  const metaId = files[0]!;
  const meta = readFileSync(join(dir, 'blobs', metaId));
  assert.equal(sha256(meta), metaId);
  // The blob dir for offline tools: the ref blob next to the layer.
  copyFileSync(join(dir, layerId), join(dir, 'blobs', layerId));
  return { layer, layerId, boot, meta, metaId, dir };
}

describe('targz-ref (zran) images from real gzip layers', { skip }, () => {
  let root = '';
  let want: Map<string, string>;
  let tar: Buffer;
  let reg: RegistryHandle;
  let n = 0;
  const layers: Record<string, Buffer> = {};

  before(async () => {
    root = mkdtempSync('/tmp/zran-');
    const src = join(root, 'src');
    makeSmallTree(src);
    want = hashTree(src);
    sh('tar', ['-C', src, '--sort=name', '-cf', join(root, 'layer.tar'), '.']);
    tar = readFileSync(join(root, 'layer.tar'));
    layers['gzip-1'] = gzip(tar, 1);
    layers['gzip-9'] = gzip(tar, 9);
    // Two members, split 3 MiB + 100 bytes in: inside bin/big's data.
    const cut = 3 * MiB + 100;
    layers['multi-member'] = Buffer.concat([gzip(tar.subarray(0, cut), 6), gzip(tar.subarray(cut), 1)]);
    layers.estargz = estargz(tar);
    assert.ok(gunzipSync(layers.estargz).includes(Buffer.from('stargz.index.json')), 'the eStargz layer has its TOC entry');
    // umoci (Go's gzip writer) from the same tree.
    const oci = join(root, 'oci');
    sh('umoci', ['init', '--layout', oci]);
    sh('umoci', ['new', '--image', `${oci}:t`]);
    sh('umoci', ['unpack', '--image', `${oci}:t`, join(root, 'bundle')]);
    sh('cp', ['-a', `${src}/.`, join(root, 'bundle/rootfs')]);
    sh('umoci', ['repack', '--image', `${oci}:t`, join(root, 'bundle')]);
    const index = JSON.parse(readFileSync(join(oci, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const blob = (d: string): Buffer => readFileSync(join(oci, 'blobs/sha256', d.replace('sha256:', '')));
    const manifest = JSON.parse(blob(index.manifests[0]!.digest).toString()) as { layers: { digest: string }[] };
    layers.umoci = blob(manifest.layers.at(-1)!.digest);
    // A second layer on top: a whiteout, a new file, a changed file (for nydusify --oci-ref).
    rmSync(join(root, 'bundle/rootfs/etc/config.txt'));
    writeFileSync(join(root, 'bundle/rootfs/etc/os-release'), 'NAME="layer two"\n');
    writeFileSync(join(root, 'bundle/rootfs/new.txt'), 'added by layer two\n'.repeat(1000));
    sh('umoci', ['repack', '--image', `${oci}:t`, join(root, 'bundle')]);
    reg = await startRegistry();
    sh('skopeo', ['copy', '--dest-tls-verify=false', `oci:${oci}:t`, `docker://${reg.host}/zran/src:v1`]);
  });
  after(async () => {
    await reg?.close();
    for (const m of mountsUnder(root)) assert.fail(`leaked mount ${m}`);
    rmSync(root, { recursive: true, force: true });
  });

  for (const kind of ['gzip-1', 'gzip-9', 'multi-member', 'umoci', 'estargz']) {
    it(`${kind}: mounts from docker-registry with only bootstrap + index converted; files equal; check passes`, { timeout: 180_000 }, async (t) => {
      const img = buildRef(root, kind, layers[kind]!, kind === 'estargz' ? 'estargz-ref' : 'targz-ref');
      t.diagnostic(`layer ${img.layer.length} bytes, ref blob ${img.meta.length} bytes (${((100 * img.meta.length) / img.layer.length).toFixed(2)} %)`);
      // Upstream's context spacing (a window per ~0.5-1 MiB of gzip), windows trimmed to what the
      // blocks copy from: ~1.8 % at gzip -1 (random data still has short matches), <0.1 % at -9.
      assert.ok(img.meta.length < img.layer.length * 0.025, `ref blob ${img.meta.length} is not small next to the ${img.layer.length}-byte layer`);

      const c = nydusImage(['check', '-B', img.boot, '-D', join(img.dir, 'blobs')]);
      assert.equal(c.code, 0, c.err);
      assert.match(c.out + c.err, /verified \d+ chunks/);

      const repo = `library/zran-${kind}`;
      assert.equal(await pushBlob(reg, repo, img.layer), img.layerId, 'layer pushed unchanged');
      await pushBlob(reg, repo, img.meta);
      const dir = join(root, `m${n++}`);
      const d = new Nydusd(dir, join(dir, 'mnt'));
      try {
        await d.start(v1Config({ backend: registryBackend(reg.host, repo), workDir: join(dir, 'cache') }), img.boot);
        // One small file first, on a cold cache: it costs the index and one context, not the layer.
        const r = await readHash(join(d.mnt, 'etc/os-release'));
        assert.equal(r.hash, want.get('etc/os-release')!.slice(2));
        const small = await d.backendBytes();
        t.diagnostic(`reading one 29-byte file fetched ${small} bytes`);
        assert.ok(small <= img.meta.length + 2 * MiB && small < img.layer.length / 5, `one small file fetched ${small} bytes of a ${img.layer.length}-byte layer`);
        const got = await hashTreeAsync(d.mnt);
        assert.deepEqual(got, want, 'mounted tree differs from the layer content');
        const m = await d.metrics('backend');
        assert.equal(m.read_errors, 0);
      } finally {
        await d.stop();
      }
    });
  }

  it('nydusify convert --oci-ref: ref blobs + bootstrap only, layers mounted not uploaded; nydusd reads the 2-layer image', { timeout: 240_000 }, async (t) => {
    const dir = join(root, 'ociref');
    mkdirSync(dir, { recursive: true });
    const r = spawnSync(process.execPath, [BIN('nydusify'), 'convert', '--oci-ref', '--source', `${reg.host}/zran/src:v1`, '--target', `${reg.host}/zran/dst:v1`, '--source-insecure', '--target-insecure', '--work-dir', join(dir, 'w'), '--output-json', join(dir, 'm.json')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const metrics = JSON.parse(readFileSync(join(dir, 'm.json'), 'utf8')) as { SourceImageSize: number; TargetImageSize: number };
    t.diagnostic(`source ${metrics.SourceImageSize} bytes, uploaded ${metrics.TargetImageSize} (${((100 * metrics.TargetImageSize) / metrics.SourceImageSize).toFixed(2)} %)`);
    assert.ok(metrics.TargetImageSize < metrics.SourceImageSize * 0.03, 'only ref blobs and the bootstrap are uploaded');

    const c = new RegistryClient(reg.host, { plainHttp: true });
    const src = (await c.getManifest('zran/src', 'v1')).json as unknown as Manifest;
    const dst = (await c.getManifest('zran/dst', 'v1')).json as unknown as Manifest;
    assert.equal(dst.layers.length, src.layers.length + 1, 'one nydus blob per layer, then the bootstrap');
    dst.layers.slice(0, -1).forEach((l, i) => {
      assert.equal(l.annotations?.[ANNO_NYDUS_BLOB], 'true');
      assert.equal(l.annotations?.[ANNO_NYDUS_REF_LAYER], src.layers[i]!.digest, 'names its original layer');
    });
    assert.equal(dst.layers.at(-1)!.annotations?.[ANNO_NYDUS_BOOTSTRAP], 'true');
    for (const l of src.layers) assert.equal(await c.headBlob('zran/dst', l.digest), l.size, 'original layer present in the target repository');
    const boot = join(dir, 'bootstrap');
    writeFileSync(boot, extractBootstrap(await c.getBlobBytes('zran/dst', dst.layers.at(-1)!.digest)));

    const want2 = hashTree(join(root, 'bundle/rootfs'));
    const d = new Nydusd(join(dir, 'd'), join(dir, 'd', 'mnt'));
    try {
      await d.start(v1Config({ backend: registryBackend(reg.host, 'zran/dst'), workDir: join(dir, 'd', 'cache') }), boot);
      assert.deepEqual(await hashTreeAsync(d.mnt), want2, 'mounted tree differs from the 2-layer image');
      assert.equal((await d.metrics('backend')).read_errors, 0);
    } finally {
      await d.stop();
    }
  });

  it('nydus-image check finds a corrupted byte in the layer', { timeout: 120_000 }, () => {
    const img = buildRef(root, 'corrupt', layers['gzip-9']!);
    const bad = Buffer.from(img.layer);
    bad[Math.floor(bad.length / 2)]! ^= 0x55;
    writeFileSync(join(img.dir, 'blobs', img.layerId), bad);
    const c = nydusImage(['check', '-B', img.boot, '-D', join(img.dir, 'blobs')]);
    assert.notEqual(c.code, 0, 'check of a corrupt layer must fail');
    assert.match(c.err, /digest|Huffman|distance|gzip|zran|invalid/i);
  });

  it('a truncated or non-gzip layer fails with one line naming the layer', { timeout: 60_000 }, () => {
    const cases: [string, Buffer][] = [
      ['truncated.tgz', layers['gzip-9']!.subarray(0, 2 * MiB)],
      ['plain.tar', tar.subarray(0, 4 * MiB)],
      ['garbage.gz', Buffer.from('this is not a gzip stream at all\n'.repeat(100))],
    ];
    for (const [name, data] of cases) {
      const p = join(root, name);
      writeFileSync(p, data);
      const r = nydusImage(['create', '--type', 'targz-ref', '-B', join(root, `${name}.boot`), '-D', join(root, `${name}.blobs`), p]);
      assert.notEqual(r.code, 0, `${name}: must fail`);
      const lines = r.err.trim().split('\n');
      assert.equal(lines.length, 1, `${name}: one line, got:\n${r.err}`);
      assert.ok(lines[0]!.includes(p), `${name}: the line names the layer: ${lines[0]}`);
      assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
    }
  });
});
