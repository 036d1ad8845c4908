// File-distribution benchmark: one server and three nodes in network namespaces, each node on its
// own link (delay line: RATE_MBIT, DELAY_MS one way). Measures, for the same two directories:
//   nydus: bundle fetch + start.sh until all nodes have a usable mount; until all hold a complete
//          copy (full prefetch); server egress (nydus-backend-proxy /metrics) vs compressed size
//   copy baseline: plain HTTP download of a tarball of the directories (python http.server in the
//          server namespace) piped into tar on each node, all nodes at once — rsync/scp/nc are not
//          installed here, and an HTTP stream over the same link is what scp/tar|nc would move.
// Usage: node dist/bench/distribute/bench.js  (env BENCH_MIB [64], RATE_MBIT [100], DELAY_MS [10])
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, REPO_ROOT } from '../../test/helpers/paths.js';
import { SERVER_IP, StarTestbed } from '../../test/distribute/netns.js';
import { makeTree, snapshot, treeBytes } from '../../test/distribute/tree.js';

const MIB = Number(process.env.BENCH_MIB ?? 64);
const RATE = Number(process.env.RATE_MBIT ?? 100);
const DELAY = Number(process.env.DELAY_MS ?? 10);
const NODES = 3;
const IMAGES = ['rootfs1', 'rootfs2'];
const ENV = { ...process.env, NYDUS_DISTRIBUTE_SERVICE: 'process' };

function sh(argv: string[], timeoutMs = 600_000): { code: number | null; out: string; err: string } {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: timeoutMs, env: ENV, maxBuffer: 64 << 20 });
  return { code: r.status, out: r.stdout ?? '', err: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}
function must(argv: string[], what: string): string {
  const r = sh(argv);
  if (r.code !== 0) throw new Error(`${what}: ${r.err.trim()}`);
  return r.out;
}
/** Runs commands concurrently (one per node); resolves with each one's finish time. */
function parallel(cmds: string[][], t0: number): Promise<number[]> {
  return Promise.all(cmds.map((argv) => new Promise<number>((resolve, reject) => {
    const c = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env: ENV });
    let err = '';
    c.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    c.on('exit', (code) => (code === 0 ? resolve(Date.now() - t0) : reject(new Error(`${argv.join(' ')}: ${err.trim()}`))));
  })));
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const root = mkdtempSync('/tmp/ndist-bench-');
  chmodSync(root, 0o755);
  const tb = new StarTestbed(NODES, join(root, 'net'), { delay_ms: DELAY, rate_mbit: RATE });
  const W = join(root, 'server', 'nydusdfile');
  const nodeDir = (i: number) => join(root, `node${i + 1}`);
  let http: ReturnType<typeof spawn> | undefined;
  try {
    let bytes = 0;
    for (const [k, img] of IMAGES.entries()) {
      const d = join(root, 'src', img);
      mkdirSync(d, { recursive: true });
      makeTree(d, img, k === 0 ? Math.ceil(MIB * 0.6) : Math.floor(MIB * 0.4));
      bytes += treeBytes(snapshot(d));
    }
    tb.up();
    mkdirSync(join(root, 'server'));
    const dirs = IMAGES.map((i) => join(root, 'src', i)).join(',');
    const tConv = Date.now();
    must([...tb.inNs(tb.serverNs), 'sh', '-c', `cd ${join(root, 'server')} && sh ${REPO_ROOT}/scripts/distribute/serverstart.sh -i ${SERVER_IP} -d ${dirs} --bundle --port 8000`], 'serverstart');
    const convertMs = Date.now() - tConv;
    const blobDir = join(W, 'serverfile', 'nydusblobs');
    const compressed = readdirSync(blobDir).reduce((s, b) => s + statSync(join(blobDir, b)).size, 0);

    // Copy baseline first (cold links): tarball over HTTP into tar on every node at once.
    const pub = join(root, 'pub');
    mkdirSync(pub);
    must(['tar', '-cf', join(pub, 'dirs.tar'), '-C', join(root, 'src'), ...IMAGES], 'tar');
    http = spawn(tb.inNs(tb.serverNs)[0]!, [...tb.inNs(tb.serverNs).slice(1), 'python3', '-m', 'http.server', '--bind', SERVER_IP, '8080', '--directory', pub], { stdio: 'ignore' });
    for (let i = 0; i < 50 && sh([...tb.inNs(tb.nodeNs[0]!), 'curl', '-sf', '-o', '/dev/null', `http://${SERVER_IP}:8080/`]).code !== 0; i++) await sleep(100);
    for (let i = 0; i < NODES; i++) mkdirSync(join(nodeDir(i), 'copy'), { recursive: true });
    let t0 = Date.now();
    const copyDone = await parallel(tb.nodeNs.map((ns, i) => [...tb.inNs(ns), 'sh', '-c', `curl -sf http://${SERVER_IP}:8080/dirs.tar | tar -x -C ${join(nodeDir(i), 'copy')}`]), t0);
    const copyMs = Math.max(...copyDone);
    http.kill();
    http = undefined;

    // nydus: fetch the bundles (tiny) over the same link, start.sh with --prefetch on every node.
    const proxy = (p: string) => must([...tb.inNs(tb.nodeNs[0]!), 'curl', '-sf', `http://${SERVER_IP}:8000${p}`], 'metrics');
    const before = (JSON.parse(proxy('/metrics')) as { bytesServed: number }).bytesServed;
    http = spawn(tb.inNs(tb.serverNs)[0]!, [...tb.inNs(tb.serverNs).slice(1), 'python3', '-m', 'http.server', '--bind', SERVER_IP, '8081', '--directory', W], { stdio: 'ignore' });
    for (let i = 0; i < 50 && sh([...tb.inNs(tb.nodeNs[0]!), 'curl', '-sf', '-o', '/dev/null', `http://${SERVER_IP}:8081/`]).code !== 0; i++) await sleep(100);
    t0 = Date.now();
    const mountDone = await parallel(tb.nodeNs.map((ns, i) => [...tb.inNs(ns), 'sh', '-c', IMAGES.map((img) =>
      `curl -sf http://${SERVER_IP}:8081/${img}.tar.gz | tar -xz -C ${nodeDir(i)} && sh ${join(nodeDir(i), img, 'start.sh')} ${join(nodeDir(i), `mnt-${img}`)} --prefetch`).join(' && ')]), t0);
    const mountMs = Math.max(...mountDone);
    const ready = (i: number, img: string) => {
      const r = sh([process.execPath, BIN('nydus-distribute'), 'node', 'status', '--json', '--bundle-dir', join(nodeDir(i), img)]);
      return r.code === 0 && (JSON.parse(r.out) as { dataAllReady: boolean }).dataAllReady;
    };
    const completeAt: number[] = [];
    for (let i = 0; i < NODES; i++) {
      while (!IMAGES.every((img) => ready(i, img))) {
        if (Date.now() - t0 > 600_000) throw new Error(`node${i + 1}: prefetch did not complete in 10 min`);
        await sleep(100);
      }
      completeAt.push(Date.now() - t0);
    }
    const completeMs = Math.max(...completeAt);
    const egress = (JSON.parse(proxy('/metrics')) as { bytesServed: number }).bytesServed - before;
    const res = {
      data_bytes: bytes, compressed_bytes: compressed, link: `${RATE} Mbit/s, ${DELAY} ms one way, per node`, nodes: NODES,
      convert_ms: convertMs, copy_all_nodes_ms: copyMs, nydus_usable_mount_ms: mountMs, nydus_complete_copy_ms: completeMs,
      mount_speedup_vs_copy: +(copyMs / mountMs).toFixed(1), complete_vs_copy: +(completeMs / copyMs).toFixed(2),
      egress_bytes: egress, egress_over_compressed: +(egress / compressed).toFixed(3),
    };
    console.log(JSON.stringify(res, null, 2));
    console.log(`usable mount on all ${NODES} nodes after ${mountMs} ms vs copy finished after ${copyMs} ms: ${res.mount_speedup_vs_copy}x sooner (target >= 10x)`);
    console.log(`complete copy via nydus prefetch after ${completeMs} ms (${res.complete_vs_copy}x the copy time)`);
    console.log(`server egress ${egress} B for ${NODES} full prefetches = ${res.egress_over_compressed}x compressed size ${compressed} B (target <= 3.1x)`);
  } finally {
    http?.kill();
    for (let i = 0; i < NODES; i++) for (const img of IMAGES) if (existsSync(join(nodeDir(i), img, '.nydus-distribute-node.json'))) sh([process.execPath, BIN('nydus-distribute'), 'node', 'clean', '--bundle-dir', join(nodeDir(i), img)], 60_000);
    if (existsSync(W)) sh([process.execPath, BIN('nydus-distribute'), 'server', 'clean', '--work-dir', W], 60_000);
    tb.down();
    const left = readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l.includes(root));
    if (left.length === 0) rmSync(root, { recursive: true, force: true });
    else console.error(`mounts left under ${root}:\n${left.join('\n')}`);
  }
}

await main();
