// nydusify mount|view --target REF [--mount-path P] [--work-dir D]: see src/convert/mount.ts.
import { defaultNydusd, mountImage } from '../../convert/mount.js';
import { UsageError } from '../../util/errors.js';
import { parseFlags } from '../main.js';

export const usage = 'nydusify mount --target REF [--mount-path ./image-fs] [--work-dir ./tmp] [--target-insecure] [--plain-http] [--platform os/arch] [--prefetch] [--nydusd PATH]';

export async function run(args: string[]): Promise<number> {
  const { values: v, positionals } = parseFlags(args, {
    target: { type: 'string' },
    'target-insecure': { type: 'boolean' },
    'plain-http': { type: 'boolean' },
    'mount-path': { type: 'string' },
    'work-dir': { type: 'string' },
    platform: { type: 'string' },
    prefetch: { type: 'boolean' },
    nydusd: { type: 'string' },
    'backend-type': { type: 'string' },
    debug: { type: 'boolean', short: 'D' },
  });
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
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
