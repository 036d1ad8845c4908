// Flags shared by nydusify subcommands: builder parameters and backend configs.
import { readFileSync } from 'node:fs';
import { validateBatchSize } from '../../builder/index.js';
import { nydusImageArgv, type BuildParams } from '../../convert/builder-cli.js';
import { UsageError } from '../../util/errors.js';
import { parseSize } from '../main.js';
import type { FlagSpec } from '../command.js';

/** Builder flags of convert and build (upstream names and defaults). */
export const buildFlags = {
  'fs-version': { arg: 'VERSION', desc: 'RAFS version of the image', default: '6', choices: ['5', '6'] },
  compressor: { arg: 'ALGO', desc: 'chunk compression', default: 'zstd', choices: ['none', 'lz4_block', 'zstd'] },
  'chunk-size': { arg: 'SIZE', desc: 'chunk size, a power of two in 0x1000..0x1000000 (alias: --fs-chunk-size)', default: '0x100000' },
  'fs-chunk-size': { arg: 'SIZE', desc: 'alias of --chunk-size', hidden: true },
  'batch-size': { arg: 'SIZE', desc: 'merge files smaller than half of SIZE into compressed batches (v6; a power of two from 0x1000 to the chunk size, 0 = off)', default: '0' },
  'chunk-dict': { arg: 'SPEC', desc: 'deduplicate against a chunk dictionary: bootstrap:local:PATH' },
  'nydus-image': { arg: 'PATH', desc: 'external nydus-image builder to run (default: the built-in one)' },
  debug: { short: 'D', desc: 'debug logging and stack traces of internal errors' },
} as const satisfies Record<string, FlagSpec>;

/** Blob backend flags of convert and build. */
export const backendFlags = {
  'backend-type': { arg: 'TYPE', desc: 'where blobs go: registry (with the image), oss, s3 or localfs', default: 'registry' },
  'backend-config': { arg: 'JSON', desc: 'backend config as JSON (oss/s3: endpoint, bucket_name, keys...; localfs: {"dir": ...})' },
  'backend-config-file': { arg: 'FILE', desc: 'backend config from a JSON file' },
} as const satisfies Record<string, FlagSpec>;

/** Registry access flags. */
export const registryFlags = {
  'source-insecure': { desc: 'skip TLS verification for the source registry' },
  'target-insecure': { desc: 'skip TLS verification for the target registry' },
  'plain-http': { desc: 'talk plain HTTP to the registries (not HTTPS)' },
} as const satisfies Record<string, FlagSpec>;

export function buildParams(v: { [k: string]: string | boolean | string[] | undefined }): BuildParams {
  const fs = String(v['fs-version'] ?? '6');
  if (fs !== '5' && fs !== '6') throw new UsageError(`invalid value '${fs}' for --fs-version: expected 5 or 6`);
  const compressor = String(v.compressor ?? 'zstd');
  if (!['none', 'lz4_block', 'zstd'].includes(compressor)) throw new UsageError(`invalid value '${compressor}' for --compressor: expected none, lz4_block or zstd`);
  const cs = parseSize('--chunk-size', String(v['chunk-size'] ?? v['fs-chunk-size'] ?? '0x100000'));
  if (cs < 0x1000 || cs > 0x1000000 || (cs & (cs - 1)) !== 0) throw new UsageError(`invalid value for --chunk-size: 0x${cs.toString(16)} must be a power of two in 0x1000..0x1000000`);
  // Upstream nydusify passes --batch-size through to nydus-image (default "0", off).
  const batchSize = parseSize('--batch-size', String(v['batch-size'] ?? '0'));
  validateBatchSize(batchSize, fs === '5' ? 5 : 6, cs);
  let chunkDictPath: string | undefined;
  const cd = v['chunk-dict'];
  if (typeof cd === 'string') {
    const m = /^bootstrap:local:(.+)$/.exec(cd);
    if (!m) throw new UsageError(`invalid value '${cd}' for --chunk-dict: expected bootstrap:local:PATH (bootstrap:registry: is not supported)`);
    chunkDictPath = m[1];
  }
  return { fsVersion: fs === '5' ? 5 : 6, compressor, chunkSize: cs, ...(batchSize ? { batchSize } : {}), chunkDictPath, nydusImage: nydusImageArgv(typeof v['nydus-image'] === 'string' ? v['nydus-image'] : undefined) };
}

export interface BackendChoice {
  type: 'localfs' | 's3' | 'oss';
  config: Record<string, unknown>;
}

export function backendChoice(type: string | undefined, json: string | undefined, file: string | undefined, required: boolean): BackendChoice | undefined {
  if (!type || type === 'registry') {
    if (json || file) throw new UsageError('--backend-config needs --backend-type oss, s3 or localfs');
    if (required) throw new UsageError('--backend-type is required');
    return undefined;
  }
  if (type !== 'localfs' && type !== 's3' && type !== 'oss') throw new UsageError(`invalid value '${type}' for --backend-type: expected oss, s3 or localfs`);
  if (json && file) throw new UsageError('--backend-config and --backend-config-file are mutually exclusive');
  let text = json;
  if (file) {
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      throw new UsageError(`cannot read --backend-config-file ${file}`);
    }
  }
  if (!text) throw new UsageError(`--backend-type ${type} needs --backend-config or --backend-config-file`);
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch {
    throw new UsageError('backend config is not valid JSON');
  }
  if (!config || typeof config !== 'object' || Array.isArray(config)) throw new UsageError('backend config must be a JSON object');
  return { type, config: config as Record<string, unknown> };
}
