// nydusify: OCI ↔ nydus image tooling (upstream contrib/nydusify). One module per subcommand in
// ./nydusify/<name>.ts exporting `run(args)` and `usage`; aliases as upstream (view, pack).
import { UsageError } from '../util/errors.js';
import { isLogLevel, setLogLevel } from '../util/log.js';
import { runMain } from './main.js';
import { VERSION } from './command.js';

export const NYDUSIFY_VERSION = VERSION;

interface Subcommand {
  run(args: string[]): Promise<number | void>;
}

const SUBCOMMANDS: Record<string, string> = {
  convert: 'Convert an OCI image in a registry to a nydus image',
  check: 'Check a nydus image against its OCI source (manifest, bootstrap, files)',
  mount: 'Mount a nydus image from a registry with nydusd (alias: view)',
  build: 'Build a nydus image from a directory (alias: pack)',
};
const ALIASES: Record<string, string> = { view: 'mount', pack: 'build' };

function usage(): string {
  const lines = ['Usage: nydusify [-D] [-l LEVEL] <SUBCOMMAND> [OPTIONS]', '', 'Options:'];
  lines.push('  -D, --debug            debug logging', '  -l, --log-level LEVEL  trace, debug, info, warn or error (default: info)', '  --log-file FILE        accepted, logs go to stderr');
  lines.push('  -h, --help             print this help and exit', '  -V, -v, --version      print the version and exit', '', 'Subcommands:');
  for (const [k, v] of Object.entries(SUBCOMMANDS)) lines.push(`  ${k.padEnd(9)}${v}`);
  lines.push('', "Run 'nydusify SUBCOMMAND --help' for its options.");
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-D' || a === '--debug') {
      setLogLevel('debug');
      continue;
    }
    if (a === '-v' || a === '-V' || a === '--version') {
      process.stdout.write(`nydusify ${NYDUSIFY_VERSION} (nydus-ts)\n`);
      return 0;
    }
    if (a === '-h' || a === '--help') {
      process.stdout.write(usage() + '\n');
      return 0;
    }
    const m = /^(?:-l|--log-level)(?:=(.*))?$/.exec(a);
    if (m) {
      const v = m[1] ?? argv[++i];
      if (!v || !isLogLevel(v)) throw new UsageError(`invalid value '${v ?? ''}' for --log-level`);
      setLogLevel(v);
      continue;
    }
    if (a === '--log-file') {
      i++;
      continue;
    }
    break;
  }
  const raw = argv[i];
  if (!raw) {
    process.stderr.write(usage() + '\n');
    return 2;
  }
  const name = ALIASES[raw] ?? raw;
  if (raw.startsWith('-')) throw new UsageError(`unknown option '${raw}'`);
  if (!Object.hasOwn(SUBCOMMANDS, name)) throw new UsageError(`unknown subcommand '${raw}' (expected ${Object.keys(SUBCOMMANDS).join(', ')})`);
  const mod = (await import(new URL(`./nydusify/${name}.js`, import.meta.url).href)) as Subcommand;
  return (await mod.run(argv.slice(i + 1))) ?? 0;
}

await runMain('nydusify', main);
