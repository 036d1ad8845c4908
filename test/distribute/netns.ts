// A star testbed for file distribution: one server network namespace and N node namespaces, each
// node with its own point-to-point link to the server through a user-space delay line
// (delayline.py over TUN devices; this kernel has no sch_netem). Addresses are from the RFC 2544
// benchmarking range and exist only inside these namespaces. The server holds SERVER_IP on every
// link (as the local end of each peer route), so one proxy bound to SERVER_IP serves all nodes.
// Only the network namespace is switched for commands (nsenter --net): mounts stay visible on the
// host, which is what lets tests read every node's mount directly.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/paths.js';

export const SERVER_IP = '198.18.0.254';
export const nodeIp = (i: number): string => `198.18.${i + 1}.1`;

export interface LinkParams {
  delay_ms: number;
  rate_mbit: number;
  loss?: number;
  queue_ms?: number;
}

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr?.trim() || r.error?.message || `exit ${r.status}`}`);
  return r.stdout;
}

const sleepSync = (ms: number): void => { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms); };

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

export function netnsUsable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  if (!existsSync('/dev/net/tun')) return 'no /dev/net/tun';
  if (spawnSync('ip', ['-V']).status !== 0) return 'no iproute2';
  if (spawnSync('python3', ['-c', 'import select']).status !== 0) return 'no python3';
  return undefined;
}

export class StarTestbed {
  readonly serverNs: string;
  readonly nodeNs: string[];
  readonly #state: string;
  readonly #linkPids = new Map<number, number>();
  #params: LinkParams;

  constructor(readonly nodes: number, stateDir: string, params: LinkParams = { delay_ms: 10, rate_mbit: 100 }) {
    // Short, unique names: interface names are limited to 15 bytes.
    const tag = `nd${process.pid % 100000}`;
    this.serverNs = `${tag}-s`;
    this.nodeNs = Array.from({ length: nodes }, (_, i) => `${tag}-n${i + 1}`);
    this.#state = stateDir;
    this.#params = params;
  }

  /** argv prefix running a command in a namespace (network only). */
  inNs(ns: string): string[] {
    return ['nsenter', `--net=/var/run/netns/${ns}`, '--'];
  }

  up(): void {
    mkdirSync(this.#state, { recursive: true });
    for (const ns of [this.serverNs, ...this.nodeNs]) {
      sh('ip', ['netns', 'add', ns]);
      sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    for (let i = 0; i < this.nodes; i++) this.linkUp(i);
  }

  /** Starts node i's delay line and addresses its two ends. */
  linkUp(i: number): void {
    const params = join(this.#state, `link${i}.json`);
    const pidfile = join(this.#state, `link${i}.pid`);
    writeFileSync(params, JSON.stringify({ queue_ms: 50, loss: 0, ...this.#params }));
    rmSync(pidfile, { force: true });
    const devN = `dln${i}`;
    const devS = `dls${i}`;
    const child = spawn('python3', [join(REPO_ROOT, 'test/distribute/delayline.py'), '--ns-a', this.nodeNs[i]!, '--dev-a', devN, '--ns-b', this.serverNs, '--dev-b', devS, '--params', params, '--pidfile', pidfile], {
      stdio: ['ignore', 'ignore', 'ignore'],
      detached: true,
    });
    child.unref();
    for (let t = 0; t < 100 && !existsSync(pidfile); t++) sleepSync(50);
    if (!existsSync(pidfile)) throw new Error(`delay line ${i} did not start`);
    this.#linkPids.set(i, Number(readFileSync(pidfile, 'utf8').trim()));
    const ns = this.nodeNs[i]!;
    sh('ip', ['-n', ns, 'addr', 'add', nodeIp(i), 'peer', SERVER_IP, 'dev', devN]);
    sh('ip', ['-n', this.serverNs, 'addr', 'add', SERVER_IP, 'peer', nodeIp(i), 'dev', devS]);
    sh('ip', ['-n', ns, 'link', 'set', devN, 'mtu', '1500', 'up']);
    sh('ip', ['-n', this.serverNs, 'link', 'set', devS, 'mtu', '1500', 'up']);
  }

  /** Cuts node i's link: the delay line exits and its TUN devices (and routes) vanish. */
  linkDown(i: number): void {
    const pid = this.#linkPids.get(i);
    if (pid === undefined) return;
    try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
    for (let t = 0; t < 100 && alive(pid); t++) sleepSync(50);
    if (alive(pid)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    this.#linkPids.delete(i);
  }

  linkPids(): number[] {
    return [...this.#linkPids.values()];
  }

  down(): void {
    for (const i of [...this.#linkPids.keys()]) this.linkDown(i);
    for (const ns of [this.serverNs, ...this.nodeNs]) spawnSync('ip', ['netns', 'del', ns], { timeout: 20_000 });
  }

  namespaces(): string[] {
    return [this.serverNs, ...this.nodeNs];
  }
}

/** Namespaces currently present (for leak assertions). */
export function listNetns(): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').map((l) => l.split(' ')[0] ?? '').filter(Boolean);
}
