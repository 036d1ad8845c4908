// Acceptance (issue 6, item 2): counters move with real reads, nydusctl prints them (table, raw JSON,
// -I refresh), and GET /metrics exposes them in Prometheus text.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BIN } from '../helpers/paths.js';
import { curl, makeWorkspace, skipReason, startDaemon, stopDaemon, type Daemon, type Workspace } from './harness.js';

const skip = skipReason();
const READ = 4; // fop_hits index of Read

function nydusctl(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN('nydusctl'), ...args], { timeout: 30_000, encoding: 'utf8' }, (e, out, err) => resolve({ code: e ? Number(e.code ?? 1) : 0, out, err }));
  });
}

type Fs = { data_read: number; nr_opens: number; fop_hits: number[]; id: string };
type Backend = { backend_type: string; read_amount_total: number; read_count: number };
type Cache = { entries_count: number; total: number; underlying_files: string[] };

describe('metrics and nydusctl', { skip }, () => {
  it('counters grow with reads; nydusctl and Prometheus show them', { timeout: 90_000 }, async (t) => {
    let w: Workspace | undefined;
    let d: Daemon | undefined;
    try {
      w = makeWorkspace('metrics', 1);
      const ws = w;
      const img = ws.images[0]!;
      d = await startDaemon(ws);
      const sock = ws.sock;
      assert.equal((await curl(sock, 'POST', '/api/v1/mount?mountpoint=/m', { data: JSON.stringify({ source: img.bootstrap, fs_type: 'rafs', config: ws.configText }) })).status, 204);
      const get = async <T>(path: string): Promise<T> => {
        const r = await curl(sock, 'GET', path);
        assert.equal(r.status, 200, `${path}: ${r.text}`);
        return r.json as T;
      };

      await t.test('reading N bytes moves data_read, fop_hits[Read], read_amount_total, blobcache entries', async () => {
        const fs0 = await get<Fs>('/api/v1/metrics?id=/m');
        const be0 = await get<Backend>('/api/v1/metrics/backend?id=/m');
        const N = 300_000;
        const fd = openSync(join(ws.mnt, 'm', 'dir/sub/multi.bin'), 'r');
        const buf = Buffer.alloc(N);
        try {
          let got = 0;
          while (got < N) got += readSync(fd, buf, got, N - got, got);
        } finally {
          closeSync(fd);
        }
        assert.ok(buf.equals(img.tree.get('dir/sub/multi.bin')!.subarray(0, N)));
        const fs1 = await get<Fs>('/api/v1/metrics?id=/m');
        const be1 = await get<Backend>('/api/v1/metrics/backend?id=/m');
        const bc = await get<Cache>('/api/v1/metrics/blobcache?id=/m');
        assert.ok(fs1.data_read - fs0.data_read >= N, `data_read grew by ${fs1.data_read - fs0.data_read}, expected >= ${N}`);
        assert.ok(fs1.fop_hits[READ]! > fs0.fop_hits[READ]!, 'fop_hits[Read] grows');
        assert.ok(fs1.nr_opens >= fs0.nr_opens);
        assert.equal(be1.backend_type, 'localfs');
        assert.ok(be1.read_amount_total > be0.read_amount_total, 'backend read_amount_total grows on a cold read');
        assert.ok(be1.read_count > be0.read_count);
        assert.ok(bc.entries_count > 0, 'blobcache has ready entries');
        assert.ok(bc.underlying_files.length > 0);
        // Without ?id the single mount is selected, as upstream does.
        assert.equal((await get<Fs>('/api/v1/metrics')).data_read, fs1.data_read);
      });

      await t.test('nydusctl metrics backend -I 1 --count 2 refreshes', async () => {
        const r = await nydusctl(['--sock', sock, 'metrics', 'backend', '-I', '1', '--count', '2']);
        assert.equal(r.code, 0, r.err);
        assert.equal(r.out.match(/^Backend type/gm)?.length, 2, r.out);
        assert.match(r.out, /Throughput/, 'the second round prints the interval deltas');
        const raw = await nydusctl(['--sock', sock, '--raw', 'metrics', 'backend', '-I', '1', '--count', '2']);
        const lines = raw.out.trim().split('\n');
        assert.equal(lines.length, 2);
        for (const l of lines) assert.equal((JSON.parse(l) as Backend).backend_type, 'localfs');
      });

      await t.test('nydusctl --raw info prints JSON; nydusctl info prints a table', async () => {
        const raw = await nydusctl(['--sock', sock, '--raw', 'info']);
        assert.equal(raw.code, 0, raw.err);
        const info = JSON.parse(raw.out) as { state: string; backend_collection: Record<string, unknown> };
        assert.equal(info.state, 'RUNNING');
        assert.deepEqual(Object.keys(info.backend_collection), ['/m']);
        const tab = await nydusctl(['--sock', sock, 'info']);
        assert.equal(tab.code, 0, tab.err);
        assert.match(tab.out, /^Status\s+RUNNING$/m);
        assert.match(tab.out, /^Version\s+\S+/m);
        assert.match(tab.out, /^Instance \/m$/m);
        assert.throws(() => JSON.parse(tab.out));
        // The tables show the API's numbers (read over curl), not just something.
        const row = (out: string, key: string): string | undefined => new RegExp(`^${key}\\s{2,}(.*)$`, 'm').exec(out)?.[1];
        const apiFs = await get<Fs & { fop_errors: number[] }>('/api/v1/metrics?id=/m');
        const fsTab = await nydusctl(['--sock', sock, 'metrics', 'fsstats', '--id', '/m']);
        assert.equal(fsTab.code, 0, fsTab.err);
        assert.equal(row(fsTab.out, 'Opens'), String(apiFs.nr_opens), fsTab.out);
        assert.equal(row(fsTab.out, 'fop read'), `${apiFs.fop_hits[READ]} hits, ${apiFs.fop_errors[READ]} errors`, fsTab.out);
        assert.ok(apiFs.fop_hits[READ]! > 0);
        const apiCache = await get<Cache & { store_path: string }>('/api/v1/metrics/blobcache?id=/m');
        const cacheTab = await nydusctl(['--sock', sock, 'metrics', 'cache', '--id', '/m']);
        assert.equal(cacheTab.code, 0, cacheTab.err);
        assert.equal(row(cacheTab.out, 'Total reads'), String(apiCache.total), cacheTab.out);
        assert.equal(row(cacheTab.out, 'Directory'), apiCache.store_path, cacheTab.out);
        assert.deepEqual(JSON.parse(row(cacheTab.out, 'Files') ?? 'null'), apiCache.underlying_files);
        assert.ok(apiCache.underlying_files.length > 0);
      });

      await t.test('Prometheus GET /metrics has the counters', async () => {
        const r = await curl(sock, 'GET', '/metrics');
        assert.equal(r.status, 200);
        const value = (name: string): number => {
          const m = new RegExp(`^${name}\\{mountpoint="/m"\\} (\\d+)$`, 'm').exec(r.text);
          assert.ok(m, `${name} missing:\n${r.text}`);
          return Number(m[1]);
        };
        assert.ok(value('nydusd_data_read_bytes_total') >= 300_000);
        assert.ok(value('nydusd_backend_read_bytes_total') > 0);
        assert.ok(value('nydusd_backend_reads_total') > 0);
        assert.match(r.text, /^# TYPE nydusd_fuse_requests_total counter$/m);
        assert.match(r.text, /^nydusd_fuse_requests_total\{opcode="[A-Z_]+"\} \d+$/m);
        // Latency histograms (cumulative buckets ending in +Inf = _count), cache counters, process metrics.
        assert.match(r.text, /^# TYPE nydusd_fuse_op_duration_seconds histogram$/m);
        const readInf = /^nydusd_fuse_op_duration_seconds_bucket\{mountpoint="\/m",op="read",le="\+Inf"\} (\d+)$/m.exec(r.text);
        const readCount = /^nydusd_fuse_op_duration_seconds_count\{mountpoint="\/m",op="read"\} (\d+)$/m.exec(r.text);
        assert.ok(readInf && readCount && Number(readInf[1]) > 0 && readInf[1] === readCount[1], r.text);
        assert.match(r.text, /^# TYPE nydusd_backend_read_duration_seconds histogram$/m);
        const beInf = /^nydusd_backend_read_duration_seconds_bucket\{mountpoint="\/m",backend="[a-z-]+",le="\+Inf"\} (\d+)$/m.exec(r.text);
        assert.ok(beInf && Number(beInf[1]) === value('nydusd_backend_reads_total'), r.text);
        assert.ok(value('nydusd_cache_misses_total') > 0);
        value('nydusd_cache_hits_total');
        assert.match(r.text, /^nydusd_process_resident_memory_bytes \d+$/m);
        assert.match(r.text, /^nydusd_nodejs_eventloop_lag_seconds [\d.e-]+$/m);
      });
    } finally {
      if (w) await stopDaemon(d, w);
    }
  });
});
