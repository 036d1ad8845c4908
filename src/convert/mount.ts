// `nydusify mount`: pulls the bootstrap layer of a nydus image, writes a nydusd v1 config with a
// registry backend (upstream-features §4.7) and runs nydusd in the foreground until SIGINT/SIGTERM.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NydusError } from '../util/errors.js';
import { logger } from '../util/log.js';
import { dockerCredentials, type Credentials } from './docker-config.js';
import { extractBootstrap } from './manifest.js';
import { ANNO_NYDUS_BOOTSTRAP } from './media-types.js';
import { openImage } from './resolve.js';

const log = logger('mount');

export interface MountOptions {
  target: string;
  mountPath: string;
  workDir: string;
  insecure?: boolean;
  plainHttp?: boolean;
  creds?: Credentials | undefined;
  platform?: string | undefined;
  prefetch?: boolean;
  /** argv prefix of nydusd. */
  nydusd: string[];
  /** Called once the daemon reports RUNNING. */
  onReady?: () => void;
}

export function defaultNydusd(): string[] {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const p = join(d, 'bin', 'nydusd.js');
    if (existsSync(p)) return [process.execPath, p];
    d = dirname(d);
  }
  return ['nydusd'];
}

/** nydusd v1 config as nydusify generates it (the `auth` value is base64 user:pass). */
export function nydusdConfig(o: { scheme: string; host: string; repo: string; auth?: string | undefined; insecure: boolean; cacheDir: string; prefetch: boolean }): Record<string, unknown> {
  return {
    device: {
      backend: { type: 'registry', config: { scheme: o.scheme, host: o.host, repo: o.repo, ...(o.auth ? { auth: o.auth } : {}), skip_verify: o.insecure, timeout: 30, connect_timeout: 10, retry_limit: 2 } },
      cache: { type: 'blobcache', config: { work_dir: o.cacheDir } },
    },
    mode: 'direct',
    digest_validate: false,
    iostats_files: false,
    enable_xattr: true,
    fs_prefetch: { enable: o.prefetch, threads_count: 10, merging_size: 131072 },
  };
}

function daemonState(sock: string): Promise<string | undefined> {
  return new Promise((ok) => {
    const req = http.get({ socketPath: sock, path: '/api/v1/daemon', timeout: 1000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () => {
        try {
          ok((JSON.parse(body) as { state?: string }).state);
        } catch {
          ok(undefined);
        }
      });
    });
    req.on('error', () => ok(undefined));
    req.on('timeout', () => req.destroy());
  });
}

export async function mountImage(o: MountOptions): Promise<number> {
  const img = await openImage(o.target, { insecure: o.insecure ?? false, plainHttp: o.plainHttp ?? false, creds: o.creds, ...(o.platform ? { platform: o.platform } : {}), nydus: true });
  const last = img.manifest.layers.at(-1);
  if (!last || last.annotations?.[ANNO_NYDUS_BOOTSTRAP] !== 'true') throw new NydusError('ERR_FORMAT_INVALID', `${o.target} is not a nydus image (last layer has no nydus-bootstrap annotation)`);
  const workDir = resolve(o.workDir);
  await mkdir(join(workDir, 'cache'), { recursive: true });
  await mkdir(o.mountPath, { recursive: true });
  const bootstrap = join(workDir, 'image.boot');
  await writeFile(bootstrap, extractBootstrap(await img.client.getBlobBytes(img.ref.repo, last.digest, 1 << 30)));
  const creds = o.creds ?? dockerCredentials(img.ref.host);
  const cfg = nydusdConfig({
    // The client learned whether the registry speaks TLS; nydusd must use the same scheme.
    scheme: img.client.scheme,
    host: img.client.host,
    repo: img.ref.repo,
    auth: creds ? Buffer.from(`${creds.username}:${creds.password}`).toString('base64') : undefined,
    insecure: o.insecure ?? false,
    cacheDir: join(workDir, 'cache'),
    prefetch: o.prefetch ?? false,
  });
  const cfgPath = join(workDir, 'nydusd-config.json');
  await writeFile(cfgPath, JSON.stringify(cfg, null, 2), { mode: 0o600 });
  const sock = join(workDir, 'api.sock');
  const [cmd, ...pre] = o.nydusd;
  const args = [...pre, '--config', cfgPath, '--mountpoint', resolve(o.mountPath), '--bootstrap', bootstrap, '--apisock', sock, '--log-level', 'info'];
  log.debug(`Command: ${cmd} ${args.join(' ')}`);
  const child = spawn(cmd!, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  const forward = (sig: NodeJS.Signals): void => void child.kill(sig);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  let exited = false;
  const done = new Promise<number>((ok, fail) => {
    child.on('error', (e) => fail(new NydusError('ERR_IO', `cannot run nydusd (${cmd}): ${e.message}`)));
    child.on('exit', (code, sig) => {
      exited = true;
      ok(code ?? (sig ? 128 : 1));
    });
  });
  void (async () => {
    for (let i = 0; i < 300 && !exited; i++) {
      if ((await daemonState(sock)) === 'RUNNING') {
        process.stderr.write(`nydusify: mounted ${o.target} at ${o.mountPath}; Ctrl-C to unmount\n`);
        o.onReady?.();
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    const code = await done;
    return code === 130 || code === 143 ? 0 : code;
  } finally {
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
    // nydusd unmounts on a clean exit; after a crash the mountpoint may be left behind.
    spawnSync('fusermount', ['-u', '-q', resolve(o.mountPath)], { stdio: 'ignore' });
  }
}
