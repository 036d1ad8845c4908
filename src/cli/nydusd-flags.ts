// Flag checks shared by `nydusd [fuse]` and `nydusd erofs`.
import { readFileSync } from 'node:fs';
import { describeError, UsageError } from '../util/errors.js';

/** --thread-num (or its alias --fuse-threads), default 4. */
export function threadCount(values: { 'thread-num'?: string; 'fuse-threads'?: string }): number {
  const text = values['thread-num'] ?? values['fuse-threads'] ?? '4';
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw new UsageError(`invalid value '${text}' for --thread-num: expected 1..1024`);
  return n;
}

/** --prefetch-files FILE: the absolute paths it lists, one a line. */
export function prefetchFileList(path: string | undefined): string[] | undefined {
  if (!path) return undefined;
  try {
    return readFileSync(path, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l.startsWith('/'));
  } catch (e) {
    throw new UsageError(`--prefetch-files ${path}: ${describeError(e)}`);
  }
}
