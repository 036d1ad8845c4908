// nydus-image unpack BOOTSTRAP (-b BLOB | -D BLOB_DIR) --output TAR
import { parseFlags } from '../main.js';
import { unpackToTar } from '../../image/unpack.js';
import { loadBootstrap } from './load.js';
import { UsageError } from '../../util/errors.js';

export const usage = 'nydus-image unpack [-B] BOOTSTRAP (-b BLOB | -D BLOB_DIR) --output TAR';

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    bootstrap: { type: 'string', short: 'B' },
    blob: { type: 'string', short: 'b' },
    'blob-dir': { type: 'string', short: 'D' },
    output: { type: 'string', short: 'o' },
    'backend-type': { type: 'string' },
    'backend-config': { type: 'string' },
    'backend-config-file': { type: 'string' },
    'log-level': { type: 'string', short: 'l' },
    debug: { type: 'boolean' },
  });
  if (!values.output) throw new UsageError('unpack needs --output TAR');
  if (values['backend-type']) throw new UsageError('unpack: --backend-type is not supported yet; use -b/--blob or -D/--blob-dir');
  if (!!values.blob === !!values['blob-dir']) throw new UsageError('unpack needs exactly one of -b/--blob or -D/--blob-dir');
  const sb = loadBootstrap(values.bootstrap ?? positionals[0]);
  const src = values.blob ? { blobPath: values.blob } : { blobDir: values['blob-dir']! };
  const stats = unpackToTar(sb, src, values.output);
  process.stderr.write(`unpacked ${stats.entries} entries (${stats.files} files, ${stats.bytes} bytes) to ${values.output}\n`);
  return 0;
}
