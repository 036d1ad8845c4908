// nydus-image create [OPTIONS] SOURCE — flags, defaults and conflicts as upstream
// (src/bin/nydus-image/main.rs, upstream-features §1.2); the work is builder/createImage.
import { appendFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createImage, createOutputJson, parseChunkDictArg, parsePrefetchPatterns, validateBatchSize, validateChunkSize, type CreateOptions, type CreateResult, type PrefetchPolicy, type SourceType } from '../../builder/index.js';
import type { WhiteoutSpec } from '../../builder/index.js';
import { parseCompressor } from '../../format/compress.js';
import { parseDigester } from '../../format/digest.js';
import { NydusError, UsageError } from '../../util/errors.js';
import { isLogLevel, logger, setLogLevel, setLogSink, getLogLevel } from '../../util/log.js';
import { humanBytes, parseSize } from '../main.js';
import { COMMON_FLAGS, parseCommand, type CommandSpec, type FlagSpec } from '../command.js';

const log = logger('nydus-image');

export const SPEC = {
  name: 'nydus-image create',
  summary: 'Create a RAFS filesystem (bootstrap + data blob) from a directory or an OCI layer tar',
  args: ['<SOURCE>'],
  flags: {
    type: { short: 't', arg: 'TYPE', desc: "source type: dir-rafs (a directory), directory, tar-rafs (a tar or tar.gz; '-' reads stdin), targz-ref (a tar.gz layer referenced in place: bootstrap + blob meta only), estargz-ref (the same for an eStargz layer)", default: 'dir-rafs' },
    'source-type': { arg: 'TYPE', desc: 'alias of --type', hidden: true },
    bootstrap: { short: 'B', arg: 'FILE', desc: 'write the bootstrap (metadata) to FILE' },
    'blob-dir': { short: 'D', arg: 'DIR', desc: 'write the blob to DIR, named by its digest (created if missing)' },
    blob: { short: 'b', arg: 'FILE', desc: 'write the blob to FILE' },
    'blob-inline-meta': { desc: 'append the bootstrap to the blob (no separate bootstrap file)' },
    'inline-bootstrap': { desc: 'alias of --blob-inline-meta', hidden: true },
    'blob-id': { arg: 'ID', desc: 'blob id to record instead of the blob digest' },
    'blob-offset': { arg: 'N', desc: 'start offset of the blob (only 0 is supported)', default: '0' },
    'chunk-size': { arg: 'SIZE', desc: 'chunk size, a power of two from 0x1000 to 0x1000000', default: '0x100000' },
    'batch-size': { arg: 'SIZE', desc: 'merge files smaller than half of SIZE into compressed batches (v6; a power of two from 0x1000 to the chunk size, 0 = off)', default: '0' },
    compressor: { arg: 'ALGO', desc: 'chunk compression', default: 'zstd', choices: ['none', 'lz4_block', 'zstd'] },
    digester: { arg: 'ALGO', desc: 'chunk and inode digest', default: 'blake3', choices: ['blake3', 'sha256'] },
    config: { short: 'C', arg: 'FILE', desc: 'nydusd config (ignored: the builder reads no backend)' },
    'fs-version': { short: 'v', arg: 'VERSION', desc: 'RAFS version', default: '6', choices: ['5', '6'] },
    features: { arg: 'LIST', desc: 'comma-separated features: blob-toc' },
    'chunk-dict': { arg: 'DICT', desc: 'deduplicate against the chunks of this bootstrap ([bootstrap=]FILE)' },
    'parent-bootstrap': { arg: 'FILE', desc: 'parent layer bootstrap: deduplicate against it, apply whiteouts on top of it' },
    'aligned-chunk': { desc: 'align uncompressed chunks to 4 KiB (v5; v6 always is)' },
    repeatable: { desc: 'reproducible output: zero uid/gid, no EXPLICIT_UID_GID flag' },
    'disable-check': { desc: 'skip the self-check of the result (accepted, no effect)' },
    'whiteout-spec': { arg: 'SPEC', desc: 'whiteout convention of the source', default: 'oci', choices: ['oci', 'overlayfs', 'none'] },
    'prefetch-policy': { arg: 'POLICY', desc: "prefetch: 'fs' reads a list of paths from stdin", default: 'none', choices: ['fs', 'blob', 'none'] },
    'output-json': { short: 'J', arg: 'FILE', desc: 'write a JSON summary (bootstrap, blobs, timings) to FILE' },
    encrypt: { short: 'E', desc: 'encrypt the blob (not supported)' },
    'blob-cache-dir': { arg: 'DIR', desc: 'also write a blob cache (not supported)' },
    'log-level': COMMON_FLAGS['log-level'],
    'log-file': { short: 'L', arg: 'FILE', desc: 'write log lines to FILE instead of stderr' },
    debug: COMMON_FLAGS.debug,
  },
} as const satisfies CommandSpec<Record<string, FlagSpec>>;

const TYPES: Record<string, SourceType> = { directory: 'dir-rafs', 'dir-rafs': 'dir-rafs', 'tar-rafs': 'tar-rafs', 'targz-ref': 'targz-ref', 'estargz-ref': 'targz-ref' };
const UPSTREAM_ONLY_TYPES = ['estargz-rafs', 'estargztoc-ref', 'tar-tarfs', 'targz-rafs', 'stargz_index'];

function oneOf<T extends string>(flag: string, v: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`invalid value '${v}' for ${flag}: expected ${allowed.join(', ')}`);
  return v as T;
}

/** Maps parsed flags to CreateOptions (everything but the prefetch list). Throws UsageError. */
export function createOptionsFromArgs(args: string[]): { opts: CreateOptions; outputJson: string | undefined; logLevel: string | undefined; logFile: string | undefined } | undefined {
  const p = parseCommand(SPEC, args);
  if (!p) return undefined;
  const { values: v, positionals } = p;
  const source = positionals[0]!;
  const typeName = v.type ?? v['source-type'] ?? 'dir-rafs';
  const sourceType = TYPES[typeName];
  if (!sourceType) {
    if (UPSTREAM_ONLY_TYPES.includes(typeName)) throw new UsageError(`--type ${typeName} is not supported by this builder (supported: dir-rafs, directory, tar-rafs, targz-ref, estargz-ref)`);
    throw new UsageError(`invalid value '${typeName}' for --type: expected dir-rafs, directory, tar-rafs, targz-ref or estargz-ref`);
  }
  const compressor = parseCompressor(v.compressor ?? 'zstd');
  if (!compressor || compressor === 'gzip') throw new UsageError(`invalid value '${v.compressor}' for --compressor: expected none, lz4_block or zstd`);
  const digester = parseDigester(v.digester ?? 'blake3');
  if (!digester) throw new UsageError(`invalid value '${v.digester}' for --digester: expected blake3 or sha256`);
  const fsVersion = Number(oneOf('--fs-version', v['fs-version'] ?? '6', ['5', '6'])) as 5 | 6;
  const chunkSize = parseSize('--chunk-size', v['chunk-size'] ?? '0x100000');
  validateChunkSize(chunkSize);
  const whiteoutSpec = oneOf<WhiteoutSpec>('--whiteout-spec', v['whiteout-spec'] ?? 'oci', ['oci', 'overlayfs', 'none']);
  const prefetchPolicy = oneOf<PrefetchPolicy>('--prefetch-policy', v['prefetch-policy'] ?? 'none', ['fs', 'blob', 'none']);
  let blobToc = false;
  for (const f of (v.features ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    if (f === 'blob-toc') blobToc = true;
    else throw new UsageError(`invalid value '${f}' for --features: expected blob-toc`);
  }
  const batchSize = parseSize('--batch-size', v['batch-size'] ?? '0');
  validateBatchSize(batchSize, fsVersion, chunkSize);
  if (v.encrypt) throw new UsageError('--encrypt is not supported by this builder');
  if (v['blob-cache-dir'] !== undefined) throw new UsageError('--blob-cache-dir is not supported by this builder');
  if (v['blob-offset'] !== undefined && parseSize('--blob-offset', v['blob-offset']) !== 0) throw new UsageError('--blob-offset is not supported by this builder (only 0)');
  if (v.config !== undefined) log.warn('--config is ignored: the builder reads no backend while building');
  if (v['aligned-chunk'] && fsVersion === 6) log.debug('--aligned-chunk has no effect on RAFS v6 (always aligned)');
  const logLevel = v['log-level'];
  if (logLevel !== undefined && !isLogLevel(logLevel)) throw new UsageError(`invalid value '${logLevel}' for --log-level: expected trace, debug, info, warn or error`);
  const opts: CreateOptions = {
    source,
    sourceType,
    fsVersion,
    compressor,
    digester,
    chunkSize,
    whiteoutSpec,
    prefetchPolicy,
    blobToc,
    batchSize,
    blobInlineMeta: !!(v['blob-inline-meta'] || v['inline-bootstrap']),
    alignedChunk: !!v['aligned-chunk'],
    repeatable: !!v.repeatable,
  };
  if (v.bootstrap !== undefined) opts.bootstrap = v.bootstrap;
  if (v.blob !== undefined) opts.blob = v.blob;
  if (v['blob-dir'] !== undefined) opts.blobDir = v['blob-dir'];
  if (v['blob-id'] !== undefined) opts.blobId = v['blob-id'];
  if (v['parent-bootstrap'] !== undefined) opts.parentBootstrap = v['parent-bootstrap'];
  if (v['chunk-dict'] !== undefined) opts.chunkDict = parseChunkDictArg(v['chunk-dict']);
  if (opts.blobInlineMeta && opts.bootstrap) throw new UsageError('--blob-inline-meta conflicts with --bootstrap');
  if (opts.blobInlineMeta && opts.blobId) throw new UsageError('--blob-inline-meta conflicts with --blob-id');
  if (!opts.bootstrap && !opts.blobDir && !opts.blobInlineMeta) throw new UsageError('missing --bootstrap (required unless --blob-dir or --blob-inline-meta)');
  return { opts, outputJson: v['output-json'], logLevel, logFile: v['log-file'] };
}


async function readStdinText(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const b of process.stdin) parts.push(b as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

export async function run(args: string[]): Promise<number> {
  const parsed = createOptionsFromArgs(args);
  if (!parsed) return 0;
  const { opts, outputJson, logLevel, logFile } = parsed;
  if (logLevel) setLogLevel(logLevel as Parameters<typeof setLogLevel>[0]);
  if (logFile) setLogSink((line) => appendFileSync(logFile, line + '\n'));
  if (opts.prefetchPolicy !== 'none') {
    if (opts.source === '-') throw new UsageError('--prefetch-policy reads its list from stdin, which is already the tar source');
    opts.prefetchPatterns = parsePrefetchPatterns(await readStdinText());
  }
  const tty = process.stderr.isTTY === true && getLogLevel() !== 'off';
  const start = performance.now();
  if (tty) {
    opts.onProgress = (s) => {
      const secs = (performance.now() - start) / 1000;
      process.stderr.write(`\r\x1b[K${s.files} files, ${humanBytes(s.bytes)}, ${s.chunks} chunks (${s.dedupChunks} dedup), ${humanBytes(s.bytes / Math.max(secs, 0.001))}/s`);
    };
  }
  let r: CreateResult;
  try {
    r = await createImage(opts);
  } finally {
    if (tty) process.stderr.write('\r\x1b[K');
  }
  log.info(`successfully built RAFS filesystem: ${r.stats.inodes} inodes, ${r.stats.files} files, ${r.stats.bytes} bytes, ${r.stats.chunks} chunks (${r.stats.dedupChunks} deduplicated)`);
  log.info(`meta blob path: ${r.bootstrap || '<none>'}`);
  log.info(`data blob size: 0x${r.blobSize.toString(16)}`);
  log.info(`data blobs: [${r.blobs.map((b) => `"${b}"`).join(', ')}]`);
  if (outputJson) {
    await writeFile(outputJson, JSON.stringify(createOutputJson(r), null, 2)).catch((e: NodeJS.ErrnoException) => {
      throw new NydusError('ERR_IO', `cannot write --output-json ${outputJson}: ${e.code ?? e.message}`);
    });
  }
  return 0;
}
