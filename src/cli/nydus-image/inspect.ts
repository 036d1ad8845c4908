// nydus-image inspect BOOTSTRAP -R "<request>"  (request mode: JSON on stdout)
import { createInterface } from 'node:readline';
import { parseFlags } from '../main.js';
import { Inspector } from '../../image/inspect.js';
import { loadBootstrap } from './load.js';
import { describeError } from '../../util/errors.js';

export const usage = 'nydus-image inspect [-B] BOOTSTRAP [-R REQUEST]   (stats | blobs | prefetch | ls [DIR] | cd DIR | stat PATH | chunk OFFSET | icheck INODE)';

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    bootstrap: { type: 'string', short: 'B' },
    request: { type: 'string', short: 'R' },
    'blob-dir': { type: 'string', short: 'D' },
    'log-level': { type: 'string', short: 'l' },
    debug: { type: 'boolean' },
  });
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
