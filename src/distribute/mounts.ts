// /proc/mounts lookups and bounded mount/umount. umount of a FUSE mount (or an overlay over one)
// can block when the daemon or its network is gone, so each call has a time limit and a lazy
// (`umount -l`) fallback, which detaches at once and lets the kernel finish when it can.
import { readFileSync } from 'node:fs';
import { NydusError } from '../util/errors.js';
import { run } from './proc.js';

export interface MountEntry {
  source: string;
  target: string;
  fstype: string;
  options: string;
}

/** /proc/mounts escapes space, tab, newline and backslash as octal. */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function listMounts(): MountEntry[] {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [source = '', target = '', fstype = '', options = ''] = l.split(' ');
      return { source: unescapeMount(source), target: unescapeMount(target), fstype, options: unescapeMount(options) };
    });
}

/** The topmost mount at exactly `path`, if any. */
export function mountAt(path: string): MountEntry | undefined {
  return listMounts().filter((m) => m.target === path).pop();
}

export async function mountOverlay(target: string, lower: string, upper: string, work: string): Promise<void> {
  for (const p of [lower, upper, work]) {
    // overlayfs takes ',' and ':' as separators in its options.
    if (/[,:]/.test(p)) throw new NydusError('ERR_CLI_USAGE', `path ${p} contains ',' or ':', which overlayfs options cannot carry`);
  }
  const r = await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}`, target], { timeoutMs: 30_000 });
  if (r.code !== 0) throw new NydusError('ERR_IO', `mount overlay on ${target} failed: ${r.timedOut ? 'timed out' : r.stderr.trim().split('\n')[0] ?? ''}`);
}

/**
 * Unmounts every mount stacked at `path` (bounded): plain umount first, `umount -l` when it fails
 * or times out. Returns how it went, for the clean report.
 */
export async function unmountAll(path: string, timeoutMs = 10_000): Promise<'none' | 'unmounted' | 'lazy'> {
  let result: 'none' | 'unmounted' | 'lazy' = 'none';
  for (let i = 0; i < 8 && mountAt(path); i++) {
    const r = await run('umount', [path], { timeoutMs });
    if (r.code === 0 && !r.timedOut) {
      if (result === 'none') result = 'unmounted';
      continue;
    }
    const l = await run('umount', ['-l', path], { timeoutMs });
    if (l.code !== 0) throw new NydusError('ERR_IO', `cannot unmount ${path}: ${(l.stderr || r.stderr).trim().split('\n')[0] ?? ''}`);
    result = 'lazy';
  }
  if (mountAt(path)) throw new NydusError('ERR_IO', `${path} is still mounted after repeated umount`);
  return result;
}
