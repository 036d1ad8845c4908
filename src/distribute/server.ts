// Server side: convert each directory to a RAFS v6 image (blobs into serverfile/nydusblobs, one
// client bundle per directory), then run nydus-backend-proxy as the nydusd_http_server service.
// `clean` undoes exactly that, from the state file start wrote.
import { chmodSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, isIP } from 'node:net';
import { basename, join, resolve } from 'node:path';
import { NydusError } from '../util/errors.js';
import {
  BLOBS_DIR, BOOTSTRAP, CONFIG, Created, DEFAULT_PORT, RUNTIME_DIR, SERVER_DIR, SERVER_SERVICE, SERVER_STATE,
  checkImageName, nydusdConfig, readJson, removeCreated, writeJson,
} from './layout.js';
import { installRoot, run, toolArgv, waitFor } from './proc.js';
import { installRuntime } from './runtime.js';
import { ensureService, serviceFiles, serviceLogTail, serviceRunning, stopService, type ServiceHandle, type ServiceSpec } from './service.js';

export interface ServerStartOptions {
  ip: string;
  dirs: string[];
  workDir: string;
  port?: number;
  bundle?: boolean;
  log?: (line: string) => void;
}

export interface ImageRecord {
  name: string;
  source: string;
  blobs: string[];
  bundleDir: string;
  tarball?: string;
}

export interface ServerState {
  ip: string;
  port: number;
  images: ImageRecord[];
  service?: ServiceHandle;
  created: string[];
}

const fail = (msg: string): never => {
  throw new NydusError('ERR_CLI_USAGE', msg);
};

/** One-line errors for the usual mistakes: busy port, address not on this host. */
export function checkListen(ip: string, port: number): Promise<void> {
  return new Promise((resolveP, reject) => {
    const s = createServer();
    s.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') reject(new NydusError('ERR_CLI_USAGE', `port ${port} on ${ip} is already in use (another nydus-backend-proxy? run 'server clean' or choose --port)`));
      else if (e.code === 'EADDRNOTAVAIL') reject(new NydusError('ERR_CLI_USAGE', `${ip} is not an address of this host`));
      else reject(new NydusError('ERR_IO', `cannot listen on ${ip}:${port}: ${e.message}`));
    });
    s.listen(port, ip, () => s.close(() => resolveP()));
  });
}

/** Copies a script template, pointing it at this install (the node runs the same nydus-ts). */
function installScript(template: string, dest: string, created: Created): void {
  const text = readFileSync(join(installRoot(), 'scripts', 'distribute', template), 'utf8').replace(/__NYDUS_TS_HOME__/g, installRoot());
  created.willCreate(dest);
  writeFileSync(dest, text);
  chmodSync(dest, 0o755);
}

async function buildImage(source: string, name: string, w: string, created: Created, log: (l: string) => void): Promise<ImageRecord> {
  const bundleDir = join(w, name);
  const blobsDir = join(w, SERVER_DIR, BLOBS_DIR);
  created.mkdirp(bundleDir, (d) => mkdirSync(d));
  const bootstrap = join(bundleDir, BOOTSTRAP);
  const outJson = join(w, SERVER_DIR, `${name}.build.json`);
  created.willCreate(bootstrap);
  created.willCreate(outJson);
  const [node, ...pre] = toolArgv('nydus-image');
  const args = [...pre, 'create', '--bootstrap', bootstrap, '--blob-dir', blobsDir, '--fs-version', '6', '--compressor', 'zstd', '--features', 'blob-toc', '--output-json', outJson, '--log-level', 'warn', source];
  // Blobs are named by id, which we learn afterwards: a blob file that existed before (same
  // content from another directory or an earlier run) is recorded only if we recorded it then.
  const before = new Set(readdirSync(blobsDir));
  const r = await run(node!, args, { timeoutMs: 30 * 60_000 });
  if (r.code !== 0) throw new NydusError('ERR_BUILD', `nydus-image create ${source} failed: ${(r.stderr.trim().split('\n').pop() ?? '') || `exit ${r.code}`}`);
  const out = readJson<{ blobs?: string[] }>(outJson);
  const blobs = out?.blobs ?? [];
  for (const b of blobs) if (!before.has(b)) created.record(join(blobsDir, b));
  log(`converted ${source} -> ${bundleDir} (${blobs.length} blob${blobs.length === 1 ? '' : 's'}: ${blobs.map((b) => b.slice(0, 12)).join(', ')})`);
  return { name, source, blobs, bundleDir };
}

export async function serverStart(o: ServerStartOptions): Promise<ServerState> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  if (!isIP(o.ip)) fail(`invalid -i '${o.ip}': expected the server's IP address`);
  const port = o.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`invalid --port '${o.port}'`);
  if (o.dirs.length === 0) fail('missing -d DIR1,DIR2: the directories to distribute');
  const sources = o.dirs.map((d) => resolve(d));
  const names = new Map<string, string>();
  for (const s of sources) {
    const st = statSync(s, { throwIfNoEntry: false });
    if (!st) fail(`directory ${s} does not exist`);
    if (!st!.isDirectory()) fail(`${s} is not a directory`);
    const name = basename(s);
    try {
      checkImageName(name, s);
    } catch (e) {
      fail((e as Error).message);
    }
    if (names.has(name)) fail(`directories ${names.get(name)} and ${s} have the same name '${name}'; bundles are named after directories`);
    names.set(name, s);
  }
  const w = resolve(o.workDir);
  const serverDir = join(w, SERVER_DIR);
  const stateFile = join(serverDir, SERVER_STATE);
  const prev = readJson<ServerState>(stateFile);

  const spec: ServiceSpec = {
    name: SERVER_SERVICE,
    description: 'nydus-backend-proxy serving nydus blobs for file distribution (nydus-distribute)',
    argv: [...toolArgv('nydus-backend-proxy'), '--blobsdir', join(serverDir, BLOBS_DIR), '--address', o.ip, '--port', String(port)],
    cwd: serverDir,
    stateDir: serverDir,
    restart: 'always',
  };
  // Check the port before the slow conversion, unless our own proxy already holds it.
  const ours = prev?.service && prev.ip === o.ip && prev.port === port && (await serviceRunning(prev.service));
  if (!ours) await checkListen(o.ip, port);

  const created = new Created(prev?.created);
  created.mkdirp(join(serverDir, BLOBS_DIR), (d) => mkdirSync(d));
  created.willCreate(stateFile);

  const images: ImageRecord[] = [];
  for (const [name, source] of names) images.push(await buildImage(source, name, w, created, log));
  for (const img of images) {
    const cfg = join(img.bundleDir, CONFIG);
    created.willCreate(cfg);
    writeJson(cfg, nydusdConfig(o.ip, port, img.name));
    installScript('start.sh', join(img.bundleDir, 'start.sh'), created);
    installScript('clean.sh', join(img.bundleDir, 'clean.sh'), created);
    if (o.bundle) {
      const bytes = installRuntime(img.bundleDir, created);
      log(`bundled a Node runtime and nydusd into ${join(img.bundleDir, RUNTIME_DIR)} (${(bytes / 2 ** 20).toFixed(1)} MiB)`);
      img.tarball = join(w, `${img.name}.tar.gz`);
      created.willCreate(img.tarball);
      const r = await run('tar', ['-czf', img.tarball, '-C', w, img.name], { timeoutMs: 10 * 60_000 });
      if (r.code !== 0) throw new NydusError('ERR_IO', `tar ${img.tarball} failed: ${r.stderr.trim().split('\n')[0] ?? ''}`);
      log(`bundle ${img.tarball}, ${(statSync(img.tarball).size / 2 ** 20).toFixed(1)} MiB (copy it to nodes: scp ${img.tarball} node:/path/ && tar -xzf ${img.name}.tar.gz)`);
    }
  }
  installScript('serverclean.sh', join(serverDir, 'serverclean.sh'), created);
  installScript('serverstart.sh', join(serverDir, 'serverstart.sh'), created);

  const { handle, action } = await ensureService(spec);
  for (const f of serviceFiles(handle)) created.record(f);
  const state: ServerState = { ip: o.ip, port, images: mergeImages(prev?.images ?? [], images), service: handle, created: created.paths };
  writeJson(stateFile, state);
  const host = o.ip.includes(':') ? `[${o.ip}]` : o.ip;
  const up = await waitFor(async () => {
    try {
      const res = await fetch(`http://${host}:${port}/metrics`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      return res.ok;
    } catch {
      return false;
    }
  }, 15_000, 200);
  if (!up) {
    const tail = (await serviceLogTail(handle, 3)).split('\n').filter(Boolean).pop() ?? '';
    await stopService(handle);
    throw new NydusError('ERR_IO', `${SERVER_SERVICE} did not come up on ${host}:${port}${tail ? `: ${tail}` : ''}`);
  }
  log(`${SERVER_SERVICE} ${action} (${handle.kind === 'systemd' ? `systemd unit ${handle.unit}` : `supervised process, log ${handle.logFile}`}) on http://${host}:${port}`);
  return state;
}

/** Images from an earlier run that this run did not rebuild stay recorded (their files are ours). */
function mergeImages(prev: ImageRecord[], now: ImageRecord[]): ImageRecord[] {
  const byName = new Map(prev.map((i) => [i.name, i]));
  for (const i of now) {
    const old = byName.get(i.name);
    byName.set(i.name, old ? { ...i, blobs: [...new Set([...old.blobs, ...i.blobs])], ...(old.tarball && !i.tarball ? { tarball: old.tarball } : {}) } : i);
  }
  return [...byName.values()];
}

/** Stops the service and removes what start created. Returns paths left because they hold foreign files. */
export async function serverClean(workDir: string, log: (l: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<string[]> {
  const w = resolve(workDir);
  const stateFile = join(w, SERVER_DIR, SERVER_STATE);
  const state = readJson<ServerState>(stateFile);
  if (!state) {
    log(`nothing to clean: no ${SERVER_STATE} under ${join(w, SERVER_DIR)}`);
    return [];
  }
  if (state.service) {
    await stopService(state.service);
    log(`stopped ${SERVER_SERVICE}`);
  }
  const left = removeCreated([...state.created, stateFile]);
  for (const p of left) log(`kept ${p}: it holds files nydus-distribute did not create`);
  rmSync(stateFile, { force: true });
  log(`removed ${state.created.length - left.length} path(s) created by server start`);
  return left;
}
