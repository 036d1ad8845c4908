// nydus-image merge SOURCE... (-B BOOTSTRAP | -D DIR) [--parent-bootstrap P] [-J JSON]
// Merges per-layer bootstraps (lower first) into one overlaid bootstrap of the same fs version.
import { createHash } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseFlags } from '../main.js';
import { mergeLayers } from '../../builder/merge.js';
import type { WhiteoutSpec } from '../../builder/source/whiteout.js';
import { treeFromRafs } from '../../rafs/tree-from-rafs.js';
import { encodeBootstrapV5 } from '../../builder/writer/v5.js';
import { encodeBootstrapV6 } from '../../builder/writer/v6.js';
import { loadBootstrap, writeJson, NYDUS_TS_VERSION } from './load.js';
import { MergeError } from '../../builder/merge.js';
import { UsageError } from '../../util/errors.js';

export const usage = 'nydus-image merge SOURCE... (-B BOOTSTRAP | -D DIR) [--parent-bootstrap P] [--whiteout-spec oci|overlayfs|none] [-J JSON]';

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    bootstrap: { type: 'string', short: 'B' },
    'blob-dir': { type: 'string', short: 'D' },
    'parent-bootstrap': { type: 'string' },
    'whiteout-spec': { type: 'string' },
    'output-json': { type: 'string', short: 'J' },
    'chunk-dict': { type: 'string' },
    'prefetch-policy': { type: 'string' },
    'log-level': { type: 'string', short: 'l' },
    debug: { type: 'boolean' },
  });
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
