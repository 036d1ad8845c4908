// nydusify build --name N --source-dir D [--output-dir O] [--backend-push ...]: see src/convert/build.ts.
import { buildImage } from '../../convert/build.js';
import { UsageError } from '../../util/errors.js';
import { parseCommand, type CommandSpec, type FlagSpec } from '../command.js';
import { backendChoice, backendFlags, buildFlags, buildParams } from './common.js';

export const spec = {
  name: 'nydusify build',
  summary: 'Build a nydus image (bootstrap + blob) from a directory, optionally pushing it to oss/s3 (alias: pack)',
  flags: {
    name: { arg: 'NAME', desc: 'image name: writes NAME.meta (bootstrap) and the blob (required; aliases --meta, --bootstrap)' },
    meta: { arg: 'NAME', desc: 'alias of --name', hidden: true },
    bootstrap: { arg: 'NAME', desc: 'alias of --name', hidden: true },
    'source-dir': { arg: 'DIR', desc: 'the directory to build (required; alias --target-dir)' },
    'target-dir': { arg: 'DIR', desc: 'alias of --source-dir', hidden: true },
    'output-dir': { short: 'o', arg: 'DIR', desc: 'where the bootstrap, blob and output.json go', default: './.nydus-build-output' },
    ...buildFlags,
    'backend-push': { desc: 'push the bootstrap and blob to the backend' },
    ...backendFlags,
    'backend-type': { ...backendFlags['backend-type'], desc: 'with --backend-push: oss, s3 or localfs', default: 'oss' },
  },
  after: 'Not supported (upstream): --parent-bootstrap, --compact, --compact-config-file.',
} as const satisfies CommandSpec<Record<string, FlagSpec>>;

export async function run(args: string[]): Promise<number> {
  const p = parseCommand(spec, args);
  if (!p) return 0;
  const v = p.values;
  const name = v.name ?? v.meta ?? v.bootstrap;
  const sourceDir = v['source-dir'] ?? v['target-dir'];
  if (!name) throw new UsageError('--name is required');
  if (!sourceDir) throw new UsageError('--source-dir is required');
  const backend = v['backend-push'] ? backendChoice(v['backend-type'] ?? 'oss', v['backend-config'], v['backend-config-file'], true) : undefined;
  process.stderr.write(`start to build image from source directory "${sourceDir}"\n`);
  const r = await buildImage({ name, sourceDir, outputDir: v['output-dir'] ?? '.nydus-build-output', params: buildParams(v), backend });
  process.stderr.write(`successfully built Nydus image (bootstrap:'${r.pushed.at(-1) ?? r.bootstrap}', blob:'${r.pushed.length > 1 ? r.pushed[0] : (r.blobPath ?? '')}')\n`);
  return 0;
}
