// `nydusd erofs`: kernel EROFS with on-demand data, without fscache (CONFIG_EROFS_FS_ONDEMAND).
//
//   storage (backend + blob cache) ◄─ FUSE (blob-data-fs: <blob>.blob.data files) ◄─ loop (ro, dio)
//                                                                   ◄─ EROFS device=  ◄─ readers
//
// Metadata (the bootstrap, on its own loop device) and data already in the kernel's page cache are
// served by EROFS itself; only cold blocks travel loop → FUSE → this daemon, which fetches, verifies
// and caches the chunk through the same storage path as nydusd's FUSE reads.
//
// Lifetime: once EROFS holds the loop devices they are marked autoclear (`losetup -d` on a busy
// device), and the private FUSE mount is lazily detached, so the EROFS mount is the only thing left
// in the namespace and unmounting it releases everything in order: EROFS → loops (autoclear) → the
// FUSE superblock (its last file reference was the loops) → the daemon's FUSE session ends.
// If the daemon dies (even SIGKILL), the kernel aborts the FUSE connection when /dev/fuse closes:
// reads of blocks not in the page cache fail with ENOTCONN at the loop device, which completes the
// bio with an I/O error, and EROFS returns EIO to the reader. Nothing hangs; `umount MNT` cleans up.
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { FsConfig } from '../config/daemon-config.js';
import type { BlobInfo } from '../format/blob-info.js';
import { preloadNativeAddons } from '../format/native.js';
import { FuseSession, withTimeout, withTransfer } from '../fuse/index.js';
import { openBootstrap } from '../rafs/index.js';
import { RafsV6Super } from '../rafs/v6.js';
import { describeError, NydusError } from '../util/errors.js';
import { logger } from '../util/log.js';
import { BLOB_DATA_MOUNT, type BlobDataFsInit } from './blob-data-fs.js';
import { fetchReply, type DaemonRequest } from './fuse-fs.js';
import { readFileShared } from './shared-file.js';
import type { MountStorage, MountStorageFactory } from './mount-storage.js';
import { isChunkReady } from './chunk-ready.js';
import { startPrefetch } from './prefetch-plan.js';

const log = logger('erofs');
const BLOCK = 4096;

export interface ErofsOndemandOptions {
  mountpoint: string;
  bootstrap: string;
  config: FsConfig;
  threads: number;
  prefetchFiles?: string[];
  storageFactory: MountStorageFactory;
}

function run(cmd: string, args: string[], timeoutMs = 20_000): Promise<{ ok: boolean; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => resolve({ ok: !err, out: `${stdout}${stderr}`.trim() || (err ? err.message : '') }));
  });
}

/** The fstype mounted at `mp` (topmost), from /proc/self/mountinfo. */
export function mountedFsType(mp: string): string | undefined {
  let found: string | undefined;
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f.length < 10 || f[4]!.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))) !== mp) continue;
    found = f[f.indexOf('-') + 1];
  }
  return found;
}

/** True while /dev/loopN is bound to a backing file. */
export function loopBound(dev: string): boolean {
  return existsSync(`/sys/block/${basename(dev)}/loop`);
}

/** Attaches `file` read-only with direct I/O (no second copy in the page cache). */
async function attachLoop(file: string): Promise<string> {
  let last = '';
  // Another process may take the device losetup -f picked between its lookup and attach: retry.
  for (let i = 0; i < 5; i++) {
    const r = await run('losetup', ['--direct-io=on', '-r', '-f', '--show', file]);
    const dev = r.out.split('\n').find((l) => l.startsWith('/dev/loop'));
    if (r.ok && dev) return dev.trim();
    last = r.out;
  }
  throw new NydusError('ERR_FS', `losetup ${file} failed: ${last}`);
}

/**
 * Everything after the FUSE files exist, in ONE child process: attach each blob file to a loop device
 * (printing `loop DEV`), mount EROFS (`mounted`), mark every loop autoclear (`autoclear`) and detach
 * the FUSE mount lazily (if there is one). One fork instead of 2 + N + N: a fork of this daemon (worker threads, a big
 * heap) blocked its main thread for 100-250 ms each on a loaded 2-core machine, mostly before the
 * mount was usable. Args: mountpoint, bootstrap loop, FUSE dir, blob files. A losetup -f race with
 * another process is retried.
 */
const MOUNT_SCRIPT = `mnt=$1 boot=$2 fusedir=$3; shift 3
opts=ro loops=
for f; do
  n=0
  until d=$(losetup --direct-io=on -r -f --show "$f"); do
    n=$((n + 1)); [ $n -lt 5 ] || exit 1
  done
  echo "loop $d"; opts="$opts,device=$d"; loops="$loops $d"
done
mount -t erofs -o "$opts" "$boot" "$mnt" || exit 1
echo mounted
ok=1
for l in $loops $boot; do losetup -d "$l" || ok=; done
[ -z "$ok" ] || echo autoclear
[ -z "$fusedir" ] || umount -l "$fusedir"
exit 0`;

function runMountScript(args: string[]): Promise<{ stdout: string; stderr: string; error: string }> {
  return new Promise((resolve) => {
    execFile('sh', ['-c', MOUNT_SCRIPT, 'nydusd-erofs-mount', ...args], { timeout: 60_000, encoding: 'utf8' }, (err, stdout, stderr) => resolve({ stdout, stderr: stderr.trim(), error: err ? err.message : '' }));
  });
}

/**
 * The blob cache's data file when it can stand in for the blob's `.blob.data` file: every chunk is
 * ready and the file has exactly the device's size (the cache keeps chunk data at its uncompressed
 * offset, the same layout). Cached reads then never reach the daemon, as with EROFS on local files.
 */
function completeCacheFile(blob: BlobInfo, view: { bitmap: Uint8Array; dataPath: string } | undefined, size: number): string | undefined {
  if (!view || blob.chunkCount === 0) return undefined;
  for (let i = 0; i < blob.chunkCount; i++) if (!isChunkReady(view.bitmap, i)) return undefined;
  try {
    return statSync(view.dataPath).size === size ? view.dataPath : undefined;
  } catch {
    return undefined;
  }
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

export class ErofsOndemand {
  readonly mountpoint: string;
  /** Loop devices: one per blob (device= order), then the bootstrap's. */
  readonly loops: string[] = [];
  session: FuseSession | undefined;
  #storage: MountStorage | undefined;
  #fuseDir: string | undefined;
  #mounted = false;
  #autoclear = false;
  #bootLoop: string | undefined;
  #stopping: Promise<void> | undefined;
  /** Every blob served from its complete cache file: no FUSE session; this notices the unmount. */
  #released: Promise<void> | undefined;
  /** Per blob: the complete blob cache file its loop reads directly, if any. */
  direct: Array<string | undefined> = [];

  private constructor(readonly opts: ErofsOndemandOptions) {
    this.mountpoint = realpathSync(opts.mountpoint);
  }

  /** Sets everything up and resolves once the EROFS mount is usable. */
  static async start(opts: ErofsOndemandOptions): Promise<ErofsOndemand> {
    const d = new ErofsOndemand(opts);
    try {
      await d.#start();
    } catch (e) {
      await d.stop();
      throw e;
    }
    return d;
  }

  /** Resolves when the FUSE session is over (stop, or the EROFS mount was unmounted from outside). */
  get closed(): Promise<void> {
    return this.#released ?? this.session?.closed ?? Promise.resolve();
  }

  async #start(): Promise<void> {
    const { bootstrap, config } = this.opts;
    const t0 = performance.now();
    const step = (what: string): void => log.debug(`${what} at +${(performance.now() - t0).toFixed(0)} ms`);
    let shared: SharedArrayBuffer;
    try {
      shared = readFileShared(bootstrap);
    } catch (e) {
      throw new NydusError('ERR_FS', `bootstrap ${bootstrap}: ${describeError(e)}`);
    }
    const sb = openBootstrap(new Uint8Array(shared), `bootstrap ${bootstrap}`);
    if (!(sb instanceof RafsV6Super)) throw new NydusError('ERR_FORMAT_UNSUPPORTED', `bootstrap ${bootstrap}: kernel EROFS needs a RAFS v6 image (this one is v${sb.meta.version})`);
    if (sb.devices.length !== sb.blobs.length) throw new NydusError('ERR_FORMAT_INVALID', `bootstrap ${bootstrap}: ${sb.blobs.length} blobs but ${sb.devices.length} EROFS device slots`);
    const storage = await this.opts.storageFactory(sb.blobs, config);
    this.#storage = storage;
    step('storage open');
    startPrefetch(sb, storage, config, this.opts.prefetchFiles, this.mountpoint, log);

    const init: BlobDataFsInit = {
      bootstrap: shared,
      // Whole blocks, at least what the device slot claims (rafs-format §10 item 4).
      files: sb.blobs.map((b, i) => ({ name: `${b.blobId}.blob.data`, size: Math.max(sb.devices[i]!.blocks, Math.ceil(b.uncompressedSize / BLOCK)) * BLOCK })),
      cache: storage.cacheViews(),
      mtime: Math.floor(Date.now() / 1000),
    };
    this.direct = init.files.map((f, i) => completeCacheFile(sb.blobs[i]!, init.cache[i], f.size));
    const needFuse = this.direct.some((d) => d === undefined);
    // The bootstrap's loop does not need the daemon: attach it while the FUSE session starts.
    const bootLoop = attachLoop(bootstrap).then((l) => (this.#bootLoop = l));
    bootLoop.catch(() => undefined);
    try {
      if (needFuse) await this.#startFuse(init, storage);
      step(needFuse ? 'FUSE session up' : 'every blob complete in the cache: no FUSE session');
    } catch (e) {
      await bootLoop.catch(() => undefined);
      if (this.#bootLoop) this.loops.push(this.#bootLoop);
      throw e;
    }
    const primary = await bootLoop;
    const dir = this.#fuseDir ?? '';
    const r = await runMountScript([this.mountpoint, primary, dir, ...init.files.map((f, i) => this.direct[i] ?? join(dir, f.name))]);
    for (const line of r.stdout.split('\n')) {
      if (line.startsWith('loop ')) this.loops.push(line.slice(5));
      else if (line === 'mounted') {
        this.#mounted = true;
        step('EROFS mounted');
      } else if (line === 'autoclear') this.#autoclear = true;
    }
    this.loops.push(primary);
    if (!this.#mounted) throw new NydusError('ERR_FS', `mounting EROFS at ${this.mountpoint} (bootstrap ${primary}) failed: ${r.stderr || r.error}`);
    // From here on EROFS owns the loops (autoclear) and the FUSE mount is out of the namespace.
    if (r.stderr) log.warn(r.stderr);
    this.#removeFuseDir();
    if (!needFuse) this.#released = this.#watchUnmount();
    log.info(`EROFS mounted at ${this.mountpoint}: bootstrap ${primary}, ${init.files.length} blob device(s) ${this.loops.slice(0, -1).join(' ')}${needFuse ? '' : ' (on complete blob cache files)'}`);
  }

  /** Without a FUSE session nothing else tells the daemon that EROFS was unmounted from outside. */
  async #watchUnmount(): Promise<void> {
    while (!this.#stopping && mountedFsType(this.mountpoint) === 'erofs') await new Promise((r) => setTimeout(r, 1000));
  }

  async #startFuse(init: BlobDataFsInit, storage: MountStorage): Promise<void> {
    const { bootstrap } = this.opts;
    this.#fuseDir = mkdtempSync(join(tmpdir(), 'nydusd-erofs-'));
    // Before any FUSE worker blocks in read(2): a lazy addon load on this thread could deadlock (format/native.ts).
    preloadNativeAddons();
    this.session = await FuseSession.mount(this.#fuseDir, {
      fsModule: new URL('./blob-data-fs.js', import.meta.url),
      initData: init,
      workers: this.opts.threads,
      // Only root (the loop driver, losetup) opens these files.
      mount: { fsname: bootstrap, subtype: 'nydusd-erofs', allowOther: false },
      onRequest: (msg) => this.#onRequest(msg as DaemonRequest),
      onMessage: (msg) => {
        const m = msg as DaemonRequest;
        // Readahead only warms the cache; a failure surfaces when a read needs the chunk.
        if (m.t === 'readahead') storage.readChunks(m.chunks).catch(() => undefined);
      },
    });
  }

  async #onRequest(req: DaemonRequest): Promise<unknown> {
    if (req.t !== 'fetch' || req.mount !== BLOB_DATA_MOUNT || !this.#storage) throw new NydusError('ERR_INTERNAL', 'unknown worker request');
    try {
      const datas = await this.#storage.readChunks(req.chunks);
      const r = fetchReply(datas, req.ranges, req.into);
      return withTransfer(r.value, r.transfer);
    } catch (e) {
      log.warn(`read of ${req.chunks.length} chunk(s) failed: ${describeError(e)}`);
      throw e;
    }
  }

  #removeFuseDir(): void {
    if (!this.#fuseDir) return;
    try {
      rmdirSync(this.#fuseDir);
      this.#fuseDir = undefined;
    } catch {
      /* still a mountpoint: stop() retries */
    }
  }

  /** Unmounts EROFS, waits for the loops to clear and the FUSE session to end, closes storage. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    if (this.#mounted && mountedFsType(this.mountpoint) === 'erofs') {
      const r = await run('umount', [this.mountpoint], 10_000);
      if (!r.ok) {
        log.warn(`umount ${this.mountpoint}: ${r.out}; detaching lazily`);
        await run('umount', ['-l', this.mountpoint], 10_000);
      }
    }
    this.#mounted = false;
    // Autoclear detaches each loop at its last close; loops never handed to EROFS are detached here.
    if (!this.#autoclear) for (const l of this.loops.filter(loopBound)) await run('losetup', ['-d', l]);
    await until(() => this.loops.every((l) => !loopBound(l)), 10_000);
    const busy = this.loops.filter(loopBound);
    if (busy.length) log.warn(`loop device(s) ${busy.join(' ')} still in use: they detach when their last user closes them (reads now fail with EIO)`);
    if (this.session) {
      // The FUSE superblock goes with the loops' last reference; if anything still holds it, abort.
      await withTimeout(this.session.closed, busy.length ? 0 : 5000, 'FUSE session end').catch(() => this.session!.unmount().catch((e: unknown) => log.warn(`FUSE unmount: ${describeError(e)}`)));
    }
    this.#removeFuseDir();
    await this.#storage?.close().catch(() => undefined);
  }

  /** For process 'exit' handlers: release the EROFS mount synchronously (the rest follows it). */
  stopSync(): void {
    if (!this.#mounted || mountedFsType(this.mountpoint) !== 'erofs') return;
    if (spawnSync('umount', [this.mountpoint], { stdio: 'ignore', timeout: 5000 }).status !== 0) spawnSync('umount', ['-l', this.mountpoint], { stdio: 'ignore', timeout: 5000 });
    this.#mounted = false;
  }
}
