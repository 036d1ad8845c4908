// Chunk I/O against a backend: plan merged range reads over chunks sorted by compressed offset,
// cut each chunk out, decompress it with the blob's compressor (only when flagged COMPRESSED),
// check sizes and (optionally) digest/crc32. Upstream: storage/src/cache/mod.rs
// (BlobIoMergeState, read_chunks_from_backend, validate_chunk_data) and storage/src/meta/mod.rs.
import type { BlobInfo } from '../format/blob-info.js';
import { BLOB_CCT_HEADER_SIZE, batchRefOf, blobMetaRange, decodeBlobMeta, inflateBatch, sliceBatch, type BatchRef, type BlobMeta, type CiEntry } from '../format/blob/index.js';
import { chunkKey, chunkName, isChunkCompressed, type ChunkInfo, type ChunkKey } from '../format/chunk-info.js';
import { decompress } from '../format/compress.js';
import { BlobChunkFlags, BlobFeatures, RAFS_MAX_CHUNK_SIZE } from '../format/constants.js';
import { crc32c, digest } from '../format/digest.js';
import { FormatError, NydusError } from '../util/errors.js';
import type { BlobBackend } from './backend/backend.js';
import { isZranBlob } from '../format/zran/context.js';
import { fetchZranRead, readSeparateBlobMeta } from './zran-io.js';

/** Upstream default for `amplify_io` / `merging_size` / `batch_size`. */
export const DEFAULT_MERGE_SIZE = 1 << 20;

/** One backend request covering consecutive chunks of one blob. */
export interface MergedRead {
  /** Compressed offset of the first chunk. */
  offset: number;
  /** Bytes from `offset` to the end of the last chunk (gaps included). */
  length: number;
  chunks: ChunkInfo[];
}

/**
 * Groups chunks (of one blob) into backend reads: a chunk joins the current read when it starts
 * at most `maxGap` bytes after the read's end and the read stays within `mergeSize`; a chunk
 * larger than `mergeSize` gets a read of its own. Input need not be sorted; duplicates (same
 * chunk key, §chunkKey: the index, or digest and place for blobs whose indexes are all 0) are
 * dropped. Pure, so planning is unit-tested apart from I/O.
 */
export function planMergedReads(chunks: readonly ChunkInfo[], mergeSize: number = DEFAULT_MERGE_SIZE, maxGap = 0, blob: { features: number } = { features: 0 }): MergedRead[] {
  const sorted = [...chunks].sort((a, b) => a.compressedOffset - b.compressedOffset || a.index - b.index);
  const out: MergedRead[] = [];
  const seen = new Set<ChunkKey>();
  let cur: MergedRead | undefined;
  for (const c of sorted) {
    const key = chunkKey(blob, c);
    if (seen.has(key)) continue;
    seen.add(key);
    const end = c.compressedOffset + c.compressedSize;
    if (cur) {
      const curEnd = cur.offset + cur.length;
      const gap = c.compressedOffset - curEnd;
      // gap < 0 means overlapping records (a corrupt table, or dedup quirks): still one read.
      if (gap <= maxGap && Math.max(end, curEnd) - cur.offset <= mergeSize) {
        cur.length = Math.max(end, curEnd) - cur.offset;
        cur.chunks.push(c);
        continue;
      }
    }
    cur = { offset: c.compressedOffset, length: c.compressedSize, chunks: [c] };
    out.push(cur);
  }
  return out;
}

export function chunkLabel(blob: BlobInfo, chunk: ChunkInfo): string {
  return `${chunkName(blob, chunk)} of blob "${blob.blobId}"`;
}

/** Largest stored size accepted for one chunk: chunks are at most 16 MiB uncompressed (§3.1). */
export const MAX_CHUNK_STORED_SIZE = 2 * RAFS_MAX_CHUNK_SIZE;

/**
 * Sanity of a chunk record before any I/O (a crafted bootstrap must give EIO, not a huge or
 * overflowing read): sizes within the chunk limits, the range inside the blob when its size is known.
 */
export function checkChunkRecord(blob: BlobInfo, chunk: ChunkInfo): void {
  const bad = (why: string): never => {
    throw new FormatError('ERR_FORMAT_INVALID', chunkLabel(blob, chunk), why);
  };
  if (chunk.uncompressedSize === 0 || chunk.uncompressedSize > RAFS_MAX_CHUNK_SIZE) bad(`uncompressed size ${chunk.uncompressedSize} is outside 1..${RAFS_MAX_CHUNK_SIZE}`);
  // Batch chunks record compressed size 0: their batch's size comes from the blob meta.
  const min = blob.features & BlobFeatures.BATCH ? 0 : 1;
  if (chunk.compressedSize < min || chunk.compressedSize > MAX_CHUNK_STORED_SIZE) bad(`compressed size ${chunk.compressedSize} is outside ${min}..${MAX_CHUNK_STORED_SIZE}`);
  if (!Number.isSafeInteger(chunk.compressedOffset + chunk.compressedSize) || !Number.isSafeInteger(chunk.uncompressedOffset + chunk.uncompressedSize)) bad('offsets overflow');
  if (blob.compressedSize > 0 && chunk.compressedOffset + chunk.compressedSize > blob.compressedSize) bad(`compressed range ${chunk.compressedOffset}+${chunk.compressedSize} ends beyond the blob (${blob.compressedSize} bytes)`);
  if (blob.uncompressedSize > 0 && chunk.uncompressedOffset + chunk.uncompressedSize > blob.uncompressedSize) bad(`uncompressed range ${chunk.uncompressedOffset}+${chunk.uncompressedSize} ends beyond the blob (${blob.uncompressedSize} bytes)`);
}

/**
 * Checks decompressed chunk data against the chunk record: digest with the blob's digester and,
 * when recorded (HAS_CRC32), the CRC-32C. Throws ERR_DIGEST_MISMATCH naming blob and chunk.
 */
export function verifyChunk(blob: BlobInfo, chunk: ChunkInfo, data: Uint8Array): void {
  const d = digest(data, blob.digester);
  if (!equalBytes(d, chunk.digest)) {
    throw new FormatError('ERR_DIGEST_MISMATCH', chunkLabel(blob, chunk), `${blob.digester} digest ${hex(d)} does not match the recorded ${hex(chunk.digest)}`);
  }
  if (chunk.flags & BlobChunkFlags.HAS_CRC32) {
    const crc = crc32c(data);
    if (crc !== chunk.crc32) throw new FormatError('ERR_DIGEST_MISMATCH', chunkLabel(blob, chunk), `crc32c 0x${crc.toString(16)} does not match the recorded 0x${chunk.crc32.toString(16)}`);
  }
}

/** Cuts one chunk out of a merged read's bytes, decompresses and (optionally) verifies it. */
export function decodeChunk(blob: BlobInfo, read: MergedRead, bytes: Uint8Array, chunk: ChunkInfo, validate: boolean): Uint8Array {
  const start = chunk.compressedOffset - read.offset;
  const end = start + chunk.compressedSize;
  if (end > bytes.length) {
    throw new FormatError('ERR_FORMAT_TRUNCATED', chunkLabel(blob, chunk), `backend returned ${bytes.length} bytes at ${read.offset}, the chunk needs ${chunk.compressedSize} bytes at ${chunk.compressedOffset} (blob too short)`);
  }
  const raw = bytes.subarray(start, end);
  let data: Uint8Array;
  if (isChunkCompressed(chunk)) {
    try {
      data = decompress(raw, blob.compressor, chunk.uncompressedSize);
    } catch (e) {
      throw new FormatError('ERR_COMPRESSION', chunkLabel(blob, chunk), e instanceof Error ? e.message : String(e), chunk.compressedOffset, { cause: e });
    }
  } else {
    if (chunk.compressedSize !== chunk.uncompressedSize) {
      throw new FormatError('ERR_FORMAT_INVALID', chunkLabel(blob, chunk), `stored raw but sizes differ (${chunk.compressedSize}/${chunk.uncompressedSize})`);
    }
    data = raw;
  }
  if (validate) verifyChunk(blob, chunk, data);
  return data;
}

/** A chunk of a batch: its compressed range is the whole batch's, `batch` says where it lies inside. */
export type BatchChunkInfo = ChunkInfo & { batch: BatchRef };

export function isBatchChunk(c: ChunkInfo): c is BatchChunkInfo {
  return (c as Partial<BatchChunkInfo>).batch !== undefined;
}

/** Blobs whose chunks can only be located through their blob meta. */
export function needsBlobMeta(blob: BlobInfo): boolean {
  return (blob.features & BlobFeatures.BATCH) !== 0 && blobMetaRange(blob) !== undefined;
}

/**
 * A bootstrap chunk record checked against the blob's CI entry; a batch chunk comes back as a
 * BatchChunkInfo whose compressed range is its batch. Throws when bootstrap and blob disagree.
 */
export function resolveChunk(blob: BlobInfo, chunk: ChunkInfo, meta: Pick<BlobMeta, 'chunks' | 'batches'>): ChunkInfo {
  const e = meta.chunks[chunk.index];
  const ref = e && batchRefOf(e, meta.batches, chunkLabel(blob, chunk));
  if (!ref) {
    checkChunkAgainstCi(blob, chunk, meta.chunks);
    return chunk;
  }
  // Upstream's bootstrap records of batch chunks carry no usable compressed range: trust the CI.
  if (e.uncompressedOffset !== chunk.uncompressedOffset || e.uncompressedSize !== chunk.uncompressedSize) {
    throw new FormatError('ERR_FORMAT_INVALID', chunkLabel(blob, chunk), `bootstrap says uncompressed ${chunk.uncompressedOffset}+${chunk.uncompressedSize}, blob CI says ${e.uncompressedOffset}+${e.uncompressedSize}`);
  }
  const c: BatchChunkInfo = { ...chunk, compressedOffset: ref.compressedOffset, compressedSize: ref.compressedSize, batch: ref };
  checkChunkRecord(blob, c);
  return c;
}

/**
 * Inflated batches of recent reads (main thread), so the small files of one batch, read one after
 * the other, cost one backend read and one inflate. Bounded by the batches' uncompressed bytes.
 * Entries are unverified: every chunk sliced from one is verified against its digest.
 */
export class BatchInflateCache {
  readonly #m = new Map<string, { p: Promise<Uint8Array>; size: number }>();
  #bytes = 0;
  constructor(readonly maxBytes = 32 << 20) {}

  has(blob: BlobInfo, ref: BatchRef): boolean {
    return this.#m.has(`${blob.blobId}#${ref.index}`);
  }

  get(blob: BlobInfo, ref: BatchRef, load: () => Promise<Uint8Array>): Promise<Uint8Array> {
    const k = `${blob.blobId}#${ref.index}`;
    const hit = this.#m.get(k);
    if (hit) {
      this.#m.delete(k);
      this.#m.set(k, hit);
      return hit.p;
    }
    const e = { p: load(), size: ref.uncompressedBatchSize };
    this.#m.set(k, e);
    this.#bytes += e.size;
    // A failed fetch or inflate is not remembered: the next reader tries again.
    e.p.catch(() => this.#drop(k, e));
    for (const [key, v] of this.#m) {
      if (this.#bytes <= this.maxBytes || key === k) break;
      this.#drop(key, v);
    }
    return e.p;
  }

  #drop(k: string, e: { p: Promise<Uint8Array>; size: number }): void {
    if (this.#m.get(k) !== e) return;
    this.#m.delete(k);
    this.#bytes -= e.size;
  }
}

export type ChunkResult = { chunk: ChunkInfo; data: Uint8Array; error?: undefined } | { chunk: ChunkInfo; data?: undefined; error: NydusError | Error };

export interface FetchOptions {
  validate?: boolean;
  signal?: AbortSignal;
  /** Called per backend request (after it returns) with its size; for metrics. */
  onBackendRead?: (bytes: number) => void;
  /** Shared inflated batches (batch chunks; a read whose batches are all there skips the backend). */
  batches?: BatchInflateCache;
}

/**
 * Performs one merged read and decodes its chunks. A chunk that fails (truncated, bad
 * compression, digest mismatch) yields an error result; its neighbours still succeed. A failed
 * backend request fails every chunk of the read.
 */
export async function fetchMergedRead(backend: BlobBackend, blob: BlobInfo, read: MergedRead, opts: FetchOptions = {}): Promise<ChunkResult[]> {
  if (isZranBlob(blob)) return fetchZranRead(backend, blob, read, opts);
  const cache = opts.batches ?? new BatchInflateCache(Infinity);
  // The read's bytes, fetched at most once, and only when some chunk is not in an inflated batch.
  let fetching: Promise<Uint8Array> | undefined;
  const bytes = (): Promise<Uint8Array> =>
    (fetching ??= backend.read(blob.blobId, read.offset, read.length, opts.signal).then((b) => {
      opts.onBackendRead?.(b.length);
      return b;
    }));
  if (read.chunks.some((c) => !isBatchChunk(c) || !cache.has(blob, c.batch))) {
    try {
      await bytes();
    } catch (e) {
      return read.chunks.map((chunk) => ({ chunk, error: e as Error }));
    }
  }
  const out: ChunkResult[] = [];
  for (const chunk of read.chunks) {
    try {
      if (isBatchChunk(chunk)) {
        const ref = chunk.batch;
        const batch = await cache.get(blob, ref, async () => {
          const start = ref.compressedOffset - read.offset;
          const b = await bytes();
          if (start < 0 || start + ref.compressedSize > b.length) {
            throw new FormatError('ERR_FORMAT_TRUNCATED', chunkLabel(blob, chunk), `backend returned ${b.length} bytes at ${read.offset}, batch ${ref.index} needs ${ref.compressedSize} bytes at ${ref.compressedOffset} (blob too short)`);
          }
          return inflateBatch(b.subarray(start, start + ref.compressedSize), ref, blob.compressor, chunkLabel(blob, chunk));
        });
        // A batch has no per-chunk check in the blob, so its chunks are always verified.
        const data = sliceBatch(batch, ref, chunk.uncompressedSize);
        verifyChunk(blob, chunk, data);
        out.push({ chunk, data });
      } else out.push({ chunk, data: decodeChunk(blob, read, await bytes(), chunk, opts.validate ?? false) });
    } catch (e) {
      out.push({ chunk, error: e as Error });
    }
  }
  return out;
}

/** Reads chunks straight from the backend (no cache): merged reads, results in input order. */
export async function readChunksFromBackend(backend: BlobBackend, blob: BlobInfo, chunks: readonly ChunkInfo[], mergeSize: number, opts: FetchOptions = {}, meta?: Pick<BlobMeta, 'chunks' | 'batches'>): Promise<Uint8Array[]> {
  for (const c of chunks) checkChunkRecord(blob, c);
  if (meta) chunks = chunks.map((c) => resolveChunk(blob, c, meta));
  const byKey = new Map<ChunkKey, ChunkResult>();
  const reads = planMergedReads(chunks, mergeSize, 0, blob);
  const results = await Promise.all(reads.map((r) => fetchMergedRead(backend, blob, r, opts)));
  for (const rs of results) for (const r of rs) byKey.set(chunkKey(blob, r.chunk), r);
  return chunks.map((c) => {
    const r = byKey.get(chunkKey(blob, c))!;
    if (r.error) throw r.error;
    return r.data;
  });
}

/** Blob meta read from the backend: decoded CI plus the raw 4 KiB header (for the `.blob.meta` cache). */
export interface LoadedBlobMeta extends BlobMeta {
  headerBytes: Uint8Array;
}

/**
 * Loads the CI array + header of a v6 blob from the backend (§7.3), or undefined for a blob
 * without blob meta (v5, no chunks).
 */
export async function loadBlobMetaFromBackend(backend: BlobBackend, blob: BlobInfo, signal?: AbortSignal): Promise<LoadedBlobMeta | undefined> {
  const range = blobMetaRange(blob);
  if (!range) return undefined;
  // SEPARATE blobs (zran `*-ref`) keep their meta in the ref blob named by blob_meta_digest.
  const bytes = blob.features & BlobFeatures.SEPARATE ? await readSeparateBlobMeta(backend, blob, signal) : await backend.read(blob.blobId, range.offset, range.size, signal);
  const meta = decodeBlobMeta(bytes, blob);
  const h = blob.metaCiCompressedSize;
  return { ...meta, headerBytes: bytes.slice(h, h + BLOB_CCT_HEADER_SIZE) };
}

/**
 * Cross-checks a bootstrap chunk record against the blob's own CI entry; a mismatch means the
 * bootstrap and blob disagree, and reading would return wrong data.
 */
export function checkChunkAgainstCi(blob: BlobInfo, chunk: ChunkInfo, ci: readonly CiEntry[]): void {
  const e = ci[chunk.index];
  if (!e) throw new FormatError('ERR_FORMAT_INVALID', chunkLabel(blob, chunk), `index is beyond the blob's ${ci.length} CI entries`);
  if (e.compressedOffset !== chunk.compressedOffset || e.compressedSize !== chunk.compressedSize || e.uncompressedOffset !== chunk.uncompressedOffset || e.uncompressedSize !== chunk.uncompressedSize) {
    throw new FormatError(
      'ERR_FORMAT_INVALID',
      chunkLabel(blob, chunk),
      `bootstrap says compressed ${chunk.compressedOffset}+${chunk.compressedSize} uncompressed ${chunk.uncompressedOffset}+${chunk.uncompressedSize}, blob CI says ${e.compressedOffset}+${e.compressedSize} / ${e.uncompressedOffset}+${e.uncompressedSize}`,
    );
  }
}

/** A ChunkInfo built from a CI entry (no digest): used for amplified reads of neighbouring chunks. */
export function chunkFromCi(blob: BlobInfo, index: number, e: CiEntry): ChunkInfo {
  return {
    digest: new Uint8Array(32),
    blobIndex: blob.blobIndex,
    flags: e.compressed ? BlobChunkFlags.COMPRESSED : 0,
    compressedSize: e.compressedSize,
    uncompressedSize: e.uncompressedSize,
    compressedOffset: e.compressedOffset,
    uncompressedOffset: e.uncompressedOffset,
    fileOffset: 0,
    index,
    crc32: 0,
  };
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}
