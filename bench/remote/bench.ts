// Remote lazy-loading benchmark: one client and one server network namespace joined by a user-space
// delay line (RATE_MBIT, DELAY_MS one way; test/distribute/netns.ts). Image: a rootfs-like tree of
// /usr/bin, /usr/sbin, python3.11's stdlib and /usr/lib/x86_64-linux-gnu (capped at BENCH_MIB) with
// the /bin,/lib,/lib64,/sbin symlinks and /etc/os-release; v6 zstd, served by nydus-backend-proxy.
// Workload (chroot, run in the client): /bin/sh -c 'ls /; cat /etc/os-release; python3 -c "import json, email, http.client"'.
//   cold:     nydusd (no prefetch) mount + workload, lazily over the link
//   warm:     remount with the same cache directory + workload
//   oci:      curl image.tar.zst over the same link | zstd -d | tar -x, then the workload
//   prefetch: mount with prefetch_all until data_all_ready, vs the link's transfer time of the blob
// Usage: bash bench/remote/run.sh   (env BENCH_MIB [500] RATE_MBIT [100] DELAY_MS [10])
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { realpathSync, copyFileSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, chmodSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BIN } from '../../test/helpers/paths.js';
import { SERVER_IP, StarTestbed, nodeIp } from '../../test/distribute/netns.js';
import { api, mountsUnder, waitFor } from '../../test/remote/harness.js';

const MIB = Number(process.env.BENCH_MIB ?? 500);
const RATE = Number(process.env.RATE_MBIT ?? 100);
const DELAY = Number(process.env.DELAY_MS ?? 10);
const WORKLOAD = `ls /; cat /etc/os-release; python3 -c "import json, email, http.client"`;
const PROXY_PORT = 8731;
const HTTP_PORT = 8732;

function sh(argv: string[], timeoutMs = 900_000): { code: number | null; out: string; err: string; ms: number } {
  const t = performance.now();
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
  return { code: r.status, out: r.stdout ?? '', err: (r.stderr ?? '') + (r.error ? String(r.error) : ''), ms: performance.now() - t };
}
function must(argv: string[], what: string): { out: string; ms: number } {
  const r = sh(argv);
  if (r.code !== 0) throw new Error(`${what}: ${r.err.trim()}`);
  return r;
}

/** Copies regular files and symlinks of `srcDirs` (in order) into root until `cap` bytes. */
function makeRootfs(root: string, cap: number): number {
  let total = 0;
  const need = new Set<string>();
  for (const b of ['/usr/bin/ls', '/usr/bin/dash', '/usr/bin/cat', '/usr/bin/python3.11']) {
    for (const l of must(['ldd', b], 'ldd').out.split('\n')) {
      const m = /(\/\S+) \(0x/.exec(l);
      if (m) {
        need.add(m[1]!.replace(/^\/lib/, '/usr/lib'));
        need.add(realpathSync(m[1]!).replace(/^\/lib/, '/usr/lib'));
      }
    }
  }
  const copy = (abs: string, force = false): void => {
    const dst = join(root, abs);
    if (existsSync(dst) || (total >= cap && !force)) return;
    const st = lstatSync(abs);
    mkdirSync(dirname(dst), { recursive: true });
    if (st.isSymbolicLink()) symlinkSync(readlinkSync(abs), dst);
    else if (st.isFile()) {
      copyFileSync(abs, dst);
      chmodSync(dst, st.mode & 0o7777);
      total += st.size;
    } else if (st.isDirectory()) {
      mkdirSync(dst, { recursive: true });
      for (const n of readdirSync(abs).sort()) copy(join(abs, n), force);
    }
  };
  // What the workload runs is always in, whatever the cap.
  for (const f of [...need, '/usr/bin/sh', '/usr/bin/dash', '/usr/bin/ls', '/usr/bin/cat', '/usr/bin/python3', '/usr/bin/python3.11', '/usr/lib/python3.11']) copy(f, true);
  for (const d of ['/usr/lib64', '/usr/bin', '/usr/sbin', '/usr/lib/python3.11', '/usr/lib/python3', '/usr/lib/x86_64-linux-gnu', '/usr/share']) copy(d);
  for (const [l, t] of [['bin', 'usr/bin'], ['lib', 'usr/lib'], ['lib64', 'usr/lib64'], ['sbin', 'usr/sbin']]) symlinkSync(t!, join(root, l!));
  mkdirSync(join(root, 'etc'));
  copyFileSync('/etc/os-release', join(root, 'etc/os-release'));
  for (const d of ['tmp', 'proc', 'dev', 'root']) mkdirSync(join(root, d));
  return total;
}

async function main(): Promise<void> {
  const root = mkdtempSync('/tmp/remote-bench-');
  chmodSync(root, 0o755);
  const tb = new StarTestbed(1, join(root, 'net'), { delay_ms: DELAY, rate_mbit: RATE });
  const node = tb.nodeNs[0]!;
  const procs: ChildProcess[] = [];
  const inNode = (argv: string[]): string[] => [...tb.inNs(node), ...argv];
  const inServer = (argv: string[]): string[] => [...tb.inNs(tb.serverNs), ...argv];
  let nydusd: ChildProcess | undefined;
  const mnt = join(root, 'mnt');
  const stopNydusd = async (): Promise<void> => {
    if (nydusd && nydusd.exitCode === null) {
      const p = nydusd;
      p.kill('SIGTERM');
      await waitFor('nydusd exit', 10_000, () => p.exitCode !== null || p.signalCode !== null).catch(() => p.kill('SIGKILL'));
    }
    if (mountsUnder(mnt).length) sh(['umount', '-l', mnt]);
  };
  try {
    const src = join(root, 'rootfs');
    const bytes = makeRootfs(src, MIB << 20);
    const img = join(root, 'img');
    mkdirSync(join(img, 'blobs'), { recursive: true });
    must([process.execPath, BIN('nydus-image'), 'create', '--fs-version', '6', '--compressor', 'zstd', '-B', join(img, 'bootstrap'), '-D', join(img, 'blobs'), '-J', join(img, 'out.json'), src], 'nydus-image create');
    const blobId = (JSON.parse(readFileSync(join(img, 'out.json'), 'utf8')) as { blobs: string[] }).blobs[0]!;
    const blobBytes = statSync(join(img, 'blobs', blobId)).size;
    mkdirSync(join(root, 'www'));
    must(['sh', '-c', `tar -C ${src} -cf - . | zstd -q -3 -T0 -o ${join(root, 'www/image.tar.zst')}`], 'tar.zst');
    const tarBytes = statSync(join(root, 'www/image.tar.zst')).size;

    tb.up();
    const spawnBg = (argv: string[]): ChildProcess => {
      const c = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
      procs.push(c);
      return c;
    };
    spawnBg(inServer([process.execPath, BIN('nydus-backend-proxy'), '--blobsdir', join(img, 'blobs'), '--address', SERVER_IP, '--port', String(PROXY_PORT)]));
    spawnBg(inServer(['python3', '-m', 'http.server', '--bind', SERVER_IP, '--directory', join(root, 'www'), String(HTTP_PORT)]));
    const proxyMetrics = (): { requests: number; bytesServed: number } => JSON.parse(sh(inNode(['curl', '-s', `http://${SERVER_IP}:${PROXY_PORT}/metrics`])).out || '{}');
    await waitFor('servers', 20_000, () => sh(inNode(['curl', '-sf', '-o', '/dev/null', `http://${SERVER_IP}:${HTTP_PORT}/`])).code === 0 && proxyMetrics().requests !== undefined, 200);

    const cfgFile = (cache: string, prefetch: boolean): string => {
      const f = join(root, `cfg-${prefetch ? 'pf' : 'lazy'}.json`);
      const cfg = {
        device: { backend: { type: 'registry', config: { scheme: 'http', host: `${SERVER_IP}:${PROXY_PORT}`, repo: 'bench', timeout: 30, connect_timeout: 10, retry_limit: 2 } }, cache: { type: 'blobcache', config: { work_dir: cache } } },
        mode: 'direct',
        digest_validate: true,
        fs_prefetch: { enable: prefetch, threads_count: 8, merging_size: 1 << 20, bandwidth_rate: 0, prefetch_all: prefetch },
      };
      spawnSync('sh', ['-c', `cat > ${f}`], { input: JSON.stringify(cfg) });
      return f;
    };
    const sock = join(root, 'api.sock');
    const mount = async (cache: string, prefetch: boolean): Promise<void> => {
      mkdirSync(mnt, { recursive: true });
      rmSync(sock, { force: true });
      nydusd = spawnBg(inNode([process.execPath, BIN('nydusd'), '--config', cfgFile(cache, prefetch), '--mountpoint', mnt, '--bootstrap', join(img, 'bootstrap'), '--apisock', sock, '--log-level', 'warn']));
      await waitFor('mount', 30_000, () => mountsUnder(mnt).includes(mnt) && existsSync(sock), 5);
    };
    const workload = (dir: string): number => must(['chroot', dir, '/bin/sh', '-c', WORKLOAD], 'workload').ms;

    // cold, lazily
    const cache = join(root, 'cache');
    let m0 = proxyMetrics();
    let t0 = performance.now();
    await mount(cache, false);
    const mountMs = performance.now() - t0;
    workload(mnt);
    const coldMs = performance.now() - t0;
    let m1 = proxyMetrics();
    const fs = await api(sock, '/api/v1/metrics');
    const dataRead = Number(fs.data_read);
    const fetched = m1.bytesServed - m0.bytesServed;
    const requests = m1.requests - m0.requests;
    await stopNydusd();

    // warm: same cache, fresh mount (kernel page cache of the old mount is gone)
    t0 = performance.now();
    await mount(cache, false);
    workload(mnt);
    const warmMs = performance.now() - t0;
    await stopNydusd();

    // OCI-like baseline: download the whole tar.zst over the link, untar, run
    const dest = join(root, 'untar');
    mkdirSync(dest);
    t0 = performance.now();
    must(inNode(['sh', '-c', `curl -sf http://${SERVER_IP}:${HTTP_PORT}/image.tar.zst | zstd -dc | tar -x -C ${dest}`]), 'download+untar');
    const untarMs = performance.now() - t0;
    workload(dest);
    const ociMs = performance.now() - t0;

    // full prefetch over the link
    m0 = proxyMetrics();
    t0 = performance.now();
    await mount(join(root, 'cache-pf'), true);
    await waitFor('data_all_ready', 900_000, async () => (await api(sock, '/api/v1/metrics/blobcache')).data_all_ready === true, 50);
    const prefetchMs = performance.now() - t0;
    m1 = proxyMetrics();
    await stopNydusd();
    const linkMs = ((blobBytes * 8) / (RATE * 1e6)) * 1000;

    const r = {
      link: { rate_mbit: RATE, delay_ms_one_way: DELAY },
      image: { files_bytes: bytes, blob_bytes: blobBytes, tar_zst_bytes: tarBytes },
      workload: WORKLOAD,
      cold: { total_ms: Math.round(coldMs), mount_ms: Math.round(mountMs), fetched_bytes: fetched, requests, data_read_bytes: dataRead, fetched_over_read: +(fetched / dataRead).toFixed(2), fetched_pct_of_blob: +((100 * fetched) / blobBytes).toFixed(2) },
      warm: { total_ms: Math.round(warmMs) },
      oci: { total_ms: Math.round(ociMs), download_untar_ms: Math.round(untarMs) },
      prefetch: { ms: Math.round(prefetchMs), fetched_bytes: m1.bytesServed - m0.bytesServed, requests: m1.requests - m0.requests, link_transfer_ms: Math.round(linkMs), ratio_vs_link: +(prefetchMs / linkMs).toFixed(3) },
      ratios: { oci_over_cold: +(ociMs / coldMs).toFixed(1), oci_over_warm: +(ociMs / warmMs).toFixed(1), cold_over_warm: +(coldMs / warmMs).toFixed(1) },
    };
    console.log(JSON.stringify(r, null, 2));
  } finally {
    await stopNydusd();
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
    await waitFor('server processes', 5_000, () => procs.every((p) => p.exitCode !== null || p.signalCode !== null)).catch(() => procs.forEach((p) => p.kill('SIGKILL')));
    tb.down();
    if (mountsUnder(root).length === 0) rmSync(root, { recursive: true, force: true });
    else console.error(`leaving ${root}: mounts remain`);
  }
}

void nodeIp;
await main();
