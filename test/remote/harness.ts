// Shared pieces of the remote-storage end-to-end tests: build an image with the real CLI, run
// nydusd / nydus-backend-proxy as real processes (killed by their own PIDs), talk to nydusd's API
// socket, hash trees, and poll conditions with deadlines. Reads of the FUSE mount go through child
// processes (async) so in-process servers (http-faults, token server) keep answering meanwhile.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, lstatSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { BIN, REPO_ROOT } from '../helpers/paths.js';
import { until } from '../helpers/poll.js';
import { freePort } from '../helpers/registry.js';

export function nydusdSkip(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (FUSE mounts)';
  if (!existsSync('/dev/fuse')) return 'no /dev/fuse';
  return undefined;
}

export function waitFor<T>(what: string, deadlineMs: number, probe: () => T | undefined | false | Promise<T | undefined | false>, everyMs = 50): Promise<T> {
  return until(what, probe, deadlineMs, everyMs);
}

export interface Built {
  boot: string;
  blobDir: string;
  blobId: string;
  blobPath: string;
}

/** `nydus-image create` (v6, zstd by default); `prefetch` paths go to stdin with --prefetch-policy fs. */
export function buildImage(src: string, out: string, opts: { fsVersion?: 5 | 6; compressor?: string; prefetch?: string[] } = {}): Built {
  mkdirSync(join(out, 'blobs'), { recursive: true });
  const boot = join(out, 'bootstrap');
  const args = ['create', '--fs-version', String(opts.fsVersion ?? 6), '--compressor', opts.compressor ?? 'zstd', '-B', boot, '-D', join(out, 'blobs'), '--output-json', join(out, 'out.json')];
  if (opts.prefetch) args.push('--prefetch-policy', 'fs');
  args.push(src);
  const r = spawnSync(process.execPath, [BIN('nydus-image'), ...args], { cwd: REPO_ROOT, input: opts.prefetch ? opts.prefetch.join('\n') + '\n' : '', encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`nydus-image create failed: ${r.stderr}`);
  const blobId = (JSON.parse(readFileSync(join(out, 'out.json'), 'utf8')) as { blobs: string[] }).blobs[0]!;
  return { boot, blobDir: join(out, 'blobs'), blobId, blobPath: join(out, 'blobs', blobId) };
}

/** rel path → "f:<sha256>" | "l:<target>" | "d" for every entry under root. */
export function hashTree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string, rel: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(p);
      if (st.isDirectory()) {
        out.set(r, 'd');
        walk(p, r);
      } else if (st.isSymbolicLink()) out.set(r, `l:${readlinkSync(p)}`);
      else if (st.isFile()) out.set(r, `f:${createHash('sha256').update(readFileSync(p)).digest('hex')}`);
      else out.set(r, `o:${st.mode}`);
    }
  };
  walk(root, '');
  return out;
}

/** The same as hashTree, but every read happens in a child process (safe while in-process servers must answer). */
export async function hashTreeAsync(root: string, timeoutMs = 60_000): Promise<Map<string, string>> {
  const script = `import{createHash}from'node:crypto';import*as f from'node:fs';import{join}from'node:path';const o={};const w=(d,r)=>{for(const n of f.readdirSync(d).sort()){const p=join(d,n),k=r?r+'/'+n:n,s=f.lstatSync(p);if(s.isDirectory()){o[k]='d';w(p,k)}else if(s.isSymbolicLink())o[k]='l:'+f.readlinkSync(p);else if(s.isFile())o[k]='f:'+createHash('sha256').update(f.readFileSync(p)).digest('hex');else o[k]='o:'+s.mode}};w(process.argv[1],'');process.stdout.write(JSON.stringify(o))`;
  const r = await run([process.execPath, '--input-type=module', '-e', script, root], timeoutMs);
  if (r.code !== 0) throw new Error(`tree walk of ${root} failed: ${r.err}`);
  return new Map(Object.entries(JSON.parse(r.out) as Record<string, string>));
}

export interface RunResult {
  code: number | null;
  out: string;
  err: string;
  ms: number;
  timedOut: boolean;
}

/** Runs argv asynchronously; kills it (by its PID) after timeoutMs. */
export function run(argv: string[], timeoutMs: number): Promise<RunResult> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const c = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let timedOut = false;
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      c.kill('SIGKILL');
    }, timeoutMs);
    c.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err, ms: performance.now() - t0, timedOut });
    });
  });
}

/** sha256 of a file read by a child process, with elapsed time; `hash` undefined when the read failed. */
export async function readHash(path: string, timeoutMs = 60_000): Promise<{ hash?: string; err: string; ms: number; timedOut: boolean }> {
  const r = await run(['sha256sum', path], timeoutMs);
  return { ...(r.code === 0 ? { hash: r.out.split(' ')[0]! } : {}), err: r.err, ms: r.ms, timedOut: r.timedOut };
}

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

export function mountsUnder(root: string): string[] {
  return readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m.startsWith(root));
}

/** GET on nydusd's API socket → parsed JSON. */
export function api(sock: string, path: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: sock, path, method: 'GET', timeout: 10_000 }, (res) => {
      let s = '';
      res.on('data', (d: Buffer) => (s += d.toString()));
      res.on('end', () => {
        try {
          resolve(JSON.parse(s) as Record<string, unknown>);
        } catch (e) {
          reject(new Error(`${path}: HTTP ${res.statusCode} ${s}`, { cause: e }));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${path}: timeout`)));
    req.on('error', reject);
    req.end();
  });
}

export interface BlobcacheMetrics {
  data_all_ready: boolean;
  ready_chunks: number;
  total_chunks: number;
  prefetch_data_amount: number;
  prefetch: { done?: boolean; fetchedChunks?: number; totalChunks?: number } | null;
  [k: string]: unknown;
}

export interface FsOpts {
  /** The backend's {type, config}. */
  backend: { type: string; config: Record<string, unknown> };
  workDir: string;
  prefetch?: { enable: boolean; threads_count?: number; merging_size?: number; bandwidth_rate?: number; prefetch_all?: boolean };
}

export function v1Config(o: FsOpts): Record<string, unknown> {
  return {
    device: { backend: o.backend, cache: { type: 'blobcache', config: { work_dir: o.workDir } } },
    mode: 'direct',
    digest_validate: true,
    fs_prefetch: { enable: false, threads_count: 4, merging_size: 1 << 20, bandwidth_rate: 0, prefetch_all: false, ...(o.prefetch ?? {}) },
  };
}

export function registryBackend(host: string, repo: string, extra: Record<string, unknown> = {}): FsOpts['backend'] {
  return { type: 'registry', config: { scheme: 'http', host, repo, timeout: 5, connect_timeout: 5, retry_limit: 2, ...extra } };
}

export class Nydusd {
  readonly apisock: string;
  readonly log: string;
  #proc: ChildProcess | undefined;
  #exited = false;
  stderr = '';

  constructor(readonly dir: string, readonly mnt: string) {
    this.apisock = join(dir, 'api.sock');
    this.log = join(dir, 'nydusd.log');
  }

  get pid(): number | undefined {
    return this.#proc?.pid;
  }

  async start(config: Record<string, unknown>, boot: string, extra: { prefetchFiles?: string[] } = {}): Promise<void> {
    mkdirSync(this.mnt, { recursive: true });
    const cfg = join(this.dir, 'config.json');
    writeFileSync(cfg, JSON.stringify(config));
    const args = [BIN('nydusd'), '--config', cfg, '--mountpoint', this.mnt, '--bootstrap', boot, '--apisock', this.apisock, '--log-level', 'warn'];
    if (extra.prefetchFiles) {
      const f = join(this.dir, 'prefetch-files');
      writeFileSync(f, extra.prefetchFiles.join('\n') + '\n');
      args.push('--prefetch-files', f);
    }
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#proc = p;
    p.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-20_000)));
    p.once('exit', () => (this.#exited = true));
    await waitFor(`nydusd to mount ${this.mnt}`, 20_000, () => {
      if (this.#exited) throw new Error(`nydusd exited before mounting: ${this.stderr}`);
      return mountsUnder(this.mnt).includes(this.mnt) && existsSync(this.apisock);
    });
  }

  metrics(kind: 'backend' | 'blobcache'): Promise<Record<string, unknown>> {
    return api(this.apisock, `/api/v1/metrics/${kind}`);
  }

  async blobcache(): Promise<BlobcacheMetrics> {
    return (await this.metrics('blobcache')) as BlobcacheMetrics;
  }

  async backendBytes(): Promise<number> {
    return Number((await this.metrics('backend')).read_amount_total);
  }

  /** SIGTERM, wait for the unmount; then umount -l and SIGKILL as a last resort. */
  async stop(): Promise<void> {
    const p = this.#proc;
    if (p && !this.#exited) {
      p.kill('SIGTERM');
      try {
        await waitFor('nydusd to exit', 8_000, () => this.#exited);
      } catch {
        /* fall through */
      }
    }
    if (mountsUnder(this.mnt).includes(this.mnt)) spawnSync('umount', ['-l', this.mnt], { timeout: 10_000 });
    if (p && !this.#exited) {
      p.kill('SIGKILL');
      await waitFor('nydusd to die', 5_000, () => this.#exited).catch(() => undefined);
    }
  }
}

/** nydus-backend-proxy on a free port; `metrics()` is its GET /metrics. */
export class BackendProxy {
  #proc: ChildProcess | undefined;
  #exited = false;
  port = 0;

  constructor(readonly blobsDir: string) {}

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(port?: number): Promise<void> {
    this.port = port ?? (await freePort());
    this.#exited = false;
    const p = spawn(process.execPath, [BIN('nydus-backend-proxy'), '--blobsdir', this.blobsDir, '--address', '127.0.0.1', '--port', String(this.port)], { stdio: ['ignore', 'ignore', 'ignore'] });
    this.#proc = p;
    p.once('exit', () => (this.#exited = true));
    await waitFor('nydus-backend-proxy to listen', 15_000, async () => {
      if (this.#exited) throw new Error('nydus-backend-proxy exited');
      return (await this.metrics().catch(() => undefined)) !== undefined;
    });
  }

  async metrics(): Promise<{ requests: number; bytesServed: number; rangeRequests: number }> {
    const r = await fetch(`http://${this.host}/metrics`);
    return (await r.json()) as { requests: number; bytesServed: number; rangeRequests: number };
  }

  async stop(): Promise<void> {
    const p = this.#proc;
    if (!p || this.#exited) return;
    p.kill('SIGTERM');
    await waitFor('nydus-backend-proxy to exit', 5_000, () => this.#exited).catch(() => {
      p.kill('SIGKILL');
    });
  }
}
