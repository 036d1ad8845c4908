// Node side: run nydusd (as a service) on the bundle's bootstrap at <bundle>/lower, pulling from
// the server on demand and caching under <bundle>/cache, and put a writable overlay at the user's
// mount point (writes land in <bundle>/overlay/upper). `clean` unmounts (bounded, lazy fallback),
// stops the service and removes what start created; `status` tells how much is cached and whether
// the server is still needed.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { apiCall } from '../api/client.js';
import { NydusError } from '../util/errors.js';
import { BOOTSTRAP, CONFIG, Created, NODE_STATE, readJson, removeCreated, runtimeConfig, writeJson, type NydusdV1Config } from './layout.js';
import { mountAt, mountOverlay, unmountAll } from './mounts.js';
import { toolArgv, waitFor } from './proc.js';
import { ensureService, serviceFiles, serviceLogTail, serviceRunning, stopService, type ServiceHandle, type ServiceSpec } from './service.js';

export interface NodeState {
  mount: string;
  bundleDir: string;
  apisock: string;
  prefetch: boolean;
  service: ServiceHandle;
  created: string[];
}

export interface NodePaths {
  dir: string;
  lower: string;
  cache: string;
  overlay: string;
  upper: string;
  work: string;
  runtimeConfig: string;
  state: string;
  apisock: string;
}

export function nodePaths(bundleDir: string): NodePaths {
  const dir = resolve(bundleDir);
  const hash = createHash('sha256').update(dir).digest('hex').slice(0, 12);
  const sock = join(dir, 'nydusd.sock');
  return {
    dir,
    lower: join(dir, 'lower'),
    cache: join(dir, 'cache'),
    overlay: join(dir, 'overlay'),
    upper: join(dir, 'overlay', 'upper'),
    work: join(dir, 'overlay', 'work'),
    runtimeConfig: join(dir, 'nydusd.json'),
    state: join(dir, NODE_STATE),
    // sun_path holds 108 bytes: a deep bundle dir gets its socket under /run instead.
    apisock: Buffer.byteLength(sock) < 100 ? sock : `/run/nydus-distribute-${hash}.sock`,
  };
}

/** One unit per bundle: several bundles (multi-arch rootfs) can be mounted on one node. */
export function nodeServiceName(bundleDir: string): string {
  const dir = resolve(bundleDir);
  const safe = basename(dir).replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 40);
  return `nydusd-${safe}-${createHash('sha256').update(dir).digest('hex').slice(0, 8)}`;
}

function isFuse(path: string): boolean {
  return mountAt(path)?.fstype.startsWith('fuse') ?? false;
}

function isOurOverlay(mount: string, p: NodePaths): boolean {
  const m = mountAt(mount);
  return m?.fstype === 'overlay' && m.options.includes(`lowerdir=${p.lower}`);
}

export interface NodeStartOptions {
  bundleDir: string;
  prefetch?: boolean;
  log?: (l: string) => void;
}

export async function nodeStart(mountArg: string, o: NodeStartOptions): Promise<NodeState> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const p = nodePaths(o.bundleDir);
  const mount = resolve(mountArg);
  for (const f of [BOOTSTRAP, CONFIG]) {
    if (!existsSync(join(p.dir, f))) throw new NydusError('ERR_CLI_USAGE', `${p.dir} is not a nydus-distribute bundle: ${f} is missing (use --bundle-dir)`);
  }
  const prev = readJson<NodeState>(p.state);
  if (prev) {
    if (prev.mount === mount && (await serviceRunning(prev.service)) && isFuse(p.lower) && isOurOverlay(mount, p)) {
      log(`already started: ${mount} (bundle ${p.dir})`);
      return prev;
    }
    if (prev.mount !== mount && isOurOverlay(prev.mount, p)) {
      throw new NydusError('ERR_CLI_USAGE', `bundle ${p.dir} is already mounted at ${prev.mount}; run clean.sh first`);
    }
    log('found a half-started bundle; cleaning it up first');
    await nodeClean(p.dir, { log });
  }
  if (mountAt(mount)) throw new NydusError('ERR_CLI_USAGE', `${mount} is already a mount point`);
  let bundleConfig: NydusdV1Config;
  try {
    bundleConfig = JSON.parse(readFileSync(join(p.dir, CONFIG), 'utf8')) as NydusdV1Config;
  } catch (e) {
    throw new NydusError('ERR_CONFIG_INVALID', `${join(p.dir, CONFIG)}: ${(e as Error).message}`);
  }
  const created = new Created();
  created.mkdirp(mount, (d) => mkdirSync(d));
  for (const d of [p.lower, p.cache, p.upper, p.work]) created.mkdirp(d, (x) => mkdirSync(x));
  created.willCreate(p.runtimeConfig);
  writeJson(p.runtimeConfig, runtimeConfig(bundleConfig, p.dir, o.prefetch ?? false));
  created.willCreate(p.apisock);
  rmSync(p.apisock, { force: true });
  const spec: ServiceSpec = {
    name: nodeServiceName(p.dir),
    description: `nydusd for ${p.dir} (nydus-distribute)`,
    argv: [...toolArgv('nydusd'), '--config', p.runtimeConfig, '--mountpoint', p.lower, '--bootstrap', join(p.dir, BOOTSTRAP), '--apisock', p.apisock, '--log-level', 'info'],
    cwd: p.dir,
    stateDir: p.dir,
    // A clean exit means someone unmounted it: do not mount it again behind their back.
    restart: 'on-failure',
  };
  created.willCreate(p.state);
  const { handle } = await ensureService(spec);
  for (const f of serviceFiles(handle)) created.record(f);
  const state: NodeState = { mount, bundleDir: p.dir, apisock: p.apisock, prefetch: o.prefetch ?? false, service: handle, created: created.paths };
  writeJson(p.state, state); // before waiting: a failed start can still be cleaned
  const up = await waitFor(async () => isFuse(p.lower) || !(await serviceRunning(handle)), 30_000, 100);
  if (!up || !isFuse(p.lower)) {
    const tail = (await serviceLogTail(handle, 3)).split('\n').filter(Boolean).pop() ?? '';
    await nodeClean(p.dir, { log: () => {} });
    throw new NydusError('ERR_IO', `nydusd did not mount ${p.lower}${tail ? `: ${tail}` : ''}`);
  }
  try {
    await mountOverlay(mount, p.lower, p.upper, p.work);
  } catch (e) {
    await nodeClean(p.dir, { log: () => {} });
    throw e;
  }
  log(`mounted ${mount} (nydus ${p.lower}, writes in ${p.upper}, cache ${p.cache}${state.prefetch ? ', full prefetch' : ''}); service ${handle.kind === 'systemd' ? handle.unit : `pid file ${handle.pidFile}`}`);
  return state;
}

export async function nodeClean(bundleDir: string, o: { mount?: string; log?: (l: string) => void } = {}): Promise<void> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const p = nodePaths(bundleDir);
  const state = readJson<NodeState>(p.state);
  const mounts = [...new Set([o.mount ? resolve(o.mount) : undefined, state?.mount].filter((m): m is string => !!m))];
  for (const m of mounts) {
    if (!isOurOverlay(m, p)) continue;
    const how = await unmountAll(m);
    log(`unmounted ${m}${how === 'lazy' ? ' (lazily: it was busy)' : ''}`);
  }
  if (!state) {
    if (isFuse(p.lower)) await unmountAll(p.lower);
    log(`nothing else to clean: no ${NODE_STATE} in ${p.dir}`);
    return;
  }
  // SIGTERM lets nydusd unmount its FUSE session itself; only then do we umount by hand.
  await stopService(state.service);
  await waitFor(() => !isFuse(p.lower), 3_000, 100);
  if (mountAt(p.lower)) {
    const how = await unmountAll(p.lower);
    log(`unmounted ${p.lower}${how === 'lazy' ? ' (lazily)' : ''}`);
  }
  // The cache and the overlay dirs are ours wholesale (chunk files, the node's writes, overlay's
  // work/ dir); elsewhere only what we recorded goes.
  const ours = [p.cache, p.overlay].filter((d) => state.created.includes(d));
  const left = removeCreated([...state.created, p.state], (d) => ours.some((o) => d === o || d.startsWith(`${o}/`)));
  for (const l of left) log(`kept ${l}: it holds files nydus-distribute did not create`);
  rmSync(p.state, { force: true });
  log(`cleaned ${p.dir}: service stopped, mounts and created files removed`);
}

export interface BlobProgress {
  id: string;
  chunks: number;
  readyChunks: number;
  compressedSize?: number;
  uncompressedSize?: number;
  allReady: boolean;
}

export interface NodeStatus {
  bundleDir: string;
  mount?: string;
  started: boolean;
  serviceRunning: boolean;
  nydusMounted: boolean;
  overlayMounted: boolean;
  blobs: BlobProgress[];
  readyChunks: number;
  totalChunks: number;
  percent: number;
  dataAllReady: boolean;
  serverNeeded: boolean;
  blobcacheMetrics?: unknown;
}

/** Blob ids and chunk counts from the bootstrap (undefined if it cannot be read). */
async function bootstrapBlobs(file: string): Promise<{ id: string; chunks: number; compressedSize: number; uncompressedSize: number }[] | undefined> {
  try {
    const { openBootstrap } = await import('../rafs/index.js');
    const sb = openBootstrap(new Uint8Array(readFileSync(file)), file);
    return sb.blobs.map((b) => ({ id: b.blobId, chunks: b.chunkCount, compressedSize: b.compressedSize, uncompressedSize: b.uncompressedSize }));
  } catch {
    return undefined;
  }
}

/** Readiness from the persistent chunk map (upstream layout: 4 KiB header, MSB-first bitmap). */
export function chunkMapProgress(file: string, chunks: number | undefined): { ready: number; total: number; allReady: boolean } {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch {
    return { ready: 0, total: chunks ?? 0, allReady: chunks === 0 };
  }
  const HEADER = 4096;
  const allMagic = buf.length >= 16 && buf.readUInt32LE(12) === 0x4d4d4150;
  const total = chunks ?? (buf.length - HEADER) * 8;
  if (allMagic) return { ready: total, total, allReady: true };
  let ready = 0;
  for (let i = 0; i < total; i++) if (((buf[HEADER + (i >>> 3)] ?? 0) & (0x80 >>> (i & 7))) !== 0) ready++;
  return { ready, total, allReady: total > 0 && ready === total };
}

export async function nodeStatus(bundleDir: string): Promise<NodeStatus> {
  const p = nodePaths(bundleDir);
  const state = readJson<NodeState>(p.state);
  const running = state ? await serviceRunning(state.service) : false;
  let metrics: unknown;
  if (running) {
    try {
      const r = await apiCall(state!.apisock, 'GET', '/api/v1/metrics/blobcache', undefined, 3_000);
      if (r.status === 200) metrics = r.body;
    } catch {
      /* the chunk maps below still answer */
    }
  }
  const blobs: BlobProgress[] = [];
  const fromBoot = await bootstrapBlobs(join(p.dir, BOOTSTRAP));
  for (const b of fromBoot ?? []) {
    const prog = chunkMapProgress(join(p.cache, `${b.id}.blob.data.chunk_map`), b.chunks);
    blobs.push({ id: b.id, chunks: b.chunks, readyChunks: prog.ready, compressedSize: b.compressedSize, uncompressedSize: b.uncompressedSize, allReady: prog.allReady || b.chunks === 0 });
  }
  const totalChunks = blobs.reduce((s, b) => s + b.chunks, 0);
  const readyChunks = blobs.reduce((s, b) => s + b.readyChunks, 0);
  const apiAllReady = !!metrics && typeof metrics === 'object' && (metrics as Record<string, unknown>).data_all_ready === true;
  const dataAllReady = fromBoot ? blobs.every((b) => b.allReady) : apiAllReady;
  return {
    bundleDir: p.dir,
    ...(state ? { mount: state.mount } : {}),
    started: !!state,
    serviceRunning: running,
    nydusMounted: isFuse(p.lower),
    overlayMounted: state ? isOurOverlay(state.mount, p) : false,
    blobs,
    readyChunks,
    totalChunks,
    percent: totalChunks ? Math.floor((readyChunks / totalChunks) * 1000) / 10 : dataAllReady ? 100 : 0,
    dataAllReady,
    serverNeeded: !dataAllReady,
    ...(metrics !== undefined ? { blobcacheMetrics: metrics } : {}),
  };
}
