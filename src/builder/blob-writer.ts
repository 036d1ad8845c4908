// Streaming writer of one data blob (spec §3.4, §7.1–§7.8): chunk data, then for RAFS v6 the blob
// meta (CI array + 4 KiB header), and per options the chunk digest array, the inline bootstrap,
// the ToC and the tar headers between sections. Upstream: builder/src/core/blob.rs
// (finalize_blob_data, dump_meta_data), builder/src/lib.rs (dump_bootstrap, dump_toc,
// finalize_blob).
import { createHash, type Hash } from 'node:crypto';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { align } from '../util/bytes.js';
import { NydusError } from '../util/errors.js';
import { emptyBlobInfo, type BlobInfo } from '../format/blob-info.js';
import { compressChunk } from '../format/compress.js';
import { BlobChunkFlags, BlobFeatures, RAFS_DIGEST_LENGTH, type Compressor, type Digester } from '../format/constants.js';
import { sha256 } from '../format/digest.js';
import {
  BLOB_CCT_HEADER_SIZE, BLOB_CCT_V1_ENTRY_SIZE, BLOB_CCT_V2_ENTRY_SIZE, TAR_HEADER_SIZE, TOC_ENTRY_BLOB_DIGEST, TOC_ENTRY_BLOB_META, TOC_ENTRY_BLOB_META_HEADER,
  TOC_ENTRY_BLOB_RAW, TOC_ENTRY_BLOB_TOC, TOC_ENTRY_BOOTSTRAP, TocEntryFlags, compressCiArray, encodeBlobMetaHeader, encodeChunkInfoV1,
  encodeTarHeader, encodeTocEntries, tocFlagsForCompressor, type BlobMetaHeader, type TocEntry,
  batchCiEntry, encodeBatchContexts, encodeChunkInfoV2, type BatchInflateContext, type CiEntry,
} from '../format/blob/index.js';

export interface BlobWriterOptions {
  /** undefined: compute everything (sizes, ids) but write no file. */
  path?: string;
  fsVersion: 5 | 6;
  compressor: Compressor;
  digester: Digester;
  chunkSize: number;
  /** v6: must be true (uncompressed offsets 4 KiB aligned); v5: --aligned-chunk. */
  alignedChunk: boolean;
  /** --features blob-toc (v6 only): image.blob hdr, blob.digest + hdr, ToC + hdr. */
  blobToc: boolean;
  /** --blob-inline-meta: the bootstrap goes inside the blob (§7.1, §7.2, §7.4). */
  inlineMeta: boolean;
  /** --blob-id: used as the blob id instead of the hash (§7.8). */
  blobId?: string;
  /** Compressor of the CI array; upstream uses the build's compressor (§7.3). */
  ciCompressor?: Compressor;
  /**
   * --batch-size (v6 only; 0 = off): chunks added with `batch` are concatenated raw and compressed
   * together in batches of fewer than this many bytes; CI v2 entries and the BATCH feature.
   */
  batchSize?: number;
  /**
   * Compresses one batch as compressChunk does (e.g. on the worker pool, so the main thread keeps
   * committing while batches compress); default: compressChunk on this thread.
   */
  compressBatch?: (raw: Uint8Array) => Promise<{ data: Uint8Array }>;
}

export interface ChunkPlacement {
  index: number;
  compressedOffset: number;
  uncompressedOffset: number;
  compressedSize: number;
  /** BlobChunkFlags for the chunk record: COMPRESSED when compressed, always HAS_CRC32. */
  flags: number;
}

/** Blob id the inline bootstrap carries when no --blob-id is given (§7.4). */
export const INLINE_META_PLACEHOLDER_BLOB_ID = 'x'.repeat(64);
/** Batches compressing at once (bounds the memory of --batch-size builds; keeps both workers busy). */
const MAX_PENDING_BATCHES = 4;
/** Write buffer: chunk bytes are batched into writes of this size (build hot path). */
const WRITE_BUFFER_SIZE = 4 << 20;

function buildError(msg: string): NydusError {
  return new NydusError('ERR_BUILD', `blob writer: ${msg}`);
}

/** Growable byte array for per-chunk records (CI entries, digests). */
class Grow {
  buf: Uint8Array;
  len = 0;
  constructor(initial: number) {
    this.buf = new Uint8Array(initial);
  }
  reserve(n: number): Uint8Array {
    if (this.len + n > this.buf.length) {
      const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
    }
    this.len += n;
    return this.buf;
  }
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

/**
 * Writes one blob. Zero chunks and no inline meta: upstream writes no blob at all, so `finish`
 * deletes the file and returns a BlobInfo with `chunkCount 0` and `compressedSize 0` (callers
 * must not add it to the blob table). Zero chunks with inline meta: the blob holds only the
 * bootstrap (+ ToC), as upstream's dump_bootstrap creates it; there is no CI then.
 */
export class BlobWriter {
  readonly #o: BlobWriterOptions;
  #fh: FileHandle | undefined;
  readonly #buf: Buffer;
  #bufLen = 0;
  /** Bytes emitted so far (= file offset of the next byte). */
  #pos = 0;
  /** The builder's blob hasher: every byte except the blob.digest payload (§7.8). */
  readonly #hash: Hash = createHash('sha256');
  readonly #ci = new Grow(16 * 1024);
  readonly #digests = new Grow(32 * 1024);
  #count = 0;
  #dataSize = 0;
  #nextUncompressedOffset = 0;
  #done = false;
  /** Open batch: raw bytes of its chunks so far and the CI byte offsets of its entries. */
  #batchBuf: Uint8Array | undefined;
  #batchLen = 0;
  #batchCi: number[] = [];
  /** Batches closed so far (the next batch's index). */
  #batchCount = 0;
  /** Closed batches being compressed, written in order; their CI entries get the offset then. */
  #pending: Array<{ data: Promise<{ data: Uint8Array }>; len: number; ci: number[] }> = [];
  /** Contexts of the batches written. */
  readonly #batches: BatchInflateContext[] = [];

  private constructor(o: BlobWriterOptions, fh: FileHandle | undefined) {
    this.#o = o;
    this.#fh = fh;
    this.#buf = Buffer.allocUnsafe(fh ? WRITE_BUFFER_SIZE : 0);
  }

  static async open(opts: BlobWriterOptions): Promise<BlobWriter> {
    if (opts.fsVersion === 6 && !opts.alignedChunk) throw buildError('RAFS v6 blobs need 4 KiB aligned chunks (alignedChunk)');
    if (opts.fsVersion === 5 && opts.blobToc) throw buildError('--features blob-toc needs RAFS v6');
    if ((opts.batchSize ?? 0) > 0 && opts.fsVersion !== 6) throw buildError('--batch-size needs RAFS v6');
    const fh = opts.path !== undefined ? await open(opts.path, 'w') : undefined;
    return new BlobWriter(opts, fh);
  }

  get chunkCount(): number {
    return this.#count;
  }

  get #batchMode(): boolean {
    return (this.#o.batchSize ?? 0) > 0;
  }

  /**
   * Appends one chunk's stored bytes; sequential calls, in chunk-index order (§3.4). With `batch`
   * (batch mode, chunk smaller than half the batch size) `stored` is the raw chunk, which joins the
   * open batch; any other chunk first writes out the open batch, as upstream's dump_file_chunk does.
   */
  async addChunk(c: { digest: Uint8Array; uncompressedSize: number; stored: Uint8Array; compressed: boolean; crc32: number; batch?: boolean }): Promise<ChunkPlacement> {
    if (this.#done) throw buildError('addChunk after finish/abort');
    const o = this.#o;
    if (!Number.isInteger(c.uncompressedSize) || c.uncompressedSize < 1 || c.uncompressedSize > o.chunkSize) {
      throw buildError(`chunk ${this.#count} size ${c.uncompressedSize} is outside 1..${o.chunkSize}`);
    }
    if (c.stored.length === 0 || (!c.compressed && c.stored.length !== c.uncompressedSize)) {
      throw buildError(`chunk ${this.#count} stores ${c.stored.length} bytes for ${c.uncompressedSize} (compressed=${c.compressed})`);
    }
    // v6: a "compressed" chunk as large as its input would read back as raw from CI v1 (§3.3, §7.3).
    if (o.fsVersion === 6 && c.compressed && c.stored.length === c.uncompressedSize) {
      throw buildError(`chunk ${this.#count} is flagged compressed but not smaller than ${c.uncompressedSize}`);
    }
    if (c.digest.length !== RAFS_DIGEST_LENGTH) throw buildError(`chunk ${this.#count} digest has ${c.digest.length} bytes`);
    if (c.batch) return this.#addBatchChunk(c);
    // A plain chunk's offset must be known now: write out every batch before it.
    await this.#closeBatch();
    await this.#drainBatches(0);
    const placement: ChunkPlacement = {
      index: this.#count,
      compressedOffset: this.#pos,
      uncompressedOffset: this.#nextUncompressedOffset,
      compressedSize: c.stored.length,
      flags: (c.compressed ? BlobChunkFlags.COMPRESSED : 0) | BlobChunkFlags.HAS_CRC32,
    };
    const uEnd = placement.uncompressedOffset + c.uncompressedSize;
    this.#nextUncompressedOffset = o.alignedChunk ? align(uEnd, 4096) : uEnd;
    if (o.fsVersion === 6) {
      this.#addCi({ compressedOffset: placement.compressedOffset, compressedSize: placement.compressedSize, uncompressedOffset: placement.uncompressedOffset, uncompressedSize: c.uncompressedSize, compressed: c.compressed, flags: 0, data: 0n });
    }
    this.#digests.reserve(RAFS_DIGEST_LENGTH).set(c.digest, this.#digests.len - RAFS_DIGEST_LENGTH);
    this.#count++;
    await this.#write(c.stored, true);
    this.#dataSize = this.#pos;
    return placement;
  }

  #addCi(e: CiEntry): void {
    if (this.#batchMode) {
      const ci = this.#ci.reserve(BLOB_CCT_V2_ENTRY_SIZE);
      encodeChunkInfoV2(e, ci, this.#ci.len - BLOB_CCT_V2_ENTRY_SIZE);
    } else {
      const ci = this.#ci.reserve(BLOB_CCT_V1_ENTRY_SIZE);
      encodeChunkInfoV1(e, ci, this.#ci.len - BLOB_CCT_V1_ENTRY_SIZE);
    }
  }

  /** A raw small chunk joins the open batch (upstream BatchContextGenerator); nothing is written yet. */
  async #addBatchChunk(c: { digest: Uint8Array; uncompressedSize: number; stored: Uint8Array; compressed: boolean }): Promise<ChunkPlacement> {
    const o = this.#o;
    const batchSize = o.batchSize ?? 0;
    if (batchSize <= 0) throw buildError('batch chunk without --batch-size');
    if (c.compressed || c.stored.length !== c.uncompressedSize || c.uncompressedSize * 2 >= batchSize) {
      throw buildError(`chunk ${this.#count} cannot join a batch (${c.uncompressedSize} bytes, batch size ${batchSize})`);
    }
    // Upstream: a chunk that would fill the batch to batch_size starts a new one.
    if (this.#batchLen + c.uncompressedSize >= batchSize) await this.#closeBatch();
    this.#batchBuf ??= new Uint8Array(batchSize);
    // The bootstrap record of a batch chunk has no compressed range (as upstream's): readers find
    // the batch through the CI entry, whose offset is filled in once the batch is written.
    const placement: ChunkPlacement = {
      index: this.#count,
      compressedOffset: 0,
      uncompressedOffset: this.#nextUncompressedOffset,
      compressedSize: 0,
      flags: BlobChunkFlags.COMPRESSED | BlobChunkFlags.BATCH | BlobChunkFlags.HAS_CRC32,
    };
    this.#nextUncompressedOffset = align(placement.uncompressedOffset + c.uncompressedSize, 4096);
    this.#batchCi.push(this.#ci.len);
    this.#addCi(batchCiEntry(0, placement.uncompressedOffset, c.uncompressedSize, this.#batchCount, this.#batchLen));
    this.#batchBuf.set(c.stored, this.#batchLen);
    this.#batchLen += c.uncompressedSize;
    this.#digests.reserve(RAFS_DIGEST_LENGTH).set(c.digest, this.#digests.len - RAFS_DIGEST_LENGTH);
    this.#count++;
    return placement;
  }

  /** Writes out the open and pending batches (before the compressor behind compressBatch goes away). */
  async flushBatches(): Promise<void> {
    await this.#closeBatch();
    await this.#drainBatches(0);
  }

  /** Starts compressing the open batch (raw when compression does not shrink it); bounded queue. */
  async #closeBatch(): Promise<void> {
    if (this.#batchLen === 0) return;
    const raw = this.#batchBuf!.subarray(0, this.#batchLen);
    this.#batchBuf = undefined; // owned by the compression now
    const data = this.#o.compressBatch ? this.#o.compressBatch(raw) : Promise.resolve(compressChunk(raw, this.#o.compressor));
    data.catch(() => undefined); // awaited in order by #drainBatches
    this.#pending.push({ data, len: this.#batchLen, ci: this.#batchCi });
    this.#batchCi = [];
    this.#batchLen = 0;
    this.#batchCount++;
    await this.#drainBatches(MAX_PENDING_BATCHES);
  }

  /** Writes compressed batches in order until at most `keep` are pending; fills in their CI offsets. */
  async #drainBatches(keep: number): Promise<void> {
    while (this.#pending.length > keep) {
      const b = this.#pending.shift()!;
      const { data } = await b.data;
      const off = this.#pos;
      const ci = this.#ci.buf;
      // comp_info bits 0-39 (CI v2 bytes 8-12); the batch entries' compressed size is 0.
      for (const p of b.ci) {
        new DataView(ci.buffer, ci.byteOffset).setUint32(p + 8, off % 0x1_0000_0000, true);
        ci[p + 12] = Math.floor(off / 0x1_0000_0000) & 0xff;
      }
      this.#batches.push({ compressedSize: data.length, uncompressedBatchSize: b.len });
      await this.#write(data, true);
      this.#dataSize = this.#pos;
    }
  }

  /**
   * Writes the tail (§7.2), closes the file and returns the BlobInfo (blobIndex 0: the caller
   * places it). With inlineMeta, `makeBootstrap` gets the info as upstream's bootstrap sees it:
   * blob id `--blob-id` or the placeholder "x"*64, compressedSize = blob size before the
   * bootstrap, no ToC size/digest yet (§7.4, §7.8). The returned info has the real values.
   */
  async finish(makeBootstrap?: (info: BlobInfo) => Uint8Array): Promise<BlobInfo> {
    if (this.#done) throw buildError('finish called twice');
    await this.#closeBatch();
    await this.#drainBatches(0);
    const o = this.#o;
    const n = this.#count;
    if (o.inlineMeta && !makeBootstrap) throw buildError('inline meta needs a bootstrap');
    const info = emptyBlobInfo(o.blobId ?? '', 0, o.chunkSize, o.compressor, o.digester);
    info.chunkCount = n;
    info.uncompressedSize = this.#nextUncompressedOffset;
    info.features = this.#features();
    if (n === 0 && !o.inlineMeta) {
      await this.abort();
      info.features = 0;
      return info;
    }
    try {
      const toc: TocEntry[] = [];
      const tarSections = o.blobToc || o.inlineMeta;
      // image.blob header only exists once a chunk created the blob (upstream finalize_blob_data).
      if (n > 0 && tarSections) {
        await this.#tarHeader(TOC_ENTRY_BLOB_RAW, this.#dataSize);
        if (o.blobToc) {
          // Digest = sha256(chunk data + this tar header): a snapshot of the blob hasher (§7.6).
          const d = new Uint8Array(this.#hash.copy().digest());
          toc.push({ flags: TocEntryFlags.COMPRESSION_NONE, name: TOC_ENTRY_BLOB_RAW, uncompressedDigest: d, compressedOffset: 0, compressedSize: this.#dataSize, uncompressedSize: info.uncompressedSize });
        }
      }
      if (o.fsVersion === 6 && n > 0) await this.#writeBlobMeta(info, toc, tarSections);
      if (o.inlineMeta) await this.#writeBootstrap(info, toc, makeBootstrap!);
      if (o.blobToc) {
        const entries = encodeTocEntries(toc);
        const hdr = encodeTarHeader({ name: TOC_ENTRY_BLOB_TOC, size: entries.length });
        await this.#write(entries, true);
        await this.#write(hdr, true);
        info.blobTocSize = entries.length + TAR_HEADER_SIZE;
        info.blobTocDigest = new Uint8Array(createHash('sha256').update(entries).update(hdr).digest());
      }
      await this.#close();
      info.compressedSize = this.#pos;
      info.blobId = o.blobId ?? this.#hash.digest('hex');
      return info;
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  /** Deletes a partially written file (idempotent). */
  async abort(): Promise<void> {
    this.#done = true;
    const fh = this.#fh;
    this.#fh = undefined;
    if (fh) await fh.close().catch(() => {});
    if (this.#o.path !== undefined) await rm(this.#o.path, { force: true });
  }

  /** BlobFeatures per §2.3/§7.2 (upstream BlobContext + dump_meta_data). */
  #features(): number {
    const o = this.#o;
    let f = BlobFeatures.CAP_TAR_TOC;
    if (o.fsVersion === 6) f |= BlobFeatures.ALIGNED;
    if (this.#batchMode) f |= BlobFeatures.BATCH | BlobFeatures.CHUNK_INFO_V2;
    if (o.blobToc) f |= BlobFeatures.HAS_TAR_HEADER | BlobFeatures.HAS_TOC | (this.#count > 0 ? BlobFeatures.INLINED_CHUNK_DIGEST : 0);
    if (o.inlineMeta) f |= BlobFeatures.INLINED_FS_META | BlobFeatures.HAS_TAR_HEADER;
    return f;
  }

  /** [CI][CI header][hdr blob.meta] and, with blob-toc, [digests][hdr blob.digest] (§7.3, §7.7). */
  async #writeBlobMeta(info: BlobInfo, toc: TocEntry[], tarSections: boolean): Promise<void> {
    const o = this.#o;
    // Batch mode: the context table follows the CI array (upstream dump_meta_data).
    const ciArray = this.#ci.bytes();
    const contexts = this.#batchMode ? encodeBatchContexts(this.#batches) : new Uint8Array(0);
    const ci = contexts.length ? Buffer.concat([ciArray, contexts]) : ciArray;
    const { data: ciStored, ciCompressor } = compressCiArray(ci, o.ciCompressor ?? o.compressor);
    const ciOffset = this.#pos;
    const header: BlobMetaHeader = {
      features: info.features,
      ciCompressor,
      ciEntries: this.#count,
      ciOffset,
      ciCompressedSize: ciStored.length,
      ciUncompressedSize: ci.length,
      ciZranOffset: this.#batchMode ? ciArray.length : 0,
      ciZranSize: contexts.length,
      ciZranCount: this.#batchMode ? this.#batches.length : 0,
    };
    const headerBytes = encodeBlobMetaHeader(header);
    await this.#write(ciStored, true);
    await this.#write(headerBytes, true);
    if (tarSections) await this.#tarHeader(TOC_ENTRY_BLOB_META, ciStored.length + BLOB_CCT_HEADER_SIZE);
    info.metaCiCompressor = ciCompressor;
    info.metaCiOffset = ciOffset;
    info.metaCiCompressedSize = ciStored.length;
    info.metaCiUncompressedSize = ci.length;
    if (!o.blobToc) return;
    toc.push(
      { flags: tocFlagsForCompressor(ciCompressor), name: TOC_ENTRY_BLOB_META, uncompressedDigest: sha256(ci), compressedOffset: ciOffset, compressedSize: ciStored.length, uncompressedSize: ci.length },
      { flags: TocEntryFlags.COMPRESSION_NONE, name: TOC_ENTRY_BLOB_META_HEADER, uncompressedDigest: sha256(headerBytes), compressedOffset: ciOffset + ciStored.length, compressedSize: BLOB_CCT_HEADER_SIZE, uncompressedSize: BLOB_CCT_HEADER_SIZE },
    );
    const digests = this.#digests.bytes();
    const offset = this.#pos;
    // The digest array bypasses the blob hasher (upstream writes it straight to the file), so the
    // blob id is not sha256 of the file (§7.8). Its tar header is hashed.
    await this.#write(digests, false);
    await this.#tarHeader(TOC_ENTRY_BLOB_DIGEST, digests.length);
    toc.push({ flags: TocEntryFlags.COMPRESSION_NONE, name: TOC_ENTRY_BLOB_DIGEST, uncompressedDigest: sha256(digests), compressedOffset: offset, compressedSize: digests.length, uncompressedSize: digests.length });
  }

  /** [bootstrap (zstd if smaller, blob-toc only)][hdr image.boot] (§7.2, §7.4). */
  async #writeBootstrap(info: BlobInfo, toc: TocEntry[], makeBootstrap: (info: BlobInfo) => Uint8Array): Promise<void> {
    const o = this.#o;
    // What upstream's dump_bootstrap has when it encodes the bootstrap: placeholder id unless
    // --blob-id, blob size so far, ToC not written yet.
    const seen: BlobInfo = { ...info, blobId: o.blobId ?? INLINE_META_PLACEHOLDER_BLOB_ID, compressedSize: this.#pos, blobTocSize: 0, blobTocDigest: new Uint8Array(32) };
    const bootstrap = makeBootstrap(seen);
    const offset = this.#pos;
    let stored = bootstrap;
    let compressor: Compressor = 'none';
    if (o.blobToc) {
      const z = compressChunk(bootstrap, 'zstd');
      stored = z.data;
      compressor = z.compressed ? 'zstd' : 'none';
    }
    await this.#write(stored, true);
    await this.#tarHeader(TOC_ENTRY_BOOTSTRAP, stored.length);
    if (o.blobToc) {
      toc.push({ flags: tocFlagsForCompressor(compressor), name: TOC_ENTRY_BOOTSTRAP, uncompressedDigest: sha256(bootstrap), compressedOffset: offset, compressedSize: stored.length, uncompressedSize: bootstrap.length });
    }
  }

  async #tarHeader(name: string, size: number): Promise<void> {
    await this.#write(encodeTarHeader({ name, size }), true);
  }

  async #write(b: Uint8Array, hashed: boolean): Promise<void> {
    if (hashed) this.#hash.update(b);
    this.#pos += b.length;
    const fh = this.#fh;
    if (!fh) return;
    if (this.#bufLen + b.length > this.#buf.length) await this.#flush();
    if (b.length >= this.#buf.length) {
      await writeAll(fh, b);
      return;
    }
    this.#buf.set(b, this.#bufLen);
    this.#bufLen += b.length;
  }

  async #flush(): Promise<void> {
    if (this.#fh && this.#bufLen > 0) await writeAll(this.#fh, this.#buf.subarray(0, this.#bufLen));
    this.#bufLen = 0;
  }

  async #close(): Promise<void> {
    await this.#flush();
    this.#done = true;
    const fh = this.#fh;
    this.#fh = undefined;
    await fh?.close();
  }
}

async function writeAll(fh: FileHandle, b: Uint8Array): Promise<void> {
  let off = 0;
  while (off < b.length) {
    const { bytesWritten } = await fh.write(b, off, b.length - off);
    off += bytesWritten;
  }
}

