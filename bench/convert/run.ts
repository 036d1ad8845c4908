// Conversion benchmark: one source image (LAYERS gzip layers, SIZE_MB of file data in total, half
// random / half compressible) in a local docker-registry → `nydusify convert` → same registry.
// Reports wall time, source MiB/s and the converter's peak RSS (the pipeline streams, so RSS must
// stay far below the layer size). Baseline: `skopeo copy` of the same image between repositories.
// Run: npx tsc -p tsconfig.json && node dist/bench/convert/run.js   (env SIZE_MB=512 LAYERS=4 RUNS=3)
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGzip } from 'node:zlib';
import { encodeTarHeader, padding } from '../../src/image/tar-writer.js';
import { MT_OCI_CONFIG, MT_OCI_LAYER_GZIP, MT_OCI_MANIFEST } from '../../src/convert/media-types.js';
import { RegistryClient, sha256Digest } from '../../src/convert/registry.js';
import { sha256File } from '../../src/convert/layer.js';
import { startRegistry } from '../../test/helpers/registry.js';
import { BIN } from '../../test/helpers/paths.js';

const SIZE_MB = Number(process.env.SIZE_MB ?? 256);
const LAYERS = Number(process.env.LAYERS ?? 4);
const RUNS = Number(process.env.RUNS ?? 3);
const FILE_MB = 8;

/** Writes one gzip layer of `mb` MiB in 8 MiB files; returns its path and diff_id. */
async function makeLayer(dir: string, i: number, mb: number): Promise<{ path: string; diffId: string }> {
  const path = join(dir, `layer${i}.tar.gz`);
  const gz = createGzip({ level: 1 });
  const out = createWriteStream(path);
  gz.pipe(out);
  const h = createHash('sha256');
  const put = async (b: Buffer): Promise<void> => {
    h.update(b);
    if (!gz.write(b)) await new Promise((r) => gz.once('drain', r));
  };
  for (let f = 0; f * FILE_MB < mb; f++) {
    const size = Math.min(FILE_MB, mb - f * FILE_MB) << 20;
    await put(encodeTarHeader({ path: Buffer.from(`l${i}/f${f}`), type: 'file', mode: 0o644, uid: 0, gid: 0, size, mtime: 0, mtimeNsec: 0 }));
    // Half incompressible, half text-like: a realistic mix for zstd.
    for (let o = 0; o < size; o += 1 << 20) await put(o % (2 << 20) ? Buffer.alloc(1 << 20, `line ${o}\n`) : randomBytes(1 << 20));
    await put(Buffer.alloc(padding(size)));
  }
  await put(Buffer.alloc(1024));
  gz.end();
  await new Promise<void>((r) => out.once('close', () => r()));
  return { path, diffId: `sha256:${h.digest('hex')}` };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const dir = mkdtempSync(join(tmpdir(), 'bench-convert-'));
const reg = await startRegistry();
try {
  const c = new RegistryClient(reg.host, { plainHttp: true });
  const layers = [];
  let srcBytes = 0;
  for (let i = 0; i < LAYERS; i++) {
    const l = await makeLayer(dir, i, Math.ceil(SIZE_MB / LAYERS));
    const size = statSync(l.path).size;
    const digest = `sha256:${await sha256File(l.path)}`;
    await c.uploadBlob('bench/src', digest, { path: l.path, size }, 64 << 20);
    layers.push({ mediaType: MT_OCI_LAYER_GZIP, digest, size, diffId: l.diffId });
    srcBytes += size;
  }
  const cfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) } }));
  await c.uploadBlob('bench/src', sha256Digest(cfg), cfg);
  const manifest = { schemaVersion: 2, mediaType: MT_OCI_MANIFEST, config: { mediaType: MT_OCI_CONFIG, digest: sha256Digest(cfg), size: cfg.length }, layers: layers.map(({ diffId: _d, ...l }) => l) };
  await c.putManifest('bench/src', 'v1', MT_OCI_MANIFEST, Buffer.from(JSON.stringify(manifest)));

  const conv: number[] = [];
  const rss: number[] = [];
  const copy: number[] = [];
  const ref: number[] = [];
  const copyCpu: number[] = [];
  const refCpu: number[] = [];
  let refUploaded = 0;
  let target = 0;
  for (let r = 0; r < RUNS; r++) {
    const t0 = performance.now();
    const out = join(dir, `m${r}.json`);
    // A fresh target repository per run, so nothing is skipped as already present.
    const res = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, BIN('nydusify'), 'convert', '--source', `${reg.host}/bench/src:v1`, '--target', `${reg.host}/bench/dst${r}:v1`, '--source-insecure', '--target-insecure', '--work-dir', join(dir, `w${r}`), '--output-json', out], { encoding: 'utf8' });
    if (res.status !== 0) throw new Error(`convert failed: ${res.stderr}`);
    conv.push((performance.now() - t0) / 1000);
    rss.push(Number(res.stderr.trim().split('\n').at(-1)) / 1024);
    target = (JSON.parse(readFileSync(out, 'utf8')) as { TargetImageSize: number }).TargetImageSize;
    // --oci-ref: only bootstraps and zran indexes are built and uploaded; the layers are mounted.
    const tr = performance.now();
    const refOut = join(dir, `r${r}.json`);
    const rr = spawnSync('/usr/bin/time', ['-f', '%U %S', process.execPath, BIN('nydusify'), 'convert', '--oci-ref', '--source', `${reg.host}/bench/src:v1`, '--target', `${reg.host}/bench/ref${r}:v1`, '--source-insecure', '--target-insecure', '--work-dir', join(dir, `wr${r}`), '--output-json', refOut], { encoding: 'utf8' });
    if (rr.status !== 0) throw new Error(`convert --oci-ref failed: ${rr.stderr}`);
    ref.push((performance.now() - tr) / 1000);
    refCpu.push(rr.stderr.trim().split('\n').at(-1)!.split(' ').reduce((a, x) => a + Number(x), 0));
    refUploaded = (JSON.parse(readFileSync(refOut, 'utf8')) as { TargetImageSize: number }).TargetImageSize;
    // skopeo remembers blobs it pushed and cross-mounts them later: only the first copy is a real copy.
    if (r > 0) continue;
    const t1 = performance.now();
    const sk = spawnSync('/usr/bin/time', ['-f', '%U %S', 'skopeo', 'copy', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${reg.host}/bench/src:v1`, `docker://${reg.host}/bench/copy${r}:v1`], { encoding: 'utf8' });
    if (sk.status !== 0) throw new Error(`skopeo copy failed: ${sk.stderr}`);
    copy.push((performance.now() - t1) / 1000);
    copyCpu.push(sk.stderr.trim().split('\n').at(-1)!.split(' ').reduce((a, x) => a + Number(x), 0));
  }
  const mib = srcBytes / 1048576;
  console.log(`source: ${LAYERS} gzip layers, ${SIZE_MB} MiB of file data, ${mib.toFixed(1)} MiB compressed; nydus target ${(target / 1048576).toFixed(1)} MiB (zstd)`);
  console.log(`| measurement | value |\n|---|---|`);
  console.log(`| nydusify convert, wall s (median of ${RUNS}) | ${median(conv).toFixed(2)} |`);
  console.log(`| convert throughput, MiB/s of uncompressed data | ${(SIZE_MB / median(conv)).toFixed(1)} |`);
  console.log(`| convert peak RSS, MiB | ${median(rss).toFixed(0)} |`);
  console.log(`| skopeo copy (same image, registry→registry, first run), wall s | ${median(copy).toFixed(2)} |`);
  console.log(`| nydusify convert --oci-ref, wall s (median of ${RUNS}) / CPU s (user+sys) | ${median(ref).toFixed(2)} / ${median(refCpu).toFixed(2)} |`);
  console.log(`| skopeo copy CPU s (user+sys) | ${median(copyCpu).toFixed(2)} |`);
  console.log(`| --oci-ref / skopeo copy: wall, CPU | ${(median(ref) / median(copy)).toFixed(2)}×, ${(median(refCpu) / median(copyCpu)).toFixed(2)}× |`);
  console.log(`| --oci-ref uploaded (ref blobs + bootstrap layer) | ${(refUploaded / 1048576).toFixed(2)} MiB = ${((100 * refUploaded) / srcBytes).toFixed(2)} % of ${mib.toFixed(1)} MiB |`);
} finally {
  await reg.close();
  rmSync(dir, { recursive: true, force: true });
}
