// nydus-image merge SOURCE... (-B BOOTSTRAP | -D DIR) [--parent-bootstrap P] [-J JSON]
// Merges per-layer bootstraps (lower first) into one overlaid bootstrap of the same fs version.
import { createHash } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { COMMON_FLAGS, parseCommand, type CommandSpec, type FlagSpec } from '../command.js';
import { mergeLayers } from '../../builder/merge.js';
import type { WhiteoutSpec } from '../../builder/source/whiteout.js';
import { treeFromRafs } from '../../rafs/tree-from-rafs.js';
import { encodeBootstrapV5 } from '../../builder/writer/v5.js';
import { encodeBootstrapV6 } from '../../builder/writer/v6.js';
import { loadBootstrap, writeJson, NYDUS_TS_VERSION } from './load.js';
import { MergeError } from '../../builder/merge.js';
import { UsageError } from '../../util/errors.js';

export const SPEC = {
  name: 'nydus-image merge',
  summary: 'Merge per-layer bootstraps (lowest first) into one overlaid bootstrap',
  args: ['<SOURCE...>'],
  flags: {
    bootstrap: { short: 'B', arg: 'FILE', desc: 'write the merged bootstrap to FILE' },
    'blob-dir': { short: 'D', arg: 'DIR', desc: 'write the merged bootstrap to DIR, named by its sha256 (without -B)' },
    'parent-bootstrap': { arg: 'FILE', desc: 'bootstrap of the layers below the SOURCEs' },
    'whiteout-spec': { arg: 'SPEC', desc: 'whiteout convention of the layers', default: 'oci', choices: ['oci', 'overlayfs', 'none'] },
    'output-json': { short: 'J', arg: 'FILE', desc: 'write a JSON summary to FILE' },
    'chunk-dict': { arg: 'DICT', desc: 'chunk dictionary (accepted, no effect on a merge)' },
    'prefetch-policy': { arg: 'POLICY', desc: 'prefetch policy (accepted, no effect on a merge)' },
    'log-level': COMMON_FLAGS['log-level'],
    debug: COMMON_FLAGS.debug,
  },
} as const satisfies CommandSpec<Record<string, FlagSpec>>;

export async function run(args: string[]): Promise<number> {
  const p = parseCommand(SPEC, args);
  if (!p) return 0;
  const { values, positionals } = p;
  if (positionals.length === 0) throw new UsageError('merge needs at least one SOURCE bootstrap');
  if (!values.bootstrap && !values['blob-dir']) throw new UsageError('merge needs -B/--bootstrap or -D/--blob-dir');
  const spec = (values['whiteout-spec'] ?? 'oci') as WhiteoutSpec;
  if (!['oci', 'overlayfs', 'none'].includes(spec)) throw new UsageError(`invalid value '${spec}' for --whiteout-spec: expected oci, overlayfs or none`);
  const paths = [...(values['parent-bootstrap'] ? [values['parent-bootstrap']] : []), ...positionals];
  const supers = paths.map((p) => loadBootstrap(p));
  const version = supers[0]!.meta.version;
  const bad = supers.findIndex((s) => s.meta.version !== version);
  if (bad >= 0) {
    process.stderr.write(`nydus-image: ${paths[bad]} is RAFS v${supers[bad]!.meta.version}, ${paths[0]} is v${version}: inconsistent filesystems\n`);
    return 2;
  }
  let merged;
  try {
    merged = mergeLayers(supers.map(treeFromRafs), spec);
  } catch (e) {
    if (e instanceof MergeError) {
      process.stderr.write(`nydus-image: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const bytes = version === 5 ? encodeBootstrapV5(merged) : encodeBootstrapV6(merged);
  let out = values.bootstrap;
  if (!out) out = join(values['blob-dir']!, createHash('sha256').update(bytes).digest('hex'));
  writeFileSync(`${out}.tmp`, bytes);
  renameSync(`${out}.tmp`, out);
  if (values['output-json']) {
    await writeJson(values['output-json'], {
      version: NYDUS_TS_VERSION,
      bootstrap: out,
      blobs: merged.blobs.map((b) => b.blobId),
      external_bootstrap: '',
      external_blobs: [],
      trace: { consumed_time: {}, registered_events: {} },
      fs_version: String(version),
      compressor: merged.compressor,
    });
  }
  return 0;
}
