// One source layer → one nydus blob, streamed: registry GET → sha256 check of the compressed bytes
// → gunzip/zstd → (diff_id hash + tar safety guard) → builder stdin → blob file on disk. Nothing
// proportional to the layer size is held in memory.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import * as zlib from 'node:zlib';
import { createGunzip } from 'node:zlib';
import { NydusError } from '../util/errors.js';
import { createImage } from '../builder/index.js';
import type { ImageModel } from '../format/image-model.js';
import { packLayer, type BuildParams } from './builder-cli.js';
import { readInlineBootstrap } from './blob-tail.js';
import type { LayerCompression } from './media-types.js';
import { checkDigest, type DigestAlgorithm } from './reference.js';
import { TarParser } from '../format/tar-reader.js';
import { LayerPathGuard } from './layer-guard.js';

const require = createRequire(import.meta.url);
// zstd-napi when it was built at install time, else node:zlib's zstd (see format/compress.ts).
const zstdStream = (): Transform => {
  try {
    return new (require('zstd-napi') as { DecompressStream: new () => Transform }).DecompressStream();
  } catch {
    return zlib.createZstdDecompress({ chunkSize: 1 << 20 });
  }
};

export interface LayerResult {
  sourceDigest: string;
  sourceSize: number;
  /** The layer's nydus blob; undefined when the layer has no file data of its own. */
  blob: { path: string; digest: string; size: number } | undefined;
  /** Per-layer bootstrap (placeholder blob id inside). */
  bootstrap: Uint8Array;
  /** The builder's model when built in-process (saves re-reading the bootstrap). */
  model?: ImageModel | undefined;
  /** Directory paths the tar names ('' = root). */
  explicitDirs: Set<string>;
  pullMs: number;
  convertMs: number;
}

/** Counts and hashes bytes flowing through; `onEnd` sees the totals. */
class HashTap extends Transform {
  readonly #algorithm: DigestAlgorithm;
  readonly #hash;
  #digest: string | undefined;
  bytes = 0;
  readonly #inspect: ((c: Buffer) => void) | undefined;
  constructor(algorithm: DigestAlgorithm, inspect?: (c: Buffer) => void) {
    super({ highWaterMark: 1 << 20 });
    this.#algorithm = algorithm;
    this.#hash = createHash(algorithm);
    this.#inspect = inspect;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.#inspect?.(chunk);
    } catch (e) {
      return cb(e as Error);
    }
    this.bytes += chunk.length;
    this.#hash.update(chunk);
    cb(null, chunk);
  }
  /** Final digest; may be asked more than once (a node Hash may not). */
  digest(): string {
    this.#digest ??= `${this.#algorithm}:${this.#hash.digest('hex')}`;
    return this.#digest;
  }
}

export function decompressor(c: LayerCompression): Transform | undefined {
  // 1 MiB output chunks double gunzip throughput (dependencies §6).
  if (c === 'gzip') return createGunzip({ chunkSize: 1 << 20 });
  if (c === 'zstd') return zstdStream();
  return undefined;
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
  return h.digest('hex');
}

export interface LayerInput {
  index: number;
  digest: string;
  size: number;
  compression: LayerCompression;
  /** Expected diff_id from the source config (verified when present). */
  diffId: string | undefined;
  open: () => Promise<Readable>;
}

interface TarPipeline {
  src: Readable;
  compressedTap: HashTap;
  tarTap: HashTap;
  parser: TarParser;
  explicitDirs: Set<string>;
  pullEnd: () => number;
}

/** registry stream → hash → decompress → hash + tar guard; the builder reads `tarTap`. */
async function openTar(input: LayerInput, what: string): Promise<TarPipeline> {
  const src = await input.open();
  let pullEnd = 0;
  const compressedTap = new HashTap(checkDigest(input.digest, what).algorithm);
  compressedTap.on('end', () => (pullEnd = Date.now()));
  const guard = new LayerPathGuard();
  const explicitDirs = new Set<string>();
  const parser = new TarParser({
    entry: (h) => {
      const p = guard.check(h);
      if (h.type === 'dir') explicitDirs.add(p);
    },
  });
  const tarTap = new HashTap(input.diffId ? checkDigest(input.diffId, `${what} diff_id`).algorithm : 'sha256', (c) => parser.write(c));
  const dec = decompressor(input.compression);
  const stages: Array<Readable | Transform> = [src, compressedTap, ...(dec ? [dec] : []), tarTap];
  for (let i = 0; i + 1 < stages.length; i++) {
    const from = stages[i]!;
    const to = stages[i + 1] as Transform;
    from.on('error', (e: Error) => to.destroy(e instanceof NydusError ? e : new NydusError('ERR_FORMAT_INVALID', `${what}: ${e.message}`, { cause: e })));
    from.pipe(to);
  }
  return { src, compressedTap, tarTap, parser, explicitDirs, pullEnd: () => pullEnd || Date.now() };
}

function buildInProcess(tar: HashTap, params: BuildParams, out: { blob: string } | { bootstrap: string }) {
  return createImage({
    source: '-',
    sourceType: 'tar-rafs',
    stdin: tar,
    ...('blob' in out ? { blob: out.blob, blobInlineMeta: true, blobToc: params.fsVersion === 6 } : { bootstrap: out.bootstrap }),
    whiteoutSpec: 'none',
    fsVersion: params.fsVersion,
    compressor: params.compressor as 'zstd',
    chunkSize: params.chunkSize,
    ...(params.batchSize ? { batchSize: params.batchSize } : {}),
    ...(params.chunkDictPath ? { chunkDict: params.chunkDictPath } : {}),
  }).catch((e: unknown) => {
    // The tap's error (unsafe tar, bad digest) is the cause; the builder only saw a broken stream.
    if (tar.errored) throw tar.errored;
    throw e;
  });
}

export async function convertLayer(input: LayerInput, workDir: string, params: BuildParams): Promise<LayerResult> {
  const t0 = Date.now();
  // Only a validated digest goes into messages, and only its hex into the temp name.
  const { hex } = checkDigest(input.digest, `layer ${input.index + 1}`);
  const what = `layer ${input.index + 1} (${input.digest})`;
  const tmp = join(workDir, `layer-${hex.slice(0, 12)}-${process.pid}-${input.index}.blob`);
  const p = await openTar(input, what);
  try {
    let model: ImageModel | undefined;
    let bootstrap: Uint8Array | undefined;
    let hasBlob = true;
    if (params.nydusImage.length === 0) {
      const r = await buildInProcess(p.tarTap, params, { blob: tmp });
      model = r.model;
      bootstrap = r.bootstrapBytes;
      // A layer without new file data (only dirs, links, whiteouts, or every chunk found in the
      // chunk dict) stores no chunks: it needs no blob layer, only its bootstrap.
      hasBlob = r.blobPath !== undefined && r.stats.storedChunks > 0;
      if (!hasBlob) await rm(tmp, { force: true });
    } else await packLayer(p.tarTap, tmp, params, what);
    p.parser.end();
    const { compressedTap, tarTap } = p;
    const got = compressedTap.digest();
    if (got !== input.digest) throw new NydusError('ERR_DIGEST_MISMATCH', `${what}: downloaded content has digest ${got}`);
    const diff = tarTap.digest();
    if (input.diffId && diff !== input.diffId) throw new NydusError('ERR_DIGEST_MISMATCH', `${what}: uncompressed digest ${diff} differs from config diff_id ${input.diffId}`);
    let blob: LayerResult['blob'];
    if (hasBlob) {
      const hex = await sha256File(tmp);
      await mkdir(join(workDir, 'blobs'), { recursive: true });
      const blobPath = join(workDir, 'blobs', hex);
      await rename(tmp, blobPath);
      bootstrap ??= readInlineBootstrap(blobPath);
      blob = { path: blobPath, digest: `sha256:${hex}`, size: (await stat(blobPath)).size };
    }
    return {
      sourceDigest: input.digest,
      sourceSize: compressedTap.bytes,
      blob,
      bootstrap: bootstrap!,
      model,
      explicitDirs: p.explicitDirs,
      pullMs: p.pullEnd() - t0,
      convertMs: Date.now() - t0,
    };
  } catch (e) {
    p.src.destroy();
    await rm(tmp, { force: true });
    throw e;
  }
}
