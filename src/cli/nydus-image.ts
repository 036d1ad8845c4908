// nydus-image: dispatches to one module per subcommand (src/cli/nydus-image/<name>.ts exporting
// `run(args): Promise<number>` and `usage`). Adding a subcommand = adding a file and a SUBCOMMANDS line.
import { UsageError } from '../util/errors.js';
import { isLogLevel, logToFile, setLogLevel } from '../util/log.js';
import { packageVersion } from '../util/version.js';
import { runMain } from './main.js';

export const NYDUS_IMAGE_VERSION = packageVersion();

interface Subcommand {
  run(args: string[]): Promise<number | void>;
  usage?: string;
}

/** name → one-line description; the module is ./nydus-image/<name>.js. */
export const SUBCOMMANDS: Record<string, string> = {
  create: 'Create RAFS filesystems from directories or tar files',
  merge: 'Merge multiple bootstraps into an overlaid bootstrap',
  check: 'Validate RAFS filesystem metadata',
  inspect: 'Inspect RAFS filesystem metadata',
  stat: 'Generate statistics information for RAFS filesystems',
  unpack: 'Unpack a RAFS filesystem to a tar file',
  export: 'Export a RAFS v6 image as a raw EROFS block image',
};

async function loadSubcommand(name: string): Promise<Subcommand | undefined> {
  if (!Object.hasOwn(SUBCOMMANDS, name)) return undefined;
  try {
    const mod = (await import(new URL(`./nydus-image/${name}.js`, import.meta.url).href)) as Partial<Subcommand>;
    return typeof mod.run === 'function' ? (mod as Subcommand) : undefined;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && String((e as Error).message).includes(`nydus-image/${name}.js`)) return undefined;
    throw e;
  }
}

function usage(): string {
  const lines = ['Usage: nydus-image [-l LEVEL] <SUBCOMMAND> [OPTIONS]', '', 'Subcommands:'];
  for (const [k, v] of Object.entries(SUBCOMMANDS)) lines.push(`  ${k.padEnd(10)}${v}`);
  lines.push('', "Run 'nydus-image <SUBCOMMAND> --help' for its options.");
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  let i = 0;
  // Global flags before the subcommand (upstream -l/--log-level, -L/--log-file, -V/--version).
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-V' || a === '--version') {
      process.stdout.write(`nydus-image ${NYDUS_IMAGE_VERSION} (nydus-ts)\n`);
      return 0;
    }
    if (a === '-h' || a === '--help') {
      process.stdout.write(usage() + '\n');
      return 0;
    }
    if (a === '--debug') continue;
    const m = /^(?:-l|--log-level)(?:=(.*))?$/.exec(a);
    if (m) {
      const v = m[1] ?? argv[++i];
      if (!v || !isLogLevel(v)) throw new UsageError(`invalid value '${v ?? ''}' for --log-level: expected trace, debug, info, warn or error`);
      setLogLevel(v);
      continue;
    }
    const lf = /^(?:-L|--log-file)(?:=(.*))?$/.exec(a);
    if (lf) {
      const v = lf[1] ?? argv[++i];
      if (!v) throw new UsageError('missing value for --log-file');
      // Appended, ".log" added without an extension (upstream's setup_logging), never rotated.
      try {
        logToFile(v);
      } catch (e) {
        throw new UsageError(`--log-file ${v}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      continue;
    }
    break;
  }
  const name = argv[i];
  if (!name) {
    process.stderr.write(usage() + '\n');
    return 2;
  }
  if (name.startsWith('-')) throw new UsageError(`unknown option '${name}'`);
  const sub = await loadSubcommand(name);
  if (!sub) throw new UsageError(`unknown subcommand '${name}'`);
  return (await sub.run(argv.slice(i + 1))) ?? 0;
}

await runMain('nydus-image', main);
