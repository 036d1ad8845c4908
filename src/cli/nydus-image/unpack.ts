// nydus-image unpack BOOTSTRAP (-b BLOB | -D BLOB_DIR) --output TAR
import { COMMON_FLAGS, parseCommand, type CommandSpec, type FlagSpec } from '../command.js';
import { unpackToTar } from '../../image/unpack.js';
import { loadBootstrap, BOOTSTRAP_FLAG } from './load.js';
import { UsageError } from '../../util/errors.js';

export const SPEC = {
  name: 'nydus-image unpack',
  summary: 'Unpack an image to an OCI layer tar',
  args: ['[BOOTSTRAP]'],
  flags: {
    bootstrap: BOOTSTRAP_FLAG,
    blob: { short: 'b', arg: 'FILE', desc: 'the data blob' },
    'blob-dir': { short: 'D', arg: 'DIR', desc: 'directory of blobs named by id' },
    output: { short: 'o', arg: 'TAR', desc: 'the tar file to write' },
    'backend-type': { arg: 'TYPE', desc: 'read blobs from a backend (not supported yet)' },
    'backend-config': { arg: 'JSON', desc: 'backend config (with --backend-type)' },
    'backend-config-file': { arg: 'FILE', desc: 'backend config file (with --backend-type)' },
    'log-level': COMMON_FLAGS['log-level'],
    debug: COMMON_FLAGS.debug,
  },
} as const satisfies CommandSpec<Record<string, FlagSpec>>;

export async function run(args: string[]): Promise<number> {
  const p = parseCommand(SPEC, args);
  if (!p) return 0;
  const { values, positionals } = p;
  if (!values.output) throw new UsageError('unpack needs --output TAR');
  if (values['backend-type']) throw new UsageError('unpack: --backend-type is not supported yet; use -b/--blob or -D/--blob-dir');
  if (!!values.blob === !!values['blob-dir']) throw new UsageError('unpack needs exactly one of -b/--blob or -D/--blob-dir');
  const sb = loadBootstrap(values.bootstrap ?? positionals[0]);
  const src = values.blob ? { blobPath: values.blob } : { blobDir: values['blob-dir']! };
  const stats = unpackToTar(sb, src, values.output);
  process.stderr.write(`unpacked ${stats.entries} entries (${stats.files} files, ${stats.bytes} bytes) to ${values.output}\n`);
  return 0;
}
