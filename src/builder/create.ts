// `nydus-image create`: source (directory or tar stream) → image model → data blob (BlobWriter) →
// v5/v6 bootstrap. Upstream: builder/src/{directory,tarball,lib}.rs and src/bin/nydus-image/main.rs.
// Data goes through the chunk pipeline (worker pool, dedup, ordered placement) while the source is
// read; the bootstrap is encoded once every chunk is placed.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { emptyBlobInfo, type BlobInfo } from '../format/blob-info.js';
import type { ChunkInfo } from '../format/chunk-info.js';
import type { Compressor, Digester } from '../format/constants.js';
import { openBootstrap } from '../rafs/index.js';
import { treeFromRafs } from '../rafs/tree-from-rafs.js';
import { NydusError, UsageError } from '../util/errors.js';
import { logger } from '../util/log.js';
import { BlobWriter } from './blob-writer.js';
import { ChunkPipeline, type ChunkStats } from './chunker.js';
import { ChunkPool } from './compress-pool.js';
import { BlobTable, ChunkDedup } from './dedup.js';
import { mergeLayers } from './merge.js';
import { createTargzRef } from './zran.js';
import { scanDirectory } from './source/dir.js';
import { scanTar } from './source/tar.js';
import { applySingleLayerWhiteouts, type WhiteoutSpec } from './source/whiteout.js';
import { isDir, isReg, type ImageModel, type TreeNode } from '../format/image-model.js';
import { encodeBootstrapV5 } from './writer/v5.js';
import { encodeBootstrapV6 } from './writer/v6.js';
import { outputJsonVersion } from '../util/version.js';

const log = logger('builder');

export type SourceType = 'dir-rafs' | 'tar-rafs' | 'targz-ref';
export type PrefetchPolicy = 'fs' | 'blob' | 'none';

export const RAFS_DEFAULT_CHUNK_SIZE = 0x100000;
export const RAFS_MIN_CHUNK_SIZE = 0x1000;
export const RAFS_MAX_CHUNK_SIZE = 0x1000000;
const BLOB_ID_MAXIMUM_LENGTH = 255;

export interface CreateOptions {
  /** Directory (dir-rafs) or tar file (tar-rafs); '-' reads the tar from `stdin`. */
  source: string;
  sourceType?: SourceType;
  /** Tar input for source '-' (default process.stdin). */
  stdin?: AsyncIterable<Uint8Array>;
  /** Output bootstrap path (-B). */
  bootstrap?: string;
  /** Output data blob path (-b). */
  blob?: string;
  /** Output directory (-D): blob and (without -B) bootstrap are named by their ids. */
  blobDir?: string;
  blobId?: string;
  fsVersion?: 5 | 6;
  compressor?: Compressor;
  digester?: Digester;
  chunkSize?: number;
  /** v5 only: 4 KiB-aligned uncompressed offsets (v6 always is). */
  alignedChunk?: boolean;
  /** --repeatable: no EXPLICIT_UID_GID, uid/gid 0. */
  repeatable?: boolean;
  whiteoutSpec?: WhiteoutSpec;
  parentBootstrap?: string;
  /** Chunk dict bootstrap path (`bootstrap=PATH` or `PATH`). */
  chunkDict?: string;
  prefetchPolicy?: PrefetchPolicy;
  /** --prefetch-policy fs patterns (absolute paths), in order. */
  prefetchPatterns?: string[];
  /** --features blob-toc */
  blobToc?: boolean;
  /** --batch-size (v6; 0 = off): merge small chunks into compressed batches of this size. */
  batchSize?: number;
  blobInlineMeta?: boolean;
  /** Worker threads for digest/compression (default min(2, cores)). */
  workers?: number;
  /** Called about every 200 ms while data is processed. */
  onProgress?: (s: Readonly<ChunkStats>) => void;
}

export interface CreateResult {
  /** Bootstrap file path, '' when only inlined in the blob. */
  bootstrap: string;
  bootstrapBytes: Uint8Array;
  /** Blob ids in blob table order. */
  blobs: string[];
  /** Id and file of this build's blob (undefined when no data was written). */
  blobId: string | undefined;
  blobPath: string | undefined;
  blobSize: number;
  fsVersion: 5 | 6;
  compressor: Compressor;
  digester: Digester;
  model: ImageModel;
  stats: ChunkStats & { inodes: number };
  /** Seconds per build step (upstream trace `consumed_time`). */
  consumedTime: Record<string, number>;
  registeredEvents: Record<string, number>;
}

/** Parses `--chunk-dict` (`bootstrap=PATH` or a bare path). */
export function parseChunkDictArg(s: string): string {
  const m = /^([a-z]+)=(.*)$/.exec(s);
  if (!m) return s;
  if (m[1] !== 'bootstrap') throw new UsageError(`invalid --chunk-dict '${s}': only 'bootstrap=PATH' is supported`);
  if (!m[2]) throw new UsageError(`invalid --chunk-dict '${s}': missing path`);
  return m[2];
}

/**
 * Upstream get_batch_size(): 0, or a power of two from 0x1000 to 0x1000000 that is not bigger than
 * the chunk size, and only for RAFS v6.
 */
export function validateBatchSize(n: number, fsVersion: 5 | 6, chunkSize: number): void {
  if (n === 0) return;
  if (fsVersion === 5) throw new UsageError('--batch-size with non-zero value conflicts with --fs-version 5');
  if (!Number.isInteger(n) || n < RAFS_MIN_CHUNK_SIZE || n > RAFS_MAX_CHUNK_SIZE || (n & (n - 1)) !== 0) {
    throw new UsageError(`invalid --batch-size 0x${n.toString(16)}: must be 0 or a power of two between 0x1000 and 0x1000000`);
  }
  if (n > chunkSize) throw new UsageError(`--batch-size 0x${n.toString(16)} is bigger than --chunk-size 0x${chunkSize.toString(16)}`);
}

export function validateChunkSize(n: number, flag = '--chunk-size'): void {
  if (!Number.isInteger(n) || n < RAFS_MIN_CHUNK_SIZE || n > RAFS_MAX_CHUNK_SIZE || (n & (n - 1)) !== 0) {
    throw new UsageError(`invalid ${flag} 0x${n.toString(16)}: must be a power of two between 0x1000 and 0x1000000`);
  }
}

/** Absolute prefetch patterns in order, without those under an earlier one (upstream rules). */
export function parsePrefetchPatterns(text: string): string[] {
  const kept: string[] = [];
  for (const line of text.split('\n')) {
    const raw = line.trim();
    if (!raw) continue;
    if (!raw.startsWith('/')) {
      log.warn(`prefetch pattern '${raw}' is not an absolute path, ignored`);
      continue;
    }
    const p = '/' + raw.split('/').filter((x) => x && x !== '.').join('/');
    if (kept.some((k) => k === '/' || p === k || p.startsWith(k + '/'))) continue;
    kept.push(p);
  }
  return kept;
}

function lookupPath(root: TreeNode, path: string): TreeNode | undefined {
  let n: TreeNode | undefined = root;
  for (const part of path.split('/').filter((x) => x)) {
    const want = Buffer.from(part);
    n = n.children.find((c) => Buffer.compare(c.name, want) === 0);
    if (!n) return undefined;
  }
  return n;
}

/** Regular files in data order (§3.4): prefetch patterns first, then inode index order. */
export function dataOrder(root: TreeNode, prefetch: string[]): TreeNode[] {
  const out: TreeNode[] = [];
  const seen = new Set<TreeNode>();
  const links = new Set<string>();
  const emit = (n: TreeNode): void => {
    if (seen.has(n)) return;
    seen.add(n);
    if (n.hardlinkKey !== undefined) {
      if (links.has(n.hardlinkKey)) return;
      links.add(n.hardlinkKey);
    }
    out.push(n);
  };
  const walk = (d: TreeNode): void => {
    for (const c of d.children) if (isReg(c.mode)) emit(c);
    for (const c of d.children) if (isDir(c.mode)) walk(c);
  };
  for (const p of prefetch) {
    const n = lookupPath(root, p);
    if (!n) continue;
    if (isReg(n.mode)) emit(n);
    else if (isDir(n.mode)) walk(n);
  }
  walk(root);
  return out;
}

async function loadModel(path: string, what: string): Promise<ImageModel> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    throw new NydusError('ERR_IO', `cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const sb = openBootstrap(buf, `${what} ${path}`);
  return treeFromRafs(sb);
}

function allChunks(n: TreeNode, out: ChunkInfo[] = []): ChunkInfo[] {
  if (isReg(n.mode)) out.push(...n.chunks);
  for (const c of n.children) allChunks(c, out);
  return out;
}

function countInodes(n: TreeNode): number {
  let k = 1;
  for (const c of n.children) k += countInodes(c);
  return k;
}

function checkOptions(o: CreateOptions): void {
  const type = o.sourceType ?? 'dir-rafs';
  if (o.blobInlineMeta && o.bootstrap) throw new UsageError('--blob-inline-meta conflicts with --bootstrap');
  if (o.blobInlineMeta && o.blobId) throw new UsageError('--blob-inline-meta conflicts with --blob-id');
  if (!o.bootstrap && !o.blobDir && !o.blobInlineMeta) throw new UsageError('missing --bootstrap (required unless --blob-dir or --blob-inline-meta)');
  if (o.blobInlineMeta && !o.blob && !o.blobDir) throw new UsageError('--blob-inline-meta needs --blob or --blob-dir');
  if (o.blobId !== undefined && (o.blobId.length === 0 || o.blobId.length > BLOB_ID_MAXIMUM_LENGTH)) throw new UsageError(`invalid --blob-id: must be 1..${BLOB_ID_MAXIMUM_LENGTH} characters`);
  if ((o.fsVersion ?? 6) === 5 && o.blobToc) throw new UsageError("--features blob-toc requires --fs-version 6");
  if (o.source === '-' && type !== 'tar-rafs') throw new UsageError(`source '-' (stdin) is only supported with --type tar-rafs`);
  if (o.source === '-' && (o.prefetchPolicy ?? 'none') !== 'none') throw new UsageError('--prefetch-policy reads its list from stdin, which is already the tar source');
  validateChunkSize(o.chunkSize ?? RAFS_DEFAULT_CHUNK_SIZE);
  validateBatchSize(o.batchSize ?? 0, o.fsVersion ?? 6, o.chunkSize ?? RAFS_DEFAULT_CHUNK_SIZE);
}

/** Builds an image. Throws UsageError for bad options, NydusError for source/IO problems. */
export async function createImage(o: CreateOptions): Promise<CreateResult> {
  if (o.sourceType === 'targz-ref') return createTargzRef(o);
  checkOptions(o);
  const t0 = performance.now();
  const consumedTime: Record<string, number> = {};
  const timed = async <T>(step: string, fn: () => Promise<T>): Promise<T> => {
    const s = performance.now();
    try {
      return await fn();
    } finally {
      consumedTime[step] = (consumedTime[step] ?? 0) + (performance.now() - s) / 1000;
    }
  };
  const fsVersion = o.fsVersion ?? 6;
  const compressor = o.compressor ?? 'zstd';
  const digester = o.digester ?? 'blake3';
  const chunkSize = o.chunkSize ?? RAFS_DEFAULT_CHUNK_SIZE;
  const spec = o.whiteoutSpec ?? 'oci';
  const explicitUidGid = !o.repeatable;
  const type = o.sourceType ?? 'dir-rafs';
  const prefetch = (o.prefetchPolicy ?? 'none') === 'fs' ? (o.prefetchPatterns ?? []) : [];

  if (type === 'dir-rafs') {
    const st = await stat(o.source).catch((e: NodeJS.ErrnoException) => {
      throw new NydusError('ERR_IO', `source ${o.source}: ${e.code === 'ENOENT' ? 'no such directory' : (e.code ?? e.message)}`);
    });
    if (!st.isDirectory()) throw new NydusError('ERR_IO', `source ${o.source} is not a directory (use --type tar-rafs for a tar file)`);
  } else if (o.source !== '-') {
    const st = await stat(o.source).catch((e: NodeJS.ErrnoException) => {
      throw new NydusError('ERR_IO', `source ${o.source}: ${e.code === 'ENOENT' ? 'no such file' : (e.code ?? e.message)}`);
    });
    if (st.isDirectory()) throw new NydusError('ERR_IO', `source ${o.source} is a directory, not a tar file (use --type dir-rafs)`);
  }
  if (o.blobDir) {
    // Created when missing, as users expect of an output directory.
    await mkdir(o.blobDir, { recursive: true }).catch((e: NodeJS.ErrnoException) => {
      throw new NydusError('ERR_IO', `--blob-dir ${o.blobDir}: cannot create (${e.code ?? e.message})`);
    });
    const st = await stat(o.blobDir).catch(() => undefined);
    if (!st?.isDirectory()) throw new NydusError('ERR_IO', `--blob-dir ${o.blobDir} is not a directory`);
  }

  const parent = o.parentBootstrap ? await timed('load_tree_from_bootstrap', () => loadModel(o.parentBootstrap!, 'parent bootstrap')) : undefined;
  const dict = o.chunkDict ? await timed('load_chunk_dict', () => loadModel(o.chunkDict!, 'chunk dict')) : undefined;

  if (parent && parent.chunkSize !== chunkSize) {
    throw new NydusError('ERR_BUILD', `--chunk-size 0x${chunkSize.toString(16)} differs from the chunk size 0x${parent.chunkSize.toString(16)} of parent bootstrap ${o.parentBootstrap}`);
  }
  const table = new BlobTable();
  if (parent) table.addParentBlobs(parent.blobs);
  const dedup = new ChunkDedup(table, digester);
  if (dict) dedup.addDict(dict, `chunk dict ${o.chunkDict}`);
  if (parent) dedup.addParent(parent, `parent bootstrap ${o.parentBootstrap}`);

  const tmpBlob = o.blob ?? (o.blobDir ? join(o.blobDir, `.nydus-blob-${process.pid}-${randomBytes(4).toString('hex')}.tmp`) : undefined);
  const writer = await BlobWriter.open({
    ...(tmpBlob !== undefined ? { path: tmpBlob } : {}),
    fsVersion,
    compressor,
    digester,
    chunkSize,
    alignedChunk: fsVersion === 6 || !!o.alignedChunk,
    blobToc: !!o.blobToc,
    inlineMeta: !!o.blobInlineMeta,
    ...(o.blobId !== undefined ? { blobId: o.blobId } : {}),
    batchSize: o.batchSize ?? 0,
    compressBatch: (raw) => pool.compress(raw, compressor),
  });
  const pool = new ChunkPool(o.workers);
  const pipeline = new ChunkPipeline({
    pool,
    dedup,
    sink: writer,
    chunkSize,
    compressor,
    digester,
    blobPlaceholder: () => emptyBlobInfo(o.blobId ?? '', 0, chunkSize, compressor, digester),
    batchSize: o.batchSize ?? 0,
  });
  const progress = o.onProgress ? setInterval(() => o.onProgress!(pipeline.stats), 200) : undefined;
  progress?.unref();
  let finished = false;
  try {
    // 1. Source → tree (tar: data is chunked while it streams by).
    let root: TreeNode;
    if (type === 'dir-rafs') {
      const src = await timed('build_tree', () => scanDirectory(o.source, { explicitUidGid }));
      root = src.root;
      applySingleLayerWhiteouts(root, spec, !parent);
      await timed('dump_blob', async () => {
        // addFile only queues: the workers read the files, many at a time, while this loop runs ahead
        // (bounded by the pipeline's in-flight limits); chunks still commit in this order.
        for (const n of dataOrder(root, prefetch)) {
          const p = src.paths.get(n)!;
          await pipeline.addFile(p, n.size, n.chunks, p.toString());
        }
        await pipeline.flush();
        await writer.flushBatches();
      });
      // Free the workers (and the buffers they have not collected yet) before the bootstrap encode,
      // which is the peak of the main thread's memory.
      await pool.close();
    } else {
      const input = o.source === '-' ? (o.stdin ?? process.stdin) : createReadStream(o.source, { highWaterMark: 1 << 20 });
      const src = await timed('build_tree', () =>
        scanTar(input, { explicitUidGid, onFileData: (body, size, out, name) => pipeline.addStream(body, size, out, name) }),
      );
      root = src.root;
      if (!parent) applySingleLayerWhiteouts(root, spec, false);
      await timed('dump_blob', async () => {
        await pipeline.flush();
        await writer.flushBatches();
      });
      await pool.close();
    }

    // 2. Tree → model (layered: overlay onto the parent's tree).
    let model: ImageModel = { root, blobs: table.blobs, chunkSize, compressor, digester, explicitUidGid, prefetchPaths: prefetch };
    if (parent) {
      const merged = mergeLayers([parent, model], spec);
      model = { ...merged, chunkSize, compressor, digester, explicitUidGid, prefetchPaths: prefetch, extraChunks: allChunks(parent.root) };
    }
    const encode = (m: ImageModel): Uint8Array => (fsVersion === 5 ? encodeBootstrapV5(m) : encodeBootstrapV6(m));
    const withBlob = (info: BlobInfo): ImageModel => {
      // A blob without chunks (inline meta of a data-less layer) holds only the bootstrap: like
      // upstream, it stays out of the blob table (a 0-block device slot is invalid).
      if (info.chunkCount === 0) return model;
      const idx = table.ownBlobIndex(() => info);
      const blobs = model.blobs.slice();
      blobs[idx] = { ...info, blobIndex: idx };
      return { ...model, blobs };
    };

    // 3. Finish the blob; encode the bootstrap.
    let blobId: string | undefined;
    let blobPath: string | undefined;
    let blobSize = 0;
    let bootstrapBytes: Uint8Array;
    if (table.ownIndex === undefined && !o.blobInlineMeta) {
      await writer.abort();
      finished = true;
      if (o.blob) await writeFile(o.blob, new Uint8Array(0)); // upstream leaves an empty blob file
      else if (tmpBlob) await rm(tmpBlob, { force: true });
      bootstrapBytes = await timed('dump_bootstrap', async () => encode(model));
    } else {
      let inlined: Uint8Array | undefined;
      const info: BlobInfo = await timed('dump_blob', () => writer.finish(o.blobInlineMeta ? (i: BlobInfo) => (inlined = encode(withBlob(i))) : undefined));
      finished = true;
      blobId = info.blobId;
      blobSize = info.compressedSize;
      model = withBlob(info);
      bootstrapBytes = inlined ?? (await timed('dump_bootstrap', async () => encode(model)));
      blobPath = tmpBlob;
      if (o.blobDir && !o.blob && tmpBlob) {
        blobPath = join(o.blobDir, o.blobId ?? info.blobId);
        await rename(tmpBlob, blobPath);
      }
    }

    // 4. Write the bootstrap (unless only inlined) and check what we wrote.
    let bootstrap = '';
    if (o.bootstrap) bootstrap = o.bootstrap;
    else if (o.blobDir && !o.blobInlineMeta) bootstrap = join(o.blobDir, createHash('sha256').update(bootstrapBytes).digest('hex'));
    openBootstrap(bootstrapBytes, 'generated bootstrap').validate();
    if (bootstrap) {
      await writeFile(bootstrap, bootstrapBytes).catch((e: NodeJS.ErrnoException) => {
        throw new NydusError('ERR_IO', `cannot write bootstrap ${bootstrap}: ${e.code ?? e.message}`);
      });
    }

    consumedTime.total_build = (performance.now() - t0) / 1000;
    const inodes = countInodes(model.root);
    return {
      bootstrap,
      bootstrapBytes,
      blobs: model.blobs.map((b) => b.blobId),
      blobId,
      blobPath,
      blobSize,
      fsVersion,
      compressor,
      digester,
      model,
      stats: { ...pipeline.stats, inodes },
      consumedTime,
      registeredEvents: { euid: process.geteuid?.() ?? 0, egid: process.getegid?.() ?? 0, load_from_directory: inodes },
    };
  } catch (e) {
    if (!finished) {
      await writer.abort().catch(() => {});
      if (tmpBlob && tmpBlob !== o.blob) await rm(tmpBlob, { force: true }).catch(() => {});
    }
    throw e;
  } finally {
    if (progress) clearInterval(progress);
    await pool.close();
  }
}

/** The `--output-json` document (upstream OutputSerializer, upstream-features §1.15). */
export function createOutputJson(r: CreateResult): Record<string, unknown> {
  return {
    version: outputJsonVersion(),
    bootstrap: r.bootstrap,
    blobs: r.blobs,
    external_bootstrap: '',
    external_blobs: [],
    trace: { consumed_time: r.consumedTime, registered_events: r.registeredEvents },
    fs_version: String(r.fsVersion),
    compressor: r.compressor,
  };
}
