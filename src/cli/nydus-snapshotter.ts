// nydus-snapshotter: containerd proxy snapshotter for Nydus (and plain OCI) images.
//   nydus-snapshotter [--config FILE] [--root DIR] [--address SOCK] [--daemon-mode multiple|shared]
//                     [--nydusd-config FILE] [--nydusd PATH] [--log-level L]
//   nydus-snapshotter pull [--address CONTAINERD_SOCK] [-n NS] [--snapshotter nydus] [--insecure] [--plain-http] REF
import { join } from 'node:path';
import { defaultNydusd } from '../convert/mount.js';
import { cacheRoot, defaultConfig, loadConfig, type SnapshotterConfig } from '../snapshotter/config.js';
import { DaemonManager } from '../snapshotter/daemons.js';
import { pullImage } from '../snapshotter/pull.js';
import { remoteConfigFn } from '../snapshotter/remote.js';
import { serve } from '../snapshotter/server.js';
import { Snapshotter } from '../snapshotter/snapshotter.js';
import { UsageError } from '../util/errors.js';
import { isLogLevel, logger, setLogLevel } from '../util/log.js';
import { parseFlags, runMain } from './main.js';
import { packageVersion } from '../util/version.js';

const log = logger('snapshotter');

const USAGE = `usage: nydus-snapshotter [--config FILE] [--root DIR] [--address SOCK] [--daemon-mode multiple|shared]
                         [--nydusd-config FILE] [--nydusd PATH] [--log-level LEVEL]
       nydus-snapshotter pull [--address CONTAINERD_SOCK] [--namespace NS] [--snapshotter NAME]
                         [--insecure] [--plain-http] [--platform OS/ARCH] IMAGE`;

async function pull(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    address: { type: 'string', short: 'a' },
    namespace: { type: 'string', short: 'n' },
    snapshotter: { type: 'string' },
    insecure: { type: 'boolean' },
    'plain-http': { type: 'boolean' },
    platform: { type: 'string' },
    'log-level': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (values['log-level']) setLevel(values['log-level']);
  if (positionals.length !== 1) throw new UsageError('pull needs exactly one IMAGE reference');
  const r = await pullImage({
    address: values.address ?? process.env.CONTAINERD_ADDRESS ?? '/run/containerd/containerd.sock',
    namespace: values.namespace ?? process.env.CONTAINERD_NAMESPACE ?? 'default',
    snapshotter: values.snapshotter ?? 'nydus',
    ref: positionals[0]!,
    insecure: values.insecure ?? false,
    plainHttp: values['plain-http'] ?? false,
    ...(values.platform ? { platform: values.platform } : {}),
  });
  process.stdout.write(`${r.name}: ${r.digest} (${r.unpacked.length} layers unpacked, ${r.remote.length} remote)\n`);
  return 0;
}

function setLevel(v: string): void {
  if (!isLogLevel(v)) throw new UsageError(`invalid value '${v}' for --log-level`);
  setLogLevel(v);
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'pull') return pull(argv.slice(1));
  // -V as every other nydus-ts command; -v/--version as upstream's snapshotter.
  if (argv.length === 1 && argv[0] === '-V') argv = ['--version'];
  const { values, positionals } = parseFlags(
    argv,
    {
      config: { type: 'string' },
      root: { type: 'string' },
      address: { type: 'string' },
      'daemon-mode': { type: 'string' },
      'nydusd-config': { type: 'string' },
      nydusd: { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
    false,
  );
  void positionals;
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (values.version) {
    process.stdout.write(`nydus-snapshotter ${packageVersion()} (nydus-ts)\n`);
    return 0;
  }
  const cfg: SnapshotterConfig = values.config ? loadConfig(values.config) : defaultConfig();
  if (values.root) cfg.root = values.root;
  if (values.address) cfg.address = values.address;
  if (values['daemon-mode']) {
    const m = values['daemon-mode'];
    if (m !== 'multiple' && m !== 'dedicated' && m !== 'shared') throw new UsageError(`invalid value '${m}' for --daemon-mode: expected multiple or shared`);
    cfg.daemonMode = m === 'shared' ? 'shared' : 'multiple';
  }
  if (values['nydusd-config']) cfg.nydusdConfig = values['nydusd-config'];
  if (values.nydusd) cfg.nydusdPath = values.nydusd;
  if (values['log-level']) setLevel(values['log-level']);
  else setLogLevel(cfg.logLevel);
  const nydusd = cfg.nydusdPath ? [cfg.nydusdPath] : defaultNydusd();
  const sn = new Snapshotter(cfg.root, (store) => new DaemonManager(cfg.root, cfg.daemonMode, nydusd, store, cfg.logLevel === 'trace' ? 'debug' : cfg.logLevel, cacheRoot(cfg)), remoteConfigFn(cfg));
  await sn.recover();
  const server = await serve(sn, cfg.address);
  log.info(`serving containerd snapshots on ${cfg.address} (root ${cfg.root}, daemon_mode ${cfg.daemonMode}, metadata ${join(cfg.root, 'metadata.db')})`);
  await new Promise<void>((ok) => {
    const stop = (sig: string): void => {
      log.info(`${sig}: stopping (nydusd daemons keep running and are re-attached on the next start)`);
      server.tryShutdown(() => ok());
      setTimeout(() => {
        server.forceShutdown();
        ok();
      }, 5000).unref();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  sn.close();
  return 0;
}

await runMain('nydus-snapshotter', main);
