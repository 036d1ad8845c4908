// nydus-image export --block [-B] BOOTSTRAP (-D BLOB_DIR | -b BLOB) [-O OUTPUT] [--blob-data-dir DIR]
import { basename, join } from 'node:path';
import { parseFlags } from '../main.js';
import { exportBlock, writeBlobData } from '../../image/export.js';
import { loadBootstrap } from './load.js';
import { UsageError } from '../../util/errors.js';

export const usage = 'nydus-image export --block [-B] BOOTSTRAP (-D BLOB_DIR | -b BLOB) [-O OUTPUT] [--blob-data-dir DIR]';

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    block: { type: 'boolean' },
    bootstrap: { type: 'string', short: 'B' },
    'localfs-dir': { type: 'string', short: 'D' },
    'blob-dir': { type: 'string' },
    blob: { type: 'string', short: 'b' },
    output: { type: 'string', short: 'O' },
    'blob-data-dir': { type: 'string' },
    'log-level': { type: 'string', short: 'l' },
    debug: { type: 'boolean' },
  });
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
