// Persistent ready bitmap `<blob_id>.blob.data.chunk_map` (spec §8; upstream
// storage/src/cache/state/persist_map.rs). In memory the bits live in a SharedArrayBuffer so FUSE
// workers can test readiness without asking the main thread.
//
// Two views of readiness: the shared in-memory bits (setReady: the data is in the cache file, so
// readers in this process may pread it) and the persisted bits (persist: the caller's data write
// has returned). Only persisted bits reach the file, so after a daemon crash a set bit always points
// at written data; neither file is synced on the read path (upstream neither; losing a bit costs a
// re-fetch).
import { open, readFile, type FileHandle } from 'node:fs/promises';
import {
  CHUNK_MAP_HEADER_SIZE,
  CHUNK_MAP_MAGIC_ALL_READY,
  allChunksReady,
  chunkMapFileSize,
  createChunkMap,
  decodeChunkMap,
  isChunkReady,
} from '../../format/blob/chunk-map.js';
import { isAllZero } from '../../util/bytes.js';
import { logger } from '../../util/log.js';

const log = logger('storage:chunk-map');

export class PersistedChunkMap {
  readonly path: string;
  readonly chunkCount: number;
  /** MSB-first ready bits over a SharedArrayBuffer (ceil(chunkCount/8) bytes). */
  readonly bitmap: Uint8Array;
  readonly #fh: FileHandle;
  #readyCount = 0;
  /** Bits whose data is known durable: the only ones ever written to the file. */
  readonly #durable: Uint8Array;
  #durableCount = 0;
  #allReadyWritten: boolean;
  /** Persisting is serialized so a later write (a superset of bits) never lands before an earlier one. */
  #chain: Promise<void> = Promise.resolve();

  private constructor(path: string, chunkCount: number, fh: FileHandle, bits: Uint8Array, allReadyWritten: boolean) {
    this.path = path;
    this.chunkCount = chunkCount;
    this.#fh = fh;
    this.bitmap = new Uint8Array(new SharedArrayBuffer(Math.max(1, Math.ceil(chunkCount / 8))));
    this.bitmap.set(bits.subarray(0, this.bitmap.length));
    for (let i = 0; i < chunkCount; i++) if (isChunkReady(this.bitmap, i)) this.#readyCount++;
    this.#durable = this.bitmap.slice();
    this.#durableCount = this.#readyCount;
    this.#allReadyWritten = allReadyWritten;
  }

  /**
   * Opens or creates the map. An existing file is kept only when its size is exactly
   * 4096 + ceil(n/8) and its header is valid; an all-zero header (crash while creating) or
   * `discard` (the data file was recreated) starts from an empty map.
   */
  static async open(path: string, chunkCount: number, discard = false): Promise<PersistedChunkMap> {
    const size = chunkMapFileSize(chunkCount);
    let existing: Uint8Array | undefined;
    if (!discard) {
      try {
        existing = await readFile(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
    if (existing) {
      try {
        if (existing.length === size && isAllZero(existing.subarray(0, CHUNK_MAP_HEADER_SIZE))) throw new Error('all-zero header (interrupted create)');
        const { header, bitmap } = decodeChunkMap(existing, chunkCount);
        const fh = await open(path, 'r+');
        const map = new PersistedChunkMap(path, chunkCount, fh, bitmap, header.allReady);
        // Upstream writes PAMM when a reader opens a map that is in fact complete.
        if (!header.allReady && allChunksReady(map.bitmap, chunkCount)) await map.#writeAllReady();
        return map;
      } catch (e) {
        log.warn(`discarding chunk map ${path}: ${(e as Error).message}`);
      }
    }
    const fh = await open(path, 'w+');
    try {
      await fh.write(createChunkMap(chunkCount), 0, size, 0);
    } catch (e) {
      await fh.close();
      throw e;
    }
    return new PersistedChunkMap(path, chunkCount, fh, new Uint8Array(0), false);
  }

  isReady(index: number): boolean {
    return index < this.chunkCount && (Atomics.load(this.bitmap, index >>> 3) & (0x80 >>> (index & 7))) !== 0;
  }

  get readyCount(): number {
    return this.#readyCount;
  }

  /** Sets the in-memory bits (visible to workers at once). Call once the data is in the cache file. */
  setReady(indexes: readonly number[]): void {
    for (const i of indexes) {
      if (i >= this.chunkCount) continue;
      const mask = 0x80 >>> (i & 7);
      const old = Atomics.or(this.bitmap, i >>> 3, mask);
      if ((old & mask) === 0) this.#readyCount++;
    }
  }

  /** Persists the bits of these chunks. Call only after their data write has returned. */
  persist(indexes: readonly number[]): Promise<void> {
    let lo = Infinity;
    let hi = -1;
    for (const i of indexes) {
      // Dropped (evicted) since it was written: its data may be gone, never persist it.
      if (i >= this.chunkCount || !this.isReady(i)) continue;
      const byte = i >>> 3;
      const mask = 0x80 >>> (i & 7);
      if ((this.#durable[byte]! & mask) === 0) this.#durableCount++;
      this.#durable[byte]! |= mask;
      lo = Math.min(lo, byte);
      hi = Math.max(hi, byte);
    }
    if (hi < 0) return this.#chain;
    const complete = this.#durableCount === this.chunkCount && !this.#allReadyWritten;
    this.#chain = this.#chain.then(async () => {
      // Copy at write time: includes every durable bit so far, so serialized writes only ever add bits.
      const bytes = Buffer.from(this.#durable.slice(lo, hi + 1));
      await this.#fh.write(bytes, 0, bytes.length, CHUNK_MAP_HEADER_SIZE + lo);
      if (complete) await this.#writeAllReady();
    });
    return this.#chain;
  }

  /**
   * Drops a chunk (its cached bytes failed re-validation): the in-memory bit at once, the persisted
   * bit (and the all-ready mark) in order with other map writes.
   */
  clear(index: number): Promise<void> {
    if (index >= this.chunkCount) return this.#chain;
    const byte = index >>> 3;
    const mask = 0x80 >>> (index & 7);
    const old = Atomics.and(this.bitmap, byte, ~mask & 0xff);
    if ((old & mask) !== 0) this.#readyCount--;
    if ((this.#durable[byte]! & mask) === 0) return this.#chain;
    this.#durable[byte]! &= ~mask & 0xff;
    this.#durableCount--;
    this.#chain = this.#chain.then(async () => {
      if (this.#allReadyWritten) {
        this.#allReadyWritten = false;
        await this.#fh.write(Buffer.alloc(4), 0, 4, 12);
      }
      const b = Buffer.from(this.#durable.slice(byte, byte + 1));
      await this.#fh.write(b, 0, 1, CHUNK_MAP_HEADER_SIZE + byte);
    });
    return this.#chain;
  }

  /** Drops every chunk (the blob's data is being discarded): memory at once, then the file. */
  clearAll(): Promise<void> {
    for (let i = 0; i < this.bitmap.length; i++) Atomics.store(this.bitmap, i, 0);
    this.#readyCount = 0;
    this.#durable.fill(0);
    this.#durableCount = 0;
    this.#chain = this.#chain.then(async () => {
      if (this.#allReadyWritten) {
        this.#allReadyWritten = false;
        await this.#fh.write(Buffer.alloc(4), 0, 4, 12);
      }
      const zeros = Buffer.alloc(this.#durable.length);
      await this.#fh.write(zeros, 0, zeros.length, CHUNK_MAP_HEADER_SIZE);
      // Unlike set bits, a lost clear would point at discarded data: make it durable.
      await this.#fh.datasync();
    });
    return this.#chain;
  }

  /** setReady + persist, for data that is already durable. */
  markReady(indexes: readonly number[]): Promise<void> {
    this.setReady(indexes);
    return this.persist(indexes);
  }

  async #writeAllReady(): Promise<void> {
    if (this.#allReadyWritten) return;
    this.#allReadyWritten = true;
    const b = Buffer.alloc(4);
    b.writeUInt32LE(CHUNK_MAP_MAGIC_ALL_READY, 0);
    await this.#fh.write(b, 0, 4, 12);
  }

  async close(): Promise<void> {
    await this.#chain.catch(() => undefined);
    await this.#fh.close();
  }
}
