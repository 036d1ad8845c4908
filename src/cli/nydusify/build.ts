// nydusify build --name N --source-dir D [--output-dir O] [--backend-push ...]: see src/convert/build.ts.
import { buildImage } from '../../convert/build.js';
import { UsageError } from '../../util/errors.js';
import { parseFlags } from '../main.js';
import { backendChoice, buildFlags, buildParams } from './common.js';

export const usage =
  'nydusify build --name N --source-dir D [--output-dir O] [--fs-version 5|6] [--compressor zstd] [--chunk-size 0x100000] [--batch-size 0x100000] [--backend-push --backend-type localfs|s3 (--backend-config JSON | --backend-config-file F)]';

export async function run(args: string[]): Promise<number> {
  const { values: v, positionals } = parseFlags(args, {
    ...buildFlags,
    name: { type: 'string' },
    meta: { type: 'string' },
    bootstrap: { type: 'string' },
    'source-dir': { type: 'string' },
    'target-dir': { type: 'string' },
    'output-dir': { type: 'string', short: 'o' },
    'backend-push': { type: 'boolean' },
    'backend-type': { type: 'string' },
    'backend-config': { type: 'string' },
    'backend-config-file': { type: 'string' },
  });
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
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
