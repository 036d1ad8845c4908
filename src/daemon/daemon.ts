// nydusd's main thread: one FUSE session, a table of RAFS mounts (the root from --bootstrap and/or
// pseudo mounts added over the API), storage per mount, prefetch, metrics, and the state machine
// upstream reports (INIT → READY → RUNNING).
import { readFileSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { getegid, geteuid } from 'node:process';
import { type FsConfig, loadConfigFile, parseConfigText, type PrefetchConfig } from '../config/daemon-config.js';
import { FuseSession, withTransfer, type InitInfo, type AdoptOptions } from '../fuse/index.js';
import { preloadNativeAddons } from '../format/native.js';
import { openBootstrap } from '../rafs/index.js';
import type { RafsSuper } from '../rafs/types.js';
import { describeError, NydusError } from '../util/errors.js';
import { logger, setLogLevel, isLogLevel, redactSecrets } from '../util/log.js';
import { packageVersion } from '../util/version.js';
import { type BlobCacheEntry, type BlobObjectId, ControlError, type DaemonControl, type DaemonInfo, type DaemonState, type MetricsKind, type MountRequest } from './control.js';
import { FileStats, FsStats, newFileStatsBuffer, newFsStatsBuffer } from './fs-stats.js';
import type { DaemonRequest, FuseFsInit, MountTable } from './fuse-fs.js';
import type { MountStorage, MountStorageFactory } from './mount-storage.js';
import { startPrefetch } from './prefetch-plan.js';
import { createPrometheus } from './prometheus.js';
import type { MountSpec } from './vfs.js';
import { CacheQuota } from '../storage/cache/cache-quota.js';

const log = logger('nydusd');
export const NYDUSD_VERSION = packageVersion();
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
  /**
   * Failover (a supervisor holds the connection): serve this inherited /dev/fuse fd instead of
   * mounting; `init` is what the connection's first server negotiated (absent for the first).
   */
  adopt?: { fd: number; connId: number | undefined; init: InitInfo | undefined } & AdoptOptions;
  /** Called whenever the mount table changes, with what a successor needs to rebuild it. */
  onMountsChanged?: (mounts: SavedMount[]) => void;
  /** Upstream's `supervisor` field of GET /api/v1/daemon. */
  supervisor?: string;
}

/** One mount as a successor process re-creates it: same index (so the same inode numbers). */
export interface SavedMount {
  index: number;
  mountpoint: string;
  source: string;
  config: FsConfig;
  prefetchFiles?: string[];
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
  files: FileStats | undefined;
  prefetchFiles: string[] | undefined;
}

const MAX_EVENTS = 500;
/** FUSE_READ opcode, as upstream's inflight records carry it. */
const FUSE_READ = 15;

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

/** Drops quoted excerpts ("…", '…') from a parser message, keeping positions and key paths. */
export function withoutQuotedText(msg: string): string {
  return msg.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '<…>').replace(/<…>(?:\s*<…>)+/g, '<…>');
}

const prefetchV2 = (p: PrefetchConfig): Record<string, unknown> => ({ enable: p.enable, threads: p.threads, batch_size: p.batchSize, bandwidth_limit: p.bandwidthLimit, prefetch_all: p.prefetchAll });

/** A mount's config in upstream's ConfigV2 JSON shape (what upstream's backend_collection shows). */
export function configV2Of(c: FsConfig): Record<string, unknown> {
  const cacheDir = c.cache.type === 'dummycache' ? {} : { [c.cache.type === 'fscache' ? 'fscache' : 'filecache']: { work_dir: c.cache.workDir } };
  return {
    version: 2,
    id: c.id,
    backend: { type: c.backend.type, [c.backend.type]: c.backend.config },
    cache: { type: c.cache.type, compressed: c.cache.compressed, validate: c.cache.validate, prefetch: prefetchV2(c.cache.prefetch), ...cacheDir },
    rafs: {
      mode: c.rafs.mode,
      batch_size: c.rafs.batchSize,
      validate: c.rafs.validate,
      enable_xattr: c.rafs.enableXattr,
      iostats_files: c.rafs.iostatsFiles,
      access_pattern: c.rafs.accessPattern,
      latest_read_files: c.rafs.latestReadFiles,
      prefetch: prefetchV2(c.rafs.prefetch),
    },
  };
}

const BLOB_TYPES = ['bootstrap', 'datablob'];
/** Bounds the registry's memory against a client that keeps adding entries. */
const MAX_BLOB_ENTRIES = 65536;
const HEX64 = /^[0-9a-f]{64}$/;

/**
 * The error for a config file named over the API. The JSON parser quotes the text it choked on
 * (unescaped, so no quote-stripping is safe): keep only the position. Our schema errors quote
 * values JSON-escaped: drop those.
 */
function namedConfigError(path: string, msg: string): string {
  if (/invalid JSON/.test(msg)) {
    const at = /at position \d+(?: \(line \d+ column \d+\))?/.exec(msg)?.[0];
    return `config ${path}: invalid JSON${at ? ` ${at}` : ''}`;
  }
  return withoutQuotedText(msg);
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
  /** PUT /api/v2/blobs entries, by domain then blob id (upstream's BlobCacheMgr registry). */
  readonly #blobEntries = new Map<string, Map<string, BlobCacheEntry>>();
  readonly #events: string[] = [];
  #totalErrors = 0;
  #prom: import('prom-client').Registry | undefined;
  /** Reads waiting on storage, for /api/v1/metrics/inflight (upstream's FuseInflight shape). */
  readonly #inflight = new Map<number, { inode: number; opcode: number; unique: number; timestamp_secs: number }>();
  #nextInflight = 1;

  constructor(opts: DaemonOptions) {
    this.opts = opts;
  }

  /**
   * Mounts FUSE; with `root`, the filesystem at "/" is that image (upstream --bootstrap). With
   * `restore` (a successor after failover), the mount table is rebuilt from it instead.
   */
  async start(root?: { bootstrap: string; config: FsConfig; prefetchFiles?: string[] }, restore?: SavedMount[]): Promise<void> {
    if (restore) {
      // Creation order, so pseudo directories get the same inode numbers too.
      for (const m of [...restore].sort((a, b) => a.index - b.index)) {
        try {
          await this.#addMount(m.mountpoint, m.source, m.config, m.prefetchFiles, m.index);
        } catch (e) {
          // One image gone (bootstrap deleted) must not keep the others from being served again.
          this.#event(`cannot restore the mount at ${m.mountpoint}: ${describeError(e)}`);
          log.error(`cannot restore the mount at ${m.mountpoint}: ${describeError(e)}`);
        }
      }
    } else if (root) await this.#addMount('/', root.bootstrap, root.config, root.prefetchFiles);
    const init: FuseFsInit = {
      tableVersion: this.#version,
      entryTimeout: this.opts.entryTimeout ?? RAFS_DEFAULT_ENTRY_TIMEOUT,
      attrTimeout: this.opts.attrTimeout ?? RAFS_DEFAULT_ATTR_TIMEOUT,
      pseudoTimeout: PSEUDO_TIMEOUT,
    };
    // Before any FUSE worker blocks in read(2): a lazy addon load on this thread could deadlock (format/native.ts).
    preloadNativeAddons();
    this.state = 'READY';
    const a = this.opts.adopt;
    const open = (mp: string, o: Parameters<typeof FuseSession.mount>[1]): Promise<FuseSession> =>
      a ? FuseSession.adopt(a.fd, mp, a.connId, a.init, { ...o, ...(a.resend !== undefined ? { resend: a.resend } : {}), ...(a.gate ? { gate: a.gate } : {}) }) : FuseSession.mount(mp, o);
    this.session = await open(this.opts.mountpoint, {
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
    log.info(`${a ? 'serving the supervised connection' : 'mounted'} at ${this.opts.mountpoint} with ${this.opts.threads} FUSE threads`);
  }

  #event(msg: string): void {
    this.#totalErrors++;
    this.#events.push(`${new Date().toISOString()} ${msg}`);
    if (this.#events.length > MAX_EVENTS) this.#events.shift();
  }

  #table(): MountTable {
    return { version: Atomics.load(new Int32Array(this.#version), 0), mounts: [...this.#mounts.values()].map((m) => m.spec), retired: this.#retired.map((m) => m.spec) };
  }

  async #onWorkerRequest(req: DaemonRequest): Promise<unknown> {
    if (req.t === 'table') return this.#table();
    if (req.t === 'fetch') {
      const m = this.#byIndex.get(req.mount) ?? this.#retired.find((r) => r.index === req.mount);
      if (!m) throw new NydusError('ERR_FS', `mount ${req.mount} is gone`);
      // Cold reads wait here (on the backend): what /api/v1/metrics/inflight shows to spot a hang.
      const id = this.#nextInflight++;
      this.#inflight.set(id, { inode: req.ino ?? 0, opcode: FUSE_READ, unique: id, timestamp_secs: Math.floor(Date.now() / 1000) });
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
      } finally {
        this.#inflight.delete(id);
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
    this.opts.onMountsChanged?.(this.savedMounts());
  }

  /** The mount table as a successor process needs it (failover). */
  savedMounts(): SavedMount[] {
    return [...this.#mounts.values()].map((m) => ({ index: m.index, mountpoint: m.mountpoint, source: m.source, config: m.config, ...(m.prefetchFiles ? { prefetchFiles: m.prefetchFiles } : {}) }));
  }

  async #addMount(mountpoint: string, source: string, config: FsConfig, prefetchFiles?: string[], fixedIndex?: number): Promise<MountState> {
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
    const index = fixedIndex ?? this.#nextIndex;
    this.#nextIndex = Math.max(this.#nextIndex, index + 1);
    const statsBuf = newFsStatsBuffer();
    const fileFlags = { files: config.rafs.iostatsFiles, pattern: config.rafs.accessPattern, latest: config.rafs.latestReadFiles };
    const files = fileFlags.files || fileFlags.pattern || fileFlags.latest ? { buf: newFileStatsBuffer(), flags: fileFlags } : undefined;
    const spec: MountSpec = {
      index,
      mountpoint,
      bootstrap: shared,
      enableXattr: config.rafs.enableXattr,
      cache: storage.cacheViews(),
      stats: statsBuf,
      files,
      uid: geteuid?.() ?? 0,
      gid: getegid?.() ?? 0,
    };
    const m: MountState = { index, mountpoint, source, config, sb, storage, spec, mountedTime: new Date(), stats: new FsStats(statsBuf), files: files ? new FileStats(files.buf, files.flags) : undefined, prefetchFiles };
    const old = this.#mounts.get(mountpoint);
    if (old) {
      // Remount: old inodes stay readable until workers drop them; keep the old storage alive.
      this.#byIndex.delete(old.index);
      this.#retired.push(old);
    }
    this.#mounts.set(mountpoint, m);
    this.#byIndex.set(index, m);
    this.#bump();
    log.debug(`${old ? 'remounted' : 'mounted'} RAFS v${sb.meta.version} ${source} at ${mountpoint} (index ${index}): ${sb.blobs.length} blob(s), backend ${config.backend.type}, cache ${config.cache.type || 'none'}${config.cache.workDir ? ` in ${config.cache.workDir}` : ''}`);
    startPrefetch(sb, storage, config, prefetchFiles, mountpoint, log);
    return m;
  }

  // ---- DaemonControl ----

  async cache(gc: boolean): Promise<unknown> {
    const work_dirs = [];
    for (const q of CacheQuota.all()) {
      const done = gc ? await q.gc() : undefined;
      const r = await q.report();
      work_dirs.push({
        work_dir: r.workDir,
        cache_size_limit: r.limit,
        usage: r.usage,
        blobs: r.blobs.map((b) => ({ blob_id: b.blobId, size: b.bytes, in_use: b.inUse, last_access: b.lastAccess })),
        ...(done ? { removed: done.removed, freed: done.freed } : {}),
      });
    }
    return { work_dirs };
  }

  info(): DaemonInfo {
    const collection: DaemonInfo['backend_collection'] = {};
    for (const m of this.#mounts.values()) {
      collection[m.mountpoint] = { backend_type: 'Rafs', mountpoint: m.mountpoint, mounted_time: m.mountedTime.toISOString(), config: redactSecrets(configV2Of(m.config)) };
    }
    return {
      version: { package_ver: NYDUSD_VERSION, git_commit: 'nydus-ts', build_time: '', profile: 'release', rustc: `node ${process.version}` },
      id: this.opts.id ?? null,
      supervisor: this.opts.supervisor ?? null,
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
    let path: string | undefined;
    try {
      path = configPathOf(req.config);
      return path === undefined ? parseConfigText(req.config, 'mount config') : loadConfigFile(path);
    } catch (e) {
      if (e instanceof ControlError) throw e;
      // Never echo what a named file holds (a caller could name /etc/shadow): no quoted excerpts.
      const msg = path === undefined ? describeError(e) : namedConfigError(path, describeError(e));
      throw new ControlError(400, 'INVALID_ARGUMENT', msg);
    }
  }

  async mount(mountpoint: string, req: MountRequest): Promise<void> {
    // "/" would cover the pseudo root and so hide every other mount.
    if (mountpoint === '/') throw new ControlError(400, 'INVALID_ARGUMENT', 'cannot mount at "/" over the API: it would hide every other mount; use a sub-path like /<id> (or start nydusd with --bootstrap)');
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
    log.debug(`unmounted ${mountpoint} (${gone.length} image(s) released)`);
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
    if (kind === 'inflight') return [...this.#inflight.values()];
    const m = this.#select(id);
    switch (kind) {
      case 'fs':
        return m.stats.snapshot(m.config.id || m.mountpoint, { files: m.config.rafs.iostatsFiles, pattern: m.config.rafs.accessPattern, latest: m.config.rafs.latestReadFiles });
      case 'backend':
        return m.storage.metrics().backend;
      case 'blobcache':
        return m.storage.metrics().blobcache;
      // As upstream: empty answers when the recording is off ("iostats_files", "access_pattern",
      // "latest_read_files" in the mount's config).
      case 'files':
        if (opts.latest) return m.files?.latestRead() ?? [];
        return m.files?.files() ?? {};
      case 'pattern':
        return m.files?.patterns() ?? [];
    }
  }

  getConfig(id: string | undefined): unknown {
    const m = this.#select(id);
    return redactSecrets(m.config);
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

  // ---- /api/v2/blobs ----

  getBlobObjects(q: BlobObjectId & { domain_id: string }): BlobCacheEntry[] {
    const dom = this.#blobEntries.get(q.domain_id);
    const list = dom ? [...dom.values()].filter((e) => !q.blob_id || e.id === q.blob_id) : [];
    return redactSecrets(list);
  }

  createBlobObject(e: BlobCacheEntry): void {
    if (!BLOB_TYPES.includes(e.type)) throw new ControlError(400, 'INVALID_ARGUMENT', `"type" must be one of ${BLOB_TYPES.join(', ')}`);
    if (!e.id || e.id.includes('/') || e.id.includes('\0')) throw new ControlError(400, 'INVALID_ARGUMENT', '"id" must be a non-empty blob id without "/"');
    if (e.config === undefined && e.config_v2 === undefined) throw new ControlError(400, 'INVALID_ARGUMENT', 'one of "config" or "config_v2" is required');
    const total = [...this.#blobEntries.values()].reduce((n, d) => n + d.size, 0);
    if (total >= MAX_BLOB_ENTRIES && !this.#blobEntries.get(e.domain_id)?.has(e.id)) throw new ControlError(400, 'RESOURCE_EXHAUSTED', `${MAX_BLOB_ENTRIES} blob objects are registered already`);
    let dom = this.#blobEntries.get(e.domain_id);
    if (!dom) this.#blobEntries.set(e.domain_id, (dom = new Map()));
    const old = dom.get(e.id);
    // Re-adding the same entry is fine; a different one under the same id is a conflict.
    if (old && JSON.stringify(old) !== JSON.stringify(e)) throw new ControlError(409, 'ALREADY_EXISTS', `blob ${e.id} is already registered in domain "${e.domain_id}" with another config`);
    dom.set(e.id, e);
  }

  async deleteBlobObject(q: BlobObjectId): Promise<void> {
    if (q.domain_id !== undefined) {
      const dom = this.#blobEntries.get(q.domain_id);
      if (!dom || (q.blob_id && !dom.has(q.blob_id))) throw new ControlError(404, 'NOT_FOUND', `no blob object ${q.blob_id || '(any)'} in domain "${q.domain_id}"`);
      if (q.blob_id) dom.delete(q.blob_id);
      if (!q.blob_id || dom.size === 0) this.#blobEntries.delete(q.domain_id);
      return;
    }
    // No domain: delete the blob's cache files (upstream's DeleteBlobFile), unless a mount uses it.
    const id = q.blob_id ?? '';
    if (!HEX64.test(id)) throw new ControlError(400, 'INVALID_ARGUMENT', '"blob_id" must be 64 lowercase hex digits');
    const users = [...this.#mounts.values(), ...this.#retired].filter((m) => m.sb.blobs.some((b) => b.blobId === id));
    if (users.length) throw new ControlError(409, 'BUSY', `blob ${id} is in use by ${users.map((m) => m.mountpoint).join(', ')}`);
    const dirs = new Set([...this.#mounts.values()].filter((m) => m.config.cache.type !== 'dummycache' && m.config.cache.workDir).map((m) => m.config.cache.workDir));
    for (const d of dirs) {
      for (const suffix of ['blob.data', 'blob.data.chunk_map', 'blob.meta']) await rm(join(d, `${id}.${suffix}`), { force: true });
    }
  }

  async prometheus(): Promise<string> {
    this.#prom ??= createPrometheus({
      mounts: () => [...this.#mounts.values()].map((m) => ({ mountpoint: m.mountpoint, stats: m.stats, storage: m.storage.metrics() })),
      fuse: () => this.session?.stats(),
      eventErrors: () => this.#totalErrors,
    });
    return this.#prom.metrics();
  }

  exit(): void {
    this.opts.onExit?.();
  }

  /** Failover state lives with our supervisor already (it holds the fd; children report every mount change). */
  async sendFd(): Promise<void> {
    if (!this.opts.supervisor) throw new ControlError(400, 'INVALID_ARGUMENT', 'sendfd needs a nydusd started with --supervisor');
  }

  async takeover(): Promise<void> {
    throw new ControlError(400, 'INVALID_ARGUMENT', 'takeover needs a nydusd started with --upgrade');
  }

  async stop(): Promise<void> {
    if (this.session) await this.session.unmount().catch((e: unknown) => log.warn(`unmount: ${describeError(e)}`));
    this.state = 'STOPPED';
    for (const m of [...this.#mounts.values(), ...this.#retired]) await m.storage.close().catch(() => undefined);
  }
}
