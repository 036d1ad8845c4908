// nydus-distribute: distribute directories (rootfs) to cluster nodes with nydus — the upstream
// sealer/contrib "nydus file distribution" flow (serverstart.sh / start.sh) as one tool.
import { nodeClean, nodeStart, nodeStatus, type NodeStatus } from '../distribute/node.js';
import { serverClean, serverStart } from '../distribute/server.js';
import { supervise } from '../distribute/supervisor.js';
import { UsageError } from '../util/errors.js';
import { parseFlags, runMain } from './main.js';
import { packageVersion } from '../util/version.js';

const USAGE = `usage:
  nydus-distribute server start -i IP -d DIR1[,DIR2...] [--work-dir W] [--port P] [--bundle]
      convert each directory (RAFS v6, zstd, blob-toc) into W/serverfile/nydusblobs, write a client
      bundle W/<dirname>/ (rootfs.meta, httpserver.json, start.sh, clean.sh; --bundle: also
      W/<dirname>.tar.gz for scp) and start nydus-backend-proxy as service nydusd_http_server
      (W defaults to ./nydusdfile, P to 8000)
  nydus-distribute server clean [--work-dir W]
      stop the service and remove what 'server start' created
  nydus-distribute node start MOUNT [--bundle-dir D] [--prefetch]
      start nydusd for bundle D (default: current dir) and mount an overlay at MOUNT;
      --prefetch pulls the whole image in the background
  nydus-distribute node clean [MOUNT] [--bundle-dir D]
      unmount, stop nydusd and remove what 'node start' created
  nydus-distribute node status [--bundle-dir D]... [--json]
      cached share per image and whether the server is still needed`;

function human(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
}

function printStatus(s: NodeStatus): void {
  const lines = [
    `bundle ${s.bundleDir}${s.mount ? ` -> ${s.mount}` : ' (not started)'}`,
    `  service ${s.serviceRunning ? 'running' : 'stopped'}, nydus mount ${s.nydusMounted ? 'up' : 'down'}, overlay ${s.overlayMounted ? 'up' : 'down'}`,
    `  cached ${s.readyChunks}/${s.totalChunks} chunks (${s.percent}%)`,
  ];
  for (const b of s.blobs) {
    const bytes = b.uncompressedSize !== undefined && b.chunks ? ` ~${human(Math.round((b.uncompressedSize * b.readyChunks) / b.chunks))} of ${human(b.uncompressedSize)}` : '';
    lines.push(`  blob ${b.id.slice(0, 16)}: ${b.readyChunks}/${b.chunks} chunks${bytes}${b.allReady ? ' (complete)' : ''}`);
  }
  lines.push(`  server still needed: ${s.serverNeeded ? 'yes (not every chunk is cached)' : 'no (all data is cached locally)'}`);
  console.log(lines.join('\n'));
}

async function server(sub: string | undefined, args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    ip: { type: 'string', short: 'i' },
    dir: { type: 'string', short: 'd', multiple: true },
    'work-dir': { type: 'string', short: 'w' },
    port: { type: 'string', short: 'p' },
    bundle: { type: 'boolean' },
    debug: { type: 'boolean' },
  });
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const workDir = values['work-dir'] ?? './nydusdfile';
  if (sub === 'start') {
    if (!values.ip) throw new UsageError('missing -i IP: the address nodes reach this server at');
    const dirs = (values.dir ?? []).flatMap((d) => d.split(',')).map((d) => d.trim()).filter(Boolean);
    if (!dirs.length) throw new UsageError('missing -d DIR1,DIR2: the directories to distribute');
    let port: number | undefined;
    if (values.port !== undefined) {
      port = Number(values.port);
      if (!/^\d+$/.test(values.port) || port < 1 || port > 65535) throw new UsageError(`invalid value '${values.port}' for --port: expected 1..65535`);
    }
    await serverStart({ ip: values.ip, dirs, workDir, ...(port !== undefined ? { port } : {}), bundle: !!values.bundle });
    return 0;
  }
  if (sub === 'clean') {
    if (values.ip || values.dir || values.port || values.bundle) throw new UsageError("'server clean' takes only --work-dir");
    await serverClean(workDir);
    return 0;
  }
  throw new UsageError(`unknown server command '${sub ?? ''}': expected start or clean`);
}

async function node(sub: string | undefined, args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    'bundle-dir': { type: 'string', short: 'b', multiple: true },
    prefetch: { type: 'boolean' },
    json: { type: 'boolean' },
    debug: { type: 'boolean' },
  });
  const dirs = values['bundle-dir'] ?? ['.'];
  if (sub !== 'status' && dirs.length > 1) throw new UsageError(`'node ${sub}' takes one --bundle-dir`);
  const dir = dirs[0]!;
  if (sub === 'start') {
    if (positionals.length !== 1) throw new UsageError('usage: node start MOUNT [--bundle-dir D] [--prefetch]');
    await nodeStart(positionals[0]!, { bundleDir: dir, prefetch: !!values.prefetch });
    return 0;
  }
  if (sub === 'clean') {
    if (positionals.length > 1) throw new UsageError('usage: node clean [MOUNT] [--bundle-dir D]');
    await nodeClean(dir, positionals[0] ? { mount: positionals[0] } : {});
    return 0;
  }
  if (sub === 'status') {
    if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const all = await Promise.all(dirs.map((d) => nodeStatus(d)));
    if (values.json) console.log(JSON.stringify(all.length === 1 ? all[0] : all, null, 2));
    else all.forEach(printStatus);
    return 0;
  }
  throw new UsageError(`unknown node command '${sub ?? ''}': expected start, clean or status`);
}

await runMain('nydus-distribute', async (argv) => {
  const [group, sub, ...rest] = argv;
  if (!group || group === '--help' || group === '-h' || group === 'help') {
    console.log(USAGE);
    return 0;
  }
  if (group === '-V' || group === '--version') {
    console.log(`nydus-distribute ${packageVersion()} (nydus-ts)`);
    return 0;
  }
  // Internal: the process-mode service supervisor (see distribute/service.ts).
  if (group === '__supervise') return supervise(sub ?? '');
  if (group === 'server') return server(sub, rest);
  if (group === 'node') return node(sub, rest);
  throw new UsageError(`unknown command '${group}': expected server or node`);
});
