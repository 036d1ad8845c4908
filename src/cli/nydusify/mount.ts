// nydusify mount|view --target REF [--mount-path P] [--work-dir D]: see src/convert/mount.ts.
import { defaultNydusd, mountImage } from '../../convert/mount.js';
import { UsageError } from '../../util/errors.js';
import { parseCommand, type CommandSpec, type FlagSpec } from '../command.js';
import { registryFlags } from './common.js';

export const spec = {
  name: 'nydusify mount',
  summary: 'Mount a nydus image from a registry with nydusd until interrupted (alias: view)',
  flags: {
    target: { arg: 'REF', desc: 'the nydus image (required)' },
    'mount-path': { arg: 'DIR', desc: 'where to mount it', default: './image-fs' },
    'work-dir': { arg: 'DIR', desc: 'bootstrap, config and blob cache', default: './tmp' },
    'target-insecure': registryFlags['target-insecure'],
    'plain-http': registryFlags['plain-http'],
    platform: { arg: 'OS/ARCH', desc: 'platform in a multi-platform image', default: 'linux/<host arch>' },
    prefetch: { desc: 'prefetch the whole image in the background' },
    nydusd: { arg: 'PATH', desc: 'nydusd to run (a .js file runs with this Node)', default: 'the built-in nydusd' },
    'backend-type': { arg: 'TYPE', desc: 'only registry is supported', default: 'registry', choices: ['registry'] },
    debug: { short: 'D', desc: 'debug logging and stack traces of internal errors' },
  },
  after: 'Not supported (upstream): --backend-config, --backend-config-file.',
} as const satisfies CommandSpec<Record<string, FlagSpec>>;

export async function run(args: string[]): Promise<number> {
  const p = parseCommand(spec, args);
  if (!p) return 0;
  const v = p.values;
  if (!v.target) throw new UsageError('--target is required');
  if (v['backend-type'] && v['backend-type'] !== 'registry') throw new UsageError('mount supports only the registry backend');
  const nydusd = v.nydusd ? (v.nydusd.endsWith('.js') ? [process.execPath, v.nydusd] : [v.nydusd]) : defaultNydusd();
  return mountImage({
    target: v.target,
    mountPath: v['mount-path'] ?? './image-fs',
    workDir: v['work-dir'] ?? './tmp',
    insecure: v['target-insecure'] ?? false,
    plainHttp: v['plain-http'] ?? false,
    platform: v.platform,
    prefetch: v.prefetch ?? false,
    nydusd,
  });
}
