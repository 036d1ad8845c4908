// nydus-image inspect BOOTSTRAP -R "<request>"  (request mode: JSON on stdout)
import { createInterface } from 'node:readline';
import { COMMON_FLAGS, parseCommand, type CommandSpec, type FlagSpec } from '../command.js';
import { Inspector } from '../../image/inspect.js';
import { loadBootstrap, BOOTSTRAP_FLAG } from './load.js';
import { describeError } from '../../util/errors.js';

export const SPEC = {
  name: 'nydus-image inspect',
  summary: 'Inspect bootstrap metadata: one request with -R (JSON on stdout), else an interactive prompt',
  args: ['[BOOTSTRAP]'],
  flags: {
    bootstrap: BOOTSTRAP_FLAG,
    request: { short: 'R', arg: 'REQUEST', desc: 'stats | blobs | prefetch | ls [DIR] | cd DIR | stat PATH | chunk OFFSET | icheck INODE' },
    'blob-dir': { short: 'D', arg: 'DIR', desc: 'blob directory (accepted, not needed)' },
    'log-level': COMMON_FLAGS['log-level'],
    debug: COMMON_FLAGS.debug,
  },
} as const satisfies CommandSpec<Record<string, FlagSpec>>;

export async function run(args: string[]): Promise<number> {
  const p = parseCommand(SPEC, args);
  if (!p) return 0;
  const { values, positionals } = p;
  const inspector = new Inspector(loadBootstrap(values.bootstrap ?? positionals[0]));
  if (values.request !== undefined) {
    const out = inspector.request(values.request);
    // Requests that answer nothing (cd) print nothing, as upstream.
    if (out !== undefined) console.log(JSON.stringify(out));
    return 0;
  }
  // Interactive prompt, as upstream: one request per line, `exit`/`q` to leave.
  const rl = createInterface({ input: process.stdin, output: process.stdout, prompt: 'Inspecting RAFS :> ' });
  rl.prompt();
  for await (const line of rl) {
    const l = line.trim();
    if (l === 'exit' || l === 'q') break;
    if (l) {
      try {
        const out = inspector.request(l);
        if (out !== undefined) console.log(JSON.stringify(out, null, 2));
      } catch (e) {
        console.log(`error: ${describeError(e)}`);
      }
    }
    rl.prompt();
  }
  rl.close();
  return 0;
}
