// nydusify check --target REF [--source REF] [--work-dir D]: see src/convert/check.ts.
import { checkImage } from '../../convert/check.js';
import { NydusError, UsageError } from '../../util/errors.js';
import { parseCommand, type CommandSpec, type FlagSpec } from '../command.js';
import { registryFlags } from './common.js';

export const spec = {
  name: 'nydusify check',
  summary: 'Check a nydus image: manifest and bootstrap rules, and with --source the filesystem against the OCI image',
  flags: {
    target: { arg: 'REF', desc: 'the nydus image to check (required)' },
    source: { arg: 'REF', desc: 'its OCI source: compare every file (content and metadata)' },
    ...registryFlags,
    platform: { arg: 'OS/ARCH', desc: 'platform to check in a multi-platform image', default: 'linux/<host arch>' },
    'multi-platform': { desc: 'the target is an index with both OCI and nydus manifests (env MULTI_PLATFORM)' },
    'work-dir': { arg: 'DIR', desc: 'where bootstraps and blobs are fetched to', default: './output' },
    'nydus-image': { arg: 'PATH', desc: 'accepted for upstream compatibility; no effect (the built-in checker is used)' },
    nydusd: { arg: 'PATH', desc: 'accepted for upstream compatibility; no effect (files are read without mounting)' },
    debug: { short: 'D', desc: 'debug logging and stack traces of internal errors' },
  },
  after: 'Not supported (upstream): --source-backend-*, --target-backend-* (blobs are read from the registry).',
} as const satisfies CommandSpec<Record<string, FlagSpec>>;

export async function run(args: string[]): Promise<number> {
  const p = parseCommand(spec, args);
  if (!p) return 0;
  const v = p.values;
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
