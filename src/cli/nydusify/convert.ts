// nydusify convert --source REF --target REF [...]: see src/convert/convert.ts.
import { rm, stat, writeFile } from 'node:fs/promises';
import { convertImage, hostPlatform } from '../../convert/convert.js';
import { parseImageRef } from '../../convert/reference.js';
import { UsageError } from '../../util/errors.js';
import { humanBytes } from '../../util/human.js';
import { parseSize } from '../main.js';
import { LOG_LEVELS, parseCommand, type CommandSpec, type FlagSpec } from '../command.js';
import { backendChoice, backendFlags, buildFlags, buildParams, registryFlags } from './common.js';

export const spec = {
  name: 'nydusify convert',
  summary: 'Convert an OCI image in a registry to a nydus image (per-layer nydus blobs + a bootstrap layer)',
  flags: {
    source: { arg: 'REF', desc: 'source image reference (required; env SOURCE)' },
    target: { arg: 'REF', desc: 'target image reference (env TARGET); or --target-suffix' },
    'target-suffix': { arg: 'SUFFIX', desc: 'target = the source reference with SUFFIX appended to its tag (env TARGET_SUFFIX)' },
    ...registryFlags,
    ...buildFlags,
    'prefetch-patterns': { desc: 'read prefetch paths (absolute, one per line) from stdin' },
    'prefetch-dir': { arg: 'DIR', desc: 'prefetch this directory (excludes --prefetch-patterns)' },
    oci: { desc: 'use OCI media types for the target (docker media types otherwise)' },
    'docker-v2-format': { desc: 'deprecated upstream; no effect (docker media types are the default)' },
    platform: { arg: 'OS/ARCH[,...]', desc: 'platforms to convert from a multi-platform source', default: 'linux/<host arch>' },
    'all-platforms': { desc: 'convert every platform of the source' },
    'merge-platform': { desc: 'push an index holding both the OCI and the nydus manifests (alias --multi-platform; env MERGE_PLATFORM)' },
    'multi-platform': { desc: 'alias of --merge-platform', hidden: true },
    'with-referrer': { desc: "set the nydus manifest's subject to the source manifest (env WITH_REFERRER)" },
    'oci-ref': { desc: 'zero-conversion: keep the gzip layers, push only bootstrap + zran indexes (RAFS v6)' },
    ...backendFlags,
    'output-json': { arg: 'FILE', desc: 'write conversion metrics (sizes, pull/convert/push times) as JSON' },
    'work-dir': { arg: 'DIR', desc: 'temporary files; removed afterwards unless it existed', default: './tmp' },
    'push-chunk-size': { arg: 'SIZE', desc: 'upload blobs in chunks of SIZE (0: one request)', default: '0' },
    'log-level': { short: 'l', arg: 'LEVEL', desc: 'log verbosity', default: 'info', choices: LOG_LEVELS },
  },
  after: 'Not supported (upstream): --source-archive, --target-archive, --build-cache*, --reverse, --backend-force-push, --fs-align-chunk, --push-retry-*, bootstrap:registry: chunk dicts.',
} as const satisfies CommandSpec<Record<string, FlagSpec>>;

async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of process.stdin) parts.push(c as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

export async function run(args: string[]): Promise<number> {
  const p = parseCommand(spec, args);
  if (!p) return 0;
  const v = p.values;
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
  // On a terminal, one status line of layer bytes pulled and pushed, redrawn at most 5 times a second
  // and wiped before any other line (so the success line appears once, alone).
  const moved = { pull: 0, push: 0 };
  let drawn = 0;
  let shown = false;
  const wipe = (): void => {
    if (shown) process.stderr.write('\r\x1b[K');
    shown = false;
  };
  const onBytes = (kind: 'pull' | 'push', n: number): void => {
    moved[kind] += n;
    const now = Date.now();
    if (now - drawn < 200) return;
    drawn = now;
    process.stderr.write(`\r\x1b[Kpulled ${humanBytes(moved.pull)}, pushed ${humanBytes(moved.push)}`);
    shown = true;
  };
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
      ...(tty || v.debug ? { progress: (l: string) => (wipe(), process.stderr.write(`${l}\n`)) } : {}),
      ...(tty ? { onBytes } : {}),
    });
    wipe();
    if (v['output-json']) await writeFile(v['output-json'], JSON.stringify(metrics, null, 2) + '\n');
    process.stderr.write(`Converted to ${target} (${metrics.TargetDigest})\n`);
  } finally {
    wipe();
    if (!existed) await rm(workDir, { recursive: true, force: true });
  }
  return 0;
}
