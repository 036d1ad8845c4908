// The evaluation of issue 13 ("性能测评"): the same root filesystem used nine ways, each measured for
// time to a usable mount, an `ls -lR` walk, a full read of the tree, a real workload (chroot python3
// importing json, email, http.server, sqlite3), bytes fetched from the backend and daemon peak RSS.
// Writes REPORT.md and one SVG chart per measure (vega-lite compiled, rendered headless by vega).
//
// Rows: native directory; FUSE + local; FUSE + remote first / cached; EROFS + local (kernel mount of
// bootstrap + exported .blob.data); EROFS on-demand (`nydusd erofs`) first / cached; squashfuse_ll;
// OCI pull + untar (skopeo copy + umoci unpack).
// Every measure runs on a fresh mount (so FUSE/EROFS page caches start empty): "first" rows also on
// a fresh blob cache, "cached" rows on a blob cache warmed once by a full read.
//
// Sizes: tiny/small (a python3 tree copied from this host; remote = nydus-backend-proxy on localhost)
// and full (`bash bench/eval/run.sh --full`: a debootstrap minbase + python3 tarball, remote = S3 and
// an OCI registry in a network namespace behind the 100 Mbit/s, 10 ms delay line; run.sh sets it up
// and runs this file inside the client namespace; page caches dropped before every measure).
// Full runs are resumable: the built images and each finished row are kept under EVAL_CACHE.
//
// Usage (root): bash bench/eval/run.sh [--full]   env: EVAL_SIZE=tiny|small|full, EVAL_OUT=<dir>
//   (default bench/eval), EVAL_RUNS=<n> (median of n; default 1, full 3), EVAL_ROWS=<a|b> (only rows
//   whose name contains one of these), EVAL_FRESH=1 (full: forget finished rows).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, copyFileSync, openSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, realpathSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { findConnectionId, isFuseMounted, unmountFuse } from '../../src/fuse/mount.js';
import { BIN, REPO_ROOT } from '../../test/helpers/paths.js';
import { until } from '../../test/helpers/poll.js';
import { erofsMountUnavailable } from '../../test/kernel/erofs-mount.js';
import { ErofsDaemon } from '../../test/kernel/erofs-ondemand-proc.js';
import { BackendProxy, registryBackend, v1Config } from '../../test/remote/harness.js';

const SIZE = process.env.EVAL_SIZE ?? 'small';
/** tiny (the suite's smoke run): only the stdlib files the workload loads, one mount per row. */
const TINY = SIZE === 'tiny';
const OUT = process.env.EVAL_OUT ?? join(REPO_ROOT, 'bench/eval');
const FULL = SIZE === 'full';
const RUNS = Math.max(1, Number(process.env.EVAL_RUNS ?? (FULL ? 3 : 1)));
/** Full size: built images and finished rows survive here between runs (outside the repository). */
const CACHE = process.env.EVAL_CACHE ?? '/var/cache/nydus-eval';
const ROOTFS_TAR = process.env.EVAL_ROOTFS_TAR ?? join(CACHE, 'rootfs-bookworm-minbase-python3.tar');
/** `|`-separated substrings (row names contain commas): only rows whose name contains one (for quick comparisons). */
const ROW_FILTER = process.env.EVAL_ROWS?.split('|').filter(Boolean);
const PY = 'python3.11';
const WORKLOAD = ['/usr/bin/python3', '-c', 'import json, email, http.server, sqlite3'];
/** The workload must not write .pyc files into the native directory (the read-only rows cannot). */
const WORKLOAD_ENV = { ...process.env, PYTHONDONTWRITEBYTECODE: '1' };

function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run the full size through: bash bench/eval/run.sh --full)`);
  return v;
}

/** Bytes received on the client side of the delay line (this process runs in the client namespace). */
function rxBytes(dev: string): number {
  const line = readFileSync('/proc/self/net/dev', 'utf8').split('\n').find((l) => l.trim().startsWith(`${dev}:`));
  if (!line) throw new Error(`network device ${dev} not in /proc/self/net/dev (not in the client namespace?)`);
  return Number(line.split(':')[1]!.trim().split(/\s+/)[0]);
}

/** Full size: every measure starts with cold page caches (native directory, blob caches, local blobs). */
function dropCaches(): void {
  if (!FULL) return;
  must(['sync'], 'sync');
  writeFileSync('/proc/sys/vm/drop_caches', '3');
}

function sh(argv: string[], timeoutMs = 900_000, environ?: NodeJS.ProcessEnv): { code: number | null; out: string; err: string; ms: number } {
  const t = performance.now();
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20, ...(environ ? { env: environ } : {}) });
  return { code: r.status, out: r.stdout ?? '', err: (r.stderr ?? '') + (r.error ? String(r.error) : ''), ms: performance.now() - t };
}
function must(argv: string[], what: string, environ?: NodeJS.ProcessEnv): { out: string; ms: number } {
  const r = sh(argv, undefined, environ);
  if (r.code !== 0) throw new Error(`${what} failed: ${r.err.trim().slice(0, 2000)}`);
  return r;
}

/**
 * python3 with the libraries it and its extension modules link, its stdlib minus tests/GUI (or, with
 * `only`, just those stdlib files), merged /usr.
 */
function makeRootfs(root: string, only?: Set<string>): void {
  const files = new Set<string>([`/usr/bin/${PY}`, '/usr/bin/dash']);
  /** Paths as the loader asks for them (→ real file), e.g. /lib64/ld-linux-x86-64.so.2. */
  const links = new Map<string, string>();
  const usr = (p: string): string => p.replace(/^\/(lib|lib64|bin|sbin)\//, '/usr/$1/');
  const dyn = `/usr/lib/${PY}/lib-dynload`;
  for (const bin of [`/usr/bin/${PY}`, ...readdirSync(dyn).map((n) => join(dyn, n)).filter((f) => !only || only.has(f)), '/usr/bin/dash']) {
    for (const l of must(['ldd', bin], `ldd ${bin}`).out.split('\n')) {
      const m = /(\/\S+) \(0x/.exec(l);
      if (!m) continue;
      const real = realpathSync(m[1]!);
      files.add(real);
      if (usr(m[1]!) !== usr(real)) links.set(usr(m[1]!), usr(real));
    }
  }
  const skip = new Set(['test', 'idlelib', 'tkinter', 'turtledemo', 'ensurepip', 'lib2to3', 'pydoc_data', 'distutils', 'site-packages', 'dist-packages', '__pycache__']);
  const copyTree = (abs: string): void => {
    const st = lstatSync(abs);
    const dst = join(root, abs);
    if (st.isDirectory()) {
      mkdirSync(dst, { recursive: true });
      for (const n of readdirSync(abs).sort()) if (!skip.has(n)) copyTree(join(abs, n));
    } else if (only && !only.has(abs)) {
      return;
    } else if (st.isSymbolicLink()) symlinkSync(readlinkSync(abs), dst);
    else if (st.isFile()) {
      copyFileSync(abs, dst);
      chmodSync(dst, st.mode & 0o7777);
    }
  };
  for (const f of files) {
    const p = usr(f);
    mkdirSync(join(root, dirname(p)), { recursive: true });
    if (!existsSync(join(root, p))) copyFileSync(f, join(root, p));
    chmodSync(join(root, p), statSync(f).mode & 0o7777);
  }
  for (const [from, to] of links) {
    mkdirSync(join(root, dirname(from)), { recursive: true });
    if (!existsSync(join(root, from))) symlinkSync(to, join(root, from));
  }
  copyTree(`/usr/lib/${PY}`);
  symlinkSync(PY, join(root, 'usr/bin/python3'));
  symlinkSync('dash', join(root, 'usr/bin/sh'));
  for (const [l, t] of [['bin', 'usr/bin'], ['lib', 'usr/lib'], ['lib64', 'usr/lib64'], ['sbin', 'usr/sbin']]) symlinkSync(t!, join(root, l!));
  mkdirSync(join(root, 'usr/sbin'), { recursive: true });
  mkdirSync(join(root, 'etc'));
  copyFileSync('/etc/os-release', join(root, 'etc/os-release'));
  for (const d of ['tmp', 'proc', 'dev', 'root']) mkdirSync(join(root, d));
}

interface Mounted {
  mnt: string;
  /** The blob cache directory of this mount, if it has its own. */
  cache?: string;
  pid?: number;
  teardown(): Promise<void>;
}

interface Row {
  name: string;
  /** Once, before the measures (e.g. warm a blob cache). */
  prepare?(): Promise<void>;
  /** A fresh mount; resolves once it is usable. */
  setup(): Promise<Mounted>;
  /** Backend bytes counter, for remote rows. */
  fetched?(): Promise<number>;
  /** Fixed bytes fetched (OCI: the layer blob). */
  fixedFetched?: number;
}

type MeasureName = 'mount_ms' | 'walk_ms' | 'read_ms' | 'workload_ms' | 'fetched_bytes' | 'rss_kib';
const MEASURES: Array<{ key: MeasureName; title: string; unit: string }> = [
  { key: 'mount_ms', title: 'Time to a usable mount', unit: 'ms' },
  { key: 'walk_ms', title: 'ls -lR walk', unit: 'ms' },
  { key: 'read_ms', title: 'Full read of the tree', unit: 'ms' },
  { key: 'workload_ms', title: 'Workload: chroot python3 -c "import json, email, http.server, sqlite3"', unit: 'ms' },
  { key: 'fetched_bytes', title: 'Bytes fetched from the backend (workload run, mount included)', unit: 'bytes' },
  { key: 'rss_kib', title: 'Daemon peak RSS (VmHWM, after the full read)', unit: 'KiB' },
];

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : NaN;
};

function peakRss(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

async function timed<T>(fn: () => Promise<T>): Promise<{ v: T; ms: number }> {
  const t = performance.now();
  const v = await fn();
  return { v, ms: performance.now() - t };
}

/** Row name → blob cache directory filled by that row's full-read measure. */
const fullCaches = new Map<string, string>();

/** Undo steps for a signal (Ctrl-C, kill): the current mount, the servers, the temp dir. */
const onSignal: Array<() => Promise<void> | void> = [];
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    process.stderr.write(`eval: ${sig}, cleaning up\n`);
    void (async () => {
      for (const f of onSignal.reverse()) await Promise.resolve(f()).catch(() => undefined);
      process.exit(130);
    })();
  });
}

async function measureRow(row: Row): Promise<Record<MeasureName, number | undefined>> {
  const mounts: number[] = [];
  const walk: number[] = [];
  const read: number[] = [];
  const work: number[] = [];
  const fetched: number[] = [];
  const rss: number[] = [];
  await row.prepare?.();
  // Normally each measure gets its own fresh mount; tiny runs them in order on one mount.
  const plan: Array<Array<'walk' | 'read' | 'workload'>> = TINY ? [['workload', 'walk', 'read']] : [['walk'], ['read'], ['workload']];
  for (let r = 0; r < RUNS; r++) {
    for (const kinds of plan) {
      dropCaches();
      const f0 = (await row.fetched?.()) ?? 0;
      const { v: m, ms } = await timed(() => row.setup());
      mounts.push(ms);
      onSignal.push(() => m.teardown());
      try {
        for (const kind of kinds) {
          if (kind === 'walk') walk.push(must(['sh', '-c', `ls -lR ${m.mnt} > /dev/null`], 'walk').ms);
          if (kind === 'read') {
            read.push(must(['sh', '-c', `find ${m.mnt} -type f -print0 | xargs -0 cat | wc -c`], 'full read').ms);
            // A complete blob cache: the matching "cached" row may start from it instead of warming its own.
            if (m.cache) fullCaches.set(row.name, m.cache);
            const k = peakRss(m.pid);
            if (k !== undefined) rss.push(k);
          }
          if (kind === 'workload') {
            work.push(must(['chroot', m.mnt, ...WORKLOAD], 'workload', WORKLOAD_ENV).ms);
            if (row.fetched) fetched.push((await row.fetched()) - f0);
          }
        }
      } finally {
        onSignal.pop();
        await m.teardown();
      }
    }
  }
  return {
    mount_ms: median(mounts),
    walk_ms: median(walk),
    read_ms: median(read),
    workload_ms: median(work),
    fetched_bytes: row.fixedFetched ?? (fetched.length ? median(fetched) : undefined),
    rss_kib: rss.length ? median(rss) : undefined,
  };
}

/** `nydusd` (FUSE) as a process; resolves once the mount answers. */
async function startFuse(dir: string, config: object, boot: string): Promise<Mounted> {
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt, { recursive: true });
  const cfg = join(dir, 'nydusd.json');
  writeFileSync(cfg, JSON.stringify(config));
  const p: ChildProcess = spawn(process.execPath, [BIN('nydusd'), '--config', cfg, '--mountpoint', mnt, '--bootstrap', boot, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  let gone = false;
  const exited = new Promise<void>((r) => p.once('exit', () => ((gone = true), r())));
  const real = realpathSync(mnt);
  const teardown = async (): Promise<void> => {
    if (!gone) {
      p.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (!gone) p.kill('SIGKILL');
    }
    if (isFuseMounted(real)) await unmountFuse(real, findConnectionId(real), 5000);
  };
  try {
    await until('nydusd to mount', () => {
      if (gone) throw new Error(`nydusd exited: ${err}`);
      return isFuseMounted(real);
    }, 30_000, 5);
    statSync(real);
  } catch (e) {
    await teardown();
    throw e;
  }
  return { mnt: real, pid: p.pid, teardown };
}

async function startErofsOndemand(dir: string, config: Record<string, unknown>, boot: string, blobId: string): Promise<Mounted> {
  const d = new ErofsDaemon(dir, join(dir, 'mnt'));
  try {
    await d.start(config, boot);
  } catch (e) {
    await d.clean([blobId, boot]);
    throw e;
  }
  return { mnt: realpathSync(d.mnt), pid: d.proc?.pid, teardown: () => d.clean([blobId, boot]) };
}

/** Kernel EROFS over the bootstrap and exported .blob.data files, all on loop devices. */
async function startErofsLocal(dir: string, boot: string, devices: string[]): Promise<Mounted> {
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt, { recursive: true });
  const loops: string[] = [];
  const teardown = async (): Promise<void> => {
    if (sh(['mountpoint', '-q', mnt]).code === 0 && sh(['umount', mnt]).code !== 0) sh(['umount', '-l', mnt]);
    for (const l of loops.reverse()) sh(['losetup', '-d', l]);
  };
  try {
    for (const f of [...devices, boot]) loops.push(must(['losetup', '--direct-io=on', '-r', '-f', '--show', f], 'losetup').out.trim());
    const o = ['ro', ...loops.slice(0, -1).map((l) => `device=${l}`)].join(',');
    must(['mount', '-t', 'erofs', '-o', o, loops[loops.length - 1]!, mnt], 'mount -t erofs');
  } catch (e) {
    await teardown();
    throw e;
  }
  return { mnt: realpathSync(mnt), teardown };
}

async function startSquashfuse(dir: string, img: string): Promise<Mounted> {
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt, { recursive: true });
  const real = realpathSync(mnt);
  const p = spawn('squashfuse_ll', ['-f', img, real], { stdio: 'ignore' });
  let gone = false;
  p.once('exit', () => (gone = true));
  const teardown = async (): Promise<void> => {
    if (isFuseMounted(real)) await unmountFuse(real, findConnectionId(real), 5000);
    if (!gone) p.kill('SIGTERM');
  };
  await until('squashfuse_ll to mount', () => {
    if (gone) throw new Error('squashfuse_ll exited');
    return isFuseMounted(real);
  }, 30_000, 5);
  return { mnt: real, pid: p.pid, teardown };
}

function version(argv: string[]): string {
  const r = sh(argv, 10_000);
  return (r.out + r.err).trim().split('\n')[0] ?? '?';
}

interface Result {
  row: string;
  values: Record<MeasureName, number | undefined>;
  /** When measured, and the 1-minute load average then. */
  at?: string;
  load?: number;
}

async function chart(results: Result[], key: MeasureName, title: string, unit: string): Promise<string> {
  const vega = await import('vega');
  const vl = await import('vega-lite');
  const values = results.filter((r) => r.values[key] !== undefined).map((r) => ({ row: r.row, value: r.values[key] }));
  const spec = vl.compile({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: 480,
    data: { values },
    mark: { type: 'bar', tooltip: true },
    encoding: {
      y: { field: 'row', type: 'nominal', sort: null, title: null },
      x: { field: 'value', type: 'quantitative', title: unit },
    },
  }).spec;
  const view = new vega.View(vega.parse(spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

const fmt = (v: number | undefined, unit: string): string => {
  if (v === undefined || Number.isNaN(v)) return '–';
  if (unit === 'bytes') return v >= 1 << 20 ? `${(v / (1 << 20)).toFixed(1)} MiB` : `${Math.round(v / 1024)} KiB`;
  if (unit === 'KiB') return `${(v / 1024).toFixed(0)} MiB`;
  return `${Math.round(v)}`;
};

interface Built {
  createMs: number;
  blobId: string;
  blobBytes: number;
  devices: string[];
  ociLayerBytes: number;
  treeBytes: number;
  files: number;
}

/** Builds every image of `src` under `work`: RAFS v6 (+ exported .blob.data), squashfs, OCI layout. */
function buildImages(work: string, src: string): Built {
  const img = join(work, 'img');
  const blobs = join(img, 'blobs');
  mkdirSync(blobs, { recursive: true });
  const boot = join(img, 'bootstrap');
  const create = must([process.execPath, BIN('nydus-image'), 'create', '--fs-version', '6', '--compressor', 'zstd', '-B', boot, '-D', blobs, '-J', join(img, 'out.json'), src], 'nydus-image create');
  const blobId = (JSON.parse(readFileSync(join(img, 'out.json'), 'utf8')) as { blobs: string[] }).blobs[0]!;
  const exported = join(img, 'blob-data');
  mkdirSync(exported);
  const devices = must([process.execPath, BIN('nydus-image'), 'export', '--block', boot, '-D', blobs, '--blob-data-dir', exported], 'nydus-image export').out.trim().split('\n');
  must(['mksquashfs', src, join(work, 'rootfs.sqfs'), '-comp', 'zstd', '-noappend', '-quiet'], 'mksquashfs');
  const oci = join(work, 'oci');
  must(['umoci', 'init', '--layout', oci], 'umoci init');
  must(['umoci', 'new', '--image', `${oci}:eval`], 'umoci new');
  must(['umoci', 'insert', '--image', `${oci}:eval`, src, '/'], 'umoci insert');
  return {
    createMs: create.ms,
    blobId,
    blobBytes: statSync(join(blobs, blobId)).size,
    devices,
    ociLayerBytes: readdirSync(join(oci, 'blobs/sha256')).reduce((n, f) => n + statSync(join(oci, 'blobs/sha256', f)).size, 0),
    treeBytes: Number(must(['du', '-sb', src], 'du').out.split('\t')[0]),
    files: Number(must(['sh', '-c', `find ${src} -xdev | wc -l`], 'count').out.trim()),
  };
}

/** A server process in the server network namespace (nsenter: only the network namespace changes). */
class NsServer {
  #p: ChildProcess | undefined;
  #gone = false;
  constructor(readonly what: string, readonly ns: string) {}
  start(argv: string[], logFile: string): void {
    const fd = openSync(logFile, 'a');
    this.#p = spawn('nsenter', [`--net=/var/run/netns/${this.ns}`, '--', ...argv], { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    this.#p.once('exit', () => (this.#gone = true));
  }
  async ready(probe: () => Promise<boolean>): Promise<void> {
    await until(`${this.what} to start`, async () => {
      if (this.#gone) throw new Error(`${this.what} exited`);
      return probe();
    }, 120_000, 100);
  }
  async stop(): Promise<void> {
    const p = this.#p;
    if (!p || this.#gone) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
    if (!this.#gone) p.kill('SIGKILL');
  }
}

const ok = (url: string, init?: RequestInit): Promise<boolean> => fetch(url, init).then(async (r) => (await r.arrayBuffer(), r.status < 300), () => false);

/** What a full run needs from run.sh: the namespaces and the delay line. */
interface Net {
  serverNs: string;
  serverIp: string;
  dev: string;
  link: string;
}

interface Remote {
  /** nydusd backend config for the RAFS blob. */
  backend: { type: string; config: Record<string, unknown> };
  fetched(): Promise<number>;
  /** skopeo source reference + flags for the OCI row (full size: a registry behind the line). */
  ociPull(dest: string): void;
  describe: string;
  stop(): Promise<void>;
}

async function localRemote(blobs: string, oci: string): Promise<Remote> {
  const p = new BackendProxy(blobs);
  await p.start();
  return {
    backend: registryBackend(p.host, 'eval'),
    fetched: async () => (await p.metrics()).bytesServed,
    ociPull: (dest) => void must(['skopeo', 'copy', '-q', `oci:${oci}:eval`, `oci:${dest}:eval`], 'skopeo copy'),
    describe: 'nydus-backend-proxy on 127.0.0.1 (registry backend), no delay line; OCI: skopeo oci: → oci: (local)',
    stop: () => p.stop(),
  };
}

/**
 * radosgw on a one-node Ceph (bench/eval/ceph.sh) in the server namespace, seeded with the blob; or
 * undefined (with the reason on stderr) when it does not come up.
 */
function startRadosgw(net: Net, root: string, blob: string, blobId: string): { stop(): void; version: string } | undefined {
  if (process.env.EVAL_S3 === 's3rver') return undefined;
  const dir = join(root, 'ceph');
  const script = join(REPO_ROOT, 'bench/eval/ceph.sh');
  const inNs = (args: string[], ms: number): ReturnType<typeof sh> => sh(['nsenter', `--net=/var/run/netns/${net.serverNs}`, '--', 'bash', script, ...args], ms);
  const stop = (): void => void sh(['bash', script, 'stop', dir], 60_000);
  // A signal during the (blocking) start-up is handled after it: stop the daemons before the temp dir with their pid files goes.
  onSignal.push(stop);
  const up = inNs(['start', dir, net.serverIp, '7480', 'nydus'], 600_000);
  if (up.code === 0 && inNs(['put', net.serverIp, '7480', `nydus/eval/${blobId}`, blob], 600_000).code === 0) return { stop, version: version(['radosgw', '--version']) };
  process.stderr.write(`eval: radosgw did not come up, falling back to s3rver: ${(up.err || up.out).trim().split('\n').slice(-3).join(' / ')}\n`);
  stop();
  return undefined;
}

/** S3 (radosgw, else s3rver) and docker-registry in the server namespace, reached through the delay line. */
async function lineRemote(net: Net, root: string, blob: string, blobId: string, oci: string): Promise<Remote> {
  const servers: NsServer[] = [];
  let rgw: ReturnType<typeof startRadosgw>;
  const stop = async (): Promise<void> => {
    rgw?.stop();
    await Promise.all(servers.map((s) => s.stop()));
  };
  try {
    let s3: { endpoint: string; key: string; secret: string; describe: string };
    rgw = startRadosgw(net, root, blob, blobId);
    if (rgw) s3 = { endpoint: `${net.serverIp}:7480`, key: 'EVALKEY', secret: 'EVALSECRET', describe: `S3 = radosgw (${rgw.version}) on a one-node Ceph (mon + one bluestore OSD on a file), started by the bench` };
    else {
      const s3dir = join(root, 's3');
      mkdirSync(s3dir);
      const srv = new NsServer('s3rver', net.serverNs);
      servers.push(srv);
      const s3url = `http://${net.serverIp}:9000`;
      srv.start([process.execPath, join(REPO_ROOT, 'node_modules/s3rver/bin/s3rver.js'), '-d', s3dir, '-a', net.serverIp, '-p', '9000', '-s', '--configure-bucket', 'nydus'], join(root, 's3rver.log'));
      await srv.ready(() => ok(`${s3url}/nydus`, { method: 'HEAD' }));
      // s3rver accepts unsigned PUTs (nydusd's GETs are signed).
      if (!(await ok(`${s3url}/nydus/eval/${blobId}`, { method: 'PUT', body: readFileSync(blob), headers: { 'content-type': 'application/octet-stream' } }))) throw new Error('seeding the blob into s3rver failed');
      const v = JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules/s3rver/package.json'), 'utf8')) as { version: string };
      s3 = { endpoint: `${net.serverIp}:9000`, key: 'S3RVER', secret: 'S3RVER', describe: `S3 = s3rver ${v.version} (fallback: radosgw did not come up)` };
    }
    const reg = new NsServer('docker-registry', net.serverNs);
    servers.push(reg);
    const regYml = join(root, 'registry.yml');
    writeFileSync(regYml, `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${join(root, 'registry')}\nhttp:\n  addr: ${net.serverIp}:5000\n`);
    reg.start(['docker-registry', 'serve', regYml], join(root, 'registry.log'));
    await reg.ready(() => ok(`http://${net.serverIp}:5000/v2/`));
    must(['skopeo', 'copy', '-q', '--dest-tls-verify=false', `oci:${oci}:eval`, `docker://${net.serverIp}:5000/eval:latest`], 'skopeo push to the registry');
    return {
      backend: {
        type: 's3',
        config: { scheme: 'http', endpoint: s3.endpoint, region: 'us-east-1', bucket_name: 'nydus', object_prefix: 'eval/', access_key_id: s3.key, access_key_secret: s3.secret, timeout: 60, connect_timeout: 10, retry_limit: 2 },
      },
      fetched: async () => rxBytes(net.dev),
      ociPull: (dest) => void must(['skopeo', 'copy', '-q', '--src-tls-verify=false', `docker://${net.serverIp}:5000/eval:latest`, `oci:${dest}:eval`], 'skopeo copy'),
      describe: `${s3.describe}, and docker-registry (distribution) for the OCI row, both in a network namespace behind ${net.link}; bytes fetched = bytes received on the client side of the line (HTTP headers included)`,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

function gitRev(): string {
  const r = sh(['git', '-C', REPO_ROOT, 'describe', '--always', '--dirty'], 10_000);
  return r.code === 0 ? r.out.trim() : '?';
}

async function main(): Promise<void> {
  if (!['tiny', 'small', 'full'].includes(SIZE)) throw new Error(`EVAL_SIZE=${SIZE}: expected tiny, small or full`);
  if (process.getuid?.() !== 0) throw new Error('needs root (mounts, loop devices, chroot)');
  const why = erofsMountUnavailable();
  if (why) throw new Error(`kernel EROFS unavailable: ${why}`);
  const net: Net | undefined = FULL ? { serverNs: env('EVAL_SERVER_NS'), serverIp: env('EVAL_SERVER_IP'), dev: env('EVAL_NET_DEV'), link: process.env.EVAL_LINK ?? 'the delay line' } : undefined;
  if (net) rxBytes(net.dev);
  const root = mkdtempSync('/tmp/nydus-eval-');
  chmodSync(root, 0o755);
  const remote: { r?: Remote } = {};
  onSignal.push(() => rmSync(root, { recursive: true, force: true }), () => remote.r?.stop());
  const started = new Date();
  const load0 = loadavg();
  try {
    // The tree and its images: full size builds them once per rootfs tarball under EVAL_CACHE.
    let work = root;
    let built: Built;
    if (FULL) {
      if (!existsSync(ROOTFS_TAR)) throw new Error(`${ROOTFS_TAR} missing (bash bench/eval/run.sh --full builds it with debootstrap)`);
      const st = statSync(ROOTFS_TAR);
      work = join(CACHE, `build-${st.size}-${Math.floor(st.mtimeMs)}`);
      const done = join(work, 'built.json');
      if (existsSync(done)) built = JSON.parse(readFileSync(done, 'utf8')) as Built;
      else {
        rmSync(work, { recursive: true, force: true });
        mkdirSync(join(work, 'rootfs'), { recursive: true });
        process.stderr.write(`eval: building images under ${work}\n`);
        must(['tar', '-C', join(work, 'rootfs'), '--numeric-owner', '--xattrs', '-xf', ROOTFS_TAR], 'tar -x rootfs');
        built = buildImages(work, join(work, 'rootfs'));
        writeFileSync(done, JSON.stringify(built));
      }
    } else {
      const src = join(root, 'rootfs');
      let only: Set<string> | undefined;
      if (TINY) {
        const list = must([`/usr/bin/${PY}`, '-c', `${WORKLOAD[2]}, sys; print("\\n".join(m.__file__ for m in list(sys.modules.values()) if getattr(m, "__file__", None)))`], 'module list');
        only = new Set(list.out.split('\n').filter((l) => l.startsWith(`/usr/lib/${PY}/`)));
      }
      makeRootfs(src, only);
      built = buildImages(root, src);
    }
    const src = join(work, 'rootfs');
    must(['chroot', src, ...WORKLOAD], 'workload on the source tree', WORKLOAD_ENV);
    const { blobId, blobBytes, devices, ociLayerBytes, treeBytes } = built;
    const blobs = join(work, 'img/blobs');
    const boot = join(work, 'img/bootstrap');
    const sq = join(work, 'rootfs.sqfs');
    const oci = join(work, 'oci');

    remote.r = net ? await lineRemote(net, root, join(blobs, blobId), blobId, oci) : await localRemote(blobs, oci);
    const rem = remote.r;
    const fetched = (): Promise<number> => rem.fetched();
    let seq = 0;
    const fresh = (tag: string): string => {
      const d = join(root, 'run', `${tag}-${seq++}`);
      mkdirSync(d, { recursive: true });
      return d;
    };
    // digest_validate off as in upstream's example configs (and the local rows): with it on, the
    // storage does not amplify user reads (CI entries carry no digest), and a tree of small files
    // becomes one backend request per file.
    const remoteCfg = (cache: string): Record<string, unknown> => ({ ...v1Config({ backend: rem.backend, workDir: cache }), digest_validate: false, enable_xattr: true });
    const localCfg = (cache: string): Record<string, unknown> => ({
      device: { backend: { type: 'localfs', config: { dir: blobs } }, cache: { type: 'blobcache', config: { work_dir: cache } } },
      mode: 'direct',
      digest_validate: false,
      enable_xattr: true,
    });
    const warmFuseCache = join(root, 'warm-fuse');
    const warmErofsCache = join(root, 'warm-erofs');
    /** Takes over the cache a "first" row's full read filled (saves a second download over the line). */
    const warmFrom = (row: string, dir: string): boolean => {
      const c = fullCaches.get(row);
      if (!c || !existsSync(c)) return false;
      renameSync(c, dir);
      fullCaches.delete(row);
      return true;
    };
    const fullRead = (mnt: string): void => void must(['sh', '-c', `find ${mnt} -type f -print0 | xargs -0 cat | wc -c`], 'warming read');

    const rows: Row[] = [
      { name: 'native directory', setup: async () => ({ mnt: src, teardown: async () => undefined }) },
      {
        name: 'FUSE + local',
        setup: () => {
          const d = fresh('fuse-local');
          return startFuse(d, localCfg(join(d, 'cache')), boot);
        },
      },
      {
        name: 'FUSE + remote, first',
        fetched,
        setup: async () => {
          const d = fresh('fuse-first');
          return { ...(await startFuse(d, remoteCfg(join(d, 'cache')), boot)), cache: join(d, 'cache') };
        },
      },
      {
        name: 'FUSE + remote, cached',
        fetched,
        prepare: async () => {
          if (warmFrom('FUSE + remote, first', warmFuseCache)) return;
          const m = await startFuse(fresh('fuse-warm'), remoteCfg(warmFuseCache), boot);
          try {
            fullRead(m.mnt);
          } finally {
            await m.teardown();
          }
        },
        setup: () => startFuse(fresh('fuse-cached'), remoteCfg(warmFuseCache), boot),
      },
      { name: 'EROFS + local', setup: () => startErofsLocal(fresh('erofs-local'), boot, devices) },
      {
        name: 'EROFS on-demand, first',
        fetched,
        setup: async () => {
          const d = fresh('erofs-first');
          return { ...(await startErofsOndemand(d, remoteCfg(join(d, 'cache')), boot, blobId)), cache: join(d, 'cache') };
        },
      },
      {
        name: 'EROFS on-demand, cached',
        fetched,
        prepare: async () => {
          if (warmFrom('EROFS on-demand, first', warmErofsCache)) return;
          const m = await startErofsOndemand(fresh('erofs-warm'), remoteCfg(warmErofsCache), boot, blobId);
          try {
            fullRead(m.mnt);
          } finally {
            await m.teardown();
          }
        },
        setup: () => startErofsOndemand(fresh('erofs-cached'), remoteCfg(warmErofsCache), boot, blobId),
      },
      { name: 'squashfuse_ll', setup: () => startSquashfuse(fresh('squashfuse'), sq) },
      {
        name: 'OCI pull + untar (skopeo + umoci)',
        ...(net ? { fetched } : { fixedFetched: ociLayerBytes }),
        setup: async () => {
          const d = fresh('oci');
          rem.ociPull(join(d, 'layout'));
          must(['umoci', 'unpack', '--image', `${join(d, 'layout')}:eval`, join(d, 'bundle')], 'umoci unpack');
          return { mnt: join(d, 'bundle/rootfs'), teardown: async () => rmSync(d, { recursive: true, force: true }) };
        },
      },
    ];

    // Full size resumes an interrupted run: its finished rows are kept until a report is written.
    // (A run of some rows only, EVAL_ROWS, neither resumes nor leaves rows for a later full run.)
    const resumeFile = FULL && !ROW_FILTER ? join(work, `results-runs${RUNS}.json`) : undefined;
    if (resumeFile && process.env.EVAL_FRESH) rmSync(resumeFile, { force: true });
    const kept: Record<string, Result> = resumeFile && existsSync(resumeFile) ? (JSON.parse(readFileSync(resumeFile, 'utf8')) as Record<string, Result>) : {};
    const results: Result[] = [];
    for (const row of rows.filter((r) => !ROW_FILTER || ROW_FILTER.some((f) => r.name.includes(f)))) {
      const old = kept[row.name];
      if (old) {
        process.stderr.write(`eval: ${row.name} (kept from an earlier run: ${old.at ?? '?'})\n`);
        results.push(old);
        continue;
      }
      process.stderr.write(`eval: ${row.name} (${new Date().toISOString()}, load ${loadavg().map((l) => l.toFixed(1)).join(' ')})\n`);
      const r: Result = { row: row.name, values: await measureRow(row), at: new Date().toISOString(), load: loadavg()[0] };
      results.push(r);
      if (resumeFile) {
        kept[row.name] = r;
        writeFileSync(resumeFile, JSON.stringify(kept, null, 1));
      }
    }
    const load1 = loadavg();

    // Report + charts.
    mkdirSync(join(OUT, 'charts'), { recursive: true });
    const chartFiles: string[] = [];
    for (const m of MEASURES) {
      const file = `charts/${m.key}.svg`;
      writeFileSync(join(OUT, file), await chart(results, m.key, m.title, m.unit));
      chartFiles.push(file);
    }
    const get = (row: string, k: MeasureName): number | undefined => results.find((r) => r.row === row)?.values[k];
    const targets: string[] = [];
    // Bytes fetched and daemon RSS have no EROFS + local counterpart (no backend, no daemon).
    for (const k of ['mount_ms', 'walk_ms', 'read_ms', 'workload_ms'] as const) {
      const a = get('EROFS on-demand, cached', k);
      const b = get('EROFS + local', k);
      if (a !== undefined && b !== undefined) targets.push(`| EROFS on-demand cached ≤ 1.2× EROFS + local: ${k} | ${(a / b).toFixed(2)}× | ${a <= 1.2 * b ? 'met' : 'missed'} |`);
    }
    const odw = get('EROFS on-demand, first', 'workload_ms');
    const fw = get('FUSE + remote, first', 'workload_ms');
    if (odw !== undefined && fw !== undefined) targets.push(`| EROFS on-demand first workload ≥ 1.0× FUSE + remote first (speed) | ${(fw / odw).toFixed(2)}× | ${odw <= fw ? 'met' : 'missed'} |`);

    const cpu = cpus();
    const secs = (Date.now() - started.getTime()) / 1000;
    const la = (l: number[]): string => l.map((x) => x.toFixed(2)).join(', ');
    const tree = FULL
      ? `Debian bookworm \`debootstrap --variant=minbase --include=python3\` (${built.files} inodes, ${(treeBytes / 2 ** 20).toFixed(1)} MiB; tarball ${ROOTFS_TAR})`
      : `python3.11 with its libraries and ${TINY ? 'only the stdlib files the workload imports; one mount per row, measures in the order workload, walk, read' : 'stdlib (no tests/GUI)'}, ${(treeBytes / 2 ** 20).toFixed(1)} MiB`;
    const cmd = FULL ? 'bash bench/eval/run.sh --full' : `EVAL_SIZE=${SIZE} bash bench/eval/run.sh`;
    const lines = [
      '# Evaluation: FUSE / EROFS × local / remote × first / cached',
      '',
      `Generated by \`${cmd}\` (EVAL_SIZE=${SIZE}, EVAL_RUNS=${RUNS}: medians of ${RUNS} run${RUNS > 1 ? 's' : ''}) on ${started.toISOString()}; this invocation took ${Math.round(secs)} s${results.some((r) => r.at && new Date(r.at) < started) ? ' (some rows kept from an earlier, interrupted run: see "measured at")' : ''}.`,
      '',
      `Machine: ${cpu.length} × ${cpu[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Linux ${release()}, Node ${process.version}, nydus-ts ${gitRev()}.`,
      `Load average (1, 5, 15 min) at start: ${la(load0)}; at the end: ${la(load1)}.${process.env.EVAL_NOTE ? ` ${process.env.EVAL_NOTE}` : ''}`,
      `Versions: ${version(['dpkg-query', '-W', '-f', 'squashfuse ${Version}', 'squashfuse'])}; ${version(['mksquashfs', '-version'])}; ${version(['skopeo', '--version'])}; ${version(['umoci', '--version'])}; ${version(['losetup', '--version'])}.`,
      '',
      `Tree (${SIZE}): ${tree}. Image: RAFS v6, zstd, 1 MiB chunks, blob ${(blobBytes / 2 ** 20).toFixed(1)} MiB (built in ${Math.round(built.createMs)} ms). Remote: ${rem.describe}. OCI: one layer, ${(ociLayerBytes / 2 ** 20).toFixed(1)} MiB in the layout.`,
      '',
      `${TINY ? 'Each row runs its measures on one fresh mount' : 'Every measure runs on a fresh mount'} (empty FUSE/EROFS page caches); "first" rows also on a fresh blob cache, "cached" rows on a blob cache warmed once by a full read (the cache the "first" row's full-read measure filled, when that row ran in the same invocation). ${FULL ? 'The host page cache is dropped (sync; echo 3 > /proc/sys/vm/drop_caches) before every measure, so the native directory, blob cache files and local blobs come from disk.' : 'The host page cache is not dropped (the native directory, blob cache files and local blobs are warm).'} Mount = from starting the daemon (or skopeo) to a usable mount point; native directory: 0. nydusd config: blobcache, \`digest_validate: false\` (reads amplified to 1 MiB backend requests), no prefetch.`,
      '',
      `| row | ${MEASURES.map((m) => `${m.key.replace(/_(ms|bytes|kib)$/, '')} (${m.unit === 'KiB' ? 'MiB' : m.unit === 'bytes' ? 'bytes' : m.unit})`).join(' | ')} |`,
      `|---|${MEASURES.map(() => '---:').join('|')}|`,
      ...results.map((r) => `| ${r.row} | ${MEASURES.map((m) => fmt(r.values[m.key], m.unit)).join(' | ')} |`),
      '',
      '## Targets',
      '',
      '| target | ratio | |',
      '|---|---:|---|',
      ...targets,
      '',
      '## Charts',
      '',
      ...chartFiles.map((f) => `![${f}](${f})`),
      '',
      ...(FULL
        ? ['## Measured at', '', ...results.map((r) => `- ${r.row}: ${r.at ?? '?'} (load ${r.load?.toFixed(2) ?? '?'})`), '']
        : ['## Reduced size', '', `This is the reduced-size run (EVAL_SIZE=${SIZE}), not the full evaluation: the full one is \`bash bench/eval/run.sh --full\` (debootstrap rootfs, S3 over the 100 Mbit/s 10 ms line).`, '']),
      `Command: \`${cmd}\` (root; env EVAL_RUNS, EVAL_ROWS, EVAL_OUT, EVAL_FRESH, EVAL_NOTE).`,
      '',
    ];
    writeFileSync(join(OUT, 'REPORT.md'), lines.join('\n'));
    // The next run measures afresh (the numbers stay in the report and in this archive).
    if (resumeFile && existsSync(resumeFile)) renameSync(resumeFile, resumeFile.replace(/\.json$/, `-${started.toISOString()}.json`));
    process.stdout.write(`${JSON.stringify({ report: join(OUT, 'REPORT.md'), root, results })}\n`);
  } finally {
    await remote.r?.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`eval: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
