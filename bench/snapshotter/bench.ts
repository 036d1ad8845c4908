// nydus-snapshotter benchmark: time from "pull + run" to the container's first output, Nydus vs the
// OCI original, over the user-space delay line (RATE_MBIT, DELAY_MS one way; test/distribute/netns.ts).
// Server namespace: docker-registry. Client namespace: our private containerd 1.6 + runc +
// nydus-snapshotter (test/snapshotter/harness.ts). Image: busybox + /etc/hello (layer 1) and
// BENCH_MIB of /usr/lib files (layer 2); Nydus copy made by our nydusify in the server namespace.
//   oci:   ctr images pull --snapshotter nydus (download + unpack) then ctr run
//   nydus: nydus-snapshotter pull (bootstrap only) then ctr run (nydusd reads on demand)
// Bytes: what the server namespace's link device sent (registry side, IP + TCP overhead included).
// Usage: bash bench/snapshotter/run.sh   (env BENCH_MIB [200] RATE_MBIT [100] DELAY_MS [10])
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN } from '../../test/helpers/paths.js';
import { until } from '../../test/helpers/poll.js';
import { SERVER_IP, StarTestbed } from '../../test/distribute/netns.js';
import { Containerd, NS } from '../../test/snapshotter/harness.js';

const MIB = Number(process.env.BENCH_MIB ?? 200);
const RATE = Number(process.env.RATE_MBIT ?? 100);
const DELAY = Number(process.env.DELAY_MS ?? 10);
const REG = `${SERVER_IP}:5000`;

function must(argv: string[], what: string): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 900_000, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${what}: ${(r.stderr ?? '').trim() || r.error}`);
  return r.stdout;
}

/** Copies files until `cap` bytes; one copy per inode (Mesa's DRI drivers are one file hardlinked many
 * times: copies of it would let Nydus's chunk dedup shrink the image unrealistically). */
function fillData(dst: string, cap: number): number {
  let total = 0;
  const seen = new Set<number>();
  const walk = (src: string, rel: string): void => {
    for (const n of readdirSync(src).sort()) {
      if (total >= cap) return;
      const p = join(src, n);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p, join(rel, n));
      else if (st.isFile() && st.size > 0 && !seen.has(st.ino)) {
        seen.add(st.ino);
        mkdirSync(join(dst, rel), { recursive: true });
        copyFileSync(p, join(dst, rel, n));
        total += st.size;
      }
    }
  };
  walk('/usr/lib/x86_64-linux-gnu', '');
  walk('/usr/share', 'share');
  return total;
}

/** Runs `ctr run` in the client namespace; resolves with ms to the first stdout byte and the output. */
function timedRun(cd: Containerd, args: string[]): Promise<{ firstMs: number; out: string; code: number }> {
  return new Promise((ok) => {
    const t0 = performance.now();
    let firstMs = -1;
    let out = '';
    const c: ChildProcess = spawn('nsenter', ['-t', String(cd.pid), '-m', '-n', '--', 'ctr', '-a', cd.sock, '-n', NS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    c.stdout!.on('data', (d: Buffer) => {
      if (firstMs < 0) firstMs = performance.now() - t0;
      out += d.toString();
    });
    c.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    c.on('exit', (code) => ok({ firstMs, out, code: code ?? 1 }));
  });
}

function txBytes(tb: StarTestbed): number {
  const s = must(['ip', '-n', tb.serverNs, '-j', '-s', 'link', 'show', 'dls0'], 'ip link');
  return (JSON.parse(s) as Array<{ stats64: { tx: { bytes: number } } }>)[0]!.stats64.tx.bytes;
}

async function main(): Promise<void> {
  const root = mkdtempSync('/tmp/snap-bench-');
  const tb = new StarTestbed(1, join(root, 'net'), { delay_ms: DELAY, rate_mbit: RATE });
  let registry: ChildProcess | undefined;
  let cd: Containerd | undefined;
  try {
    // Image: layer 1 busybox + /etc/hello, layer 2 the data.
    const oci = join(root, 'oci');
    const bundle = join(root, 'bundle');
    must(['umoci', 'init', '--layout', oci], 'umoci init');
    must(['umoci', 'new', '--image', `${oci}:v1`], 'umoci new');
    const rootfs = join(bundle, 'rootfs');
    // repack diffs against the image the bundle was unpacked from: unpack afresh for each layer.
    const layer = (add: () => void): void => {
      rmSync(bundle, { recursive: true, force: true });
      must(['umoci', 'unpack', '--image', `${oci}:v1`, bundle], 'umoci unpack');
      add();
      must(['umoci', 'repack', '--image', `${oci}:v1`, bundle], 'umoci repack');
    };
    layer(() => {
      mkdirSync(join(rootfs, 'bin'), { recursive: true });
      mkdirSync(join(rootfs, 'etc'), { recursive: true });
      copyFileSync('/bin/busybox', join(rootfs, 'bin/busybox'));
      for (const a of ['sh', 'cat', 'ls', 'wc']) symlinkSync('busybox', join(rootfs, 'bin', a));
      writeFileSync(join(rootfs, 'etc/hello'), 'hello\n');
    });
    let dataBytes = 0;
    layer(() => (dataBytes = fillData(join(rootfs, 'data'), MIB << 20)));

    tb.up();
    const inServer = (argv: string[]): string[] => [...tb.inNs(tb.serverNs), ...argv];
    writeFileSync(join(root, 'reg.yml'), `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${join(root, 'reg')}\nhttp:\n  addr: ${REG}\n`);
    registry = spawn(inServer(['docker-registry', 'serve', join(root, 'reg.yml')])[0]!, inServer(['docker-registry', 'serve', join(root, 'reg.yml')]).slice(1), { stdio: 'ignore' });
    await until('registry', () => spawnSync(inServer(['curl', '-sf', `http://${REG}/v2/`])[0]!, inServer(['curl', '-sf', `http://${REG}/v2/`]).slice(1)).status === 0, 20_000, 100);
    must(inServer(['skopeo', 'copy', '--dest-tls-verify=false', `oci:${oci}:v1`, `docker://${REG}/bench/img:v1`]), 'skopeo copy');
    must(inServer([process.execPath, BIN('nydusify'), 'convert', '--source', `${REG}/bench/img:v1`, '--target', `${REG}/bench/img:nydus`, '--source-insecure', '--target-insecure', '--work-dir', join(root, 'conv')]), 'nydusify convert');
    const layerSizes = (ref: string): number[] => {
      const m = JSON.parse(must(inServer(['skopeo', 'inspect', '--tls-verify=false', '--raw', `docker://${REG}/bench/img:${ref}`]), 'inspect')) as { layers: Array<{ size: number }> };
      return m.layers.map((l) => l.size);
    };
    const ociLayers = layerSizes('v1');
    const nydusLayers = layerSizes('nydus');
    const ociBlob = ociLayers.reduce((a, b) => a + b, 0);
    const nydusBlob = nydusLayers.reduce((a, b) => a + b, 0);

    cd = await Containerd.start(tb.nodeNs[0]!);
    // The registry is plain HTTP and not on localhost: the snapshotter must be told (as containerd is).
    writeFileSync(join(root, 'snapshotter.toml'), '[remote]\nskip_ssl_verify = true\n');
    await cd.startSnapshotter(['--log-level', 'info', '--config', join(root, 'snapshotter.toml')]);
    const cmd = ['/bin/sh', '-c', 'cat /etc/hello; ls /data | wc -l'];

    let tx0 = txBytes(tb);
    let t0 = performance.now();
    const p1 = await cd.ctr(['images', 'pull', '--plain-http', '--snapshotter', 'nydus', `${REG}/bench/img:v1`], 900_000);
    if (p1.code !== 0) throw new Error(`ctr pull: ${p1.stderr}`);
    const ociPullMs = performance.now() - t0;
    const r1 = await timedRun(cd, ['run', '--rm', '--snapshotter', 'nydus', `${REG}/bench/img:v1`, 'oci-b', ...cmd]);
    if (r1.code !== 0) throw new Error(`oci run: ${r1.out}`);
    const ociFirst = ociPullMs + r1.firstMs;
    const ociTx = txBytes(tb) - tx0;

    tx0 = txBytes(tb);
    t0 = performance.now();
    const p2 = await cd.pull(['--plain-http', `${REG}/bench/img:nydus`]);
    if (p2.code !== 0) throw new Error(`nydus pull: ${p2.stderr}`);
    const nydusPullMs = performance.now() - t0;
    const r2 = await timedRun(cd, ['run', '--rm', '--snapshotter', 'nydus', `${REG}/bench/img:nydus`, 'nydus-b', ...cmd]);
    if (r2.code !== 0) throw new Error(`nydus run: ${r2.out}`);
    const nydusFirst = nydusPullMs + r2.firstMs;
    const nydusTx = txBytes(tb) - tx0;
    if (r1.out !== r2.out) throw new Error(`outputs differ: ${JSON.stringify(r1.out)} vs ${JSON.stringify(r2.out)}`);

    process.stdout.write(
      JSON.stringify(
        {
          link: { rate_mbit: RATE, delay_ms_one_way: DELAY },
          image: { data_bytes: dataBytes, oci_layer_bytes: ociLayers, nydus_layer_bytes: nydusLayers, oci_blob_bytes: ociBlob, nydus_blob_bytes: nydusBlob },
          oci: { pull_ms: Math.round(ociPullMs), run_to_first_output_ms: Math.round(r1.firstMs), total_to_first_output_ms: Math.round(ociFirst), bytes_sent_by_registry: ociTx },
          nydus: { pull_ms: Math.round(nydusPullMs), run_to_first_output_ms: Math.round(r2.firstMs), total_to_first_output_ms: Math.round(nydusFirst), bytes_sent_by_registry: nydusTx },
          speedup_first_output: +(ociFirst / nydusFirst).toFixed(2),
          nydus_fetched_fraction_of_nydus_image: +(nydusTx / nydusBlob).toFixed(4),
          nydus_fetched_fraction_of_oci_image: +(nydusTx / ociBlob).toFixed(4),
          output: r2.out,
        },
        null,
        2,
      ) + '\n',
    );
  } finally {
    await cd?.close().catch((e: Error) => process.stderr.write(`cleanup: ${e.message}\n`));
    if (registry && registry.exitCode === null) registry.kill('SIGTERM');
    tb.down();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
