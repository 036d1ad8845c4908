// nydusd's main thread: one FUSE session, a table of RAFS mounts (the root from --bootstrap and/or
// pseudo mounts added over the API), storage per mount, prefetch, metrics, and the state machine
// upstream reports (INIT → READY → RUNNING).
import { readFileSync, statSync } from 'node:fs';
import { getegid, geteuid } from 'node:process';
import { type FsConfig, loadConfigFile, parseConfigText, withoutSecrets } from '../config/daemon-config.js';
import { FuseSession, withTransfer } from '../fuse/index.js';
import { preloadNativeAddons } from '../format/native.js';
import { openBootstrap } from '../rafs/index.js';
import type { RafsSuper } from '../rafs/types.js';
import { describeError, NydusError } from '../util/errors.js';
import { logger, setLogLevel, isLogLevel } from '../util/log.js';
import { ControlError, type DaemonControl, type DaemonInfo, type DaemonState, type MetricsKind, type MountRequest } from './control.js';
import { FsStats, newFsStatsBuffer } from './fs-stats.js';
import type { DaemonRequest, FuseFsInit, MountTable } from './fuse-fs.js';
import type { MountStorage, MountStorageFactory } from './mount-storage.js';
import { prefetchPhases } from './prefetch-plan.js';
import type { MountSpec } from './vfs.js';

const log = logger('nydusd');
export const NYDUSD_VERSION = '0.1.0';
/** Upstream rafs/src/fs.rs: RAFS is immutable, so the kernel may cache attrs and entries for 2^32 s. */
export const RAFS_DEFAULT_ATTR_TIMEOUT = 2 ** 32;
export const RAFS_DEFAULT_ENTRY_TIMEOUT = RAFS_DEFAULT_ATTR_TIMEOUT;
/** Pseudo-root entries change with API mounts: revalidated after 1 s. */
const PSEUDO_TIMEOUT = 1;

export interface DaemonOptions {
  mountpoint: string;
  threads: number;
  id?: string;
  entryTimeout?: number;
  attrTimeout?: number;
  storageFactory: MountStorageFactory;
  /** Called by PUT /api/v1/daemon/exit. */
  onExit?: () => void;
}

interface MountState {
  index: number;
  mountpoint: string;
  source: string;
  config: FsConfig;
  sb: RafsSuper;
  storage: MountStorage;
  spec: MountSpec;
  mountedTime: Date;
  stats: FsStats;
}

const MAX_EVENTS = 500;

/**
 * Upstream's API carries the config file CONTENTS in "config", but its docs (and seed 001) pass a
 * PATH. Accept both: text that parses as JSON is contents; otherwise a single line naming an existing
 * file is read. Anything else goes to the parser, whose error names the problem.
 */
function configPathOf(config: string): string | undefined {
  try {
    JSON.parse(config);
    return undefined;
  } catch {
    /* not JSON: maybe a path */
  }
  if (config.includes('\n') || config.includes('\0') || config.length > 4096) return undefined;
  try {
    return statSync(config).isFile() ? config : undefined;
  } catch {
    if (config.startsWith('/')) throw new ControlError(400, 'INVALID_ARGUMENT', `"config" is neither JSON nor an existing file: ${config}`);
    return undefined;
  }
}

export class NydusDaemon implements DaemonControl {
  readonly opts: DaemonOptions;
  state: DaemonState = 'INIT';
  session: FuseSession | undefined;
  readonly #mounts = new Map<string, MountState>();
  readonly #byIndex = new Map<number, MountState>();
  readonly #retired: MountState[] = [];
  readonly #version = new SharedArrayBuffer(4);
  #nextIndex = 1;
  readonly #events: string[] = [];
  #totalErrors = 0;

  constructor(opts: DaemonOptions) {
    this.opts = opts;
  }

  /** Mounts FUSE; with `root`, the filesystem at "/" is that image (upstream --bootstrap). */
  async start(root?: { bootstrap: string; config: FsConfig; prefetchFiles?: string[] }): Promise<void> {
    if (root) await this.#addMount('/', root.bootstrap, root.config, root.prefetchFiles);
    const init: FuseFsInit = {
      tableVersion: this.#version,
      entryTimeout: this.opts.entryTimeout ?? RAFS_DEFAULT_ENTRY_TIMEOUT,
      attrTimeout: this.opts.attrTimeout ?? RAFS_DEFAULT_ATTR_TIMEOUT,
      pseudoTimeout: PSEUDO_TIMEOUT,
    };
    // Before any FUSE worker blocks in read(2): a lazy addon load on this thread could deadlock (format/native.ts).
    preloadNativeAddons();
    this.state = 'READY';
    this.session = await FuseSession.mount(this.opts.mountpoint, {
      fsModule: new URL('./fuse-fs.js', import.meta.url),
      initData: init,
      workers: this.opts.threads,
      protocol: { entryTimeout: init.pseudoTimeout, attrTimeout: init.pseudoTimeout },
      mount: { fsname: root?.bootstrap ?? 'nydus', subtype: 'nydusd' },
      onRequest: (msg) => this.#onWorkerRequest(msg as DaemonRequest),
      onMessage: (msg) => this.#onWorkerMessage(msg as DaemonRequest),
    });
    this.session.on('workerError', (e: Error) => this.#event(`FUSE worker error: ${e.message}`));
    this.state = 'RUNNING';
    log.info(`mounted at ${this.opts.mountpoint} with ${this.opts.threads} FUSE threads`);
  }

  #event(msg: string): void {
    this.#totalErrors++;
    this.#events.push(`${new Date().toISOString()} ${msg}`);
    if (this.#events.length > MAX_EVENTS) this.#events.shift();
  }

  #table(): MountTable {
    return { version: Atomics.load(new Int32Array(this.#version), 0), mounts: [...this.#mounts.values()].map((m) => m.spec) };
  }

  async #onWorkerRequest(req: DaemonRequest): Promise<unknown> {
    if (req.t === 'table') return this.#table();
    if (req.t === 'fetch') {
      const m = this.#byIndex.get(req.mount) ?? this.#retired.find((r) => r.index === req.mount);
      if (!m) throw new NydusError('ERR_FS', `mount ${req.mount} is gone`);
      try {
        if (log.enabled('trace')) log.trace(`fetch ${req.chunks.map((c) => `${c.blobIndex}:${c.index}`).join(',')} for ${m.mountpoint}`);
        const datas = await m.storage.readChunks(req.chunks);
        if (log.enabled('trace')) log.trace(`fetched ${req.chunks.map((c) => `${c.blobIndex}:${c.index}`).join(',')}`);
        // Storage may hand the same bytes to several readers (joined fetches), so never transfer its
        // buffers: copy into fresh ones and move those (a detached buffer would break the others).
        // (Buffer#slice is a view, not a copy: copy explicitly.)
        const owned = datas.map((d) => new Uint8Array(d));
        return withTransfer(owned, owned.map((d) => d.buffer as ArrayBuffer));
      } catch (e) {
        this.#event(`read of ${req.chunks.length} chunk(s) for ${m.mountpoint} failed: ${describeError(e)}`);
        log.warn(`read failed on ${m.mountpoint}: ${describeError(e)}`);
        throw e;
      }
    }
    throw new NydusError('ERR_INTERNAL', 'unknown worker request');
  }

  /** Fire-and-forget worker messages: sequential readahead into the cache. */
  #onWorkerMessage(msg: DaemonRequest): void {
    if (msg.t !== 'readahead') return;
    const m = this.#byIndex.get(msg.mount);
    // Failures surface when a user read needs the chunk; readahead only warms the cache.
    if (m) m.storage.readChunks(msg.chunks).catch(() => undefined);
  }

  #bump(): void {
    Atomics.add(new Int32Array(this.#version), 0, 1);
  }

  async #addMount(mountpoint: string, source: string, config: FsConfig, prefetchFiles?: string[]): Promise<MountState> {
    let buf: Buffer;
    try {
      if (!statSync(source).isFile()) throw new Error('not a regular file');
      buf = readFileSync(source);
    } catch (e) {
      throw new ControlError(400, 'INVALID_ARGUMENT', `bootstrap ${source}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : describeError(e)}`);
    }
    // Copy into shared memory once: every FUSE worker decodes from the same bytes.
    const shared = new SharedArrayBuffer(buf.length);
    new Uint8Array(shared).set(buf);
    let sb: RafsSuper;
    try {
      sb = openBootstrap(new Uint8Array(shared), `bootstrap ${source}`);
      sb.getInode(sb.rootIno);
    } catch (e) {
      throw new ControlError(400, 'INVALID_ARGUMENT', describeError(e));
    }
    const storage = await this.opts.storageFactory(sb.blobs, config);
    const index = this.#nextIndex++;
    const statsBuf = newFsStatsBuffer();
    const spec: MountSpec = {
      index,
      mountpoint,
      bootstrap: shared,
      enableXattr: config.rafs.enableXattr,
      cache: storage.cacheViews(),
      stats: statsBuf,
      uid: geteuid?.() ?? 0,
      gid: getegid?.() ?? 0,
    };
    const m: MountState = { index, mountpoint, source, config, sb, storage, spec, mountedTime: new Date(), stats: new FsStats(statsBuf) };
    const old = this.#mounts.get(mountpoint);
    if (old) {
      // Remount: old inodes stay readable until workers drop them; keep the old storage alive.
      this.#byIndex.delete(old.index);
      this.#retired.push(old);
    }
    this.#mounts.set(mountpoint, m);
    this.#byIndex.set(index, m);
    this.#bump();
    const pf = config.rafs.prefetch.enable || config.cache.prefetch.enable || (prefetchFiles?.length ?? 0) > 0;
    if (pf) {
      // Hinted files first: each phase is queued (and offset-ordered) on its own.
      const phases = prefetchPhases(sb, prefetchFiles, config.rafs.prefetch.prefetchAll || config.cache.prefetch.prefetchAll);
      const total = phases.reduce((k, p) => k + p.length, 0);
      if (total) log.info(`prefetching ${total} chunks for ${mountpoint}`);
      for (const chunks of phases) storage.prefetch(chunks);
      if (total && storage.prefetchDone) {
        const t0 = Date.now();
        void storage.prefetchDone().then(
          (p) => p && log.info(`prefetch for ${mountpoint} done in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${p.doneChunks} chunks fetched (${p.bytes} bytes), ${p.skippedChunks} already cached, ${p.failedChunks} failed`),
          () => undefined,
        );
      }
    }
    return m;
  }

  // ---- DaemonControl ----

  info(): DaemonInfo {
    const collection: DaemonInfo['backend_collection'] = {};
    for (const m of this.#mounts.values()) {
      collection[m.mountpoint] = { backend_type: 'Rafs', mountpoint: m.mountpoint, mounted_time: m.mountedTime.toISOString(), config: withoutSecrets(m.config) };
    }
    return {
      version: { package_ver: NYDUSD_VERSION, git_commit: 'nydus-ts', build_time: '', profile: 'release', rustc: `node ${process.version}` },
      id: this.opts.id ?? null,
      supervisor: null,
      state: this.state,
      backend_collection: collection,
    };
  }

  setLogLevel(level: string): void {
    if (!isLogLevel(level)) throw new ControlError(400, 'INVALID_ARGUMENT', `unknown log level ${level}`);
    setLogLevel(level);
  }

  events(): ReturnType<DaemonControl['events']> {
    const size = this.#events.reduce((a, e) => a + e.length, 0);
    return { max_errors: MAX_EVENTS, total_errors: this.#totalErrors, max_size: 51200, total_size: size, errors: [...this.#events] };
  }

  #parseMountConfig(req: MountRequest): FsConfig {
    if (req.fs_type !== 'rafs') throw new ControlError(400, 'INVALID_ARGUMENT', `fs_type "${req.fs_type}" is not supported (only "rafs")`);
    if (!req.config) throw new ControlError(400, 'INVALID_ARGUMENT', '"config" is required');
    try {
      const path = configPathOf(req.config);
      return path === undefined ? parseConfigText(req.config, 'mount config') : loadConfigFile(path);
    } catch (e) {
      throw new ControlError(400, 'INVALID_ARGUMENT', describeError(e));
    }
  }

  async mount(mountpoint: string, req: MountRequest): Promise<void> {
    if (this.#mounts.has(mountpoint)) throw new ControlError(409, 'ALREADY_EXISTS', `${mountpoint} is already mounted`);
    if (this.#mounts.has('/') ) throw new ControlError(400, 'INVALID_ARGUMENT', 'the daemon serves an image at "/": pseudo mounts need a daemon started without --bootstrap');
    // The pseudo root holds mounts as leaves: /a/b under a mounted /a would replace /a's entry with a
    // pseudo directory (hiding that image), and /a over a mounted /a/b would hide /a/b.
    for (const other of this.#mounts.keys()) {
      if (mountpoint.startsWith(`${other}/`) || other.startsWith(`${mountpoint}/`)) throw new ControlError(409, 'ALREADY_EXISTS', `${mountpoint} would nest with the mount at ${other}`);
    }
    await this.#addMount(mountpoint, req.source, this.#parseMountConfig(req), req.prefetch_files);
  }

  async remount(mountpoint: string, req: MountRequest): Promise<void> {
    if (!this.#mounts.has(mountpoint)) throw new ControlError(404, 'NOT_FOUND', `${mountpoint} is not mounted`);
    await this.#addMount(mountpoint, req.source, this.#parseMountConfig(req), req.prefetch_files);
  }

  async umount(mountpoint: string): Promise<void> {
    const m = this.#mounts.get(mountpoint);
    if (!m) throw new ControlError(404, 'NOT_FOUND', `${mountpoint} is not mounted`);
    this.#mounts.delete(mountpoint);
    this.#byIndex.delete(m.index);
    // Images this mountpoint had before remounts go too (workers release them on this umount).
    const gone = [m];
    for (let i = this.#retired.length - 1; i >= 0; i--) if (this.#retired[i]!.mountpoint === mountpoint) gone.push(...this.#retired.splice(i, 1));
    this.#bump();
    // Workers may still finish reads of this mount: close its storage a little later.
    setTimeout(() => {
      for (const g of gone) void g.storage.close().catch(() => undefined);
    }, 5000).unref();
  }

  #select(id: string | undefined): MountState {
    if (id === undefined) {
      if (this.#mounts.size === 1) return this.#mounts.values().next().value!;
      throw new ControlError(400, 'INVALID_ARGUMENT', this.#mounts.size ? 'several filesystems are mounted: pass ?id=<mountpoint>' : 'no filesystem is mounted');
    }
    const m = this.#mounts.get(id) ?? [...this.#mounts.values()].find((x) => x.config.id === id);
    if (!m) throw new ControlError(404, 'NOT_FOUND', `no filesystem with id ${id}`);
    return m;
  }

  backendInfo(mountpoint: string): unknown {
    const m = this.#select(mountpoint);
    const meta = m.sb.meta;
    return {
      version: meta.version === 5 ? 0x500 : 0x600,
      root_inode: m.sb.rootIno,
      chunk_size: meta.chunkSize,
      inodes_count: meta.inodeCount,
      flags: meta.flags,
      compressor: meta.compressor,
      digester: meta.digester,
      blob_table: m.sb.blobs.map((b) => b.blobId),
      attr_timeout: this.opts.attrTimeout ?? RAFS_DEFAULT_ATTR_TIMEOUT,
      entry_timeout: this.opts.entryTimeout ?? RAFS_DEFAULT_ENTRY_TIMEOUT,
    };
  }

  async metrics(kind: MetricsKind, id: string | undefined, opts: { latest?: boolean }): Promise<unknown> {
    if (kind === 'inflight') return [];
    const m = this.#select(id);
    switch (kind) {
      case 'fs':
        return m.stats.snapshot(m.config.id || m.mountpoint, { files: m.config.rafs.iostatsFiles, pattern: m.config.rafs.accessPattern, latest: m.config.rafs.latestReadFiles });
      case 'backend':
        return m.storage.metrics().backend;
      case 'blobcache':
        return m.storage.metrics().blobcache;
      case 'files':
      case 'pattern':
        if (kind === 'files' && !m.config.rafs.iostatsFiles) throw new ControlError(404, 'NOT_FOUND', 'per-file metrics need "iostats_files": true');
        if (kind === 'pattern' && !m.config.rafs.accessPattern) throw new ControlError(404, 'NOT_FOUND', 'access patterns need "access_pattern": true');
        return opts.latest ? [] : {};
    }
  }

  getConfig(id: string | undefined): unknown {
    const m = this.#select(id);
    return withoutSecrets(m.config);
  }

  async updateConfig(id: string | undefined, body: Record<string, unknown>): Promise<void> {
    const targets = id === undefined || id === '/' ? [...this.#mounts.values()] : [this.#select(id)];
    // Upstream answers an unknown key with 500; it is the client's mistake, so 400 here, and a value
    // of the wrong type is refused instead of being ignored with a 204.
    for (const [k, v] of Object.entries(body)) {
      if (!['registry_auth', 'proxy_url', 'dragonfly_scheduler_endpoint'].includes(k)) throw new ControlError(400, 'INVALID_ARGUMENT', `unknown config key ${k}`);
      if (typeof v !== 'string') throw new ControlError(400, 'INVALID_ARGUMENT', `config key ${k} must be a string`);
    }
    for (const m of targets) {
      m.storage.updateConfig?.({
        ...(typeof body.registry_auth === 'string' ? { registryAuth: body.registry_auth } : {}),
        ...(typeof body.proxy_url === 'string' ? { proxyUrl: body.proxy_url } : {}),
      });
    }
  }

  async prometheus(): Promise<string> {
    const lines: string[] = [];
    const metric = (name: string, help: string, type: string, values: Array<[Record<string, string>, number]>): void => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, v] of values) {
        const l = Object.entries(labels).map(([k, x]) => `${k}="${x.replace(/["\\\n]/g, '_')}"`).join(',');
        lines.push(`${name}{${l}} ${v}`);
      }
    };
    const mounts = [...this.#mounts.values()];
    const fs = mounts.map((m) => [m, m.stats.snapshot(m.mountpoint, { files: false, pattern: false, latest: false })] as const);
    metric('nydusd_data_read_bytes_total', 'Bytes read by users', 'counter', fs.map(([m, s]) => [{ mountpoint: m.mountpoint }, Number(s.data_read)]));
    metric('nydusd_opens_total', 'Files opened', 'counter', fs.map(([m, s]) => [{ mountpoint: m.mountpoint }, Number(s.nr_opens)]));
    const be = mounts.map((m) => [m, m.storage.metrics().backend] as const);
    metric('nydusd_backend_read_bytes_total', 'Bytes read from the backend', 'counter', be.map(([m, b]) => [{ mountpoint: m.mountpoint }, Number(b.read_amount_total ?? 0)]));
    metric('nydusd_backend_reads_total', 'Backend read requests', 'counter', be.map(([m, b]) => [{ mountpoint: m.mountpoint }, Number(b.read_count ?? 0)]));
    metric('nydusd_backend_read_errors_total', 'Failed backend reads', 'counter', be.map(([m, b]) => [{ mountpoint: m.mountpoint }, Number(b.read_errors ?? 0)]));
    const fuse = this.session?.stats();
    metric('nydusd_fuse_requests_total', 'FUSE requests by opcode', 'counter', Object.entries(fuse?.requests ?? {}).map(([op, n]) => [{ opcode: op }, n]));
    metric('nydusd_errors_total', 'Errors recorded in the event ring', 'counter', [[{}, this.#totalErrors]]);
    return lines.join('\n') + '\n';
  }

  exit(): void {
    this.opts.onExit?.();
  }

  async stop(): Promise<void> {
    if (this.session) await this.session.unmount().catch((e: unknown) => log.warn(`unmount: ${describeError(e)}`));
    this.state = 'STOPPED';
    for (const m of [...this.#mounts.values(), ...this.#retired]) await m.storage.close().catch(() => undefined);
  }
}
