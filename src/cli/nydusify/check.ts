// nydusify check --target REF [--source REF] [--work-dir D]: see src/convert/check.ts.
import { checkImage } from '../../convert/check.js';
import { NydusError, UsageError } from '../../util/errors.js';
import { parseFlags } from '../main.js';

export const usage = 'nydusify check --target REF [--source REF] [--source-insecure] [--target-insecure] [--plain-http] [--platform os/arch] [--multi-platform] [--work-dir D]';

export async function run(args: string[]): Promise<number> {
  const { values: v, positionals } = parseFlags(args, {
    source: { type: 'string' },
    target: { type: 'string' },
    'source-insecure': { type: 'boolean' },
    'target-insecure': { type: 'boolean' },
    'plain-http': { type: 'boolean' },
    platform: { type: 'string' },
    'multi-platform': { type: 'boolean' },
    'work-dir': { type: 'string' },
    'nydus-image': { type: 'string' },
    nydusd: { type: 'string' },
    debug: { type: 'boolean', short: 'D' },
  });
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  if (!v.target) throw new UsageError('--target is required');
  const r = await checkImage({
    source: v.source,
    target: v.target,
    sourceInsecure: v['source-insecure'] ?? false,
    targetInsecure: v['target-insecure'] ?? false,
    plainHttp: v['plain-http'] ?? false,
    platform: v.platform,
    multiPlatform: v['multi-platform'] ?? process.env.MULTI_PLATFORM === 'true',
    workDir: v['work-dir'] ?? './output',
  });
  const problems = [...r.manifest.map((s) => `manifest: ${s}`), ...r.bootstrap.map((s) => `bootstrap: ${s}`), ...r.filesystem.map((s) => `filesystem: ${s}`)];
  for (const p of problems) process.stderr.write(`${p}\n`);
  if (problems.length) throw new NydusError('ERR_FORMAT_INVALID', `check failed: ${problems.length} problem(s), first: ${problems[0]}`);
  process.stderr.write(`Check passed${v.source ? ` (${r.files} entries equal to the source)` : ''}\n`);
  return 0;
}
