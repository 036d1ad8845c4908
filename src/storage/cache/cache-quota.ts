// Size limit and garbage collection of a blob cache work_dir (`cache_size_limit`; no upstream
// equivalent). Eviction is per blob, least recently used first: Node cannot punch holes in a file,
// so a blob's `.blob.data` is emptied whole (truncate to 0, then back to its sparse size) and all its
// ready bits are dropped; blobs no open cache uses are deleted. One CacheQuota per work_dir per
// process, shared by every mount's FileCache, so evicting a blob reaches every entry using its file.
//
// Never serving partly evicted data: each entry has shared words (CacheView.state): a generation
// that every eviction (or write by another entry of the same file) bumps when it starts and ends,
// and a count of those in progress. A reader (FUSE worker or main thread) takes readToken() before
// testing the bit and checks readStillValid() after reading the bytes; anything that ran in between
// makes the read a miss. A fetch that wrote while an eviction ran does not set its bits.
import { readdir, stat, truncate, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { logger } from '../../util/log.js';

const log = logger('storage:quota');

/** CacheView.state words: generation, last access (seconds since QUOTA_EPOCH), writers in progress. */
export const STATE_SEQ = 0;
export const STATE_ACCESS = 1;
export const STATE_ACTIVE = 2;
export const STATE_WORDS = 3;

/** Generation to compare after the read, or undefined while an eviction/overwrite runs (a miss). */
export function readToken(state: Int32Array): number | undefined {
  const g = Atomics.load(state, STATE_SEQ);
  return Atomics.load(state, STATE_ACTIVE) > 0 ? undefined : g;
}

export function readStillValid(state: Int32Array, token: number): boolean {
  return Atomics.load(state, STATE_SEQ) === token;
}

function beginWrite(state: Int32Array): void {
  Atomics.add(state, STATE_ACTIVE, 1);
  Atomics.add(state, STATE_SEQ, 1);
}

function endWrite(state: Int32Array): void {
  Atomics.add(state, STATE_SEQ, 1);
  Atomics.sub(state, STATE_ACTIVE, 1);
}
const QUOTA_EPOCH = 1_700_000_000;

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000) - QUOTA_EPOCH;
}

/** What the quota needs from an open cache entry of a blob. */
export interface QuotaMember {
  /** [seqlock, last access] over a SharedArrayBuffer, shared with FUSE workers. */
  state: Int32Array;
  /** Drops every ready bit and pending durability work; resolves once the persisted map is cleared. */
  dropAll(): Promise<void>;
  /** Forgets which chunks were verified (another entry is writing the same file). */
  distrust(): void;
}

interface BlobUsage {
  blobId: string;
  dataPath: string;
  /** Bytes of cached chunk data (allocated size at startup, then what was written). */
  bytes: number;
  /** Last access (QUOTA_EPOCH seconds) for blobs with no open entry. */
  lastAccess: number;
  members: Set<QuotaMember>;
}

export interface CacheUsage {
  workDir: string;
  limit: number;
  usage: number;
  blobs: Array<{ blobId: string; bytes: number; inUse: boolean; lastAccess: number }>;
}

const DATA_SUFFIX = '.blob.data';
const registry = new Map<string, CacheQuota>();

export class CacheQuota {
  readonly workDir: string;
  /** Bytes; 0 = unlimited (usage is still tracked for `nydusctl cache`). */
  limit: number;
  readonly #blobs = new Map<string, BlobUsage>();
  #scanned: Promise<void> | undefined;
  /** Serialises evictions and GC. */
  #lock: Promise<void> = Promise.resolve();

  private constructor(workDir: string, limit: number) {
    this.workDir = workDir;
    this.limit = limit;
  }

  /** The process-wide quota of a work_dir; a non-zero limit from a later mount replaces the old one. */
  static of(workDir: string, limit = 0): CacheQuota {
    const dir = resolve(workDir);
    let q = registry.get(dir);
    if (!q) registry.set(dir, (q = new CacheQuota(dir, limit)));
    else if (limit > 0) q.limit = limit;
    return q;
  }

  static all(): CacheQuota[] {
    return [...registry.values()];
  }

  /** Counts what earlier runs left in work_dir (allocated bytes, mtime as last access). */
  #scan(): Promise<void> {
    this.#scanned ??= (async () => {
      let names: string[] = [];
      try {
        names = await readdir(this.workDir);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      for (const n of names) {
        if (!n.endsWith(DATA_SUFFIX)) continue;
        const blobId = n.slice(0, -DATA_SUFFIX.length);
        try {
          const st = await stat(join(this.workDir, n));
          const u = this.#usage(blobId);
          u.bytes = Math.max(u.bytes, st.blocks * 512);
          u.lastAccess = Math.floor(st.mtimeMs / 1000) - QUOTA_EPOCH;
        } catch {
          /* raced with a delete */
        }
      }
    })();
    return this.#scanned;
  }

  #usage(blobId: string): BlobUsage {
    let u = this.#blobs.get(blobId);
    if (!u) this.#blobs.set(blobId, (u = { blobId, dataPath: join(this.workDir, blobId + DATA_SUFFIX), bytes: 0, lastAccess: nowSeconds(), members: new Set() }));
    return u;
  }

  async register(blobId: string, m: QuotaMember): Promise<void> {
    await this.#scan();
    const u = this.#usage(blobId);
    u.members.add(m);
    Atomics.store(m.state, STATE_ACCESS, nowSeconds());
  }

  unregister(blobId: string, m: QuotaMember): void {
    const u = this.#blobs.get(blobId);
    if (!u) return;
    u.lastAccess = Math.max(u.lastAccess, ...[...u.members].map((x) => Atomics.load(x.state, STATE_ACCESS)));
    u.members.delete(m);
  }

  get usage(): number {
    let n = 0;
    for (const u of this.#blobs.values()) n += u.bytes;
    return n;
  }

  #lastAccess(u: BlobUsage): number {
    let t = u.members.size ? 0 : u.lastAccess;
    for (const m of u.members) t = Math.max(t, Atomics.load(m.state, STATE_ACCESS));
    return t;
  }

  /**
   * Makes room for `bytes` more of blob `blobId` (evicting least recently used blobs, possibly this
   * one), then counts them. Resolves once the room is there; the caller then writes.
   */
  reserve(blobId: string, bytes: number): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.limit > 0) {
        while (this.usage + bytes > this.limit) {
          const victims = [...this.#blobs.values()].filter((u) => u.bytes > 0).sort((a, b) => this.#lastAccess(a) - this.#lastAccess(b));
          const v = victims[0];
          if (!v) break;
          await this.#evict(v);
        }
      }
      this.#usage(blobId).bytes += bytes;
    };
    const p = this.#lock.then(run);
    this.#lock = p.catch(() => undefined);
    return p;
  }

  /**
   * Runs `write` (of `self`'s entry into the blob's data file) while every other entry of the same
   * file has an odd seqlock and has forgotten what it verified: their readers miss meanwhile and
   * re-verify afterwards. Only happens when two bootstraps in this process name the same blob.
   */
  async foreignWrite<T>(blobId: string, self: QuotaMember, write: () => Promise<T>): Promise<T> {
    const others = [...(this.#blobs.get(blobId)?.members ?? [])].filter((m) => m !== self);
    for (const m of others) {
      beginWrite(m.state);
      m.distrust();
    }
    try {
      return await write();
    } finally {
      for (const m of others) endWrite(m.state);
    }
  }

  /** Counts bytes written without a reservation that still stands (an eviction ran meanwhile). */
  note(blobId: string, bytes: number): void {
    this.#usage(blobId).bytes += bytes;
  }

  async #evict(u: BlobUsage): Promise<void> {
    log.debug(`evicting blob ${u.blobId} (${u.bytes} bytes) from ${this.workDir}`);
    const members = [...u.members];
    for (const m of members) beginWrite(m.state);
    try {
      // The persisted bits go (durably) before the data: a crash in between must not leave a bit over zeros.
      await Promise.all(members.map((m) => m.dropAll()));
      if (members.length) {
        const size = (await stat(u.dataPath)).size;
        await truncate(u.dataPath, 0);
        await truncate(u.dataPath, size);
      } else {
        await removeBlobFiles(this.workDir, u.blobId);
        this.#blobs.delete(u.blobId);
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') log.warn(`cannot evict blob ${u.blobId}: ${(e as Error).message}`);
    } finally {
      for (const m of members) endWrite(m.state);
      u.bytes = 0;
    }
  }

  /** Deletes the cache files of blobs no open cache uses, then trims to the limit. */
  gc(): Promise<{ removed: string[]; freed: number }> {
    const run = async (): Promise<{ removed: string[]; freed: number }> => {
      this.#scanned = undefined; // pick up what other runs left since
      await this.#scan();
      const before = this.usage;
      const removed: string[] = [];
      for (const u of [...this.#blobs.values()]) {
        if (u.members.size) continue;
        await this.#evict(u);
        removed.push(u.blobId);
      }
      if (this.limit > 0) {
        for (const u of [...this.#blobs.values()].sort((a, b) => this.#lastAccess(a) - this.#lastAccess(b))) {
          if (this.usage <= this.limit) break;
          if (u.bytes > 0) await this.#evict(u);
        }
      }
      return { removed, freed: before - this.usage };
    };
    const p = this.#lock.then(run);
    this.#lock = p.then(
      () => undefined,
      () => undefined,
    );
    return p;
  }

  async report(): Promise<CacheUsage> {
    this.#scanned = undefined;
    await this.#scan();
    return {
      workDir: this.workDir,
      limit: this.limit,
      usage: this.usage,
      blobs: [...this.#blobs.values()].map((u) => ({ blobId: u.blobId, bytes: u.bytes, inUse: u.members.size > 0, lastAccess: this.#lastAccess(u) + QUOTA_EPOCH })),
    };
  }
}

/** Removes `<blob_id>.blob.data`, its chunk_map and the other per-blob cache files (§8). */
async function removeBlobFiles(workDir: string, blobId: string): Promise<void> {
  for (const n of await readdir(workDir)) {
    if (n.startsWith(`${blobId}.`)) await unlink(join(workDir, n)).catch(() => undefined);
  }
}
