// nydus-distribute: distribute directories (rootfs) to cluster nodes with nydus — the upstream
// sealer/contrib "nydus file distribution" flow (serverstart.sh / start.sh) as one tool.
import { nodeClean, nodeStart, nodeStatus, type NodeStatus } from '../distribute/node.js';
import { serverClean, serverStart } from '../distribute/server.js';
import { supervise } from '../distribute/supervisor.js';
import { humanBytes, runMain } from './main.js';
import { COMMON_FLAGS, CommandUsageError, helpText, parseCommand, type CommandSpec, type FlagSpec } from './command.js';

const BUNDLE_DIR = { short: 'b', arg: 'DIR', desc: 'the bundle directory', default: '.' } as const;
const SPECS = {
  'server start': {
    name: 'nydus-distribute server start',
    summary: 'Convert directories into one blob store, write a client bundle per directory and serve the blobs over HTTP',
    flags: {
      ip: { short: 'i', arg: 'IP', desc: 'the address nodes reach this server at (required)' },
      dir: { short: 'd', arg: 'DIR[,DIR...]', desc: 'directories to distribute (required; repeatable)', repeat: true },
      'work-dir': { short: 'w', arg: 'DIR', desc: 'where blobs, bundles and the service state go', default: './nydusdfile' },
      port: { short: 'p', arg: 'PORT', desc: 'HTTP port of the blob server', default: '8000' },
      bundle: { desc: 'make each bundle self-contained (Node runtime, nydusd; nodes need no nydus-ts) and write W/<dirname>.tar.gz' },
      debug: COMMON_FLAGS.debug,
    },
  },
  'server clean': {
    name: 'nydus-distribute server clean',
    summary: "Stop the blob server and remove what 'server start' created",
    flags: { 'work-dir': { short: 'w', arg: 'DIR', desc: 'the work directory', default: './nydusdfile' }, debug: COMMON_FLAGS.debug },
  },
  'node start': {
    name: 'nydus-distribute node start',
    summary: 'Start nydusd for a bundle and mount a writable overlay of it at MOUNT',
    args: ['<MOUNT>'],
    flags: { 'bundle-dir': BUNDLE_DIR, prefetch: { desc: 'pull the whole image in the background' }, debug: COMMON_FLAGS.debug },
  },
  'node clean': {
    name: 'nydus-distribute node clean',
    summary: "Unmount, stop nydusd and remove what 'node start' created",
    args: ['[MOUNT]'],
    flags: { 'bundle-dir': BUNDLE_DIR, debug: COMMON_FLAGS.debug },
  },
  'node status': {
    name: 'nydus-distribute node status',
    summary: 'Cached share per image and whether the server is still needed',
    flags: { 'bundle-dir': { ...BUNDLE_DIR, desc: 'a bundle directory (repeatable)', repeat: true }, json: { desc: 'print JSON' }, debug: COMMON_FLAGS.debug },
  },
} as const satisfies Record<string, CommandSpec<Record<string, FlagSpec>>>;

const TOP = {
  name: 'nydus-distribute',
  summary: 'Distribute directories (rootfs) to cluster nodes with nydus: serve them once, mount them lazily everywhere',
  args: ['[GROUP]', '[COMMAND]', '[ARGS...]'],
  passThrough: true,
  flags: { debug: COMMON_FLAGS.debug },
  after: `Commands:
${Object.values(SPECS).map((c) => `  ${c.name.slice('nydus-distribute '.length).padEnd(14)}${c.summary}`).join('\n')}

Run 'nydus-distribute GROUP COMMAND --help' for its options.`,
} as const satisfies CommandSpec<Record<string, FlagSpec>>;

function printStatus(s: NodeStatus): void {
  const lines = [
    `bundle ${s.bundleDir}${s.mount ? ` -> ${s.mount}` : ' (not started)'}`,
    `  service ${s.serviceRunning ? 'running' : 'stopped'}, nydus mount ${s.nydusMounted ? 'up' : 'down'}, overlay ${s.overlayMounted ? 'up' : 'down'}`,
    `  cached ${s.readyChunks}/${s.totalChunks} chunks (${s.percent}%)`,
  ];
  for (const b of s.blobs) {
    const bytes = b.uncompressedSize !== undefined && b.chunks ? ` ~${humanBytes(Math.round((b.uncompressedSize * b.readyChunks) / b.chunks))} of ${humanBytes(b.uncompressedSize)}` : '';
    lines.push(`  blob ${b.id.slice(0, 16)}: ${b.readyChunks}/${b.chunks} chunks${bytes}${b.allReady ? ' (complete)' : ''}`);
  }
  lines.push(`  server still needed: ${s.serverNeeded ? 'yes (not every chunk is cached)' : 'no (all data is cached locally)'}`);
  console.log(lines.join('\n'));
}

async function server(sub: string | undefined, args: string[]): Promise<number> {
  if (sub === 'start') {
    const p = parseCommand(SPECS['server start'], args);
    if (!p) return 0;
    const { values } = p;
    if (!values.ip) throw new CommandUsageError(SPECS['server start'].name, 'missing -i IP: the address nodes reach this server at');
    const dirs = (values.dir ?? []).flatMap((d) => d.split(',')).map((d) => d.trim()).filter(Boolean);
    if (!dirs.length) throw new CommandUsageError(SPECS['server start'].name, 'missing -d DIR1,DIR2: the directories to distribute');
    let port: number | undefined;
    if (values.port !== undefined) {
      port = Number(values.port);
      if (!/^\d+$/.test(values.port) || port < 1 || port > 65535) throw new CommandUsageError(SPECS['server start'].name, `invalid value '${values.port}' for --port: expected 1..65535`);
    }
    await serverStart({ ip: values.ip, dirs, workDir: values['work-dir'] ?? './nydusdfile', ...(port !== undefined ? { port } : {}), bundle: !!values.bundle });
    return 0;
  }
  if (sub === 'clean') {
    const p = parseCommand(SPECS['server clean'], args);
    if (!p) return 0;
    await serverClean(p.values['work-dir'] ?? './nydusdfile');
    return 0;
  }
  throw new CommandUsageError('nydus-distribute', `unknown server command '${sub ?? ''}': expected start or clean`);
}

async function node(sub: string | undefined, args: string[]): Promise<number> {
  if (sub === 'start') {
    const p = parseCommand(SPECS['node start'], args);
    if (!p) return 0;
    await nodeStart(p.positionals[0]!, { bundleDir: p.values['bundle-dir'] ?? '.', prefetch: !!p.values.prefetch });
    return 0;
  }
  if (sub === 'clean') {
    const p = parseCommand(SPECS['node clean'], args);
    if (!p) return 0;
    await nodeClean(p.values['bundle-dir'] ?? '.', p.positionals[0] ? { mount: p.positionals[0] } : {});
    return 0;
  }
  if (sub === 'status') {
    const p = parseCommand(SPECS['node status'], args);
    if (!p) return 0;
    const all = await Promise.all((p.values['bundle-dir'] ?? ['.']).map((d) => nodeStatus(d)));
    if (p.values.json) console.log(JSON.stringify(all.length === 1 ? all[0] : all, null, 2));
    else all.forEach(printStatus);
    return 0;
  }
  throw new CommandUsageError('nydus-distribute', `unknown node command '${sub ?? ''}': expected start, clean or status`);
}

await runMain('nydus-distribute', async (argv) => {
  // Internal: the process-mode service supervisor (see distribute/service.ts).
  if (argv[0] === '__supervise') return supervise(argv[1] ?? '');
  const p = parseCommand(TOP, argv);
  if (!p) return 0;
  const [group, sub, ...rest] = p.positionals;
  if (!group) {
    process.stderr.write(helpText(TOP));
    return 2;
  }
  if (group === 'server') return server(sub, rest);
  if (group === 'node') return node(sub, rest);
  throw new CommandUsageError('nydus-distribute', `unknown command '${group}': expected server or node`);
});
