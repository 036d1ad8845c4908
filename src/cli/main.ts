// The one place executables catch errors: a NydusError prints "<prog>: <message>" and exits 1,
// a UsageError exits 2 with a hint; stacks only with --debug or NYDUS_DEBUG=1.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { NydusError, UsageError, describeError } from '../util/errors.js';
import { redact } from '../util/log.js';
import { ControlError } from '../daemon/control.js';

export async function runMain(prog: string, fn: (argv: string[]) => Promise<number | void>): Promise<void> {
  const argv = process.argv.slice(2);
  const debug = process.env.NYDUS_DEBUG === '1' || argv.includes('--debug');
  try {
    const code = await fn(argv);
    process.exitCode = code ?? 0;
  } catch (err) {
    if (debug && err instanceof Error) process.stderr.write(`${err.stack ?? err.message}\n`);
    // Errors may quote URLs or configs: same redaction as log lines.
    const msg = redact(describeError(err));
    if (err instanceof UsageError) {
      const cmd = 'command' in err && typeof err.command === 'string' ? err.command : prog;
      process.stderr.write(`${prog}: ${msg} (see '${cmd} --help')\n`);
      process.exitCode = 2;
    } else if (err instanceof NydusError || (err instanceof ControlError && err.status < 500)) {
      // ControlError 4xx: a bad request of the user's (e.g. a corrupt --bootstrap at start-up).
      process.stderr.write(`${prog}: ${msg}\n`);
      process.exitCode = 1;
    } else if (err && typeof err === 'object' && 'code' in err && 'path' in err) {
      // Node system errors on user-named paths (ENOENT, EACCES, ...): a user mistake, not a crash.
      process.stderr.write(`${prog}: ${msg}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`${prog}: internal error: ${msg}\n`);
      if (!debug && err instanceof Error && err.stack) process.stderr.write('(run with NYDUS_DEBUG=1 for the stack)\n');
      process.exitCode = 70;
    }
  }
}

/** node:util parseArgs in strict mode, with its errors turned into one-line UsageErrors. */
export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(
  args: string[],
  options: T,
  allowPositionals = true,
): { values: { [K in keyof T]?: T[K] extends { type: 'boolean' } ? boolean : T[K] extends { multiple: true } ? string[] : string }; positionals: string[] } {
  // A value may start with '-' (`--target-suffix -nydus`), which parseArgs calls ambiguous: when the
  // word after a string flag is not itself a known flag, pass the pair as `--flag=value`.
  const longOf = (a: string): string | undefined =>
    a.startsWith('--') ? (a.slice(2) in options ? a.slice(2) : undefined) : a.length === 2 ? Object.keys(options).find((k) => options[k]!.short === a[1]) : undefined;
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const long = longOf(args[i]!);
    const next = args[i + 1];
    if (long && options[long]!.type === 'string' && next !== undefined && next.length > 1 && next.startsWith('-') && longOf(next.split('=')[0]!) === undefined) {
      joined.push(`--${long}=${next}`);
      i++;
    } else joined.push(args[i]!);
  }
  args = joined;
  try {
    const r = parseArgs({ args, options, allowPositionals, strict: true });
    return r as unknown as ReturnType<typeof parseFlags<T>>;
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify a positional.*$/s, ''));
  }
}

/** Parses a size like "0x100000", "1048576", "1M", "4K". */
export function parseSize(flag: string, s: string): number {
  const m = /^(0x[0-9a-f]+|\d+)\s*([kmg]i?b?)?$/i.exec(s.trim());
  if (!m) throw new UsageError(`invalid value '${s}' for ${flag}: expected a number such as 0x100000 or 1M`);
  let n = m[1]!.toLowerCase().startsWith('0x') ? parseInt(m[1]!, 16) : parseInt(m[1]!, 10);
  const unit = (m[2] ?? '').toLowerCase()[0];
  if (unit === 'k') n *= 1024;
  else if (unit === 'm') n *= 1024 * 1024;
  else if (unit === 'g') n *= 1024 * 1024 * 1024;
  return n;
}

export { humanBytes } from '../util/human.js';
