// nydus-image: dispatches to one module per subcommand (src/cli/nydus-image/<name>.ts exporting
// `run(args): Promise<number>` and its flag table `SPEC`). Adding a subcommand = adding a file and a SUBCOMMANDS line.
import { UsageError } from '../util/errors.js';
import { logToFile } from '../util/log.js';
import { COMMON_FLAGS, helpText, parseCommand, type CommandSpec, type FlagSpec } from './command.js';
import { runMain } from './main.js';

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
  const lines = ['Subcommands:'];
  for (const [k, v] of Object.entries(SUBCOMMANDS)) lines.push(`  ${k.padEnd(10)}${v}`);
  lines.push('', "Run 'nydus-image SUBCOMMAND --help' for its options.");
  return lines.join('\n');
}

const SPEC = {
  name: 'nydus-image',
  summary: 'Build, check, inspect, merge, unpack and export RAFS v5/v6 images',
  args: ['[SUBCOMMAND]', '[ARGS...]'],
  passThrough: true,
  flags: {
    'log-level': COMMON_FLAGS['log-level'],
    'log-file': { short: 'L', arg: 'FILE', desc: 'write log lines to FILE instead of stderr' },
    debug: COMMON_FLAGS.debug,
  },
  after: usage(),
} as const satisfies CommandSpec<Record<string, FlagSpec>>;

export async function main(argv: string[]): Promise<number> {
  const p = parseCommand(SPEC, argv);
  if (!p) return 0;
  if (p.values['log-file']) {
    // Appended, ".log" added without an extension (upstream's setup_logging), never rotated.
    try {
      logToFile(p.values['log-file']);
    } catch (e) {
      throw new UsageError(`--log-file ${p.values['log-file']}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  const [name, ...rest] = p.positionals;
  if (!name) {
    process.stderr.write(helpText(SPEC));
    return 2;
  }
  const sub = await loadSubcommand(name);
  if (!sub) throw new UsageError(`unknown subcommand '${name}' (expected ${Object.keys(SUBCOMMANDS).join(', ')})`);
  return (await sub.run(rest)) ?? 0;
}

await runMain('nydus-image', main);
