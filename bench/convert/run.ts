// Conversion benchmark: one source image made of real files (the first SIZE_MB of /usr in sorted
// order: ELF binaries, headers, libraries, ...) split into LAYERS tar layers, gzip level 6 (docker's
// default), in a local docker-registry → `nydusify convert` → same registry; also `--oci-ref`.
// Reports wall time, source MiB/s and the converter's peak RSS (the pipeline streams, so RSS must
// stay far below the layer size). Baseline: `skopeo copy` of the same image between repositories,
// every run with an empty blob-info cache (a private tmpfs in a mount namespace), so skopeo cannot
// cross-mount blobs it pushed in an earlier run.
// Run: npx tsc -p tsconfig.json && node dist/bench/convert/run.js   (env SIZE_MB=256 LAYERS=4 RUNS=3 SRC=/usr)
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { createGzip } from 'node:zlib';
import { MT_OCI_CONFIG, MT_OCI_LAYER_GZIP, MT_OCI_MANIFEST } from '../../src/convert/media-types.js';
import { RegistryClient, sha256Digest } from '../../src/convert/registry.js';
import { sha256File } from '../../src/convert/layer.js';
import { startRegistry } from '../../test/helpers/registry.js';
import { BIN } from '../../test/helpers/paths.js';

const SIZE_MB = Number(process.env.SIZE_MB ?? 256);
const LAYERS = Number(process.env.LAYERS ?? 4);
const RUNS = Number(process.env.RUNS ?? 3);
const SRC = process.env.SRC ?? '/usr';

/** The first `budget` bytes of regular files under `root` (sorted walk), with their directories and
 *  symlinks, cut into `parts` lists of about equal file bytes. Paths are relative to `/`. */
function pickFiles(root: string, budget: number, parts: number): { lists: string[][]; bytes: number } {
  const lists: string[][] = Array.from({ length: parts }, () => []);
  const per = budget / parts;
  let bytes = 0;
  const walk = (dir: string): boolean => {
    for (const name of readdirSync(dir).sort()) {
      const abs = join(dir, name);
      const st = lstatSync(abs);
      const part = lists[Math.min(parts - 1, Math.floor(bytes / per))]!;
      part.push(relative('/', abs));
      if (st.isDirectory()) {
        if (!walk(abs)) return false;
      } else if (st.isFile()) {
        bytes += st.size;
        if (bytes >= budget) return false;
      }
    }
    return true;
  };
  walk(root);
  return { lists, bytes };
}

/** `tar` (GNU, not ours) of one list, gzip level 6; returns its path and diff_id. */
async function makeLayer(dir: string, i: number, list: string[]): Promise<{ path: string; diffId: string }> {
  const path = join(dir, `layer${i}.tar.gz`);
  const listFile = join(dir, `layer${i}.list`);
  writeFileSync(listFile, list.join('\n') + '\n');
  const tar = spawn('tar', ['-C', '/', '--no-recursion', '--numeric-owner', '-cf', '-', '-T', listFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  const h = createHash('sha256');
  const gz = createGzip({ level: 6 });
  const out = createWriteStream(path);
  gz.pipe(out);
  tar.stdout.on('data', (b: Buffer) => h.update(b));
  tar.stdout.pipe(gz);
  const code = await new Promise<number | null>((r) => tar.once('close', r));
  if (code !== 0) throw new Error(`tar of layer ${i} failed (${code})`);
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
  const pick = pickFiles(SRC, SIZE_MB << 20, LAYERS);
  for (let i = 0; i < LAYERS; i++) {
    const l = await makeLayer(dir, i, pick.lists[i]!);
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
    // skopeo remembers blobs it pushed (its blob-info cache) and would cross-mount them in later runs:
    // each copy gets an empty cache on a private tmpfs.
    const t1 = performance.now();
    const sk = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mkdir -p /var/lib/containers/cache && mount -t tmpfs none /var/lib/containers/cache && exec "$@"', 'sh', '/usr/bin/time', '-f', '%U %S', 'skopeo', 'copy', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${reg.host}/bench/src:v1`, `docker://${reg.host}/bench/copy${r}:v1`], { encoding: 'utf8' });
    if (sk.status !== 0) throw new Error(`skopeo copy failed: ${sk.stderr}`);
    copy.push((performance.now() - t1) / 1000);
    copyCpu.push(sk.stderr.trim().split('\n').at(-1)!.split(' ').reduce((a, x) => a + Number(x), 0));
  }
  const mib = srcBytes / 1048576;
  console.log(`source: ${LAYERS} gzip -6 layers of ${SRC}, ${(pick.bytes / 1048576).toFixed(1)} MiB of file data, ${mib.toFixed(1)} MiB compressed; nydus target ${(target / 1048576).toFixed(1)} MiB (zstd)`);
  console.log(`| measurement | value |\n|---|---|`);
  console.log(`| nydusify convert, wall s (median of ${RUNS}) | ${median(conv).toFixed(2)} |`);
  console.log(`| convert throughput, MiB/s of uncompressed data | ${(pick.bytes / 1048576 / median(conv)).toFixed(1)} |`);
  console.log(`| convert peak RSS, MiB | ${median(rss).toFixed(0)} |`);
  console.log(`| skopeo copy (same image, registry→registry, empty blob cache), wall s (median of ${RUNS}) | ${median(copy).toFixed(2)} |`);
  console.log(`| full convert / skopeo copy, wall | ${(median(conv) / median(copy)).toFixed(2)}× |`);
  console.log(`| nydus image size / OCI layers size | ${(target / srcBytes).toFixed(3)}× |`);
  console.log(`| nydusify convert --oci-ref, wall s (median of ${RUNS}) / CPU s (user+sys) | ${median(ref).toFixed(2)} / ${median(refCpu).toFixed(2)} |`);
  console.log(`| skopeo copy CPU s (user+sys) | ${median(copyCpu).toFixed(2)} |`);
  console.log(`| --oci-ref / skopeo copy: wall, CPU | ${(median(ref) / median(copy)).toFixed(2)}×, ${(median(refCpu) / median(copyCpu)).toFixed(2)}× |`);
  console.log(`| --oci-ref uploaded (ref blobs + bootstrap layer) | ${(refUploaded / 1048576).toFixed(2)} MiB = ${((100 * refUploaded) / srcBytes).toFixed(2)} % of ${mib.toFixed(1)} MiB |`);
} finally {
  await reg.close();
  rmSync(dir, { recursive: true, force: true });
}
