// Shared pieces of the API acceptance tests: two small images with the same paths and different
// contents, a real nydusd process with an API socket, real curl, and teardown that never leaves a
// FUSE mount or a process behind.
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { apiCall } from '../../src/api/client.js';
import { isFuseMounted, unmountFuse, withTimeout } from '../../src/fuse/mount.js';
import { BIN, REPO_ROOT } from '../helpers/paths.js';
import { until } from '../helpers/poll.js';

/** Why these tests cannot run here, or undefined. */
export function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (FUSE mount)';
  if (!existsSync('/dev/fuse')) return 'no /dev/fuse';
  if (spawnSync('curl', ['--version'], { stdio: 'ignore' }).status !== 0) return 'no curl';
  // Only the environment decides: a nydusd that fails to start must turn these tests red.
  return undefined;
}

import { pattern } from '../helpers/data.js';
export { pattern, until };

/** Relative path → contents. Sizes cover: tiny, sub-chunk, exactly one chunk, multi-chunk. */
export type Tree = Map<string, Buffer>;

export function makeTree(dir: string, seed: number, scale = 1): Tree {
  const files: Array<[string, number]> = [
    ['hello.txt', 0],
    ['small.bin', 10_000],
    ['dir/one-chunk.bin', 1 << 20],
    ['dir/sub/multi.bin', Math.round(2_600_000 * scale)],
    ['dir/sub/text.txt', 0],
  ];
  const t: Tree = new Map();
  for (const [rel, size] of files) {
    const data = size ? pattern(size, seed * 1000 + size) : Buffer.from(`image ${seed}: ${rel}\n`.repeat(rel.endsWith('text.txt') ? 3000 : 1));
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), data);
    t.set(rel, data);
  }
  return t;
}

export interface Image {
  bootstrap: string;
  tree: Tree;
}

export interface Workspace {
  root: string;
  blobs: string;
  cache: string;
  mnt: string;
  sock: string;
  /** A v1 localfs + blobcache config file (what the seed passes as "config"). */
  configPath: string;
  configText: string;
  images: Image[];
}

/** Builds `n` images (same paths, different bytes) into one blob dir. */
export function makeWorkspace(prefix: string, n = 2): Workspace {
  const root = mkdtempSync(`/tmp/nydus-api-${prefix}-`);
  chmodSync(root, 0o755);
  const w: Workspace = {
    root,
    blobs: join(root, 'blobs'),
    cache: join(root, 'cache'),
    mnt: join(root, 'mnt'),
    sock: join(root, 'api.sock'),
    configPath: join(root, 'config.json'),
    configText: '',
    images: [],
  };
  for (const d of [w.blobs, w.cache, w.mnt]) mkdirSync(d);
  w.configText = JSON.stringify({
    device: { backend: { type: 'localfs', config: { dir: w.blobs } }, cache: { type: 'blobcache', config: { work_dir: w.cache } } },
    mode: 'direct',
    iostats_files: false,
  });
  writeFileSync(w.configPath, w.configText);
  for (let i = 0; i < n; i++) {
    const src = join(root, `src${i + 1}`);
    const tree = makeTree(src, i + 1, 1 + i * 0.3);
    const bootstrap = join(root, `image${i + 1}.boot`);
    const r = spawnSync(process.execPath, [BIN('nydus-image'), 'create', '--bootstrap', bootstrap, '--blob-dir', w.blobs, '--fs-version', i % 2 ? '5' : '6', src], { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, `nydus-image create: ${r.stderr}`);
    w.images.push({ bootstrap, tree });
  }
  return w;
}

export interface CurlResult {
  status: number;
  text: string;
  json: unknown;
}

/** One request with the real curl over the unix socket; `args` go before the URL. */
export function curl(sock: string, method: string, path: string, opts: { data?: string; dataFile?: string; args?: string[]; timeoutMs?: number } = {}): Promise<CurlResult> {
  const argv = ['-sS', '--unix-socket', sock, '-X', method, '-H', 'Content-Type: application/json', '-o', '-', '-w', '\n%{http_code}', ...(opts.args ?? [])];
  if (opts.data !== undefined) argv.push('--data-binary', opts.data);
  if (opts.dataFile !== undefined) argv.push('--data-binary', `@${opts.dataFile}`);
  argv.push(`http://localhost${path}`);
  return new Promise((resolve, reject) => {
    execFile('curl', argv, { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      const nl = stdout.lastIndexOf('\n');
      const status = Number(stdout.slice(nl + 1));
      if (err && !status) return reject(new Error(`curl ${method} ${path}: ${stderr || err.message}`));
      const text = stdout.slice(0, Math.max(0, nl));
      let json: unknown;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      resolve({ status, text, json });
    });
  });
}

export interface Daemon {
  proc: ChildProcess;
  log: () => string;
  exited: Promise<number | null>;
  /** Every state GET /api/v1/daemon reported while waiting for RUNNING, in order. */
  statesSeen: string[];
}

/** Starts nydusd (no --bootstrap unless given) and waits until the API reports RUNNING. */
export async function startDaemon(w: Workspace, opts: { bootstrap?: string; args?: string[]; config?: string; sizePool?: boolean } = {}): Promise<Daemon> {
  const args = [BIN('nydusd'), '--config', opts.config ?? w.configPath, '--mountpoint', w.mnt, '--apisock', w.sock, '--log-level', 'warn', ...(opts.bootstrap ? ['--bootstrap', opts.bootstrap] : []), ...(opts.args ?? [])];
  // The production start-up path: bin/nydusd.js sizes libuv's pool itself, so nothing is forced
  // from outside (an inherited UV_THREADPOOL_SIZE is dropped) unless a test asks for a pool size.
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.UV_THREADPOOL_SIZE;
  if (opts.sizePool === true) env.UV_THREADPOOL_SIZE = '16';
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  let gone = false;
  void exited.then(() => (gone = true));
  const d: Daemon = { proc, log: () => out, exited, statesSeen: [] };
  await until('nydusd to report RUNNING', async () => {
    if (gone) throw new Error(`nydusd exited early: ${out}`);
    if (!existsSync(w.sock)) return undefined;
    const r = await apiCall(w.sock, 'GET', '/api/v1/daemon', undefined, 2000).catch(() => undefined);
    const state = (r?.body as { state?: string } | undefined)?.state;
    if (state && d.statesSeen.at(-1) !== state) d.statesSeen.push(state);
    return state === 'RUNNING' || undefined;
  }, 30_000, 5);
  return d;
}

/** SIGTERM (then SIGKILL) our daemon and make sure nothing stays mounted at w.mnt. */
export async function stopDaemon(d: Daemon | undefined, w: Workspace): Promise<void> {
  if (d && d.proc.exitCode === null && d.proc.signalCode === null) {
    d.proc.kill('SIGTERM');
    const ok = await withTimeout(d.exited, 10_000, 'nydusd exit').then(() => true, () => false);
    if (!ok) {
      d.proc.kill('SIGKILL');
      await withTimeout(d.exited, 5000, 'nydusd kill').catch(() => undefined);
    }
  }
  if (isFuseMounted(w.mnt)) {
    const step = await withTimeout(unmountFuse(w.mnt, undefined, 5000), 15_000, 'unmount').catch(() => 'timeout');
    if (step === 'timeout' || isFuseMounted(w.mnt)) spawnSync('umount', ['-l', w.mnt], { stdio: 'ignore', timeout: 5000 });
  }
  if (!isFuseMounted(w.mnt)) rmSync(w.root, { recursive: true, force: true });
}

/** Reads every file of `tree` under `dir` and asserts equality. */
export function assertTree(dir: string, tree: Tree, what: string): void {
  for (const [rel, data] of tree) {
    const got = readFileSync(join(dir, rel));
    assert.ok(got.equals(data), `${what}: ${rel} differs (${got.length} vs ${data.length} bytes)`);
  }
}
