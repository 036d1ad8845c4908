// Offline access to the chunks of an image's blobs stored as local files (nydus-image check/unpack):
// a single `--blob FILE` or a `--blob-dir` holding blobs named by their ids.
import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { decodeZranIndex, groupByZranContext, inflateZranContext, isZranBlob, separateMetaBlobId, zranContextRange, type ZranIndex } from '../format/zran/context.js';
import type { BlobInfo } from '../format/blob-info.js';
import { chunkName, isChunkCompressed, isDigestKeyed, type ChunkInfo } from '../format/chunk-info.js';
import { decompress } from '../format/compress.js';
import { BlobFeatures } from '../format/constants.js';
import { batchRefOf, blobMetaRange, decodeBlobMeta, inflateBatch, sliceBatch, type BatchRef, type BlobMeta } from '../format/blob/index.js';
import { digest } from '../format/digest.js';
import { FormatError, NydusError } from '../util/errors.js';
import { hex } from '../util/bytes.js';

export interface LocalBlobSource {
  /** One blob file used for every blob index (upstream `-b/--blob`). */
  blobPath?: string;
  /** Directory of blobs named by blob id (upstream `-D/--blob-dir`). */
  blobDir?: string;
}

export class LocalBlobs {
  readonly #blobs: readonly BlobInfo[];
  readonly #src: LocalBlobSource;
  readonly #fds = new Map<number, { fd: number; size: number; path: string }>();
  /** Blob meta of BATCH blobs (batch chunks are located through their CI entries). */
  readonly #metas = new Map<number, BlobMeta>();
  /** The last inflated batch per blob: files are read in data order, so neighbours share it. */
  readonly #lastBatch = new Map<number, { index: number; data: Uint8Array }>();
  /** Zran (`*-ref`) blobs: CI + contexts from the ref blob, and the last inflated context. */
  readonly #zran = new Map<number, ZranIndex>();
  #lastCtx: { blob: number; k: number; out: Uint8Array } | undefined;

  constructor(blobs: readonly BlobInfo[], src: LocalBlobSource) {
    this.#blobs = blobs;
    this.#src = src;
  }

  #open(blobIndex: number): { fd: number; size: number; path: string } {
    let f = this.#fds.get(blobIndex);
    if (f) return f;
    const blob = this.#blobs[blobIndex];
    if (!blob) throw new FormatError('ERR_FORMAT_INVALID', 'chunk info', `blob index ${blobIndex} is not in the blob table (${this.#blobs.length} blobs)`);
    const path = this.#src.blobPath ?? join(this.#src.blobDir ?? '.', blob.blobId);
    if (!existsSync(path)) throw new NydusError('ERR_BACKEND_NOT_FOUND', `blob ${blob.blobId} not found at ${path}`);
    const fd = openSync(path, 'r');
    f = { fd, size: fstatSync(fd).size, path };
    this.#fds.set(blobIndex, f);
    return f;
  }

  #read(blobIndex: number, offset: number, size: number, what: string): Buffer {
    const f = this.#open(blobIndex);
    const blob = this.#blobs[blobIndex];
    if (offset + size > f.size) {
      throw new FormatError('ERR_FORMAT_TRUNCATED', `blob ${blob?.blobId ?? blobIndex}`, `${what} (${size} bytes at ${offset}) lies beyond the end of ${f.path} (${f.size} bytes)`);
    }
    const out = Buffer.allocUnsafe(size);
    let got = 0;
    while (got < out.length) {
      const n = readSync(f.fd, out, got, out.length - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    if (got !== out.length) throw new FormatError('ERR_FORMAT_TRUNCATED', `blob ${blob?.blobId}`, `short read of ${what}`);
    return out;
  }

  /** The batch a chunk of a BATCH blob lives in (from the blob's CI), or undefined for a plain chunk. */
  #batchRef(blob: BlobInfo, c: ChunkInfo, name: string): BatchRef | undefined {
    if (!(blob.features & BlobFeatures.BATCH)) return undefined;
    let meta = this.#metas.get(c.blobIndex);
    if (!meta) {
      const range = blobMetaRange(blob);
      if (!range) throw new FormatError('ERR_FORMAT_INVALID', `blob ${blob.blobId}`, 'batch blob without blob meta');
      meta = decodeBlobMeta(this.#read(c.blobIndex, range.offset, range.size, 'blob meta'), blob);
      this.#metas.set(c.blobIndex, meta);
    }
    const e = meta.chunks[c.index];
    if (!e) throw new FormatError('ERR_FORMAT_INVALID', `blob ${blob.blobId}`, `${name} is beyond the blob's ${meta.chunks.length} CI entries`);
    if (e.uncompressedOffset !== c.uncompressedOffset || e.uncompressedSize !== c.uncompressedSize) {
      throw new FormatError('ERR_FORMAT_INVALID', `blob ${blob.blobId}`, `${name}: bootstrap says uncompressed ${c.uncompressedOffset}+${c.uncompressedSize}, blob CI says ${e.uncompressedOffset}+${e.uncompressedSize}`);
    }
    return batchRefOf(e, meta.batches, `blob ${blob.blobId} ${name}`);
  }

  /** The zran index of a `*-ref` blob: its ref blob sits next to the layer (or in --blob-dir). */
  #zranIndex(blob: BlobInfo): ZranIndex {
    let z = this.#zran.get(blob.blobIndex);
    if (z) return z;
    const id = separateMetaBlobId(blob);
    const path = join(this.#src.blobDir ?? (this.#src.blobPath ? dirname(this.#src.blobPath) : '.'), id);
    if (!existsSync(path)) throw new NydusError('ERR_BACKEND_NOT_FOUND', `blob meta ${id} of zran blob ${blob.blobId} not found at ${path}`);
    const range = blobMetaRange(blob)!;
    const fd = openSync(path, 'r');
    try {
      const b = Buffer.alloc(range.size);
      const n = readSync(fd, b, 0, range.size, range.offset);
      z = decodeZranIndex(b.subarray(0, n), blob);
    } finally {
      closeSync(fd);
    }
    this.#zran.set(blob.blobIndex, z);
    return z;
  }

  /** A zran chunk: inflate its context from the original layer (the last context is kept). */
  #zranChunk(blob: BlobInfo, c: ChunkInfo): Uint8Array {
    const idx = this.#zranIndex(blob);
    const [k, [m]] = [...groupByZranContext(idx, [c.index], blob)][0]!;
    if (this.#lastCtx?.blob !== blob.blobIndex || this.#lastCtx.k !== k) {
      const ctx = idx.contexts[k]!;
      const range = zranContextRange(ctx);
      const what = `zran context ${k} of blob ${blob.blobId}`;
      this.#lastCtx = { blob: blob.blobIndex, k, out: inflateZranContext(ctx, this.#read(c.blobIndex, range.offset, range.size, what), what) };
    }
    if (m!.size !== c.uncompressedSize) throw new FormatError('ERR_FORMAT_INVALID', `blob ${blob.blobId}`, `chunk ${c.index}: CI size ${m!.size} differs from the bootstrap's ${c.uncompressedSize}`);
    return this.#lastCtx.out.slice(m!.offset, m!.offset + m!.size);
  }

  /** Reads, decompresses and (optionally) verifies one chunk; returns its uncompressed bytes. */
  readChunk(c: ChunkInfo, verify = false): Uint8Array {
    const blob = this.#blobs[c.blobIndex];
    this.#open(c.blobIndex);
    const name = blob ? chunkName(blob, c) : `chunk ${c.index}`;
    const compressor = blob?.compressor ?? 'none';
    const ref = blob ? this.#batchRef(blob, c, name) : undefined;
    let data: Uint8Array;
    if (blob && isZranBlob(blob)) data = this.#zranChunk(blob, c);
    else if (ref) {
      let last = this.#lastBatch.get(c.blobIndex);
      if (last?.index !== ref.index) {
        this.#lastBatch.delete(c.blobIndex);
        const stored = this.#read(c.blobIndex, ref.compressedOffset, ref.compressedSize, `batch ${ref.index} of ${name}`);
        last = { index: ref.index, data: inflateBatch(stored, ref, compressor, `blob ${blob!.blobId} ${name}`) };
        this.#lastBatch.set(c.blobIndex, last);
      }
      data = sliceBatch(last.data, ref, c.uncompressedSize);
    } else data = this.#plain(c, blob, name, compressor);
    if (verify) {
      const d = digest(data, blob?.digester ?? 'blake3');
      if (Buffer.compare(Buffer.from(d), Buffer.from(c.digest)) !== 0) {
        throw new FormatError('ERR_DIGEST_MISMATCH', `blob ${blob?.blobId}`, `${blob && isDigestKeyed(blob) ? name : `${name} at compressed offset ${c.compressedOffset}`}: digest ${hex(d)} != recorded ${hex(c.digest)}`);
      }
    }
    return data;
  }

  #plain(c: ChunkInfo, blob: BlobInfo | undefined, name: string, compressor: BlobInfo['compressor']): Uint8Array {
    const stored = this.#read(c.blobIndex, c.compressedOffset, c.compressedSize, name);
    let data: Uint8Array = stored;
    if (isChunkCompressed(c)) {
      try {
        data = decompress(stored, compressor, c.uncompressedSize);
      } catch (e) {
        throw new FormatError('ERR_COMPRESSION', `blob ${blob?.blobId}`, `${name} at compressed offset ${c.compressedOffset}: ${(e as Error).message}`, undefined, { cause: e });
      }
    }
    if (!isChunkCompressed(c) && data.length !== c.uncompressedSize) {
      throw new FormatError('ERR_FORMAT_INVALID', `blob ${blob?.blobId}`, `${name} is stored raw but its sizes differ (${c.compressedSize} vs ${c.uncompressedSize})`);
    }
    return data;
  }

  close(): void {
    for (const f of this.#fds.values()) closeSync(f.fd);
    this.#fds.clear();
  }
}
