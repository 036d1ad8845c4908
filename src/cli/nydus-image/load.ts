// Shared by nydus-image subcommands: read and open a bootstrap named on the command line.
import { readFileSync, statSync } from 'node:fs';
import { openBootstrap } from '../../rafs/index.js';
import type { RafsSuper } from '../../rafs/types.js';
import { NydusError, UsageError } from '../../util/errors.js';
import { outputJsonVersion } from '../../util/version.js';

export function loadBootstrap(path: string | undefined, flag = 'BOOTSTRAP'): RafsSuper {
  if (!path) throw new UsageError(`missing ${flag}`);
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new NydusError('ERR_IO', `bootstrap ${path}: no such file`);
  }
  if (!st.isFile()) throw new NydusError('ERR_IO', `bootstrap ${path}: not a regular file`);
  if (st.size > 2 ** 31) throw new NydusError('ERR_FORMAT_INVALID', `bootstrap ${path}: ${st.size} bytes is larger than any valid bootstrap`);
  return openBootstrap(readFileSync(path), `bootstrap ${path}`);
}

export function writeJson(path: string, value: unknown, pretty = true): Promise<void> {
  return import('node:fs/promises').then((fs) => fs.writeFile(path, JSON.stringify(value, null, pretty ? 2 : undefined) + (pretty ? '\n' : '')));
}

export const NYDUS_TS_VERSION = outputJsonVersion();

/** The bootstrap flag of the read-side subcommands (the file may also be the operand). */
export const BOOTSTRAP_FLAG = { short: 'B', arg: 'FILE', desc: 'the bootstrap (or give it as BOOTSTRAP)' } as const;
