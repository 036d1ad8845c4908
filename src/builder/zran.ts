// `nydus-image create --type targz-ref`: a bootstrap plus a small blob meta ("ref blob": CI v2
// entries and zran contexts) that reference the ORIGINAL gzip layer, which is neither recompressed
// nor copied. Upstream builder/src/tarball.rs (TargzToRef), storage/src/meta/zran.rs
// (ZranContextGenerator) and utils/src/compress/zlib_random.rs (ZranGenerator).
//
// One pass over the layer: our inflater (format/zran) decodes it and reports each deflate block
// start; the tar source chunks file data; each chunk joins a zran context that starts at the
// latest block start at or before it (with the 32 KiB window there), by upstream's rules.
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { mkdir, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { emptyBlobInfo, type BlobInfo } from '../format/blob-info.js';
import { CHUNK_V2_FLAG_COMPRESSED, CHUNK_V2_FLAG_ZRAN, compressCiArray, encodeBlobMetaHeader, encodeCiArray, encodeZranContexts, zranData, type CiEntry, type ZranContext } from '../format/blob/index.js';
import type { ChunkInfo } from '../format/chunk-info.js';
import { BlobChunkFlags, BlobFeatures, type Digester } from '../format/constants.js';
import { digest } from '../format/digest.js';
import type { ImageModel, TreeNode } from '../format/image-model.js';
import { Inflater, type InflateCheckpoint } from '../format/zran/inflate.js';
import { NydusError, UsageError } from '../util/errors.js';
import { openBootstrap } from '../rafs/index.js';
import type { CreateOptions, CreateResult } from './create.js';
import { encodeBootstrapV6 } from './writer/v6.js';
import { scanTar } from './source/tar.js';
import { applySingleLayerWhiteouts, type WhiteoutSpec } from './source/whiteout.js';

/** Upstream ZranContextGenerator limits, from RAFS_DEFAULT_CHUNK_SIZE (1 MiB). */
const ZRAN_MIN_COMP_SIZE = 0x100000 / 2;
const ZRAN_MAX_COMP_SIZE = 0x100000;
const ZRAN_MAX_UNCOMP_SIZE = 0x100000 * 2;
const READ_BUF = 1 << 20;
const PIECE = 256 << 10;

export interface ZranBuildOptions {
  /** The gzip (tar.gz) layer file. */
  source: string;
  /** Names the layer in errors (default the path). */
  name?: string;
  chunkSize: number;
  digester: Digester;
  explicitUidGid: boolean;
  whiteoutSpec: WhiteoutSpec;
  /** Data blob id (default sha256 of the layer, i.e. its OCI digest without `sha256:`). */
  blobId?: string;
}

export interface ZranBuildResult {
  model: ImageModel;
  /** The ref blob: compressed CI + zran contexts, then the 4 KiB header (ci_offset 0). */
  metaBlob: Uint8Array;
  /** sha256 of `metaBlob` (its blob id). */
  metaBlobId: string;
  blob: BlobInfo;
  layerSize: number;
  layerDigest: string;
  chunks: number;
  contexts: number;
  /** Regular files with data, chunk references, uncompressed file bytes. */
  files: number;
  chunkRefs: number;
  fileBytes: number;
}

interface Ctx extends ZranContext {
  member: number;
  /** Compressed end (absolute) of the furthest chunk so far. */
  inEnd: number;
}

interface Pending {
  ci: CiEntry;
  chunk: ChunkInfo;
  ctx: Ctx;
  outEnd: number;
}

/** Builds the image model and ref blob of one gzip layer. Errors name the layer. */
export async function buildZranRef(o: ZranBuildOptions): Promise<ZranBuildResult> {
  const name = o.name ?? o.source;
  let fd: number;
  try {
    fd = openSync(o.source, 'r');
  } catch (e) {
    throw new NydusError('ERR_IO', `layer ${name}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    return await build(o, fd, name);
  } catch (e) {
    if (e instanceof NydusError && !e.message.includes(name)) throw new NydusError(e.code, `layer ${name}: ${e.message}`, { cause: e });
    throw e;
  } finally {
    closeSync(fd);
  }
}

async function build(o: ZranBuildOptions, fd: number, name: string): Promise<ZranBuildResult> {
  const hash = createHash('sha256');
  let layerSize = 0;
  const rbuf = Buffer.allocUnsafe(READ_BUF);
  const bounds: InflateCheckpoint[] = [];
  // Every block start (their minRef is final once the next block starts): to trim windows.
  const blocks: InflateCheckpoint[] = [];
  const inf = new Inflater({
    gzip: true,
    name: `gzip layer ${name}`,
    fill: () => {
      const n = readSync(fd, rbuf, 0, READ_BUF, null);
      if (n === 0) return null;
      const b = rbuf.subarray(0, n);
      hash.update(b);
      layerSize += n;
      return b;
    },
    onBlock: (cp) => {
      bounds.push(cp);
      blocks.push(cp);
      resolveEnds(cp);
    },
  });

  const ctxs: Ctx[] = [];
  const ci: CiEntry[] = [];
  const byDigest = new Map<string, ChunkInfo>();
  let pending: Pending[] = [];
  let uncompPos = 0;
  let curBlockStart = -1;

  /** Chunks whose data ends at or before `cp` are covered by the input up to its bit position. */
  function resolveEnds(cp: InflateCheckpoint): void {
    if (pending.length === 0 || pending[0]!.outEnd > cp.out) return;
    const end = Math.ceil(cp.bit / 8);
    let k = 0;
    while (k < pending.length && pending[k]!.outEnd <= cp.out) setEnd(pending[k++]!, end);
    pending = pending.slice(k);
  }
  function setEnd(p: Pending, end: number): void {
    const size = end - p.ci.compressedOffset;
    p.ci.compressedSize = size;
    p.chunk.compressedSize = size;
    p.ctx.inEnd = Math.max(p.ctx.inEnd, end);
  }
  /** Index in `bounds` of the latest block start at or before output offset `at`. */
  function boundAt(at: number): number {
    let lo = 0;
    let hi = bounds.length - 1;
    if (hi < 0 || bounds[0]!.out > at) throw new NydusError('ERR_BUILD', `no deflate block start before output offset ${at}`);
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (bounds[mid]!.out <= at) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  // Upstream ZranGenerator::begin_read: reuse the open context unless it grew too big, the gzip
  // member changed, or the gap since its last chunk is large; a new one needs a new block start.
  function contextFor(start: number, len: number): Ctx {
    const b = bounds[boundAt(start)]!;
    const cur = ctxs[ctxs.length - 1];
    const first = cur !== undefined && b.bit === curBlockStart;
    if (cur && first) return cur;
    if (cur) {
      const comp = Math.floor(b.bit / 8) - cur.inOffset;
      const uncomp = start - cur.outOffset;
      const enough = comp >= ZRAN_MAX_COMP_SIZE / 2 || uncomp + len >= ZRAN_MAX_UNCOMP_SIZE;
      const gap = comp > 2 * (cur.inEnd - cur.inOffset) && cur.inEnd - cur.inOffset > ZRAN_MIN_COMP_SIZE;
      if (b.member === cur.member && !enough && !gap) return cur;
    }
    const bits = (8 - (b.bit & 7)) & 7;
    const c: Ctx = {
      inOffset: Math.ceil(b.bit / 8),
      outOffset: b.out,
      inLen: 0,
      outLen: 0,
      ctxByte: b.ctxByte,
      ctxBits: bits,
      dict: inf.windowAt(b),
      member: b.member,
      inEnd: Math.ceil(b.bit / 8),
    };
    curBlockStart = b.bit;
    ctxs.push(c);
    return c;
  }

  let files = 0;
  let chunkRefs = 0;
  let fileBytes = 0;
  function addChunk(data: Uint8Array, start: number, fileOffset: number, out: ChunkInfo[]): void {
    chunkRefs++;
    fileBytes += data.length;
    const d = digest(data, o.digester);
    const key = Buffer.from(d).toString('hex');
    const hit = byDigest.get(key);
    if (hit) {
      out.push({ ...hit, fileOffset });
      return;
    }
    const ctx = contextFor(start, data.length);
    const b = bounds[boundAt(start)]!;
    const index = ci.length;
    const e: CiEntry = {
      compressedOffset: Math.floor(b.bit / 8),
      compressedSize: 0,
      uncompressedOffset: uncompPos,
      uncompressedSize: data.length,
      compressed: true,
      flags: CHUNK_V2_FLAG_ZRAN | CHUNK_V2_FLAG_COMPRESSED,
      data: zranData(ctxs.length - 1, start - ctx.outOffset),
    };
    ci.push(e);
    uncompPos += Math.ceil(data.length / 4096) * 4096;
    ctx.outLen = Math.max(ctx.outLen, start + data.length - ctx.outOffset);
    const chunk: ChunkInfo = {
      digest: d,
      blobIndex: 0,
      flags: BlobChunkFlags.COMPRESSED,
      compressedSize: 0,
      uncompressedSize: data.length,
      compressedOffset: e.compressedOffset,
      uncompressedOffset: e.uncompressedOffset,
      fileOffset,
      index,
      crc32: 0,
    };
    byDigest.set(key, chunk);
    out.push(chunk);
    const p: Pending = { ci: e, chunk, ctx, outEnd: start + data.length };
    // The inflater may already have passed the block start that ends this chunk.
    const after = bounds.find((x) => x.out >= p.outEnd && x.out > start);
    if (after) setEnd(p, Math.ceil(after.bit / 8));
    else pending.push(p);
  }

  // Output pieces for the tar reader; history is kept from the window of the latest block start
  // before anything the reader may still be working on.
  async function* output(): AsyncGenerator<Uint8Array> {
    let pos = 0;
    while (!inf.done) {
      const low = Math.max(0, pos - 4 * PIECE);
      if (bounds.length > 1 && bounds[0]!.out <= low) {
        const k = boundAt(low);
        if (k > 0) bounds.splice(0, k);
      }
      inf.keepFrom = bounds.length ? bounds[0]!.out - 32768 : 0;
      inf.step(pos + PIECE);
      const p = inf.produced;
      if (p > pos) {
        yield Buffer.from(inf.view(pos, p));
        pos = p;
      }
    }
  }

  const chunkSize = o.chunkSize;
  const src = await scanTar(output(), {
    explicitUidGid: o.explicitUidGid,
    onFileData: async (body, size, out, file, dataOffset) => {
      if (dataOffset === undefined) throw new NydusError('ERR_BUILD', `${file}: tar source gave no data offset`);
      files++;
      let off = 0;
      let piece: Uint8Array | undefined;
      let fill = 0;
      for await (const buf of body) {
        let p = 0;
        while (p < buf.length) {
          piece ??= new Uint8Array(Math.min(chunkSize, size - off));
          const n = Math.min(piece.length - fill, buf.length - p);
          piece.set(buf.subarray(p, p + n), fill);
          fill += n;
          p += n;
          if (fill === piece.length) {
            addChunk(piece, dataOffset + off, off, out);
            off += piece.length;
            piece = undefined;
            fill = 0;
          }
        }
      }
      if (piece || off !== size) throw new NydusError('ERR_BUILD', `${file}: data ends after ${off + fill} bytes, declared size is ${size}`);
    },
  });
  // The tar may end before the gzip stream does (padding blocks): read to the end so the CRC,
  // size and digest cover the whole layer.
  while (!inf.done) {
    inf.keepFrom = inf.produced;
    inf.step(inf.produced + PIECE);
  }
  const tail = readSync(fd, rbuf, 0, 1, null);
  if (tail !== 0) {
    // Bytes after the gzip stream: the digest must still be of the whole file.
    hash.update(rbuf.subarray(0, tail));
    layerSize += tail;
    for (let n; (n = readSync(fd, rbuf, 0, READ_BUF, null)) > 0; ) {
      hash.update(rbuf.subarray(0, n));
      layerSize += n;
    }
  }
  for (const p of pending) setEnd(p, layerSize);
  pending = [];

  const root: TreeNode = src.root;
  applySingleLayerWhiteouts(root, o.whiteoutSpec, false);
  for (const c of ctxs) {
    c.inLen = c.inEnd - c.inOffset;
    c.dict = c.dict.subarray(c.dict.length - windowNeeded(blocks, c));
  }

  const layerDigest = hash.digest('hex');
  const blobId = o.blobId ?? layerDigest;
  // CI v2 array, then the zran contexts (upstream dump_meta_data; zstd for `*-ref`).
  const ciArray = encodeCiArray(ci, true);
  const zran = encodeZranContexts(ctxs);
  const ciData = Buffer.concat([ciArray, zran]);
  const { data: ciComp, ciCompressor } = compressCiArray(ciData, 'zstd');
  const features = BlobFeatures.ALIGNED | BlobFeatures.CHUNK_INFO_V2 | BlobFeatures.ZRAN | BlobFeatures.SEPARATE;
  const header = encodeBlobMetaHeader({
    features,
    ciCompressor,
    ciEntries: ci.length,
    ciOffset: 0,
    ciCompressedSize: ciComp.length,
    ciUncompressedSize: ciData.length,
    ciZranOffset: ciArray.length,
    ciZranSize: zran.length,
    ciZranCount: ctxs.length,
  });
  const metaBlob = Buffer.concat([ciComp, header]);
  const metaDigest = createHash('sha256').update(metaBlob).digest();
  const blob: BlobInfo = {
    ...emptyBlobInfo(blobId, 0, chunkSize, 'gzip', o.digester),
    chunkCount: ci.length,
    features,
    compressedSize: layerSize,
    uncompressedSize: uncompPos,
    metaCiCompressor: ciCompressor,
    metaCiOffset: 0,
    metaCiCompressedSize: ciComp.length,
    metaCiUncompressedSize: ciData.length,
    blobMetaDigest: new Uint8Array(metaDigest),
    blobMetaSize: metaBlob.length,
  };
  const model: ImageModel = {
    root,
    blobs: ci.length ? [blob] : [],
    chunkSize,
    compressor: 'gzip',
    digester: o.digester,
    explicitUidGid: o.explicitUidGid,
    prefetchPaths: [],
  };
  return { model, metaBlob, metaBlobId: metaDigest.toString('hex'), blob, layerSize, layerDigest, chunks: ci.length, contexts: ctxs.length, files, chunkRefs, fileBytes };
}

/**
 * Bytes of the window the context's blocks actually copy from: a decoder needs no more (zlib's
 * inflateSetDictionary takes a shorter one too). Incompressible data (stored blocks) needs none,
 * which keeps the ref blob small.
 */
function windowNeeded(blocks: readonly InflateCheckpoint[], c: ZranContext): number {
  let lo = 0;
  let hi = blocks.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (blocks[mid]!.out < c.outOffset) lo = mid + 1;
    else hi = mid;
  }
  // The block the context starts at is the last one at or before outOffset with that out.
  while (lo > 0 && blocks[lo - 1]!.out === c.outOffset) lo--;
  let min = c.outOffset;
  for (let i = lo; i < blocks.length && blocks[i]!.out < c.outOffset + c.outLen; i++) min = Math.min(min, blocks[i]!.minRef);
  return Math.min(c.dict.length, c.outOffset - min);
}

/** Writes the ref blob to `blob` or `<blobDir>/<meta blob id>`; returns the path. */
export async function writeMetaBlob(r: ZranBuildResult, blob: string | undefined, blobDir: string | undefined): Promise<string> {
  const path = blob ?? join(blobDir!, r.metaBlobId);
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, r.metaBlob);
  await rename(tmp, path);
  await stat(path);
  return path;
}

/**
 * `nydus-image create --type targz-ref`: bootstrap (-B, or in --blob-dir named by its digest) and
 * the ref blob (--blob, or --blob-dir/<its sha256>). The data blob is the layer itself.
 */
export async function createTargzRef(o: CreateOptions): Promise<CreateResult> {
  const t0 = performance.now();
  if ((o.fsVersion ?? 6) !== 6) throw new UsageError('--type targz-ref requires --fs-version 6');
  if (o.source === '-') throw new UsageError("--type targz-ref needs the layer as a file, not '-'");
  if (o.parentBootstrap || o.chunkDict) throw new UsageError('--type targz-ref does not support --parent-bootstrap or --chunk-dict');
  if (o.blobInlineMeta || o.blobToc) throw new UsageError('--type targz-ref does not support --blob-inline-meta or --features blob-toc');
  if (!o.blob && !o.blobDir) throw new UsageError('--type targz-ref needs --blob or --blob-dir for the blob meta');
  if (!o.bootstrap && !o.blobDir) throw new UsageError('missing --bootstrap (required unless --blob-dir)');
  if (o.blobDir) await mkdir(o.blobDir, { recursive: true });
  const chunkSize = o.chunkSize ?? 0x100000;
  const digester = o.digester ?? 'blake3';
  const st = await stat(o.source).catch((e: NodeJS.ErrnoException) => {
    throw new NydusError('ERR_IO', `layer ${o.source}: ${e.code === 'ENOENT' ? 'no such file' : (e.code ?? e.message)}`);
  });
  if (!st.isFile()) throw new NydusError('ERR_IO', `layer ${o.source} is not a file`);
  const r = await buildZranRef({
    source: o.source,
    chunkSize,
    digester,
    explicitUidGid: !o.repeatable,
    whiteoutSpec: o.whiteoutSpec ?? 'oci',
    ...(o.blobId !== undefined ? { blobId: o.blobId } : {}),
  });
  const t1 = performance.now();
  const bootstrapBytes = encodeBootstrapV6(r.model);
  openBootstrap(bootstrapBytes, 'generated bootstrap').validate();
  const blobPath = await writeMetaBlob(r, o.blob, o.blobDir);
  const bootstrap = o.bootstrap ?? join(o.blobDir!, createHash('sha256').update(bootstrapBytes).digest('hex'));
  await writeFile(bootstrap, bootstrapBytes).catch((e: NodeJS.ErrnoException) => {
    throw new NydusError('ERR_IO', `cannot write bootstrap ${bootstrap}: ${e.code ?? e.message}`);
  });
  const inodes = countNodes(r.model.root);
  const t2 = performance.now();
  return {
    bootstrap,
    bootstrapBytes,
    blobs: r.model.blobs.map((b) => b.blobId),
    blobId: r.metaBlobId,
    blobPath,
    blobSize: r.metaBlob.length,
    fsVersion: 6,
    compressor: 'gzip',
    digester,
    model: r.model,
    stats: { files: r.files, bytes: r.fileBytes, chunks: r.chunkRefs, dedupChunks: r.chunkRefs - r.chunks, storedChunks: r.chunks, storedBytes: 0, inodes },
    consumedTime: { build_tree: (t1 - t0) / 1000, dump_bootstrap: (t2 - t1) / 1000, total_build: (t2 - t0) / 1000 },
    registeredEvents: { euid: process.geteuid?.() ?? 0, egid: process.getegid?.() ?? 0, load_from_directory: inodes },
  };
}

function countNodes(n: TreeNode): number {
  let k = 1;
  for (const c of n.children) k += countNodes(c);
  return k;
}
