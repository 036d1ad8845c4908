// nydusctl: client of the nydusd API. `--raw` prints the JSON the daemon returned.
import { readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { apiRequest } from '../api/client.js';
import { UsageError } from '../util/errors.js';
import { humanBytes, runMain } from './main.js';
import { COMMON_FLAGS, CommandUsageError, parseCommand, type CommandSpec, type FlagSpec } from './command.js';

const SPEC = {
  name: 'nydusctl',
  summary: 'Client of the nydusd API (a unix socket)',
  args: ['[COMMAND...]'],
  flags: {
    sock: { short: 'S', arg: 'SOCK', desc: "nydusd's API socket (required)" },
    raw: { short: 'r', desc: 'print the JSON the daemon returned' },
    interval: { short: 'I', arg: 'SECONDS', desc: 'metrics: repeat every SECONDS and show rates' },
    count: { arg: 'N', desc: 'metrics: stop after N rounds', default: '1, or forever with -I' },
    id: { arg: 'ID', desc: 'metrics: only the mount with this id' },
    source: { short: 's', arg: 'BOOTSTRAP', desc: 'mount: the bootstrap to mount' },
    config: { short: 'c', arg: 'FILE', desc: 'mount: nydusd config file' },
    mountpoint: { short: 'm', arg: 'PATH', desc: 'mount/umount: the mountpoint inside the daemon' },
    type: { short: 't', arg: 'TYPE', desc: 'mount: filesystem type', default: 'rafs', choices: ['rafs'] },
    remount: { desc: 'mount: replace the image of an existing mount' },
    gc: { desc: 'cache: delete caches of blobs no mount uses, then LRU blobs until within cache_size_limit' },
    debug: COMMON_FLAGS.debug,
  },
  after: `Commands:
  info                               daemon state, version and mounts
  set log-level LEVEL                change the daemon's log level
  metrics [fsstats|backend|cache|files|pattern|inflight]
                                     metrics (default fsstats)
  mount -s BOOTSTRAP -c CONFIG -m MOUNTPOINT [--remount]
  umount -m MOUNTPOINT
  cache [--gc]                       blob cache usage per work_dir (and a garbage collection)`,
} as const satisfies CommandSpec<Record<string, FlagSpec>>;

type Obj = Record<string, unknown>;

function num(o: Obj, k: string): number {
  return Number(o[k] ?? 0);
}

function table(rows: Array<[string, unknown]>): string {
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join('\n');
}

function printInfo(info: Obj): void {
  const v = (info.version ?? {}) as Obj;
  console.log(table([['Version', v.package_ver], ['Status', info.state], ['Profile', v.profile], ['Commit', v.git_commit], ['ID', info.id ?? '-']]));
  for (const [mp, inst] of Object.entries((info.backend_collection ?? {}) as Record<string, Obj>)) {
    const cfg = (inst.config ?? {}) as Obj;
    const rafs = (cfg.rafs ?? {}) as Obj;
    const pf = (rafs.prefetch ?? {}) as Obj;
    console.log(`\nInstance ${mp}\n` + table([['Type', inst.backend_type], ['Mounted time', inst.mounted_time], ['Mode', rafs.mode ?? 'direct'], ['Prefetch', pf.enable ?? false], ['Prefetch batch', pf.batchSize ?? pf.batch_size ?? '-']]));
  }
}

function printMetrics(kind: string, m: Obj, prev: Obj | undefined, interval: number): void {
  if (kind === 'backend') {
    const rows: Array<[string, unknown]> = [['Backend type', m.backend_type], ['Read amount', humanBytes(num(m, 'read_amount_total'))], ['Read count', num(m, 'read_count')], ['Read errors', num(m, 'read_errors')]];
    if (prev && interval > 0) {
      const bytes = num(m, 'read_amount_total') - num(prev, 'read_amount_total');
      const count = num(m, 'read_count') - num(prev, 'read_count');
      const lat = num(m, 'read_cumulative_latency_millis_total') - num(prev, 'read_cumulative_latency_millis_total');
      rows.push(['Throughput', `${humanBytes(bytes / interval)}/s`], ['Avg IO size', count ? humanBytes(bytes / count) : '-'], ['Avg latency', count ? `${(lat / count).toFixed(2)} ms` : '-']);
    }
    console.log(table(rows));
  } else if (kind === 'cache') {
    console.log(table([['Partial hits', m.partial_hits], ['Whole hits', m.whole_hits], ['Total reads', m.total], ['Directory', m.store_path], ['Files', m.underlying_files], ['Prefetch workers', m.prefetch_workers], ['Prefetch amount', humanBytes(num(m, 'prefetch_data_amount'))], ['Prefetch requests', m.prefetch_requests_count], ['All data ready', m.data_all_ready]]));
  } else if (kind === 'fsstats') {
    const names = ['getattr', 'readlink', 'open', 'release', 'read', 'statfs', 'getxattr', 'listxattr', 'opendir', 'lookup', 'readdir', 'readdirplus', 'access', 'forget', 'batch_forget'];
    const hits = (m.fop_hits ?? []) as number[];
    const errs = (m.fop_errors ?? []) as number[];
    console.log(table([['Data read', humanBytes(num(m, 'data_read'))], ['Opens', m.nr_opens], ['Read latency dist', m.read_latency_dist], ...names.map((n, i): [string, unknown] => [`fop ${n}`, `${hits[i] ?? 0} hits, ${errs[i] ?? 0} errors`])]));
  } else console.log(JSON.stringify(m, null, 2));
}

async function main(argv: string[]): Promise<number> {
  const p = parseCommand(SPEC, argv);
  if (!p) return 0;
  const { values, positionals } = p;
  const sock = values.sock;
  if (!sock) throw new UsageError('missing --sock SOCK');
  const [cmd, ...rest] = positionals;
  const out = (v: unknown, fmt: () => void): void => (values.raw ? console.log(JSON.stringify(v)) : fmt());
  switch (cmd) {
    case 'info': {
      const info = (await apiRequest(sock, 'GET', '/api/v1/daemon')) as Obj;
      out(info, () => printInfo(info));
      return 0;
    }
    case 'set': {
      if (rest[0] !== 'log-level' || !rest[1]) throw new UsageError('usage: nydusctl set log-level LEVEL');
      await apiRequest(sock, 'PUT', '/api/v1/daemon', { log_level: rest[1] });
      return 0;
    }
    case 'metrics': {
      const kind = rest[0] ?? 'fsstats';
      const paths: Record<string, string> = { fsstats: '/api/v1/metrics', backend: '/api/v1/metrics/backend', cache: '/api/v1/metrics/blobcache', files: '/api/v1/metrics/files', pattern: '/api/v1/metrics/pattern', inflight: '/api/v1/metrics/inflight' };
      const path = paths[kind];
      if (!path) throw new UsageError(`unknown metrics kind '${kind}' (fsstats, backend, cache, files, pattern, inflight)`);
      const q = values.id ? `?id=${encodeURIComponent(values.id)}` : '';
      const interval = values.interval ? Number(values.interval) : 0;
      if (values.interval && !(interval > 0)) throw new UsageError(`invalid value '${values.interval}' for -I: expected seconds > 0`);
      const rounds = values.count ? Number(values.count) : interval ? Infinity : 1;
      let prev: Obj | undefined;
      for (let i = 0; i < rounds; i++) {
        if (i > 0) await delay(interval * 1000);
        const m = ((await apiRequest(sock, 'GET', path + q)) ?? {}) as Obj;
        out(m, () => printMetrics(kind, m, prev, interval));
        prev = m;
      }
      return 0;
    }
    case 'mount': {
      if (!values.source || !values.config || !values.mountpoint) throw new UsageError('usage: nydusctl mount -s SOURCE -c CONFIG_FILE -m MOUNTPOINT');
      const body = { source: values.source, fs_type: values.type ?? 'rafs', config: readFileSync(values.config, 'utf8') };
      await apiRequest(sock, values.remount ? 'PUT' : 'POST', `/api/v1/mount?mountpoint=${encodeURIComponent(values.mountpoint)}`, body);
      return 0;
    }
    case 'umount': {
      if (!values.mountpoint) throw new UsageError('usage: nydusctl umount -m MOUNTPOINT');
      await apiRequest(sock, 'DELETE', `/api/v1/mount?mountpoint=${encodeURIComponent(values.mountpoint)}`);
      return 0;
    }
    case 'cache': {
      const r = (await apiRequest(sock, values.gc ? 'PUT' : 'GET', '/api/v1/cache')) as { work_dirs: Obj[] };
      out(r, () => {
        for (const w of r.work_dirs) {
          const blobs = (w.blobs ?? []) as Obj[];
          console.log(table([['Work dir', w.work_dir], ['Usage', `${num(w, 'usage')} (${humanBytes(num(w, 'usage'))})`], ['Limit', num(w, 'cache_size_limit') || 'none']]));
          if (w.removed) console.log(`removed ${(w.removed as string[]).length} blob(s), freed ${humanBytes(num(w, 'freed'))}`);
          for (const b of blobs) console.log(`  ${b.blob_id}  ${humanBytes(num(b, 'size')).padStart(10)}  ${b.in_use ? 'in use' : 'unused'}`);
        }
      });
      return 0;
    }
    default:
      throw new CommandUsageError('nydusctl', cmd ? `unknown command '${cmd}' (info, set, metrics, mount, umount)` : 'missing COMMAND (info, set, metrics, mount, umount)');
  }
}

await runMain('nydusctl', main);
