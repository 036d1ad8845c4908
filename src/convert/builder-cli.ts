// Runs the builder as nydusify does (upstream-features §4.5): `nydus-image create --type tar-rafs
// --blob-inline-meta [--features blob-toc]` with the layer tar streamed into its stdin, and
// `create` on a directory for `nydusify build`. The binary is ours (bin/nydus-image.js) unless
// --nydus-image names another, so the upstream Rust builder can be swapped in unchanged.
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { NydusError } from '../util/errors.js';
import { logger } from '../util/log.js';
import { packageVersion } from '../util/version.js';

const log = logger('builder');

/** The in-process builder's version, for the nydus-builder-version annotation (as nydus-image -V). */
export const BUILDER_VERSION = `v${packageVersion()}`;

export interface BuildParams {
  fsVersion: 5 | 6;
  compressor: string;
  chunkSize: number;
  /** --batch-size (v6; absent or 0 = off). */
  batchSize?: number;
  /** `bootstrap:local:P` → passed as `--chunk-dict bootstrap=P`. */
  chunkDictPath?: string | undefined;
  /** argv prefix of an external builder (e.g. [node, bin/nydus-image.js]); [] = in-process createImage. */
  nydusImage: string[];
}

export function nydusImageArgv(flag: string | undefined): string[] {
  if (!flag) return [];
  return flag.endsWith('.js') ? [process.execPath, flag] : [flag];
}

function commonArgs(p: BuildParams): string[] {
  const a = ['--log-level', 'warn', '--fs-version', String(p.fsVersion), '--compressor', p.compressor, '--chunk-size', `0x${p.chunkSize.toString(16)}`];
  if (p.batchSize) a.push('--batch-size', `0x${p.batchSize.toString(16)}`);
  if (p.chunkDictPath) a.push('--chunk-dict', `bootstrap=${p.chunkDictPath}`);
  return a;
}

/** Runs the builder; `stdin` (if given) is piped in. Rejects with the builder's last stderr lines. */
function run(argv: string[], stdin: Readable | undefined, what: string): Promise<void> {
  const [cmd, ...pre] = argv;
  log.debug(`Command: ${argv.join(' ')}`);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd!, pre, { stdio: [stdin ? 'pipe' : 'ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (c: Buffer) => {
      err = (err + c.toString('utf8')).slice(-4096);
    });
    let inputError: Error | undefined;
    if (stdin) {
      // EPIPE when the builder exits early: its stderr explains why, so the pipe error is dropped.
      child.stdin!.on('error', () => undefined);
      stdin.on('error', (e) => {
        inputError = e;
        child.kill('SIGKILL');
      });
      stdin.pipe(child.stdin!);
    }
    child.on('error', (e) => reject(new NydusError('ERR_BUILD', `${what}: cannot run ${cmd}: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (inputError) return reject(inputError);
      if (code === 0) return resolve();
      const last = err.trim().split('\n').slice(-3).join(' ').replace(/^nydus-image:\s*/, '');
      reject(new NydusError('ERR_BUILD', `${what}: builder failed (${signal ? `signal ${signal}` : `exit ${code}`})${last ? `: ${last}` : ''}`));
    });
  });
}

/** Packs one layer tar (uncompressed stream) into a nydus blob with inline bootstrap at `blobPath`. */
export function packLayer(tar: Readable, blobPath: string, p: BuildParams, what: string): Promise<void> {
  const args = ['create', ...commonArgs(p), '--type', 'tar-rafs', '--whiteout-spec', 'none', '--blob-inline-meta', '--blob', blobPath];
  if (p.fsVersion === 6) args.push('--features', 'blob-toc');
  // The tar arrives on stdin: both our builder and upstream's read /dev/stdin as a plain stream.
  args.push('/dev/stdin');
  return run([...p.nydusImage, ...args], tar, what);
}

/** `nydusify build`: directory → bootstrap + blob + output JSON (the seed's exact invocation). */
export function buildDirectory(dir: string, bootstrap: string, blob: string, outputJson: string, p: BuildParams): Promise<void> {
  const args = ['create', '--bootstrap', bootstrap, '--log-level', 'warn', '--whiteout-spec', 'oci', '--output-json', outputJson, '--blob', blob, ...commonArgs(p).slice(2), dir];
  return run([...p.nydusImage, ...args], undefined, `build ${dir}`);
}
