// nydusd: mount a RAFS image through FUSE and serve it lazily; upstream flags.
//   nydusd [fuse] --config C --mountpoint M [--bootstrap B] [--apisock S] [--log-level L]
//          [--thread-num N] [--prefetch-files F] [--localfs-dir D] [--id ID]
import { existsSync, readFileSync, statSync } from 'node:fs';
import type { Server } from 'node:http';
import { loadConfigFile, localfsDirConfig, type FsConfig } from '../config/daemon-config.js';
import { NydusDaemon } from '../daemon/daemon.js';
import { createMountStorage } from '../daemon/storage-factory.js';
import { describeError, UsageError } from '../util/errors.js';
import { isLogLevel, logger, setLogLevel } from '../util/log.js';
import { parseFlags, runMain } from './main.js';
import { VERSION } from './command.js';

const log = logger('nydusd');

const USAGE = `Usage: nydusd [fuse] --mountpoint DIR (--config FILE | --localfs-dir DIR) [--bootstrap FILE] [options]

Mount a RAFS image read-only through FUSE and fetch its data on demand.

Options:
  -M, --mountpoint DIR        where to mount (required)
  -C, --config FILE           nydusd JSON config: backend, cache, mode, digest_validate ...
  -D, --localfs-dir DIR       instead of --config: blobs are files in DIR
  -B, --bootstrap FILE        the image's bootstrap; without it, mounts come through the API
  -A, --apisock SOCK          serve the HTTP API on this unix socket
  -m, --virtual-mountpoint P  the first mount's path in the API (default: /)
  -l, --log-level LEVEL       trace, debug, info, warn or error (default: info)
  -L, --log-file FILE         write log lines to FILE (accepted, logs go to stderr)
      --thread-num N          FUSE worker threads, 1..1024 (default: 4)
      --fuse-threads N        alias of --thread-num
      --prefetch-files FILE   prefetch the absolute paths listed in FILE (one a line)
      --id ID                 daemon id, shown by the API
      --supervisor SOCK       failover supervisor socket (accepted, not used)
      --upgrade               start as an upgrade of a running daemon (not supported)
      --failover-policy P     failover policy (accepted, not used)
      --writable              writable mount (not supported: use an overlay)
      --rlimit-nofile N       open-file limit (accepted, not used)
      --debug                 print stack traces of internal errors
  -h, --help                  print this help and exit
  -V, --version               print the version and exit`;

async function main(argv: string[]): Promise<number> {
  const args = argv[0] === 'fuse' ? argv.slice(1) : argv;
  if (argv[0] && ['virtiofs', 'singleton', 'nbd', 'uffd'].includes(argv[0])) throw new UsageError(`subcommand '${argv[0]}' is not supported by nydus-ts (only fuse)`);
  const { values } = parseFlags(args, {
    config: { type: 'string', short: 'C' },
    mountpoint: { type: 'string', short: 'M' },
    bootstrap: { type: 'string', short: 'B' },
    apisock: { type: 'string', short: 'A' },
    'log-level': { type: 'string', short: 'l' },
    'log-file': { type: 'string', short: 'L' },
    'thread-num': { type: 'string' },
    'fuse-threads': { type: 'string' },
    'prefetch-files': { type: 'string' },
    'localfs-dir': { type: 'string', short: 'D' },
    'virtual-mountpoint': { type: 'string', short: 'm' },
    id: { type: 'string' },
    supervisor: { type: 'string' },
    upgrade: { type: 'boolean' },
    writable: { type: 'boolean' },
    'rlimit-nofile': { type: 'string' },
    'failover-policy': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean', short: 'V' },
    debug: { type: 'boolean' },
  }, false);
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.version) {
    console.log(VERSION);
    return 0;
  }
  const level = values['log-level'] ?? 'info';
  if (!isLogLevel(level)) throw new UsageError(`invalid value '${level}' for --log-level: expected trace, debug, info, warn or error`);
  setLogLevel(level);
  if (values.writable) throw new UsageError('--writable is not supported: nydus-ts mounts are read-only (use an overlay on top)');
  if (values.upgrade) throw new UsageError('--upgrade (failover takeover) is not supported');
  const mountpoint = values.mountpoint;
  if (!mountpoint) throw new UsageError('missing --mountpoint');
  if (!existsSync(mountpoint) || !statSync(mountpoint).isDirectory()) throw new UsageError(`--mountpoint ${mountpoint}: not a directory`);
  if (values.config && values['localfs-dir']) throw new UsageError('--config and --localfs-dir cannot be used together');
  let config: FsConfig | undefined;
  if (values.config) config = loadConfigFile(values.config);
  else if (values['localfs-dir']) config = localfsDirConfig(values['localfs-dir']);
  if (values.bootstrap && !config) throw new UsageError('--bootstrap needs --config or --localfs-dir');
  if (!values.bootstrap && !values.apisock) throw new UsageError('without --bootstrap, nydusd needs --apisock to receive mounts');
  if (values['prefetch-files'] && !values.bootstrap) throw new UsageError('--prefetch-files needs --bootstrap');
  const threadsText = values['thread-num'] ?? values['fuse-threads'] ?? '4';
  const threads = Number(threadsText);
  if (!Number.isInteger(threads) || threads < 1 || threads > 1024) throw new UsageError(`invalid value '${threadsText}' for --thread-num: expected 1..1024`);
  let prefetchFiles: string[] | undefined;
  if (values['prefetch-files']) {
    try {
      prefetchFiles = readFileSync(values['prefetch-files'], 'utf8').split('\n').map((l) => l.trim()).filter((l) => l.startsWith('/'));
    } catch (e) {
      throw new UsageError(`--prefetch-files ${values['prefetch-files']}: ${describeError(e)}`);
    }
  }
  // libuv's pool (shared by idle FUSE workers' blocking reads and cache I/O) is sized by bin/nydusd.js:
  // by the time this ES module runs, the loader has already started it.

  let api: Server | undefined;
  let stopping: Promise<void> | undefined;
  const daemon: NydusDaemon = new NydusDaemon({
    mountpoint,
    threads,
    ...(values.id ? { id: values.id } : {}),
    storageFactory: createMountStorage,
    onExit: () => void stop('API exit request'),
  });
  const stop = (why: string): Promise<void> => {
    stopping ??= (async () => {
      log.info(`stopping (${why})`);
      api?.close();
      await daemon.stop();
    })();
    return stopping;
  };
  const done = new Promise<void>((resolve) => {
    const onSignal = (sig: string): void => void stop(sig).finally(resolve);
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    process.once('exit', () => daemon.session?.unmountSync());
  });
  // Loaded only when asked for: mount latency counts every module on the start-up path.
  if (values.apisock) api = await (await import('../api/server.js')).startApiServer(daemon, values.apisock);
  try {
    await daemon.start(values.bootstrap ? { bootstrap: values.bootstrap, config: config!, ...(prefetchFiles ? { prefetchFiles } : {}) } : undefined);
  } catch (e) {
    api?.close();
    await daemon.stop();
    throw e;
  }
  // The session may also end from outside (umount by an admin).
  void daemon.session?.closed.then(() => stop('filesystem unmounted'));
  await Promise.race([done, daemon.session!.closed.then(() => stopping)]);
  return 0;
}

await runMain('nydusd', main);
