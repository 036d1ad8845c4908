// nydus-image create [OPTIONS] SOURCE — flags, defaults and conflicts as upstream
// (src/bin/nydus-image/main.rs, upstream-features §1.2); the work is builder/createImage.
import { appendFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createImage, parseChunkDictArg, parsePrefetchPatterns, validateChunkSize, type CreateOptions, type CreateResult, type PrefetchPolicy, type SourceType } from '../../builder/index.js';
import type { WhiteoutSpec } from '../../builder/index.js';
import { parseCompressor } from '../../format/compress.js';
import { parseDigester } from '../../format/digest.js';
import { NydusError, UsageError } from '../../util/errors.js';
import { isLogLevel, logger, setLogLevel, setLogSink, getLogLevel } from '../../util/log.js';
import { parseFlags, parseSize } from '../main.js';
import { NYDUS_TS_VERSION } from './load.js';

export const usage =
  'nydus-image create [-t dir-rafs|tar-rafs] (-B BOOTSTRAP | -D BLOB_DIR | --blob-inline-meta) [-b BLOB] [--fs-version 5|6] [--compressor none|lz4_block|zstd] [--digester blake3|sha256] [--chunk-size SIZE] [-J OUTPUT_JSON] SOURCE';

const log = logger('nydus-image');

const OPTIONS = {
  type: { type: 'string', short: 't' },
  'source-type': { type: 'string' },
  bootstrap: { type: 'string', short: 'B' },
  'blob-dir': { type: 'string', short: 'D' },
  blob: { type: 'string', short: 'b' },
  'blob-inline-meta': { type: 'boolean' },
  'inline-bootstrap': { type: 'boolean' },
  'blob-id': { type: 'string' },
  'blob-offset': { type: 'string' },
  'chunk-size': { type: 'string' },
  'batch-size': { type: 'string' },
  compressor: { type: 'string' },
  digester: { type: 'string' },
  config: { type: 'string', short: 'C' },
  'fs-version': { type: 'string', short: 'v' },
  features: { type: 'string' },
  'chunk-dict': { type: 'string' },
  'parent-bootstrap': { type: 'string' },
  'aligned-chunk': { type: 'boolean' },
  repeatable: { type: 'boolean' },
  'disable-check': { type: 'boolean' },
  'whiteout-spec': { type: 'string' },
  'prefetch-policy': { type: 'string' },
  'output-json': { type: 'string', short: 'J' },
  encrypt: { type: 'boolean', short: 'E' },
  'blob-cache-dir': { type: 'string' },
  'log-level': { type: 'string', short: 'l' },
  'log-file': { type: 'string', short: 'L' },
  debug: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const TYPES: Record<string, SourceType> = { directory: 'dir-rafs', 'dir-rafs': 'dir-rafs', 'tar-rafs': 'tar-rafs' };
const UPSTREAM_ONLY_TYPES = ['estargz-rafs', 'estargz-ref', 'estargztoc-ref', 'tar-tarfs', 'targz-rafs', 'targz-ref', 'stargz_index'];

function oneOf<T extends string>(flag: string, v: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`invalid value '${v}' for ${flag}: expected ${allowed.join(', ')}`);
  return v as T;
}

/** Maps parsed flags to CreateOptions (everything but the prefetch list). Throws UsageError. */
export function createOptionsFromArgs(args: string[]): { opts: CreateOptions; outputJson: string | undefined; logLevel: string | undefined } {
  const { values: v, positionals } = parseFlags(args, OPTIONS);
  if (positionals.length === 0) throw new UsageError('missing SOURCE');
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
  const source = positionals[0]!;
  const typeName = v.type ?? v['source-type'] ?? 'dir-rafs';
  const sourceType = TYPES[typeName];
  if (!sourceType) {
    if (UPSTREAM_ONLY_TYPES.includes(typeName)) throw new UsageError(`--type ${typeName} is not supported by this builder (supported: dir-rafs, directory, tar-rafs)`);
    throw new UsageError(`invalid value '${typeName}' for --type: expected dir-rafs, directory or tar-rafs`);
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
  if (v['batch-size'] !== undefined && parseSize('--batch-size', v['batch-size']) !== 0) throw new UsageError('--batch-size is not supported by this builder (only 0)');
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
  return { opts, outputJson: v['output-json'], logLevel };
}

/** The `--output-json` document (upstream OutputSerializer, upstream-features §1.15). */
export function createOutputJson(r: CreateResult): Record<string, unknown> {
  return {
    version: NYDUS_TS_VERSION,
    bootstrap: r.bootstrap,
    blobs: r.blobs,
    external_bootstrap: '',
    external_blobs: [],
    trace: { consumed_time: r.consumedTime, registered_events: r.registeredEvents },
    fs_version: String(r.fsVersion),
    compressor: r.compressor,
  };
}

async function readStdinText(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const b of process.stdin) parts.push(b as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

function human(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}

export async function run(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`Usage: ${usage}\n`);
    return 0;
  }
  const { opts, outputJson, logLevel } = createOptionsFromArgs(args);
  if (logLevel) setLogLevel(logLevel as Parameters<typeof setLogLevel>[0]);
  const logFile = args.find((a, i) => (args[i - 1] === '-L' || args[i - 1] === '--log-file'));
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
      process.stderr.write(`\r\x1b[K${s.files} files, ${human(s.bytes)}, ${s.chunks} chunks (${s.dedupChunks} dedup), ${human(s.bytes / Math.max(secs, 0.001))}/s`);
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
