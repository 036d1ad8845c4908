// `nydusd erofs`: mount a RAFS v6 image with kernel EROFS, data fetched on demand through a FUSE
// file per blob on a loop device (no fscache needed). Same flags as `nydusd fuse` where they apply.
//   nydusd erofs --mountpoint M --bootstrap B (--config C | --localfs-dir D) [--prefetch-files F]
//                [--thread-num N] [--log-level L]
// Runs until SIGINT/SIGTERM or until the EROFS mount is unmounted; then cleans up in order.
import { existsSync, statSync } from 'node:fs';
import { loadConfigFile, localfsDirConfig } from '../config/daemon-config.js';
import { ErofsOndemand } from '../daemon/erofs-ondemand.js';
import { createMountStorage } from '../daemon/storage-factory.js';
import { UsageError } from '../util/errors.js';
import { isLogLevel, logger, setLogLevel } from '../util/log.js';
import { parseFlags } from './main.js';
import { prefetchFileList, threadCount } from './nydusd-flags.js';

const log = logger('nydusd');

export const EROFS_USAGE = `usage: nydusd erofs --mountpoint DIR --bootstrap FILE (--config FILE | --localfs-dir DIR)
              [--prefetch-files FILE] [--thread-num N] [--log-level trace|debug|info|warn|error]`;

export async function erofsMain(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    config: { type: 'string', short: 'C' },
    mountpoint: { type: 'string', short: 'M' },
    bootstrap: { type: 'string', short: 'B' },
    'log-level': { type: 'string', short: 'l' },
    'thread-num': { type: 'string' },
    'fuse-threads': { type: 'string' },
    'prefetch-files': { type: 'string' },
    'localfs-dir': { type: 'string', short: 'D' },
    help: { type: 'boolean', short: 'h' },
    debug: { type: 'boolean' },
  }, false);
  if (values.help) {
    console.log(EROFS_USAGE);
    return 0;
  }
  const level = values['log-level'] ?? 'info';
  if (!isLogLevel(level)) throw new UsageError(`invalid value '${level}' for --log-level: expected trace, debug, info, warn or error`);
  setLogLevel(level);
  const mountpoint = values.mountpoint;
  if (!mountpoint) throw new UsageError('missing --mountpoint');
  if (!existsSync(mountpoint) || !statSync(mountpoint).isDirectory()) throw new UsageError(`--mountpoint ${mountpoint}: not a directory`);
  if (!values.bootstrap) throw new UsageError('missing --bootstrap (erofs mode serves one image)');
  if (values.config && values['localfs-dir']) throw new UsageError('--config and --localfs-dir cannot be used together');
  if (!values.config && !values['localfs-dir']) throw new UsageError('missing --config or --localfs-dir');
  const config = values.config ? loadConfigFile(values.config) : localfsDirConfig(values['localfs-dir']!);
  const threads = threadCount(values);
  const prefetchFiles = prefetchFileList(values['prefetch-files']);
  if (process.getuid?.() !== 0) throw new UsageError('erofs mode needs root (loop devices and mount)');

  let d: ErofsOndemand | undefined;
  process.once('exit', () => d?.stopSync());
  let signalled!: (sig: string) => void;
  const signal = new Promise<string>((r) => (signalled = r));
  process.once('SIGINT', () => signalled('SIGINT'));
  process.once('SIGTERM', () => signalled('SIGTERM'));
  d = await ErofsOndemand.start({ mountpoint, bootstrap: values.bootstrap, config, threads, ...(prefetchFiles ? { prefetchFiles } : {}), storageFactory: createMountStorage });
  const why = await Promise.race([signal, d.closed.then(() => 'EROFS mount released')]);
  log.info(`stopping (${why})`);
  await d.stop();
  return 0;
}
