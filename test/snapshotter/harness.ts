// A private containerd for tests: Debian's containerd 1.6 + runc in its own mount namespace
// (`unshare -m --propagation private`, a temp dir bind-mounted over /run/containerd so shims,
// fifos and runc state stay inside), its own config/root/state/sockets, our nydus-snapshotter as
// the `nydus` proxy plugin. Everything in the namespace is stopped by PID in close().
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN } from '../helpers/paths.js';
import { until } from '../helpers/poll.js';

export const NS = 'nydus-test';

export function containerdMissing(): string | false {
  if (process.getuid?.() !== 0) return 'needs root';
  if (!existsSync('/dev/fuse')) return 'needs /dev/fuse';
  for (const b of ['containerd', 'ctr', 'runc', 'unshare', 'nsenter', 'umoci', 'skopeo', 'docker-registry']) {
    try {
      execFileSync('sh', ['-c', `command -v ${b}`], { stdio: 'ignore' });
    } catch {
      return `${b} is not installed (scripts/setup.sh installs it)`;
    }
  }
  if (!existsSync('/bin/busybox')) return 'busybox-static is not installed';
  return false;
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const mntNs = (pid: number | string): string | undefined => {
  try {
    return readlinkSync(`/proc/${pid}/ns/mnt`);
  } catch {
    return undefined;
  }
};

export class Containerd {
  readonly dir: string;
  readonly sock: string;
  readonly snapSock: string;
  readonly snapRoot: string;
  #cd: ChildProcess | undefined;
  #snap: ChildProcess | undefined;
  #ns: string | undefined;

  private constructor(dir: string) {
    this.dir = dir;
    this.sock = join(dir, 'containerd.sock');
    this.snapSock = join(dir, 'snap.sock');
    this.snapRoot = join(dir, 'snap-root');
  }

  get pid(): number {
    return this.#cd!.pid!;
  }

  get snapshotterPid(): number | undefined {
    return this.#snap?.exitCode === null ? this.#snap.pid : undefined;
  }

  /** `netns`: a named network namespace (ip netns) to run containerd, the snapshotter and nydusd in. */
  static async start(netns?: string): Promise<Containerd> {
    const c = new Containerd(mkdtempSync('/tmp/nydus-snap-'));
    try {
      await c.#start(netns);
    } catch (e) {
      await c.close();
      throw e;
    }
    return c;
  }

  async #start(netns: string | undefined): Promise<void> {
    for (const d of ['run', 'root', 'state']) mkdirSync(join(this.dir, d));
    mkdirSync('/run/containerd', { recursive: true });
    const cfg = `version = 2
root = "${this.dir}/root"
state = "${this.dir}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "${this.sock}"
[ttrpc]
  address = "${this.sock}.ttrpc"
[debug]
  level = "info"
[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "nydus"
    disable_snapshot_annotations = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${this.dir}/cni-bin"
    conf_dir = "${this.dir}/cni-conf"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "${this.dir}/certs.d"
[proxy_plugins]
  [proxy_plugins.nydus]
    type = "snapshot"
    address = "${this.snapSock}"
`;
    writeFileSync(join(this.dir, 'config.toml'), cfg);
    const log = openSync(join(this.dir, 'containerd.log'), 'a');
    const pre = netns ? ['nsenter', `--net=/var/run/netns/${netns}`, '--'] : [];
    this.#cd = spawn(pre[0] ?? 'unshare', [...pre.slice(1), ...(pre.length ? ['unshare'] : []), '-m', '--propagation', 'private', 'sh', '-c', `mount --bind "${this.dir}/run" /run/containerd && exec containerd --config "${this.dir}/config.toml"`], { stdio: ['ignore', log, log] });
    closeSync(log);
    await until('containerd to answer', async () => (this.#cd!.exitCode !== null ? 'exited' : (await this.ctr(['version'])).code === 0 ? 'up' : undefined), 30_000, 200).then((s) => {
      if (s === 'exited') throw new Error(`containerd exited: ${this.log('containerd.log')}`);
    });
    this.#ns = mntNs(this.pid);
  }

  /** Lets the CRI plugin pull from `host` over plain HTTP (registry hosts.toml). */
  allowPlainHttp(host: string): void {
    mkdirSync(join(this.dir, 'certs.d', host), { recursive: true });
    writeFileSync(join(this.dir, 'certs.d', host, 'hosts.toml'), `server = "http://${host}"\n[host."http://${host}"]\n  capabilities = ["pull", "resolve"]\n`);
  }

  log(name: string): string {
    try {
      return readFileSync(join(this.dir, name), 'utf8').split('\n').slice(-20).join('\n');
    } catch {
      return '';
    }
  }

  /** Starts nydus-snapshotter inside containerd's mount namespace. */
  async startSnapshotter(extra: string[] = []): Promise<void> {
    const log = openSync(join(this.dir, 'snapshotter.log'), 'a');
    this.#snap = spawn('nsenter', ['-t', String(this.pid), '-m', '-n', '--', process.execPath, BIN('nydus-snapshotter'), '--root', this.snapRoot, '--address', this.snapSock, '--log-level', 'debug', ...extra], { stdio: ['ignore', log, log] });
    closeSync(log);
    const snap = this.#snap;
    await until('nydus-snapshotter to serve', async () => (snap.exitCode !== null ? 'exited' : existsSync(this.snapSock) && (await this.#probe()) ? 'up' : undefined), 30_000, 200).then((s) => {
      if (s === 'exited') throw new Error(`nydus-snapshotter exited: ${this.log('snapshotter.log')}`);
    });
  }

  /** A round trip to the snapshotter through containerd (List/Stat are answered from containerd's own db). */
  async #probe(): Promise<boolean> {
    const key = `probe-${process.hrtime.bigint()}`;
    const r = await this.ctr(['snapshots', '--snapshotter', 'nydus', 'prepare', key], 20_000);
    if (r.code !== 0) return false;
    await this.ctr(['snapshots', '--snapshotter', 'nydus', 'rm', key], 20_000);
    return true;
  }

  async stopSnapshotter(sig: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.#snap;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill(sig);
    await Promise.race([gone, new Promise((r) => setTimeout(r, 10_000))]);
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  }

  /** A command run inside the namespace (ctr, our pull, mount inspection). */
  exec(cmd: string, args: string[], timeoutMs = 120_000): Promise<Run> {
    return new Promise((ok) => {
      execFile('nsenter', ['-t', String(this.pid), '-m', '-n', '--', cmd, ...args], { maxBuffer: 1 << 24, timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
        ok({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0, stdout, stderr });
      });
    });
  }

  ctr(args: string[], timeoutMs?: number, ns = NS): Promise<Run> {
    return this.exec('ctr', ['-a', this.sock, '-n', ns, ...args], timeoutMs);
  }

  pull(args: string[]): Promise<Run> {
    return this.exec(process.execPath, [BIN('nydus-snapshotter'), 'pull', '--address', this.sock, '--namespace', NS, ...args]);
  }

  /** Mount points inside the namespace under `prefix`. */
  mountsUnder(prefix: string): string[] {
    if (this.#cd?.exitCode !== null) return [];
    return readFileSync(`/proc/${this.pid}/mountinfo`, 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4] ?? '')
      .filter((m) => m.startsWith(prefix));
  }

  /** PIDs of processes in our namespace, plus their descendants (containers live in child namespaces). */
  #members(): number[] {
    if (!this.#ns) return [];
    const procs = new Map<number, number>();
    const inNs = new Set<number>();
    for (const n of readdirSync('/proc')) {
      if (!/^\d+$/.test(n)) continue;
      const pid = Number(n);
      if (pid === process.pid) continue;
      try {
        const stat = readFileSync(`/proc/${n}/stat`, 'utf8');
        procs.set(pid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
        if (mntNs(n) === this.#ns) inNs.add(pid);
      } catch {
        /* exited */
      }
    }
    let grew = true;
    while (grew) {
      grew = false;
      for (const [pid, ppid] of procs) if (!inNs.has(pid) && inNs.has(ppid)) (inNs.add(pid), (grew = true));
    }
    return [...inNs];
  }

  /** Processes in the namespace whose command line contains `s`. */
  processes(s: string): number[] {
    return this.#members().filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(s);
      } catch {
        return false;
      }
    });
  }

  async close(): Promise<void> {
    if (this.#cd && this.#cd.exitCode === null) {
      // Tasks first, so runc tears down container cgroups and namespaces.
      for (const ns of [NS, 'k8s.io']) {
        const tasks = await this.ctr(['tasks', 'ls', '-q'], 20_000, ns);
        for (const t of tasks.stdout.split('\n').filter(Boolean)) {
          await this.ctr(['tasks', 'kill', '-s', 'SIGKILL', t], 20_000, ns);
          await this.ctr(['tasks', 'delete', '-f', t], 20_000, ns);
        }
      }
      await this.stopSnapshotter();
      const pids = this.#members();
      for (const p of pids) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      await until('namespace processes to exit', () => (pids.every((p) => !existsSync(`/proc/${p}`)) ? true : undefined), 20_000, 200).catch(() => undefined);
    }
    await this.stopSnapshotter('SIGKILL');
    // The namespace is gone with its last process, and its mounts with it.
    if (this.#ns && this.#members().length) throw new Error(`processes left in the test namespace: ${this.#members().join(' ')}`);
    rmSync(this.dir, { recursive: true, force: true });
    // runc removes a deleted task's cgroup; the per-namespace parents (cgroup v1: one per
    // hierarchy) stay behind empty. rmdir refuses a cgroup that still has processes.
    for (const h of ['', ...readdirSync('/sys/fs/cgroup')]) {
      for (const ns of [NS, 'k8s.io']) {
        const cg = join('/sys/fs/cgroup', h, ns);
        if (!existsSync(join(cg, 'cgroup.procs'))) continue;
        for (const d of [...readdirSync(cg).filter((n) => existsSync(join(cg, n, 'cgroup.procs'))).map((n) => join(cg, n)), cg]) {
          try {
            rmdirSync(d);
          } catch {
            /* busy or gone */
          }
        }
      }
    }
  }
}
