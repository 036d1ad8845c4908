// Acceptance (issue 18 "API", item 4; issue 11 defect 7 and the API-mount items): upstream's v2
// endpoints, real per-file metrics, backend histograms, ConfigV2-shaped backend_collection, no
// credential in any answer, no file contents echoed, "/" and over-long mountpoints refused. Real
// nydusd, real FUSE mount, real curl.
import assert from 'node:assert/strict';
import { closeSync, openSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { curl, makeWorkspace, skipReason, startDaemon, stopDaemon, until, type Daemon, type Workspace } from './harness.js';

const skip = skipReason();

function readAll(path: string): number {
  const fd = openSync(path, 'r');
  const buf = Buffer.alloc(1 << 20);
  let total = 0;
  try {
    for (let n; (n = readSync(fd, buf, 0, buf.length, total)) > 0; ) total += n;
  } finally {
    closeSync(fd);
  }
  return total;
}

describe('API v2, per-file metrics and secrets', { skip }, () => {
  it('answers as upstream and never leaks', { timeout: 120_000 }, async (t) => {
    let w: Workspace | undefined;
    let d: Daemon | undefined;
    try {
      w = makeWorkspace('v2sec', 1);
      const ws = w;
      const img = ws.images[0]!;
      d = await startDaemon(ws);
      const sock = ws.sock;
      const statsCfg = JSON.stringify({ ...JSON.parse(ws.configText), iostats_files: true, access_pattern: true, latest_read_files: true });
      const mount = (mp: string, body: unknown) => curl(sock, 'POST', `/api/v1/mount?mountpoint=${encodeURIComponent(mp)}`, { data: JSON.stringify(body) });
      assert.equal((await mount('/m', { source: img.bootstrap, fs_type: 'rafs', config: statsCfg })).status, 204);

      await t.test('metrics/files and metrics/pattern list the files read, in upstream shape', async () => {
        const rel = 'dir/sub/multi.bin';
        const size = readAll(join(ws.mnt, 'm', rel));
        assert.equal(size, img.tree.get(rel)!.length);
        const ino = statSync(join(ws.mnt, 'm', rel)).ino % 2 ** 40; // RAFS inode (mount index in the high bits)
        const files = (await curl(sock, 'GET', '/api/v1/metrics/files?id=/m')).json as Record<string, { data_read: number; total_fops: number; fop_hits: number[]; block_count_read: number[] }>;
        const rec = files[String(ino)];
        assert.ok(rec, `no record for inode ${ino}: ${JSON.stringify(Object.keys(files))}`);
        assert.ok(rec.data_read >= size, `data_read ${rec.data_read} < ${size}`);
        assert.equal(rec.fop_hits.length, 15);
        assert.ok(rec.fop_hits[4]! > 0, 'Read hits counted');
        assert.equal(rec.block_count_read.length, 8);
        const pat = (await curl(sock, 'GET', '/api/v1/metrics/pattern?id=/m')).json as Array<{ ino: number; nr_read: number; first_access_time_secs: number; first_access_time_nanos: number }>;
        const p = pat.find((x) => x.ino === ino);
        assert.ok(p, `no access pattern for inode ${ino}: ${JSON.stringify(pat)}`);
        assert.deepEqual(Object.keys(p).sort(), ['first_access_time_nanos', 'first_access_time_secs', 'ino', 'nr_read']);
        assert.ok(p.nr_read >= 1);
        assert.ok(Math.abs(p.first_access_time_secs - Date.now() / 1000) < 600, 'first access time is wall-clock seconds');
        // latest=true: the inodes read since the previous call as upstream's [start,end] / [ino] ranges, then cleared.
        const covers = (ranges: number[][], i: number): boolean => ranges.some((r) => i >= r[0]! && i <= (r[1] ?? r[0]!));
        const latest = (await curl(sock, 'GET', '/api/v1/metrics/files?id=/m&latest=true')).json as number[][];
        assert.ok(Array.isArray(latest) && latest.every((r) => Array.isArray(r) && (r.length === 1 || r.length === 2)), JSON.stringify(latest));
        assert.ok(covers(latest, ino), JSON.stringify(latest));
        const again = await curl(sock, 'GET', '/api/v1/metrics/files?id=/m&latest=true');
        assert.ok(!covers((again.json as number[][] | undefined) ?? [], ino), 'latest read files are cleared after export');
      });

      await t.test('backend metrics carry upstream histograms; fs read_latency_dist moves', async () => {
        const be = (await curl(sock, 'GET', '/api/v1/metrics/backend?id=/m')).json as Record<string, unknown>;
        const count = be.read_count as number;
        const bySize = be.read_count_block_size_dist as number[];
        const lat = be.read_latency_sizes_dist as number[][];
        assert.ok(count > 0);
        assert.equal(bySize.length, 8);
        assert.equal((be.read_cumulative_latency_millis_dist as number[]).length, 8);
        assert.equal(bySize.reduce((a, b) => a + b, 0), count);
        assert.equal(lat.length, 8);
        assert.equal(lat.flat().reduce((a, b) => a + b, 0), count);
        const fs = (await curl(sock, 'GET', '/api/v1/metrics?id=/m')).json as { read_latency_dist: number[] };
        assert.ok(fs.read_latency_dist.reduce((a, b) => a + b, 0) > 0);
      });

      await t.test('blobcache metrics carry the prefetch span (upstream prefetch_begin/end_time_*)', async () => {
        const pfCfg = JSON.stringify({ ...JSON.parse(ws.configText), device: { ...JSON.parse(ws.configText).device, cache: { type: 'blobcache', config: { work_dir: join(ws.root, 'pfcache') } } }, fs_prefetch: { enable: true, prefetch_all: true, threads_count: 2 } });
        assert.equal((await mount('/pf', { source: img.bootstrap, fs_type: 'rafs', config: pfCfg })).status, 204);
        type Bc = { prefetch_begin_time_secs: number; prefetch_begin_time_millis: number; prefetch_end_time_secs: number; prefetch_end_time_millis: number; prefetch_data_amount: number };
        const bc = await until('prefetch to finish', async () => {
          const b = (await curl(sock, 'GET', '/api/v1/metrics/blobcache?id=/pf')).json as Bc;
          return b.prefetch_end_time_secs > 0 ? b : undefined;
        }, 60_000);
        const begin = bc.prefetch_begin_time_secs * 1000 + bc.prefetch_begin_time_millis;
        const end = bc.prefetch_end_time_secs * 1000 + bc.prefetch_end_time_millis;
        assert.ok(begin > 0 && begin <= end, `${begin} .. ${end}`);
        assert.ok(Math.abs(end - Date.now()) < 600_000);
        assert.ok(bc.prefetch_data_amount > 0);
        assert.equal((await curl(sock, 'DELETE', '/api/v1/mount?mountpoint=/pf')).status, 204);
      });

      await t.test('v2 daemon: GET without backends, PUT log level', async () => {
        const g = await curl(sock, 'GET', '/api/v2/daemon');
        assert.equal(g.status, 200);
        assert.equal((g.json as { state: string }).state, 'RUNNING');
        assert.ok(!('backend_collection' in (g.json as object)));
        assert.equal((await curl(sock, 'PUT', '/api/v2/daemon', { data: '{"log_level":"Info"}' })).status, 204);
        const bad = await curl(sock, 'PUT', '/api/v2/daemon', { data: '{"log_level":"loud"}' });
        assert.equal(bad.status, 400);
        assert.deepEqual(Object.keys(bad.json as object).sort(), ['code', 'message']);
        // A method an endpoint does not take: 400, as upstream (HttpError::BadRequest).
        assert.equal((await curl(sock, 'DELETE', '/api/v2/daemon')).status, 400);
        assert.equal((await curl(sock, 'GET', '/api/v2/nothing')).status, 404);
      });

      await t.test('v2 blobs: PUT, GET by domain, DELETE; in-use blob files are kept', async () => {
        assert.equal((await curl(sock, 'GET', '/api/v2/blobs')).status, 400, 'domain_id is required');
        const entry = { type: 'bootstrap', id: 'img-1', domain_id: 'dom', config_v2: { version: 2, id: 'img-1', backend: { type: 'registry', registry: { host: 'h', repo: 'r', auth: 'QkxPQlNFQ1JFVA==' } } } };
        assert.equal((await curl(sock, 'PUT', '/api/v2/blobs', { data: JSON.stringify(entry) })).status, 204);
        assert.equal((await curl(sock, 'PUT', '/api/v2/blobs', { data: JSON.stringify(entry) })).status, 204, 're-adding the same entry is fine');
        assert.equal((await curl(sock, 'PUT', '/api/v2/blobs', { data: JSON.stringify({ type: 'nope', id: 'x', config_v2: {} }) })).status, 400);
        const g = await curl(sock, 'GET', '/api/v2/blobs?domain_id=dom');
        assert.equal(g.status, 200, g.text);
        assert.deepEqual((g.json as Array<{ id: string }>).map((e) => e.id), ['img-1']);
        assert.ok(!g.text.includes('QkxPQlNFQ1JFVA=='), 'blob entry config is redacted');
        assert.equal((await curl(sock, 'DELETE', '/api/v2/blobs?domain_id=dom&blob_id=img-1')).status, 204);
        assert.deepEqual((await curl(sock, 'GET', '/api/v2/blobs?domain_id=dom')).json, []);
        assert.equal((await curl(sock, 'DELETE', '/api/v2/blobs?domain_id=dom&blob_id=img-1')).status, 404);
        const blobId = ((await curl(sock, 'GET', '/api/v1/daemon/backend?mountpoint=/m')).json as { blob_table: string[] }).blob_table[0]!;
        assert.equal((await curl(sock, 'DELETE', `/api/v2/blobs?blob_id=${blobId}`)).status, 409, 'a mounted blob is not deleted');
        assert.equal((await curl(sock, 'DELETE', '/api/v2/blobs?blob_id=../../etc/passwd')).status, 400);
      });

      await t.test('backend_collection shows the config in upstream ConfigV2 shape', async () => {
        const info = (await curl(sock, 'GET', '/api/v1/daemon')).json as { backend_collection: Record<string, { config: { version: number; backend: Record<string, unknown>; cache: { type: string }; rafs: { iostats_files: boolean } } }> };
        const c = info.backend_collection['/m']!.config;
        assert.equal(c.version, 2);
        assert.equal(c.backend.type, 'localfs');
        assert.equal((c.backend.localfs as { dir: string }).dir, ws.blobs);
        assert.equal(c.rafs.iostats_files, true);
      });

      await t.test('no credential in any answer (auth, tokens, mirror headers, proxy passwords, S3/OSS keys)', async () => {
        const regCfg = JSON.stringify({
          device: {
            backend: {
              type: 'registry',
              config: {
                host: '127.0.0.1:1', repo: 'x/y', scheme: 'http',
                auth: 'QUxJQ0U6U0VDUkVUMQ==', registry_token: 'SECRET2',
                proxy: { url: 'http://puser:SECRET3@127.0.0.1:2', fallback: true },
                mirrors: [{ host: 'http://127.0.0.1:3', headers: { Authorization: 'Bearer SECRET4', 'X-Dragonfly-Token': 'SECRET5' } }],
              },
            },
            cache: { type: 'blobcache', config: { work_dir: ws.cache } },
          },
          mode: 'direct',
        });
        const r = await mount('/reg', { source: img.bootstrap, fs_type: 'rafs', config: regCfg });
        assert.equal(r.status, 204, r.text);
        const s3Cfg = JSON.stringify({ device: { backend: { type: 's3', config: { endpoint: '127.0.0.1:4', scheme: 'http', region: 'r', bucket_name: 'b', access_key_id: 'AKIDSECRET6', access_key_secret: 'SECRET7' } }, cache: { type: 'blobcache', config: { work_dir: ws.cache } } }, mode: 'direct' });
        const r2 = await mount('/s3', { source: img.bootstrap, fs_type: 'rafs', config: s3Cfg });
        assert.equal(r2.status, 204, r2.text);
        const answers = await Promise.all(['/api/v1/daemon', '/api/v2/daemon', '/api/v1/config?id=/reg', '/api/v1/config?id=/s3', '/api/v1/daemon/events', '/api/v1/metrics/backend?id=/reg'].map(async (p) => [p, (await curl(sock, 'GET', p)).text] as const));
        for (const [p, text] of answers) {
          for (const secret of ['QUxJQ0U6U0VDUkVUMQ==', 'SECRET2', 'SECRET3', 'SECRET4', 'SECRET5', 'AKIDSECRET6', 'SECRET7']) assert.ok(!text.includes(secret), `${p} leaks ${secret}: ${text.slice(0, 400)}`);
        }
        assert.match(answers[0]![1], /<redacted>/);
        for (const mp of ['/reg', '/s3']) assert.equal((await curl(sock, 'DELETE', `/api/v1/mount?mountpoint=${mp}`)).status, 204);
      });

      await t.test('a file named as "config" is never echoed back', async () => {
        const fake = join(ws.root, 'shadow');
        writeFileSync(fake, 'root:$y$j9T$SHADOWSECRET:19000:0:99999:7:::\ndaemon:*:19000"QUOTED"SECRET2::\n', { mode: 0o600 });
        const quoted = join(ws.root, 'quoted');
        writeFileSync(quoted, '"abc"QSECRET"def"', { mode: 0o600 });
        for (const f of [fake, quoted]) {
          const r = await mount('/x', { source: img.bootstrap, fs_type: 'rafs', config: f });
          assert.equal(r.status, 400, r.text);
          for (const s of ['SHADOWSECRET', 'QUOTED', 'QSECRET', 'root:', 'abc']) assert.ok(!r.text.includes(s), `mount error echoes ${s}: ${r.text}`);
          assert.match((r.json as { message: string }).message, /invalid JSON|neither JSON nor TOML/);
        }
        assert.ok(!d!.log().includes('SHADOWSECRET'), 'nor logged');
      });

      await t.test('mount at "/" and over-long names are refused', async () => {
        const root = await mount('/', { source: img.bootstrap, fs_type: 'rafs', config: ws.configText });
        assert.equal(root.status, 400, root.text);
        assert.match((root.json as { message: string }).message, /hide/);
        const long = await mount(`/${'a'.repeat(300)}`, { source: img.bootstrap, fs_type: 'rafs', config: ws.configText });
        assert.equal(long.status, 400, long.text);
        assert.match((long.json as { message: string }).message, /300 bytes/);
        // 255 bytes is NAME_MAX itself: accepted and reachable.
        const max = `/${'b'.repeat(255)}`;
        assert.equal((await mount(max, { source: img.bootstrap, fs_type: 'rafs', config: ws.configText })).status, 204);
        assert.equal(statSync(join(ws.mnt, max, 'hello.txt')).size, img.tree.get('hello.txt')!.length);
        assert.equal(readAll(join(ws.mnt, 'm', 'hello.txt')), img.tree.get('hello.txt')!.length, 'the other mount is still visible');
      });
    } finally {
      if (w) await stopDaemon(d, w);
    }
  });
});
