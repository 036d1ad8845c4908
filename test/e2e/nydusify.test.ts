// nydusify end to end against a real docker-registry: convert (umoci/skopeo-made image, a 3-layer
// image with whiteouts, an opaque dir and hardlinks across layers, a 2-platform index), manifest
// shape, `nydusify check`, content equality with `umoci unpack`, skopeo inspect, skip of existing
// blobs on re-run, refusal of a malicious layer, `build --backend-push` to localfs, and mount.
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import { createImage } from '../../src/builder/index.js';
import { nydusTree, type FsTree } from '../../src/convert/fs-tree.js';
import { extractBootstrap } from '../../src/convert/manifest.js';
import { MT_DOCKER_CONFIG, MT_DOCKER_LAYER_GZIP, MT_DOCKER_MANIFEST, MT_NYDUS_BLOB, MT_OCI_CONFIG, MT_OCI_INDEX, MT_OCI_LAYER, MT_OCI_LAYER_GZIP, MT_OCI_LAYER_ZSTD, MT_OCI_MANIFEST, type Index, type Manifest } from '../../src/convert/media-types.js';
import { RegistryClient, sha256Digest } from '../../src/convert/registry.js';
import { encodeTarHeader, padding, type TarEntry } from '../../src/image/tar-writer.js';
import { BlobFeatures } from '../../src/format/constants.js';
import { openBootstrap } from '../../src/rafs/index.js';
import { hasDockerRegistry, startRegistry, type RegistryHandle } from '../helpers/registry.js';
import { BIN } from '../helpers/paths.js';

const require = createRequire(import.meta.url);
const zstd = require('zstd-napi') as { compress(b: Uint8Array): Buffer };
const has = (bin: string): boolean => {
  try {
    execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const skip = !hasDockerRegistry() ? 'docker-registry is not installed' : !has('skopeo') || !has('umoci') ? 'skopeo/umoci are not installed' : false;

function nydusify(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    const c = execFile(process.execPath, [BIN('nydusify'), ...args], { env: { ...process.env, ...opts.env }, maxBuffer: 1 << 26 }, (err, stdout, stderr) => {
      ok({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    if (opts.input !== undefined) c.stdin!.end(opts.input);
  });
}

// ---- source images -------------------------------------------------------------------------
type E = Omit<Partial<TarEntry>, 'path' | 'linkname'> & { path: string; linkname?: string; data?: Buffer };
function tar(entries: E[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data ?? Buffer.alloc(0);
    const type = e.type ?? 'file';
    parts.push(encodeTarHeader({ mode: type === 'dir' ? 0o755 : 0o644, uid: 0, gid: 0, mtime: 1700000000, mtimeNsec: 0, size: type === 'file' ? data.length : 0, type, ...e, path: Buffer.from(e.path), ...(e.linkname ? { linkname: Buffer.from(e.linkname) } : {}) } as TarEntry));
    if (type === 'file') parts.push(data, Buffer.alloc(padding(data.length)));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

async function pushImage(c: RegistryClient, repo: string, ref: string, layers: Array<{ tar: Buffer; mt: string }>, platform = { architecture: 'amd64', os: 'linux' }, docker = false): Promise<{ digest: string; size: number }> {
  const descs = [];
  for (const l of layers) {
    const blob = l.mt.endsWith('gzip') ? gzipSync(l.tar) : l.mt === MT_OCI_LAYER_ZSTD ? zstd.compress(l.tar) : l.tar;
    await c.uploadBlob(repo, sha256Digest(blob), blob);
    descs.push({ mediaType: l.mt, digest: sha256Digest(blob), size: blob.length });
  }
  const cfg = Buffer.from(JSON.stringify({ ...platform, config: { Env: ['PATH=/bin'] }, rootfs: { type: 'layers', diff_ids: layers.map((l) => sha256Digest(l.tar)) }, history: layers.map(() => ({ created_by: 'test' })) }));
  await c.uploadBlob(repo, sha256Digest(cfg), cfg);
  const mt = docker ? MT_DOCKER_MANIFEST : MT_OCI_MANIFEST;
  const m = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: mt, config: { mediaType: docker ? MT_DOCKER_CONFIG : MT_OCI_CONFIG, digest: sha256Digest(cfg), size: cfg.length }, layers: descs }));
  await c.putManifest(repo, ref, mt, m);
  return { digest: sha256Digest(m), size: m.length };
}

const rnd = (n: number, seed: string): Buffer => {
  const out = Buffer.alloc(n);
  let h = createHash('sha256').update(seed).digest();
  for (let o = 0; o < n; o += 32) {
    h.copy(out, o);
    h = createHash('sha256').update(h).digest();
  }
  return out;
};

/** Three layers: deletions (whiteouts), an opaque directory, hardlinks across layers, xattrs. */
function threeLayers(): Array<{ tar: Buffer; mt: string }> {
  const l1 = tar([
    { path: 'a', type: 'dir' },
    { path: 'a/d', type: 'dir' },
    { path: 'a/d/x', data: Buffer.from('x in d\n') },
    { path: 'a/f1', data: Buffer.from('first f1\n'), xattrs: [[Buffer.from('user.note'), Buffer.from('hello')]] },
    { path: 'a/h1', data: Buffer.from('linked data\n'), mode: 0o640 },
    { path: 'a/h2', type: 'link', linkname: 'a/h1' },
    { path: 'big', data: rnd(3 * 1024 * 1024 + 12345, 'big'), mode: 0o755 },
    { path: 'keep', type: 'dir' },
    { path: 'keep/k1', data: Buffer.from('k1 v1\n') },
    { path: 'opq', type: 'dir' },
    { path: 'opq/o1', data: Buffer.from('o1\n') },
    { path: 'opq/sub', type: 'dir' },
    { path: 'opq/sub/o2', data: Buffer.from('o2\n') },
    { path: 'sym', type: 'symlink', linkname: 'a/f1' },
  ]);
  const l2 = tar([
    { path: 'a', type: 'dir', mode: 0o750 },
    { path: 'a/.wh.f1' },
    { path: 'a/.wh.h1' },
    { path: 'a/.wh.d' },
    { path: 'a/h2', data: Buffer.from('linked data\n'), mode: 0o640 },
    { path: 'b', type: 'dir' },
    { path: 'b/h3', type: 'link', linkname: 'a/h2' },
    { path: 'opq', type: 'dir' },
    { path: 'opq/.wh..wh..opq' },
    { path: 'opq/o3', data: Buffer.from('o3 after opaque\n') },
    { path: 'keep/k2', data: rnd(70000, 'k2') },
  ]);
  const l3 = tar([
    { path: 'a/f1', data: Buffer.from('second f1\n'), mode: 0o600, uid: 1000, gid: 1000 },
    { path: 'keep/k1', data: Buffer.from('k1 v2\n') },
    { path: 'empty', data: Buffer.alloc(0) },
  ]);
  // No file data at all: the layer gets no nydus blob.
  const l4 = tar([{ path: 'emptydir', type: 'dir', mode: 0o700 }, { path: 'keep/.wh.k2' }, { path: 'lnk', type: 'symlink', linkname: 'keep/k1' }]);
  return [{ tar: l1, mt: MT_OCI_LAYER_GZIP }, { tar: l2, mt: MT_OCI_LAYER_GZIP }, { tar: l3, mt: MT_OCI_LAYER }, { tar: l4, mt: MT_OCI_LAYER_GZIP }];
}

/** A rootfs-like tree turned into an image with umoci and pushed with skopeo. */
function umociImage(work: string, host: string): void {
  const root = join(work, 'rootfs-src');
  for (const d of ['bin', 'etc', 'usr/lib', 'var/empty', 'tmp']) mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(root, 'bin/sh'), rnd(200_000, 'sh'), { mode: 0o755 });
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(root, 'etc/hosts'), '127.0.0.1 localhost\n');
  writeFileSync(join(root, 'usr/lib/libbig.so'), rnd(2_500_000, 'lib'));
  writeFileSync(join(root, 'usr/lib/zeros'), Buffer.alloc(1_100_000));
  symlinkSync('usr/lib', join(root, 'lib'));
  const oci = join(work, 'oci');
  const run = (cmd: string, args: string[]): void => void execFileSync(cmd, args, { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });
  run('umoci', ['init', '--layout', oci]);
  run('umoci', ['new', '--image', `${oci}:v1`]);
  run('umoci', ['unpack', '--image', `${oci}:v1`, join(work, 'bundle')]);
  execFileSync('cp', ['-a', `${root}/.`, join(work, 'bundle/rootfs/')]);
  run('umoci', ['repack', '--image', `${oci}:v1`, join(work, 'bundle')]);
  run('umoci', ['config', '--image', `${oci}:v1`, '--config.entrypoint', '/bin/sh']);
  run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${oci}:v1`, `docker://${host}/test/small:v1`]);
}

/** Walks a directory like the nydus tree walk (type, perm, size, symlink, sha256). */
function dirTree(root: string): FsTree {
  const t: FsTree = new Map();
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, p));
      const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'fifo';
      t.set(p, { type, perm: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: type === 'file' ? st.size : 0, linkname: type === 'symlink' ? readlinkSync(join(root, p)) : '', rdev: 0, xattrs: {}, sha256: type === 'file' ? createHash('sha256').update(readFileSync(join(root, p))).digest('hex') : '' });
      if (type === 'dir') walk(p);
    }
  };
  walk('');
  return t;
}

describe('nydusify e2e', { skip, timeout: 300_000 }, () => {
  let reg: RegistryHandle;
  let client: RegistryClient;
  let work: string;
  const flags = ['--source-insecure', '--target-insecure'];

  before(async () => {
    reg = await startRegistry();
    client = new RegistryClient(reg.host, { plainHttp: true });
    work = mkdtempSync(join(tmpdir(), 'nydusify-e2e-'));
    umociImage(work, reg.host);
    await pushImage(client, 'test/layers', 'v1', threeLayers());
  });
  after(async () => {
    await reg?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  async function nydusManifest(repo: string, ref: string): Promise<Manifest> {
    return (await client.getManifest(repo, ref)).json as unknown as Manifest;
  }

  test('convert the umoci image: manifest shape, check passes, skopeo inspects it, re-run skips blobs', async () => {
    const out = join(work, 'small.json');
    const r = await nydusify(['convert', '--source', `${reg.host}/test/small:v1`, '--target', `${reg.host}/test/small:nydus`, ...flags, '--work-dir', join(work, 'w1'), '--output-json', out]);
    assert.equal(r.code, 0, r.stderr);
    const m = await nydusManifest('test/small', 'nydus');
    assert.equal(m.mediaType, MT_OCI_MANIFEST);
    const last = m.layers.at(-1)!;
    assert.equal(last.mediaType, MT_OCI_LAYER_GZIP);
    assert.deepEqual(last.annotations, { 'containerd.io/snapshot/nydus-bootstrap': 'true', 'containerd.io/snapshot/nydus-fs-version': '6' });
    for (const l of m.layers.slice(0, -1)) {
      assert.equal(l.mediaType, MT_NYDUS_BLOB);
      assert.deepEqual(l.annotations, { 'containerd.io/snapshot/nydus-blob': 'true' });
    }
    const cfg = JSON.parse((await client.getBlobBytes('test/small', m.config.digest)).toString()) as { rootfs: { diff_ids: string[] }; history: Array<{ created_by?: string; comment?: string }>; config: { Entrypoint: string[] } };
    assert.deepEqual(cfg.rootfs.diff_ids.slice(0, -1), m.layers.slice(0, -1).map((l) => l.digest));
    assert.deepEqual(cfg.history.at(-1), { created_by: 'Nydus Converter', comment: 'Nydus Bootstrap Layer' });
    assert.deepEqual(cfg.config.Entrypoint, ['/bin/sh']);
    const boot = extractBootstrap(await client.getBlobBytes('test/small', last.digest));
    const sb = openBootstrap(boot);
    assert.deepEqual(sb.blobs.map((b) => `sha256:${b.blobId}`), m.layers.slice(0, -1).map((l) => l.digest));
    const metrics = JSON.parse(readFileSync(out, 'utf8')) as { SourceImageSize: number; TargetImageSize: number; ConversionElapsed: number; Layers: Array<{ PushSkipped: boolean }> };
    assert.ok(metrics.SourceImageSize > 0 && metrics.TargetImageSize > 0 && metrics.ConversionElapsed > 0);
    assert.ok(metrics.Layers.every((l) => !l.PushSkipped));

    const chk = await nydusify(['check', '--source', `${reg.host}/test/small:v1`, '--target', `${reg.host}/test/small:nydus`, ...flags, '--work-dir', join(work, 'chk1')]);
    assert.equal(chk.code, 0, chk.stderr);
    assert.match(chk.stderr, /Check passed \(\d+ entries equal/);
    const insp = JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/test/small:nydus`], { encoding: 'utf8' })) as { Layers: string[] };
    assert.deepEqual(insp.Layers, m.layers.map((l) => l.digest));

    // Chunk dict: a layer whose only file is already in the first conversion's blob references
    // that blob and uploads no data of its own; a layer with new data gets its own blob.
    await pushImage(client, 'test/small', 'mix', [
      { tar: tar([{ path: 'bin', type: 'dir' }, { path: 'bin/sh', data: rnd(200_000, 'sh'), mode: 0o755 }]), mt: MT_OCI_LAYER_GZIP },
      { tar: tar([{ path: 'etc', type: 'dir' }, { path: 'etc/new', data: rnd(5000, 'new') }]), mt: MT_OCI_LAYER_GZIP },
    ]);
    const dict = await nydusify(['convert', '--source', `${reg.host}/test/small:mix`, '--target', `${reg.host}/test/small:dict`, ...flags, '--work-dir', join(work, 'w1d'), '--chunk-dict', `bootstrap:local:${join(work, 'chk1/nydus_bootstrap/image.boot')}`]);
    assert.equal(dict.code, 0, dict.stderr);
    const md = await nydusManifest('test/small', 'dict');
    assert.equal(md.layers.length, 3);
    assert.ok(m.layers.some((l) => l.digest === md.layers[0]!.digest), 'the dict blob is referenced, not re-packed');
    const chkd = await nydusify(['check', '--source', `${reg.host}/test/small:mix`, '--target', `${reg.host}/test/small:dict`, ...flags, '--work-dir', join(work, 'chk1d')]);
    assert.equal(chkd.code, 0, chkd.stderr);

    const again = await nydusify(['convert', '--source', `${reg.host}/test/small:v1`, '--target', `${reg.host}/test/small:nydus`, ...flags, '--work-dir', join(work, 'w1b'), '--output-json', out]);
    assert.equal(again.code, 0, again.stderr);
    const m2 = JSON.parse(readFileSync(out, 'utf8')) as { Layers: Array<{ PushSkipped: boolean }> };
    assert.ok(m2.Layers.length > 0 && m2.Layers.every((l) => l.PushSkipped), 'blobs already in the target are not re-uploaded');
    assert.ok(!existsSync(join(work, 'w1b')), 'a work dir created by convert is removed');
  });

  test('on a terminal: byte progress for pull and push, the success line once', async () => {
    // script(1) gives nydusify a pseudo-terminal as stderr; its output is the terminal transcript.
    const cmd = [process.execPath, BIN('nydusify'), 'convert', '--source', `${reg.host}/test/layers:v1`, '--target', `${reg.host}/test/layers:tty`, ...flags, '--work-dir', join(work, 'wtty')].map((a) => `'${a}'`).join(' ');
    const out = await new Promise<string>((ok, fail) => execFile('script', ['-qec', cmd, '/dev/null'], { maxBuffer: 1 << 24 }, (err, stdout) => (err ? fail(new Error(`${err.message}\n${stdout}`)) : ok(stdout))));
    assert.match(out, /pulled \d+(\.\d)? (B|KiB|MiB), pushed \d+(\.\d)? (B|KiB|MiB)/, out);
    assert.equal(out.match(/Converted to /g)?.length, 1, out);
    assert.doesNotMatch(out, /INFO nydusify/, out);
  });

  test('3-layer image with whiteouts, opaque dir and hardlinks equals umoci unpack of the source', async () => {
    const r = await nydusify(['convert', '--source', `${reg.host}/test/layers:v1`, '--target', `${reg.host}/test/layers:nydus`, ...flags, '--work-dir', join(work, 'w2'), '--push-chunk-size', '1M']);
    assert.equal(r.code, 0, r.stderr);
    const chk = await nydusify(['check', '--source', `${reg.host}/test/layers:v1`, '--target', `${reg.host}/test/layers:nydus`, ...flags, '--work-dir', join(work, 'chk2')]);
    assert.equal(chk.code, 0, chk.stderr);
    // Independent reference: skopeo pulls the source, umoci applies the layers.
    execFileSync('skopeo', ['copy', '--src-tls-verify=false', `docker://${reg.host}/test/layers:v1`, `oci:${join(work, 'pulled')}:v1`], { stdio: 'ignore' });
    execFileSync('umoci', ['unpack', '--image', `${join(work, 'pulled')}:v1`, join(work, 'unpacked')], { stdio: 'ignore' });
    const ref = dirTree(join(work, 'unpacked/rootfs'));
    const sb = openBootstrap(readFileSync(join(work, 'chk2/nydus_bootstrap/image.boot')));
    const ny = nydusTree(sb, join(work, 'chk2/nydus_blobs'));
    const strip = (t: FsTree): Record<string, unknown> => Object.fromEntries([...t].map(([p, e]) => [p, { type: e.type, perm: e.type === 'symlink' ? 0o777 : e.perm, size: e.size, linkname: e.linkname, sha256: e.sha256, uid: e.uid, gid: e.gid }]));
    // Linux symlinks are always 0777 on disk, whatever the tar header said.
    assert.deepEqual(strip(ny), strip(ref));
    assert.ok(!ny.has('a/h1') && !ny.has('a/d') && !ny.has('opq/o1') && !ny.has('opq/sub') && ny.has('opq/o3') && !ny.has('keep/k2') && ny.has('emptydir'));
    const mt = await nydusManifest('test/layers', 'nydus');
    assert.equal(mt.layers.length, 4, 'three blob layers (the data-less layer has none) + bootstrap');
    assert.equal(readFileSync(join(work, 'unpacked/rootfs/a/f1'), 'utf8'), 'second f1\n');
    assert.equal(lstatSync(join(work, 'unpacked/rootfs/b/h3')).ino, lstatSync(join(work, 'unpacked/rootfs/a/h2')).ino);
    // Hardlinks survive in the nydus image: both names share one inode.
    const a = sb.lookup(sb.lookup(sb.rootIno, Buffer.from('a'))!.ino, Buffer.from('h2'))!;
    const b = sb.lookup(sb.lookup(sb.rootIno, Buffer.from('b'))!.ino, Buffer.from('h3'))!;
    assert.equal(a.ino, b.ino);
  });

  test('convert --batch-size: BATCH blobs, check equals the source', async () => {
    const r = await nydusify(['convert', '--source', `${reg.host}/test/layers:v1`, '--target', `${reg.host}/test/layers:batch`, ...flags, '--work-dir', join(work, 'wb'), '--batch-size', '0x10000']);
    assert.equal(r.code, 0, r.stderr);
    const chk = await nydusify(['check', '--source', `${reg.host}/test/layers:v1`, '--target', `${reg.host}/test/layers:batch`, ...flags, '--work-dir', join(work, 'chkb')]);
    assert.equal(chk.code, 0, chk.stderr);
    const sb = openBootstrap(readFileSync(join(work, 'chkb/nydus_bootstrap/image.boot')));
    assert.ok(sb.blobs.length > 0 && sb.blobs.every((b) => (b.features & BlobFeatures.BATCH) !== 0), 'every blob has the BATCH feature');
  });

  test('2-platform index: each platform converted and marked; one platform collapses to a manifest', async () => {
    const amd = await pushImage(client, 'test/multi', 'amd64', [{ tar: tar([{ path: 'arch', data: Buffer.from('amd64\n') }]), mt: MT_OCI_LAYER_GZIP }]);
    const arm = await pushImage(client, 'test/multi', 'arm64', [{ tar: tar([{ path: 'arch', data: Buffer.from('arm64\n') }, { path: 'z', data: rnd(100000, 'z') }]), mt: MT_OCI_LAYER_ZSTD }], { architecture: 'arm64', os: 'linux' });
    const idx: Index = { schemaVersion: 2, mediaType: MT_OCI_INDEX, manifests: [
      { mediaType: MT_OCI_MANIFEST, ...amd, platform: { architecture: 'amd64', os: 'linux' } },
      { mediaType: MT_OCI_MANIFEST, ...arm, platform: { architecture: 'arm64', os: 'linux' } },
    ] };
    await client.putManifest('test/multi', 'v1', MT_OCI_INDEX, Buffer.from(JSON.stringify(idx)));
    const r = await nydusify(['convert', '--source', `${reg.host}/test/multi:v1`, '--target', `${reg.host}/test/multi:nydus`, '--all-platforms', ...flags, '--work-dir', join(work, 'w3')]);
    assert.equal(r.code, 0, r.stderr);
    const out = (await client.getManifest('test/multi', 'nydus')).json as unknown as Index;
    assert.equal(out.mediaType, MT_OCI_INDEX);
    assert.deepEqual(out.manifests.map((d) => [d.platform?.architecture, d.platform?.['os.features']]), [['amd64', ['nydus.remoteimage.v1']], ['arm64', ['nydus.remoteimage.v1']]]);
    for (const d of out.manifests) {
      const m = await nydusManifest('test/multi', d.digest);
      assert.equal(m.layers.at(-1)!.annotations?.['containerd.io/snapshot/nydus-bootstrap'], 'true');
    }
    for (const p of ['linux/amd64', 'linux/arm64']) {
      const chk = await nydusify(['check', '--source', `${reg.host}/test/multi:v1`, '--target', `${reg.host}/test/multi:nydus`, '--platform', p, ...flags, '--work-dir', join(work, `chk-${p.replace('/', '-')}`)]);
      assert.equal(chk.code, 0, chk.stderr);
    }
    const one = await nydusify(['convert', '--source', `${reg.host}/test/multi:v1`, '--target', `${reg.host}/test/multi:arm`, '--platform', 'linux/arm64', ...flags, '--work-dir', join(work, 'w4')]);
    assert.equal(one.code, 0, one.stderr);
    assert.equal((await client.getManifest('test/multi', 'arm')).mediaType, MT_OCI_MANIFEST);
  });

  test('docker v2 source keeps docker media types unless --oci', async () => {
    await pushImage(client, 'test/docker', 'v1', [{ tar: tar([{ path: 'f', data: Buffer.from('docker\n') }]), mt: MT_DOCKER_LAYER_GZIP }], undefined, true);
    for (const [tag, extra, mt, bootMt] of [['nydus', [], MT_DOCKER_MANIFEST, MT_DOCKER_LAYER_GZIP], ['oci', ['--oci'], MT_OCI_MANIFEST, MT_OCI_LAYER_GZIP]] as const) {
      const r = await nydusify(['convert', '--source', `${reg.host}/test/docker:v1`, '--target', `${reg.host}/test/docker:${tag}`, ...flags, ...extra, '--work-dir', join(work, `wd-${tag}`)]);
      assert.equal(r.code, 0, r.stderr);
      const m = await nydusManifest('test/docker', tag);
      assert.equal(m.mediaType, mt);
      assert.equal(m.layers.at(-1)!.mediaType, bootMt);
      const chk = await nydusify(['check', '--source', `${reg.host}/test/docker:v1`, '--target', `${reg.host}/test/docker:${tag}`, ...flags, '--work-dir', join(work, `chkd-${tag}`)]);
      assert.equal(chk.code, 0, chk.stderr);
    }
  });

  test('malicious layers are refused; a missing tag is a one-line error', async () => {
    for (const [name, entries] of [
      ['dotdot', [{ path: 'ok', data: Buffer.from('1') }, { path: '../evil', data: Buffer.from('x') }]],
      ['abs', [{ path: '/etc/evil', data: Buffer.from('x') }]],
      ['through-symlink', [{ path: 'l', type: 'symlink', linkname: '/etc' }, { path: 'l/passwd', data: Buffer.from('x') }]],
      ['hardlink-escape', [{ path: 'h', type: 'link', linkname: '../../etc/shadow' }]],
    ] as Array<[string, E[]]>) {
      await pushImage(client, 'test/evil', name, [{ tar: tar(entries), mt: MT_OCI_LAYER_GZIP }]);
      const r = await nydusify(['convert', '--source', `${reg.host}/test/evil:${name}`, '--target', `${reg.host}/test/evil:${name}-nydus`, ...flags, '--work-dir', join(work, `evil-${name}`)]);
      assert.equal(r.code, 1, `${name}: ${r.stderr}`);
      assert.match(r.stderr, /\.\.|absolute|symlink|escape|unsafe/i, name);
      await assert.rejects(client.getManifest('test/evil', `${name}-nydus`), /manifest unknown/);
      // Defence in depth: the builder's own tar source refuses the same stream.
      await assert.rejects(createImage({ source: '-', sourceType: 'tar-rafs', stdin: Readable.from([tar(entries)]), blob: join(work, `evil-${name}.blob`), blobInlineMeta: true, blobToc: true, whiteoutSpec: 'none' }), /\.\.|absolute|non-directory|symlink/, name);
    }
    const r = await nydusify(['convert', '--source', `${reg.host}/test/small:nope`, '--target', `${reg.host}/test/small:x`, ...flags]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^nydusify: manifest unknown: 127\.0\.0\.1:\d+\/test\/small:nope\n$/);
  });

  test('convert --backend-type localfs: blobs go to the backend, the manifest keeps only the bootstrap', async () => {
    const dir = join(work, 'blob-backend');
    const r = await nydusify(['convert', '--source', `${reg.host}/test/layers:v1`, '--target', `${reg.host}/test/layers:ext`, ...flags, '--work-dir', join(work, 'w5'), '--backend-type', 'localfs', '--backend-config', JSON.stringify({ dir })]);
    assert.equal(r.code, 0, r.stderr);
    const m = await nydusManifest('test/layers', 'ext');
    assert.equal(m.layers.length, 1);
    const sb = openBootstrap(extractBootstrap(await client.getBlobBytes('test/layers', m.layers[0]!.digest)));
    assert.ok(sb.blobs.length > 0);
    for (const b of sb.blobs) assert.equal(createHash('sha256').update(readFileSync(join(dir, b.blobId))).digest('hex'), b.blobId);
    const cfg = JSON.parse((await client.getBlobBytes('test/layers', m.config.digest)).toString()) as { rootfs: { diff_ids: string[] }; history: unknown[] };
    assert.equal(cfg.rootfs.diff_ids.length, 1);
    assert.equal(cfg.history.length, 1);
  });

  test('htpasswd registry: credentials come from DOCKER_CONFIG and never reach the output', async () => {
    const sec = await startRegistry({ auth: 'htpasswd' });
    const dc = join(work, 'docker-config');
    try {
      mkdirSync(dc, { recursive: true });
      writeFileSync(join(dc, 'config.json'), JSON.stringify({ auths: { [sec.host]: { auth: Buffer.from('alice:s3cret').toString('base64') } } }));
      await pushImage(new RegistryClient(sec.host, { plainHttp: true, creds: { username: 'alice', password: 's3cret' } }), 'sec/img', 'v1', threeLayers().slice(0, 1));
      const r = await nydusify(['convert', '--source', `${sec.host}/sec/img:v1`, '--target', `${sec.host}/sec/img:nydus`, ...flags, '--work-dir', join(work, 'w6')], { env: { DOCKER_CONFIG: dc } });
      assert.equal(r.code, 0, r.stderr);
      const denied = await nydusify(['convert', '--source', `${sec.host}/sec/img:v1`, '--target', `${sec.host}/sec/img:x`, ...flags], { env: { DOCKER_CONFIG: join(work, 'nowhere') } });
      assert.equal(denied.code, 1);
      assert.match(denied.stderr, /unauthorized \(HTTP 401\), no credentials found/);
      assert.ok(!r.stderr.includes('s3cret') && !denied.stderr.includes('s3cret'));
    } finally {
      await sec.close();
    }
  });

  test('build --backend-push localfs: <name>.meta, blob named by its id, output.json', async () => {
    const src = join(work, 'origin-root-dir');
    mkdirSync(join(src, 'dir_1/subdir_a'), { recursive: true });
    writeFileSync(join(src, 'dir_1/subdir_a/file_a'), 'file_a\n');
    writeFileSync(join(src, 'file_c'), 'file_c\n');
    symlinkSync('file_c', join(src, 'file_c_ln'));
    const store = join(work, 'image-store');
    const backendDir = join(work, 'backend');
    const r = await nydusify(['build', '--name', 'image-basic-01', '--source-dir', src, '--output-dir', store, '--backend-push', '--backend-type', 'localfs', '--backend-config', JSON.stringify({ dir: backendDir, blob_prefix: 'blob/', meta_prefix: 'meta/' })]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(readFileSync(join(store, 'output.json'), 'utf8')) as { blobs: string[]; fs_version: string };
    assert.equal(out.fs_version, '6');
    const id = out.blobs[0]!;
    assert.ok(existsSync(join(store, 'image-basic-01.meta')) && existsSync(join(store, id)) && !existsSync(join(store, 'image-basic-01.blob')));
    assert.deepEqual(readFileSync(join(backendDir, 'blob', id)), readFileSync(join(store, id)));
    assert.deepEqual(readFileSync(join(backendDir, 'meta/image-basic-01')), readFileSync(join(store, 'image-basic-01.meta')));
  });

  test('mount serves the converted image through nydusd', async (t) => {
    // Only the environment decides; a nydusd that does not start must fail this test.
    if (!existsSync('/dev/fuse') || process.getuid?.() !== 0) return t.skip('needs /dev/fuse and root');
    // Self-contained (also when run alone): converting again skips blobs the target has.
    const conv = await nydusify(['convert', '--source', `${reg.host}/test/layers:v1`, '--target', `${reg.host}/test/layers:nydus`, ...flags, '--work-dir', join(work, 'wm')]);
    assert.equal(conv.code, 0, conv.stderr);
    const mnt = join(work, 'mnt');
    const child = spawn(process.execPath, [BIN('nydusify'), 'mount', '--target', `${reg.host}/test/layers:nydus`, '--target-insecure', '--mount-path', mnt, '--work-dir', join(work, 'mw')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    try {
      for (let i = 0; i < 600 && !/mounted/.test(err) && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
      assert.match(err, /mounted/, err);
      assert.equal(readFileSync(join(mnt, 'a/f1'), 'utf8'), 'second f1\n');
      assert.deepEqual(readFileSync(join(mnt, 'big')), rnd(3 * 1024 * 1024 + 12345, 'big'));
    } finally {
      const gone = new Promise((r) => child.once('exit', r));
      if (child.exitCode === null) child.kill('SIGINT');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    assert.equal(child.exitCode, 0, err);
  });
});
void randomBytes;
