// Kernel EROFS mount helper for tests (spec §10): attaches the bootstrap and every device file to
// loop devices (all-loop: file/loop backing must not be mixed), mounts read-only with one
// `device=` per device slot, runs `fn`, and always unmounts and detaches in `finally`.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function run(cmd: string, args: string[], timeoutMs = 20_000): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs });
  return { status: r.error ? -1 : r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`.trim() };
}

/** Why kernel EROFS tests cannot run here, or undefined when they can. */
export function erofsMountUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'needs root';
  if (!existsSync('/dev/loop-control')) return 'no loop devices';
  const fs = (): boolean => readFileSync('/proc/filesystems', 'utf8').includes('erofs');
  if (!fs()) run('modprobe', ['erofs']);
  if (!fs()) return 'kernel has no EROFS support';
  if (run('losetup', ['--version']).status !== 0) return 'losetup missing';
  return undefined;
}

function attachLoop(file: string): string {
  // A concurrent losetup may grab the same free device; retry a few times.
  let last = '';
  for (let i = 0; i < 5; i++) {
    const r = run('losetup', ['-f', '--show', '-r', file]);
    if (r.status === 0 && r.out.startsWith('/dev/loop')) return r.out.split('\n')[0]!.trim();
    last = r.out;
  }
  throw new Error(`losetup ${file} failed: ${last}`);
}

/**
 * Mounts `bootstrapPath` as EROFS with `devicePaths` (one per blob, slot order; each a whole number
 * of 512-byte sectors) and calls `fn(mountDir)`. Cleans up even when `fn` throws.
 */
export async function withErofsMount<T>(bootstrapPath: string, devicePaths: readonly string[], fn: (mountDir: string) => Promise<T> | T): Promise<T> {
  const loops: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'erofs-mnt-'));
  let mounted = false;
  try {
    for (const d of devicePaths) loops.push(attachLoop(d));
    const primary = attachLoop(bootstrapPath);
    loops.push(primary);
    const opts = ['ro', ...loops.slice(0, -1).map((l) => `device=${l}`)].join(',');
    const m = run('mount', ['-t', 'erofs', '-o', opts, primary, dir]);
    if (m.status !== 0) {
      const dmesg = run('dmesg', []).out.split('\n').filter((l) => l.includes('erofs')).slice(-5).join('\n');
      throw new Error(`mount -t erofs -o ${opts} ${primary} failed: ${m.out}\n${dmesg}`);
    }
    mounted = true;
    return await fn(dir);
  } finally {
    if (mounted && run('umount', [dir], 10_000).status !== 0) run('umount', ['-l', dir], 10_000);
    for (const l of loops.reverse()) run('losetup', ['-d', l]);
    try {
      rmdirSync(dir);
    } catch {
      // still busy after a lazy unmount: leave the empty directory behind
    }
  }
}
