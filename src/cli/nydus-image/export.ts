// nydus-image export --block [-B] BOOTSTRAP (-D BLOB_DIR | -b BLOB) [-O OUTPUT] [--blob-data-dir DIR]
import { basename, join } from 'node:path';
import { COMMON_FLAGS, parseCommand, type CommandSpec, type FlagSpec } from '../command.js';
import { exportBlock, writeBlobData } from '../../image/export.js';
import { loadBootstrap, BOOTSTRAP_FLAG } from './load.js';
import { UsageError } from '../../util/errors.js';

export const SPEC = {
  name: 'nydus-image export',
  summary: 'Export a RAFS v6 image as a raw EROFS block image the kernel mounts',
  args: ['[BOOTSTRAP]'],
  flags: {
    block: { desc: 'export a block image (required)' },
    bootstrap: BOOTSTRAP_FLAG,
    'localfs-dir': { short: 'D', arg: 'DIR', desc: 'directory of blobs named by id' },
    'blob-dir': { arg: 'DIR', desc: 'alias of --localfs-dir', hidden: true },
    blob: { short: 'b', arg: 'FILE', desc: 'the data blob' },
    output: { short: 'O', arg: 'FILE', desc: 'the disk image to write', default: 'DIR/BOOTSTRAP.disk' },
    'blob-data-dir': { arg: 'DIR', desc: 'instead, write one .blob.data per blob for mount -o device=' },
    'log-level': COMMON_FLAGS['log-level'],
    debug: COMMON_FLAGS.debug,
  },
} as const satisfies CommandSpec<Record<string, FlagSpec>>;

export async function run(args: string[]): Promise<number> {
  const p = parseCommand(SPEC, args);
  if (!p) return 0;
  const { values, positionals } = p;
  if (!values.block) throw new UsageError('export needs --block');
  const path = values.bootstrap ?? positionals[0];
  const sb = loadBootstrap(path);
  const dir = values['localfs-dir'] ?? values['blob-dir'];
  if (!dir && !values.blob) throw new UsageError('export needs -D/--localfs-dir or -b/--blob');
  const src = values.blob ? { blobPath: values.blob } : { blobDir: dir! };
  if (values['blob-data-dir']) {
    // The `device=` form: one .blob.data per blob, for `mount -t erofs -o device=...`.
    for (const p of writeBlobData(sb, src, values['blob-data-dir'])) console.log(p);
    return 0;
  }
  const output = values.output ?? join(dir ?? '.', `${basename(path!)}.disk`);
  const size = exportBlock(sb, src, output);
  console.log(`exported ${output} (${size} bytes): mount -t erofs -o loop,ro ${output} MOUNTPOINT`);
  return 0;
}
