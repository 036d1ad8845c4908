// nydusd: mount a RAFS image through FUSE and serve it lazily; upstream flags.
//   nydusd [fuse] --config C --mountpoint M [--bootstrap B] [--apisock S] [--log-level L]
//          [--log-file F [--log-rotation-size MiB]] [--thread-num N] [--prefetch-files F]
//          [--localfs-dir D] [--id ID --supervisor SOCK [--upgrade]] | -V
import { existsSync, statSync } from 'node:fs';
import type { Server } from 'node:http';
import { loadConfigFile, localfsDirConfig, type FsConfig } from '../config/daemon-config.js';
import type { NydusDaemon } from '../daemon/daemon.js';
import { createMountStorage } from '../daemon/storage-factory.js';
import { describeError, UsageError } from '../util/errors.js';
import { isLogLevel, logger, logToFile, setLogLevel } from '../util/log.js';
import { packageVersion } from '../util/version.js';
import { parseFlags, runMain } from './main.js';
import { prefetchFileList, threadCount } from './nydusd-flags.js';

const log = logger('nydusd');

const USAGE = `Usage: nydusd [fuse] --mountpoint DIR (--config FILE | --localfs-dir DIR) [--bootstrap FILE] [options]

Mount a RAFS image read-only through FUSE and fetch its data on demand.
('nydusd erofs ...': kernel EROFS with on-demand data, see 'nydusd erofs --help'.)

Options:
  -M, --mountpoint DIR        where to mount (required)
  -C, --config FILE           nydusd JSON config: backend, cache, mode, digest_validate ...
  -D, --localfs-dir DIR       instead of --config: blobs are files in DIR
  -B, --bootstrap FILE        the image's bootstrap; without it, mounts come through the API
  -A, --apisock SOCK          serve the HTTP API on this unix socket
  -m, --virtual-mountpoint P  the first mount's path in the API (default: /)
  -l, --log-level LEVEL       trace, debug, info, warn or error (default: info)
  -L, --log-file FILE         append log lines to FILE (".log" added without an extension)
      --log-rotation-size MIB rotate the log file at MIB MiB (gzip, newest 10 kept; 0 = never)
      --thread-num N          FUSE worker threads, 1..1024 (default: 4)
      --fuse-threads N        alias of --thread-num
      --prefetch-files FILE   prefetch the absolute paths listed in FILE (one a line)
      --id ID                 daemon id, shown by the API
      --supervisor SOCK       run supervised: a parent holds the FUSE connection, a serving child is
                              restarted on a crash (failover, FUSE_NOTIFY_RESEND); SOCK takes upgrades
      --upgrade               with --supervisor: replace the serving child of the daemon at SOCK
      --failover-policy P     failover policy (only resend)
      --writable              writable mount (not supported: use an overlay)
      --rlimit-nofile N       open-file limit (accepted, not used)
      --debug                 print stack traces of internal errors
  -h, --help                  print this help and exit
  -V, --version               print the version and exit`;

async function main(argv: string[]): Promise<number> {
  // Kernel EROFS with on-demand data over FUSE + loop: its own module (src/cli/nydusd-erofs.ts).
  if (argv[0] === 'erofs') return (await import('./nydusd-erofs.js')).erofsMain(argv.slice(1));
  const args = argv[0] === 'fuse' ? argv.slice(1) : argv;
  // `daemon` is the older name of `singleton`.
  if (argv[0] && ['virtiofs', 'singleton', 'daemon', 'nbd', 'uffd'].includes(argv[0])) throw new UsageError(`subcommand '${argv[0]}' is not supported by nydus-ts (only fuse)`);
  const { values } = parseFlags(args, {
    config: { type: 'string', short: 'C' },
    mountpoint: { type: 'string', short: 'M' },
    bootstrap: { type: 'string', short: 'B' },
    apisock: { type: 'string', short: 'A' },
    'log-level': { type: 'string', short: 'l' },
    'log-file': { type: 'string', short: 'L' },
    'log-rotation-size': { type: 'string' },
    version: { type: 'boolean', short: 'V' },
    'thread-num': { type: 'string', short: 'T' },
    'fuse-threads': { type: 'string' },
    'prefetch-files': { type: 'string', short: 'P' },
    'localfs-dir': { type: 'string', short: 'D' },
    'virtual-mountpoint': { type: 'string', short: 'm' },
    id: { type: 'string', short: 'I' },
    supervisor: { type: 'string', short: 'S' },
    upgrade: { type: 'boolean', short: 'U' },
    writable: { type: 'boolean', short: 'W' },
    'rlimit-nofile': { type: 'string', short: 'R' },
    'failover-policy': { type: 'string', short: 'F' },
    help: { type: 'boolean', short: 'h' },
    debug: { type: 'boolean' },
  }, false);
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.version) {
    console.log(`nydusd ${packageVersion()} (nydus-ts)`);
    return 0;
  }
  const level = values['log-level'] ?? 'info';
  if (!isLogLevel(level)) throw new UsageError(`invalid value '${level}' for --log-level: expected trace, debug, info, warn or error`);
  setLogLevel(level);
  const rotationText = values['log-rotation-size'] ?? '0';
  const rotation = Number(rotationText);
  if (!/^\d+$/.test(rotationText) || !Number.isSafeInteger(rotation)) throw new UsageError(`invalid value '${rotationText}' for --log-rotation-size: expected a size in MiB`);
  if (values['log-rotation-size'] !== undefined && !values['log-file']) throw new UsageError('--log-rotation-size needs --log-file');
  if (values['log-file']) {
    try {
      logToFile(values['log-file'], rotation);
    } catch (e) {
      throw new UsageError(`--log-file ${values['log-file']}: ${describeError(e)}`);
    }
  }
  if (values.writable) throw new UsageError('--writable is not supported: nydus-ts mounts are read-only (use an overlay on top)');
  // Failover (--supervisor): a supervising parent holds the connection, children serve it.
  const sup = values.supervisor !== undefined || values.upgrade ? await import('./nydusd-supervisor.js') : undefined;
  if (values.upgrade && !values.supervisor) throw new UsageError('--upgrade needs --supervisor (the socket of the running nydusd to take over from)');
  const child = sup?.isSupervisedChild() ? await sup.childLink() : undefined;
  if (sup && values.upgrade) return sup.runUpgrade(values.supervisor!, values.id, values.apisock);
  const mountpoint = child?.mountpoint ?? values.mountpoint;
  if (!mountpoint) throw new UsageError('missing --mountpoint');
  // (Not in a supervised child: a stat of the mounted but unserved mountpoint would wait for itself.)
  if (!child && (!existsSync(mountpoint) || !statSync(mountpoint).isDirectory())) throw new UsageError(`--mountpoint ${mountpoint}: not a directory`);
  if (values.config && values['localfs-dir']) throw new UsageError('--config and --localfs-dir cannot be used together');
  let config: FsConfig | undefined;
  if (values.config) config = loadConfigFile(values.config);
  else if (values['localfs-dir']) config = localfsDirConfig(values['localfs-dir']);
  if (values.bootstrap && !config) throw new UsageError('--bootstrap needs --config or --localfs-dir');
  if (!values.bootstrap && !values.apisock) throw new UsageError('without --bootstrap, nydusd needs --apisock to receive mounts');
  if (values['prefetch-files'] && !values.bootstrap) throw new UsageError('--prefetch-files needs --bootstrap');
  const threads = threadCount(values);
  const prefetchFiles = prefetchFileList(values['prefetch-files']);
  // libuv's pool (shared by idle FUSE workers' blocking reads and cache I/O) is sized by bin/nydusd.js:
  // by the time this ES module runs, the loader has already started it.

  if (sup && !child) return sup.runSupervisor({ argv, mountpoint, socket: values.supervisor!, id: values.id, fsname: values.bootstrap ?? 'nydus' });

  let api: Server | undefined;
  let stopping: Promise<void> | undefined;
  // Imported here: `nydusd erofs` (dispatched above) does not load the FUSE daemon's modules.
  const { NydusDaemon: Daemon } = await import('../daemon/daemon.js');
  const daemon: NydusDaemon = new Daemon({
    mountpoint,
    threads,
    ...(values.id ? { id: values.id } : {}),
    storageFactory: createMountStorage,
    onExit: () => void stop('API exit request'),
    ...(child ? { adopt: child.adopt, onMountsChanged: child.onMountsChanged, supervisor: values.supervisor! } : {}),
  });
  const stop = (why: string): Promise<void> => {
    stopping ??= (async () => {
      log.info(`stopping (${why})`);
      child?.stopping();
      api?.close();
      await daemon.stop();
    })();
    return stopping;
  };
  const done = new Promise<void>((resolve) => {
    const onSignal = (sig: string): void => void stop(sig).finally(resolve);
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    // A supervised child never unmounts on exit: a crash must leave the connection to its successor.
    if (!child) process.once('exit', () => daemon.session?.unmountSync());
  });
  // Loaded only when asked for: mount latency counts every module on the start-up path.
  if (values.apisock) api = await (await import('../api/server.js')).startApiServer(daemon, values.apisock);
  try {
    await daemon.start(values.bootstrap ? { bootstrap: values.bootstrap, config: config!, ...(prefetchFiles ? { prefetchFiles } : {}) } : undefined, child?.restore);
    child?.serving(daemon.session?.init);
    if (child) child.onMountsChanged(daemon.savedMounts());
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
