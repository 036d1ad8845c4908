// Command-line parsing for every executable, on commander: one table per command gives its flags,
// value names, defaults and one help line each, so `--help` can never drift from what is parsed.
// Parse errors become one-line UsageErrors (exit 2 in runMain); --help and -V/--version print and
// tell the caller to exit 0. Option values may start with '-' (`--target-suffix -nydus`).
import { Command, CommanderError, Option } from 'commander';
import { UsageError } from '../util/errors.js';
import { isLogLevel, setLogLevel } from '../util/log.js';
import { packageVersion } from '../util/version.js';

/** The one version string (package.json, read once in util/version). */
export const VERSION: string = packageVersion();

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;

export interface FlagSpec {
  /** One-letter alias. */
  readonly short?: string;
  /** Value name; absent for a boolean flag. */
  readonly arg?: string;
  readonly desc: string;
  /** Shown in --help; the command itself applies it (absent flags stay undefined). */
  readonly default?: string;
  readonly choices?: readonly string[];
  /** May be given several times; the values are collected in order. */
  readonly repeat?: boolean;
  /** Accepted (upstream compatibility) but not listed. */
  readonly hidden?: boolean;
}

export interface CommandSpec<F extends Record<string, FlagSpec>> {
  /** As typed by the user, e.g. 'nydus-image create'. */
  readonly name: string;
  readonly summary: string;
  /** Operands in commander syntax, e.g. '<SOURCE>', '[BOOTSTRAP]', '<SOURCE...>'. */
  readonly args?: readonly string[];
  readonly flags: F;
  /** Text after the option list (examples, subcommands). */
  readonly after?: string;
  /** Stop at the first operand: the rest (a subcommand and its flags) is returned untouched. */
  readonly passThrough?: boolean;
}

export type FlagValues<F extends Record<string, FlagSpec>> = {
  [K in keyof F]?: F[K] extends { arg: string } ? (F[K] extends { repeat: true } ? string[] : string) : boolean;
};

/** A usage error that knows which command's --help to point at. */
export class CommandUsageError extends UsageError {
  readonly command: string;
  constructor(command: string, message: string) {
    super(message);
    this.command = command;
  }
}

/** Flags most commands share. */
export const COMMON_FLAGS = {
  'log-level': { short: 'l', arg: 'LEVEL', desc: 'log verbosity', default: 'info', choices: LOG_LEVELS },
  debug: { desc: 'print stack traces of internal errors' },
} as const satisfies Record<string, FlagSpec>;

function build<F extends Record<string, FlagSpec>>(spec: CommandSpec<F>): Command {
  const cmd = new Command(spec.name)
    .description(spec.summary)
    .version(VERSION, '-V, --version', 'print the version and exit')
    .helpOption('-h, --help', 'print this help and exit')
    .exitOverride()
    .configureOutput({ outputError: () => {} })
    .showSuggestionAfterError(true)
    .allowExcessArguments(false)
    .action(() => {});
  if (spec.passThrough) cmd.passThroughOptions();
  for (const a of spec.args ?? []) cmd.argument(a);
  for (const [long, f] of Object.entries(spec.flags)) {
    const o = new Option(`${f.short ? `-${f.short}, ` : ''}--${long}${f.arg ? ` <${f.arg}>` : ''}`, f.desc + (f.default !== undefined ? ` (default: ${f.default})` : ''));
    if (f.choices) o.choices(f.choices);
    if (f.repeat) o.argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]);
    if (f.hidden) o.hideHelp();
    cmd.addOption(o);
  }
  if (spec.after) cmd.addHelpText('after', `\n${spec.after}`);
  return cmd;
}

/** The command's --help text (for docs and tests). */
export function helpText<F extends Record<string, FlagSpec>>(spec: CommandSpec<F>): string {
  return build(spec).helpInformation() + (spec.after ? `\n${spec.after}\n` : '');
}

/**
 * Parses argv (without the program name). Returns undefined when --help or --version was printed
 * (exit 0). A `log-level` flag takes effect here.
 */
export function parseCommand<F extends Record<string, FlagSpec>>(spec: CommandSpec<F>, argv: readonly string[]): { values: FlagValues<F>; positionals: string[] } | undefined {
  const cmd = build(spec);
  try {
    cmd.parse([...argv], { from: 'user' });
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return undefined;
    throw new CommandUsageError(spec.name, e.message.replace(/^error: /, '').split('\n')[0]!);
  }
  const opts = cmd.opts();
  const values: Record<string, unknown> = {};
  for (const o of cmd.options) if (o.long && o.long !== '--version' && o.long !== '--help') values[o.long.slice(2)] = opts[o.attributeName()];
  const level = values['log-level'];
  if (typeof level === 'string' && isLogLevel(level)) setLogLevel(level);
  return { values: values as FlagValues<F>, positionals: cmd.args };
}
