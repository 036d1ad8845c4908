// Flags shared by nydusify subcommands: builder parameters and backend configs.
import { readFileSync } from 'node:fs';
import { validateBatchSize } from '../../builder/index.js';
import { nydusImageArgv, type BuildParams } from '../../convert/builder-cli.js';
import { UsageError } from '../../util/errors.js';
import { parseSize } from '../main.js';

export const buildFlags = {
  'fs-version': { type: 'string' },
  compressor: { type: 'string' },
  'chunk-size': { type: 'string' },
  'fs-chunk-size': { type: 'string' },
  'batch-size': { type: 'string' },
  'chunk-dict': { type: 'string' },
  'nydus-image': { type: 'string' },
  debug: { type: 'boolean', short: 'D' },
} as const;

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
