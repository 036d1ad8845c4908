// nydusify convert --source REF --target REF [...]: see src/convert/convert.ts.
import { rm, stat, writeFile } from 'node:fs/promises';
import { convertImage, hostPlatform } from '../../convert/convert.js';
import { parseImageRef } from '../../convert/reference.js';
import { UsageError } from '../../util/errors.js';
import { parseFlags, parseSize } from '../main.js';
import { backendChoice, buildFlags, buildParams } from './common.js';

export const usage =
  'nydusify convert --source REF (--target REF | --target-suffix S) [--fs-version 5|6] [--compressor zstd|lz4_block|none] [--chunk-size 0x100000] [--prefetch-patterns] [--oci] [--platform os/arch,... | --all-platforms] [--backend-type localfs --backend-config JSON | --backend-config-file F] [--chunk-dict bootstrap:local:P] [--merge-platform] [--with-referrer] [--oci-ref] [--output-json F] [--work-dir D] [--source-insecure] [--target-insecure] [--plain-http] [--push-chunk-size N]';

async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of process.stdin) parts.push(c as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

export async function run(args: string[]): Promise<number> {
  const { values: v, positionals } = parseFlags(args, {
    ...buildFlags,
    source: { type: 'string' },
    target: { type: 'string' },
    'target-suffix': { type: 'string' },
    'source-insecure': { type: 'boolean' },
    'target-insecure': { type: 'boolean' },
    'plain-http': { type: 'boolean' },
    'prefetch-patterns': { type: 'boolean' },
    'prefetch-dir': { type: 'string' },
    oci: { type: 'boolean' },
    'docker-v2-format': { type: 'boolean' },
    platform: { type: 'string' },
    'all-platforms': { type: 'boolean' },
    'merge-platform': { type: 'boolean' },
    'multi-platform': { type: 'boolean' },
    'with-referrer': { type: 'boolean' },
    'oci-ref': { type: 'boolean' },
    'backend-type': { type: 'string' },
    'backend-config': { type: 'string' },
    'backend-config-file': { type: 'string' },
    'output-json': { type: 'string' },
    'work-dir': { type: 'string' },
    'push-chunk-size': { type: 'string' },
    'log-level': { type: 'string', short: 'l' },
  });
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const source = v.source ?? process.env.SOURCE;
  if (!source) throw new UsageError('--source is required');
  let target = v.target ?? process.env.TARGET;
  const suffix = v['target-suffix'] ?? process.env.TARGET_SUFFIX;
  if (!target && suffix) {
    const r = parseImageRef(source);
    if (r.digest) throw new UsageError('--target-suffix needs a tag source reference, not a digest');
    target = `${source.replace(/@.*$/, '')}${source.includes(':') && r.tag && source.endsWith(`:${r.tag}`) ? '' : `:${r.tag}`}${suffix}`;
  }
  if (!target) throw new UsageError('--target or --target-suffix is required');
  if (v.platform && v['all-platforms']) throw new UsageError('--platform and --all-platforms are mutually exclusive');
  if (v['prefetch-patterns'] && v['prefetch-dir']) throw new UsageError('--prefetch-patterns and --prefetch-dir are mutually exclusive');
  const platforms = v['all-platforms'] ? 'all' : (v.platform ?? hostPlatform()).split(',').map((s) => s.trim()).filter(Boolean);
  for (const p of platforms === 'all' ? [] : platforms) if (!/^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/.test(p)) throw new UsageError(`invalid platform '${p}': expected os/arch[/variant]`);
  let prefetchPatterns: string[] = [];
  if (v['prefetch-patterns']) prefetchPatterns = (await readStdin()).split('\n').map((s) => s.trim()).filter((s) => s.startsWith('/'));
  else if (v['prefetch-dir']) prefetchPatterns = [v['prefetch-dir']];
  const workDir = v['work-dir'] ?? './tmp';
  // Upstream removes the work dir afterwards only if it did not exist before.
  const existed = await stat(workDir).then(() => true, () => false);
  const backend = backendChoice(v['backend-type'], v['backend-config'], v['backend-config-file'], false);
  const tty = process.stderr.isTTY === true;
  try {
    const metrics = await convertImage({
      source,
      target,
      sourceInsecure: v['source-insecure'] ?? false,
      targetInsecure: v['target-insecure'] ?? false,
      plainHttp: v['plain-http'] ?? false,
      build: buildParams(v),
      prefetchPatterns,
      oci: v.oci ?? false,
      platforms,
      platformsExplicit: v.platform !== undefined,
      // Upstream: --multi-platform is an alias; MERGE_PLATFORM / WITH_REFERRER env vars as well.
      mergePlatform: v['merge-platform'] ?? v['multi-platform'] ?? process.env.MERGE_PLATFORM === 'true',
      withReferrer: v['with-referrer'] ?? process.env.WITH_REFERRER === 'true',
      ociRef: v['oci-ref'] ?? false,
      backend,
      workDir,
      pushChunkSize: v['push-chunk-size'] ? parseSize('--push-chunk-size', v['push-chunk-size']) : 0,
      ...(tty || v.debug ? { progress: (l: string) => process.stderr.write(`${l}\n`) } : {}),
    });
    if (v['output-json']) await writeFile(v['output-json'], JSON.stringify(metrics, null, 2) + '\n');
    process.stderr.write(`Converted to ${target} (${metrics.TargetDigest})\n`);
  } finally {
    if (!existed) await rm(workDir, { recursive: true, force: true });
  }
  return 0;
}
