// blobcache/filecache: per blob a sparse `<blob_id>.blob.data` holding each chunk decompressed at
// its uncompressed offset, the ready bitmap `<blob_id>.blob.data.chunk_map`, and (v6 with CI)
// `<blob_id>.blob.meta`. Same files as upstream nydusd (spec §8), so a work_dir is interchangeable.
// Upstream: storage/src/cache/filecache/mod.rs, cachedfile.rs.
//
// Miss path: in-flight map (one fetch per chunk however many readers) → merged backend reads →
// decompress/verify → write data → set bit (SharedArrayBuffer) → later, batched: persist bitmap bytes
// (no fdatasync on the read path, as upstream).
//
// Chunk identity (format/chunk-info.ts chunkKey): the chunk index, except for v5 blobs without the
// extended blob table, whose records all say index 0: those are keyed by digest and place in an
// in-memory set (upstream's DigestedChunkMap), never persisted, and have no worker view.
// Trust: a chunk's place in `.blob.data` comes from the bootstrap. v6 blobs vouch for it (the CI
// array is cross-checked on every fetch); v5 blobs cannot, and another bootstrap naming the same blob
// may have written there. So v5 chunks are verified when fetched and re-verified whenever they are
// read from the cache, as are all chunks when validation is on (upstream re-validates ready
// chunks); a mismatch drops the chunk and fetches it again.
import { setMaxListeners } from 'node:events';
import { mkdir, open, readFile, writeFile, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { BlobInfo } from '../../format/blob-info.js';
import { BLOB_CCT_FILE_SUFFIX, blobMetaRange, decodeBlobMetaCache, encodeBlobMetaCache, isBatchCi, type BlobMeta, type CiEntry } from '../../format/blob/index.js';
import { chunkKey, isDigestKeyed, type ChunkInfo, type ChunkKey } from '../../format/chunk-info.js';
import { align } from '../../util/bytes.js';
import { NydusError } from '../../util/errors.js';
import { logger } from '../../util/log.js';
import type { BlobBackend } from '../backend/backend.js';
import { isZranBlob } from '../../format/zran/context.js';
import { BatchInflateCache, DEFAULT_MERGE_SIZE, checkChunkRecord, chunkFromCi, chunkLabel, fetchMergedRead, loadBlobMetaFromBackend, needsBlobMeta, planMergedReads, resolveChunk, verifyChunk, type MergedRead } from '../blob-io.js';
import type { UserIoGate } from '../io-gate.js';
import { countFetchError, newBlobCacheMetrics, type BlobCache, type BlobCacheMetrics, type CacheView, type ReadChunksOptions } from './blob-cache.js';
import { CacheQuota, STATE_ACCESS, STATE_ACTIVE, STATE_SEQ, STATE_WORDS, nowSeconds, readStillValid, readToken, type QuotaMember } from './cache-quota.js';
import { PersistedChunkMap } from './chunk-map.js';

const log = logger('storage:filecache');

export const BLOB_DATA_FILE_SUFFIX = 'blob.data';

export interface FileCacheOptions {
  /** `work_dir`; created if missing. */
  workDir: string;
  backend: BlobBackend;
  /** digest_validate / rafs.validate / cache.validate: verify every fetched chunk. */
  validate?: boolean;
  /** Largest merged backend request for user reads (`amplify_io` / `rafs.batch_size`). */
  mergeSize?: number;
  /**
   * Use the blob's CI array (v6): cross-check chunk records and amplify user reads to following
   * chunks up to `mergeSize`. Amplification is skipped when validating, since CI entries carry no
   * digest and an unverified chunk must not be cached.
   */
  useBlobMeta?: boolean;
  /** Shared with the prefetcher so background work yields to user misses. */
  io?: UserIoGate;
  /** `cache_size_limit`: bytes of chunk data kept in work_dir (LRU blobs evicted); 0 = unlimited. */
  sizeLimit?: number;
  /** Test hook between the data write and persisting the ready bits (crash simulation). */
  beforeMarkReady?: (blob: BlobInfo, indexes: number[]) => void | Promise<void>;
}

interface Entry {
  blob: BlobInfo;
  dataPath: string;
  fh: FileHandle;
  /** Indexed blobs: the persisted ready bitmap. */
  map: PersistedChunkMap | undefined;
  /** Digest-keyed blobs (v5 without extended blob table): ready chunk keys, in memory only. */
  digested: Set<ChunkKey> | undefined;
  /** Chunks read from the cache are verified first (validation on, or places not vouched by the blob). */
  verify: boolean;
  /**
   * Without validation, a chunk whose place the blob does not vouch for (v5) is verified once per
   * process: set here once this entry wrote or checked its bytes, cleared when another entry of the
   * same blob file writes (another bootstrap naming the blob) or the blob is evicted. Undefined
   * when every read verifies (validation on) or none needs to.
   */
  trusted: Uint8Array | undefined;
  trustedKeys: Set<ChunkKey>;
  inflight: Map<ChunkKey, Promise<Uint8Array>>;
  /** Seqlock + last access shared with workers and the quota (cache-quota.ts). */
  state: Int32Array;
  member: QuotaMember;
  ciLoad?: Promise<Pick<BlobMeta, 'chunks' | 'batches'> | undefined>;
  /** Ready in memory, bit not yet persisted (batched off the read path). */
  unsynced: number[];
  syncing: boolean;
}

/** Blob ids become file names: refuse anything that could leave work_dir. */
function checkBlobId(id: string): void {
  if (!/^[A-Za-z0-9._:-]+$/.test(id) || id === '.' || id === '..') throw new NydusError('ERR_CACHE_CORRUPT', `Cannot cache blob "${id}": the id is not usable as a file name`);
}

export class FileCache implements BlobCache {
  readonly kind = 'filecache';
  readonly metrics: BlobCacheMetrics = newBlobCacheMetrics();
  readonly workDir: string;
  readonly #o: FileCacheOptions;
  readonly #mergeSize: number;
  readonly #entries = new Map<string, Promise<Entry>>();
  readonly #opened = new Map<string, Entry>();
  /** Cache writes still running after their readers were answered; close() waits for them. */
  readonly #pending = new Set<Promise<void>>();
  readonly #batches = new BatchInflateCache();
  /** Aborted by close(): shutdown must not wait for a stalled backend. */
  readonly #closing = new AbortController();
  readonly quota: CacheQuota;

  constructor(o: FileCacheOptions) {
    this.#o = o;
    this.workDir = resolve(o.workDir);
    this.#mergeSize = o.mergeSize && o.mergeSize > 0 ? o.mergeSize : DEFAULT_MERGE_SIZE;
    this.quota = CacheQuota.of(this.workDir, o.sizeLimit ?? 0);
    // Every fetch in flight listens on it; many concurrent readers are normal, not a leak.
    setMaxListeners(0, this.#closing.signal);
  }

  dataPath(blob: BlobInfo): string {
    return join(this.workDir, `${blob.blobId}.${BLOB_DATA_FILE_SUFFIX}`);
  }

  async open(blob: BlobInfo): Promise<void> {
    await this.#entry(blob);
  }

  #entry(blob: BlobInfo): Promise<Entry> {
    let e = this.#entries.get(blob.blobId);
    if (!e) {
      e = this.#openEntry(blob);
      this.#entries.set(blob.blobId, e);
      e.then((x) => this.#opened.set(blob.blobId, x), () => this.#entries.delete(blob.blobId));
    }
    return e;
  }

  async #openEntry(blob: BlobInfo): Promise<Entry> {
    checkBlobId(blob.blobId);
    await mkdir(this.workDir, { recursive: true });
    const dataPath = this.dataPath(blob);
    let fh: FileHandle;
    let discard = false;
    try {
      fh = await open(dataPath, 'r+');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      fh = await open(dataPath, 'w+');
      discard = true; // no data: whatever bitmap exists describes another file
    }
    const validate = this.#o.validate ?? false;
    const verify = validate || !this.#o.useBlobMeta || !blobMetaRange(blob);
    const once = verify && !validate;
    if (isDigestKeyed(blob)) {
      // Size and chunk count unknown: the data file grows as chunks land; readiness lives in memory.
      return this.#register({ blob, dataPath, fh, map: undefined, digested: new Set(), verify, trusted: undefined, trustedKeys: new Set(), once, inflight: new Map(), unsynced: [], syncing: false, ...newState() });
    }
    const size = (await fh.stat()).size;
    if (blob.uncompressedSize > 0 && size !== blob.uncompressedSize) {
      // §6.2: .blob.data must be exactly the blob's uncompressed size; otherwise its content is unknown.
      if (size !== 0) log.warn(`${dataPath} is ${size} bytes, expected ${blob.uncompressedSize}: resetting the cache of blob ${blob.blobId}`);
      await fh.truncate(0);
      await fh.truncate(blob.uncompressedSize);
      discard = true;
    }
    const map = await PersistedChunkMap.open(`${dataPath}.chunk_map`, blob.chunkCount, discard);
    const trusted = once ? new Uint8Array(new SharedArrayBuffer(map.bitmap.length)) : undefined;
    return this.#register({ blob, dataPath, fh, map, digested: undefined, verify, trusted, trustedKeys: new Set(), once, inflight: new Map(), unsynced: [], syncing: false, ...newState() });
  }

  async #register(e: Entry & { once: boolean }): Promise<Entry> {
    e.member.distrust = () => {
      if (e.trusted) for (let i = 0; i < e.trusted.length; i++) Atomics.store(e.trusted, i, 0);
      e.trustedKeys.clear();
    };
    e.member.dropAll = async () => {
      e.member.distrust();
      e.unsynced = [];
      if (e.map) await e.map.clearAll();
      else e.digested!.clear();
    };
    if (!e.once) e.trustedKeys = NEVER_TRUSTED;
    await this.quota.register(e.blob.blobId, e.member);
    return e;
  }

  /** `chunk` may be an index for blobs that number their chunks. */
  isReady(blob: BlobInfo, chunk: ChunkInfo | number): boolean {
    const e = this.#opened.get(blob.blobId);
    if (!e) return false;
    if (typeof chunk === 'number') return e.map?.isReady(chunk) ?? false;
    return this.#ready(e, chunk);
  }

  /** Ready and not being evicted or overwritten (odd seqlock): otherwise fetch it. */
  #ready(e: Entry, c: ChunkInfo): boolean {
    if (Atomics.load(e.state, STATE_ACTIVE) > 0) return false;
    return e.map ? e.map.isReady(c.index) : e.digested!.has(chunkKey(e.blob, c));
  }

  #isTrusted(e: Entry, c: ChunkInfo): boolean {
    return e.trusted ? (Atomics.load(e.trusted, c.index >>> 3) & (0x80 >>> (c.index & 7))) !== 0 : e.trustedKeys.has(chunkKey(e.blob, c));
  }

  #trust(e: Entry, c: ChunkInfo): void {
    if (e.trusted) {
      if (c.index >>> 3 < e.trusted.length) Atomics.or(e.trusted, c.index >>> 3, 0x80 >>> (c.index & 7));
    } else if (e.trustedKeys !== NEVER_TRUSTED) e.trustedKeys.add(chunkKey(e.blob, c));
  }

  /** Digest-keyed blobs get no view: their chunks have no bit, so workers ask the main thread. */
  view(blob: BlobInfo): CacheView | undefined {
    const e = this.#opened.get(blob.blobId);
    return e?.map ? { bitmap: e.map.bitmap, dataPath: e.dataPath, verify: e.verify, state: e.state, ...(e.trusted ? { trusted: e.trusted } : {}) } : undefined;
  }

  /** Ready chunk count of an opened blob (for status and tests). */
  readyCount(blob: BlobInfo): number {
    const e = this.#opened.get(blob.blobId);
    return e?.map?.readyCount ?? e?.digested?.size ?? 0;
  }

  async readChunks(blob: BlobInfo, chunks: readonly ChunkInfo[], opts: ReadChunksOptions = {}): Promise<Uint8Array[]> {
    const e = await this.#entry(blob);
    for (const c of chunks) checkChunkRecord(blob, c);
    Atomics.store(e.state, STATE_ACCESS, nowSeconds());
    const out = new Array<Uint8Array>(chunks.length);
    let missing: number[] = [];
    // Ready chunks first; one that fails re-validation (or was evicted meanwhile) joins the misses.
    await Promise.all(
      chunks.map(async (c, i) => {
        const d = this.#ready(e, c) ? await this.#readCached(e, c) : undefined;
        if (d) {
          this.metrics.hits++;
          out[i] = d;
        } else missing.push(i);
      }),
    );
    if (log.enabled('debug')) log.debug(`blob ${e.blob.blobId}: ${chunks.length - missing.length} cache hit(s), ${missing.length} miss(es) among chunks ${chunks.map((c) => c.index).join(',')}`);
    if (missing.length === 0) return out;
    missing = missing.sort((a, b) => a - b);
    const run = async (): Promise<Uint8Array[]> => {
      // A chunk that became ready while we waited is read from the cache; if it was evicted again
      // before we got there, it is fetched again (a bounded number of times).
      for (let round = 0; missing.length > 0; round++) {
        const fetched = await this.#ensure(e, missing.map((i) => chunks[i]!), false, opts.signal, opts.mergeSize);
        // Settle everything before reporting the first failure: when readChunks returns, none of
        // its fetches is still running (callers and tests may rely on the cache state).
        const settled = await Promise.allSettled(missing.map((i) => fetched.get(chunkKey(blob, chunks[i]!)) ?? this.#readReady(e, chunks[i]!, round >= 8)));
        const again: number[] = [];
        settled.forEach((r, k) => {
          if (r.status === 'rejected') throw r.reason;
          if (r.value) out[missing[k]!] = r.value;
          else again.push(missing[k]!);
        });
        missing = again;
      }
      return out;
    };
    return this.#o.io ? this.#o.io.run(run) : run();
  }

  async prefetch(blob: BlobInfo, chunks: readonly ChunkInfo[], opts: ReadChunksOptions = {}): Promise<void> {
    const e = await this.#entry(blob);
    for (const c of chunks) checkChunkRecord(blob, c);
    const missing = chunks.filter((c) => !this.#ready(e, c));
    if (missing.length === 0) return;
    const got = await this.#ensure(e, missing, true, opts.signal, opts.mergeSize);
    await Promise.all(got.values());
  }

  /** A chunk that became ready while its reader waited: its cached bytes, or undefined to fetch again. */
  async #readReady(e: Entry, c: ChunkInfo, last: boolean): Promise<Uint8Array | undefined> {
    const d = await this.#readCached(e, c);
    if (d) this.metrics.hits++;
    else if (last) throw new NydusError('ERR_CACHE_CORRUPT', `Cannot read ${chunkLabel(e.blob, c)} from ${e.dataPath}: dropped from the cache again and again`);
    return d;
  }

  /**
   * The cached bytes of a ready chunk, or undefined when they are short or (with `verify`) fail the
   * chunk's digest: the chunk is then dropped from the ready state so the caller fetches it again.
   */
  async #readCached(e: Entry, c: ChunkInfo): Promise<Uint8Array | undefined> {
    const token = readToken(e.state);
    if (token === undefined || !this.#ready(e, c)) return undefined;
    const buf = Buffer.allocUnsafe(c.uncompressedSize);
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await e.fh.read(buf, got, buf.length - got, c.uncompressedOffset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    // Evicted while we read: a miss, not a corrupt cache.
    if (!readStillValid(e.state, token)) return undefined;
    let why = got !== buf.length ? `only ${got} of ${buf.length} bytes` : undefined;
    if (!why && e.verify && !this.#isTrusted(e, c)) {
      try {
        verifyChunk(e.blob, c, buf);
        this.#trust(e, c);
      } catch (err) {
        why = (err as Error).message;
      }
    }
    if (!why) return buf;
    this.metrics.cacheRevalidationFailures++;
    log.warn(`dropping cached ${chunkLabel(e.blob, c)} from ${e.dataPath}: ${why}; fetching it again`);
    if (e.map) void e.map.clear(c.index).catch((err: unknown) => log.warn(`cannot clear the ready bit: ${(err as Error).message}`));
    else e.digested!.delete(chunkKey(e.blob, c));
    return undefined;
  }

  /**
   * Promises for the given not-ready chunks: joins fetches already in flight, starts merged
   * fetches for the rest. Keyed by chunk index.
   */
  async #ensure(e: Entry, chunks: readonly ChunkInfo[], prefetch: boolean, signal?: AbortSignal, mergeSize = this.#mergeSize): Promise<Map<ChunkKey, Promise<Uint8Array>>> {
    const out = new Map<ChunkKey, Promise<Uint8Array>>();
    const toFetch: ChunkInfo[] = [];
    const queued = new Set<ChunkKey>();
    for (const c of chunks) {
      const k = chunkKey(e.blob, c);
      // Became ready since the caller looked: readChunks then reads it from the file.
      if (out.has(k) || this.#ready(e, c)) continue;
      const p = e.inflight.get(k);
      if (p) {
        if (!prefetch) this.metrics.inflightJoins++;
        out.set(k, p);
      } else if (!queued.has(k)) {
        queued.add(k);
        toFetch.push(c);
      }
    }
    if (!prefetch) this.metrics.misses += toFetch.length;
    if (toFetch.length === 0) return out;
    // Deferreds are registered synchronously so a reader arriving during the CI load joins them.
    const deferreds = new Map<ChunkKey, Deferred>();
    for (const c of toFetch) {
      const d = deferred();
      const k = chunkKey(e.blob, c);
      deferreds.set(k, d);
      e.inflight.set(k, d.promise);
      out.set(k, d.promise);
    }
    let reads: MergedRead[];
    let ci: CiEntry[] | undefined;
    try {
      const meta = await this.#blobMeta(e);
      ci = meta?.chunks;
      // Cross-checked against the CI; batch chunks get their batch's range from it.
      const located = meta ? toFetch.map((c) => resolveChunk(e.blob, c, meta)) : toFetch;
      reads = planMergedReads(located, mergeSize > 0 ? mergeSize : this.#mergeSize, 0, e.blob);
    } catch (err) {
      for (const d of deferreds.values()) d.reject(err as Error);
      for (const k of deferreds.keys()) e.inflight.delete(k);
      return out;
    }
    // Zran chunks are read per gzip context and always verified; CI neighbours carry no digest.
    if (ci && !prefetch && !e.verify && !isZranBlob(e.blob)) reads = reads.map((r) => this.#amplify(e, r, ci, deferreds));
    const sig = signal ? AbortSignal.any([signal, this.#closing.signal]) : this.#closing.signal;
    for (const r of reads) {
      this.#track(
        this.#fetchRead(e, r, deferreds, prefetch, sig).catch((err: unknown) => {
          // Never leave a reader waiting or a stale in-flight entry: later reads must fetch anew.
          for (const c of r.chunks) {
            const k = chunkKey(e.blob, c);
            if (e.inflight.get(k) === deferreds.get(k)?.promise) e.inflight.delete(k);
            deferreds.get(k)?.reject(err as Error);
          }
        }),
      );
    }
    return out;
  }

  /** Extends a user read with the following not-ready chunks from the CI, up to the merge size. */
  #amplify(e: Entry, r: MergedRead, ci: readonly CiEntry[], deferreds: Map<ChunkKey, Deferred>): MergedRead {
    const last = r.chunks[r.chunks.length - 1]!;
    for (let i = last.index + 1; i < ci.length; i++) {
      const n = ci[i]!;
      const end = r.offset + r.length;
      // Batch chunks have no digest in the CI, so they are never fetched unasked (unverified).
      if (isBatchCi(n)) break;
      if (n.compressedOffset !== end || end + n.compressedSize - r.offset > this.#mergeSize) break;
      if (e.map?.isReady(i) || e.inflight.has(i)) break;
      const d = deferred();
      deferreds.set(i, d);
      e.inflight.set(i, d.promise);
      r.chunks.push(chunkFromCi(e.blob, i, n));
      r.length += n.compressedSize;
    }
    return r;
  }

  #track(p: Promise<void>): void {
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
  }

  async #fetchRead(e: Entry, r: MergedRead, deferreds: Map<ChunkKey, Deferred>, prefetch: boolean, signal?: AbortSignal): Promise<void> {
    const results = await fetchMergedRead(this.#o.backend, e.blob, r, {
      // Chunks re-verified on cache reads are verified when fetched too: nothing unverified is cached.
      validate: e.verify,
      batches: this.#batches,
      ...(signal ? { signal } : {}),
      onBackendRead: (n) => {
        this.metrics.backendReads++;
        this.metrics.backendBytes += n;
      },
    });
    const good: { chunk: ChunkInfo; data: Uint8Array }[] = [];
    for (const res of results) {
      const k = chunkKey(e.blob, res.chunk);
      const d = deferreds.get(k)!;
      if (res.error) {
        countFetchError(this.metrics, res.error);
        e.inflight.delete(k);
        d.reject(res.error);
      } else {
        good.push({ chunk: res.chunk, data: res.data });
        if (prefetch) {
          this.metrics.prefetchChunks++;
          this.metrics.prefetchBytes += res.data.length;
        }
      }
    }
    if (good.length === 0) return;
    try {
      // Room first (may evict, this blob included), then write; bits only if no eviction ran since.
      const bytes = good.reduce((n, g) => n + align(g.data.length, 4096), 0);
      await this.quota.reserve(e.blob.blobId, bytes);
      const seq = Atomics.load(e.state, STATE_SEQ);
      // Other entries of this blob file (other bootstraps naming it) must re-check what they read.
      await this.quota.foreignWrite(e.blob.blobId, e.member, () => Promise.all(good.map((g) => writeAll(e.fh, g.data, g.chunk.uncompressedOffset))));
      if (Atomics.load(e.state, STATE_SEQ) !== seq) {
        // Evicted while writing: the bytes are on disk but not ready; count them so the next
        // reservation evicts them again.
        this.quota.note(e.blob.blobId, bytes);
        return;
      }
      // In the cache file now: readers of this process may pread it. The persisted bit follows in
      // batches, off the read path.
      // Written by us and verified when fetched (verify implies validation of fetches): trusted.
      for (const g of good) if (e.verify) this.#trust(e, g.chunk);
      if (e.map) {
        const indexes = good.map((g) => g.chunk.index);
        e.map.setReady(indexes);
        this.#makeDurable(e, indexes);
      } else for (const g of good) e.digested!.add(chunkKey(e.blob, g.chunk));
    } catch (err) {
      // The bytes are verified, so readers still get them; only caching failed.
      this.metrics.cacheWriteErrors++;
      log.warn(`cannot cache ${good.length} chunk(s) of blob ${e.blob.blobId}: ${(err as Error).message}`);
    } finally {
      // Answer readers only now, so "readChunks resolved" implies "chunk ready" when caching worked.
      for (const g of good) {
        const k = chunkKey(e.blob, g.chunk);
        e.inflight.delete(k);
        deferreds.get(k)!.resolve(g.data);
      }
    }
  }

  /**
   * Persists the bits of chunks already ready in memory, in batches (one map write covers every
   * chunk written since the last). No fdatasync, as upstream: a bit is written only after its data
   * write returned, so a crashed or killed daemon (whose writes are in the page cache) never leaves
   * a bit over garbage; a power loss may, and then validation or a re-fetch are the remedy.
   */
  #makeDurable(e: Entry, indexes: number[]): void {
    e.unsynced.push(...indexes);
    if (e.syncing) return;
    e.syncing = true;
    this.#track(
      (async () => {
        try {
          while (e.unsynced.length) {
            const batch = e.unsynced;
            e.unsynced = [];
            await this.#o.beforeMarkReady?.(e.blob, batch);
            await e.map!.persist(batch);
          }
        } catch (err) {
          this.metrics.cacheWriteErrors++;
          e.unsynced = [];
          log.warn(`cannot persist the ready state of blob ${e.blob.blobId}: ${(err as Error).message}`);
        } finally {
          e.syncing = false;
        }
      })(),
    );
  }

  /**
   * CI entries (and batch contexts) of a v6 blob: from `<blob_id>.blob.meta` if valid, else the
   * backend (then cached). Batch blobs always need them: their chunks are found through the CI.
   */
  #blobMeta(e: Entry): Promise<Pick<BlobMeta, 'chunks' | 'batches'> | undefined> {
    if ((!this.#o.useBlobMeta && !needsBlobMeta(e.blob)) || !blobMetaRange(e.blob)) return Promise.resolve(undefined);
    if (e.ciLoad) return e.ciLoad;
    e.ciLoad = (async () => {
      const path = join(this.workDir, `${e.blob.blobId}.${BLOB_CCT_FILE_SUFFIX}`);
      try {
        return decodeBlobMetaCache(await readFile(path), e.blob);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.warn(`re-downloading blob meta: ${path}: ${(err as Error).message}`);
      }
      const meta = await loadBlobMetaFromBackend(this.#o.backend, e.blob);
      if (!meta) return undefined;
      this.metrics.backendReads++;
      await writeFile(path, encodeBlobMetaCache(meta.ciData, meta.headerBytes)).catch((err: unknown) => log.warn(`cannot write ${path}: ${(err as Error).message}`));
      return meta;
    })();
    // A failed load is retried by the next miss.
    e.ciLoad.catch(() => (e.ciLoad = undefined));
    return e.ciLoad;
  }

  async close(): Promise<void> {
    this.#closing.abort(new NydusError('ERR_CACHE_CLOSED', 'the blob cache is closing'));
    while (this.#pending.size) await Promise.allSettled([...this.#pending]);
    const entries = await Promise.allSettled([...this.#entries.values()]);
    this.#entries.clear();
    this.#opened.clear();
    for (const r of entries) {
      if (r.status !== 'fulfilled') continue;
      this.quota.unregister(r.value.blob.blobId, r.value.member);
      await r.value.map?.close().catch(() => undefined);
      await r.value.fh.close().catch(() => undefined);
    }
  }
}

function newState(): { state: Int32Array; member: QuotaMember } {
  const state = new Int32Array(new SharedArrayBuffer(4 * STATE_WORDS));
  return { state, member: { state, dropAll: async () => undefined, distrust: () => undefined } };
}

/** trustedKeys of entries that verify every read: never holds anything. */
const NEVER_TRUSTED: Set<ChunkKey> = new (class extends Set<ChunkKey> {
  override add(): this {
    return this;
  }
})();

interface Deferred {
  promise: Promise<Uint8Array>;
  resolve(v: Uint8Array): void;
  reject(e: Error): void;
}

function deferred(): Deferred {
  let resolve!: (v: Uint8Array) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<Uint8Array>((res, rej) => ((resolve = res), (reject = rej)));
  // Amplified or abandoned chunks may have no reader: never an unhandled rejection.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

async function writeAll(fh: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}
