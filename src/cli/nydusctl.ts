// nydusctl: client of the nydusd API. `--raw` prints the JSON the daemon returned.
import { readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { apiRequest } from '../api/client.js';
import { UsageError } from '../util/errors.js';
import { packageVersion } from '../util/version.js';
import { parseFlags, runMain } from './main.js';

const USAGE = `usage: nydusctl --sock SOCK [--raw] COMMAND
  info
  set log-level LEVEL
  metrics [fsstats|backend|cache|files|pattern|inflight] [-I SECONDS] [--id ID]
  mount -s SOURCE -c CONFIG_FILE -m MOUNTPOINT [-t rafs] [--remount]
  umount -m MOUNTPOINT
  cache [--gc]        blob cache usage per work_dir; --gc deletes caches of blobs no mount uses,
                      then least recently used blobs until within cache_size_limit`;

type Obj = Record<string, unknown>;

function num(o: Obj, k: string): number {
  return Number(o[k] ?? 0);
}

function table(rows: Array<[string, unknown]>): string {
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join('\n');
}

function human(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
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
    const rows: Array<[string, unknown]> = [['Backend type', m.backend_type], ['Read amount', human(num(m, 'read_amount_total'))], ['Read count', num(m, 'read_count')], ['Read errors', num(m, 'read_errors')]];
    if (prev && interval > 0) {
      const bytes = num(m, 'read_amount_total') - num(prev, 'read_amount_total');
      const count = num(m, 'read_count') - num(prev, 'read_count');
      const lat = num(m, 'read_cumulative_latency_millis_total') - num(prev, 'read_cumulative_latency_millis_total');
      rows.push(['Throughput', `${(bytes / 1024 / interval).toFixed(1)} KB/s`], ['Avg IO size', count ? human(bytes / count) : '-'], ['Avg latency', count ? `${(lat / count).toFixed(2)} ms` : '-']);
    }
    console.log(table(rows));
  } else if (kind === 'cache') {
    console.log(table([['Partial hits', m.partial_hits], ['Whole hits', m.whole_hits], ['Total reads', m.total], ['Directory', m.store_path], ['Files', m.underlying_files], ['Prefetch workers', m.prefetch_workers], ['Prefetch amount', human(num(m, 'prefetch_data_amount'))], ['Prefetch requests', m.prefetch_requests_count], ['All data ready', m.data_all_ready]]));
  } else if (kind === 'fsstats') {
    const names = ['getattr', 'readlink', 'open', 'release', 'read', 'statfs', 'getxattr', 'listxattr', 'opendir', 'lookup', 'readdir', 'readdirplus', 'access', 'forget', 'batch_forget'];
    const hits = (m.fop_hits ?? []) as number[];
    const errs = (m.fop_errors ?? []) as number[];
    console.log(table([['Data read', human(num(m, 'data_read'))], ['Opens', m.nr_opens], ['Read latency dist', m.read_latency_dist], ...names.map((n, i): [string, unknown] => [`fop ${n}`, `${hits[i] ?? 0} hits, ${errs[i] ?? 0} errors`])]));
  } else console.log(JSON.stringify(m, null, 2));
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, {
    sock: { type: 'string', short: 'S' },
    raw: { type: 'boolean', short: 'r' },
    interval: { type: 'string', short: 'I' },
    id: { type: 'string' },
    source: { type: 'string', short: 's' },
    config: { type: 'string', short: 'c' },
    mountpoint: { type: 'string', short: 'm' },
    type: { type: 'string', short: 't' },
    remount: { type: 'boolean' },
    count: { type: 'string' },
    gc: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean', short: 'V' },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.version) {
    console.log(`nydusctl ${packageVersion()} (nydus-ts)`);
    return 0;
  }
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
          console.log(table([['Work dir', w.work_dir], ['Usage', `${num(w, 'usage')} (${human(num(w, 'usage'))})`], ['Limit', num(w, 'cache_size_limit') || 'none']]));
          if (w.removed) console.log(`removed ${(w.removed as string[]).length} blob(s), freed ${human(num(w, 'freed'))}`);
          for (const b of blobs) console.log(`  ${b.blob_id}  ${human(num(b, 'size')).padStart(10)}  ${b.in_use ? 'in use' : 'unused'}`);
        }
      });
      return 0;
    }
    default:
      throw new UsageError(cmd ? `unknown command '${cmd}'\n${USAGE}` : USAGE);
  }
}

await runMain('nydusctl', main);
