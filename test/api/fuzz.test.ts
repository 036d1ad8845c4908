// Acceptance (issue 6, item 3): 1,000 malformed API requests each get a 4xx JSON error body
// {code, message} (never a 500 for the client's mistake, never a crash or a dropped connection), and
// the daemon keeps serving reads of an existing mount throughout (checked after every 100).
import assert from 'node:assert/strict';
import { createConnection } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { curl, makeWorkspace, pattern, skipReason, startDaemon, stopDaemon, type CurlResult, type Daemon, type Workspace } from './harness.js';

const skip = skipReason();
const TOTAL = 1000;

/** Seeded PRNG so a failure is reproducible. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

interface Case {
  what: string;
  method: string;
  path: string;
  data?: string;
  dataFile?: string;
  /** Sent as raw bytes over the socket instead of curl (broken HTTP). */
  raw?: Buffer;
  args?: string[];
}

/** What HTTP the server answered on a raw socket: status and body. */
function rawRequest(sock: string, bytes: Buffer): Promise<CurlResult> {
  return new Promise((resolve, reject) => {
    const c = createConnection(sock);
    const parts: Buffer[] = [];
    const timer = setTimeout(() => c.destroy(new Error('raw request: no answer in 10 s')), 10_000);
    c.on('data', (d) => parts.push(d));
    c.on('error', (e) => (clearTimeout(timer), reject(e)));
    c.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(parts).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      const body = text.slice(text.indexOf('\r\n\r\n') + 4);
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      resolve({ status: m ? Number(m[1]) : 0, text, json });
    });
    c.end(bytes);
  });
}

function makeCases(w: Workspace, r: () => number): Case[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const boot = w.images[0]!.bootstrap;
  const garbageBoot = join(w.root, 'garbage.boot');
  writeFileSync(garbageBoot, pattern(64 * 1024, 7));
  const truncBoot = join(w.root, 'truncated.boot');
  writeFileSync(truncBoot, readFileSync(boot).subarray(0, 1500));
  const bigFile = join(w.root, 'big-body.json');
  writeFileSync(bigFile, `{"source":"${'A'.repeat(2 << 20)}"}`);
  // Bodies too big for argv go through files.
  const hugeSource = [50_000, 300_000, 900_000].map((n) => {
    const f = join(w.root, `huge-${n}.json`);
    writeFileSync(f, JSON.stringify({ source: '/'.concat('x'.repeat(n)), config: w.configText }));
    return f;
  });
  const good = JSON.stringify({ source: boot, fs_type: 'rafs', config: w.configText });
  // Unknown keys alone are accepted (with a warning, as upstream ignores them); a wrong type is not.
  const unknownKeys = JSON.stringify({ ...JSON.parse(w.configText), surprise: { nested: true }, mode: 'direct', enable_xattr: 'yes' });
  const mp = (): string => `/fz${Math.floor(r() * 1e6)}`;
  const randBytes = (n: number): string => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
    // curl --data-binary from a file keeps every byte (NULs included).
    const f = join(w.root, `rand-${Math.floor(r() * 1e9)}.bin`);
    writeFileSync(f, b);
    return f;
  };
  const wrongTypes = [
    { source: 1, config: w.configText },
    { source: [boot], config: w.configText },
    { source: boot, config: JSON.parse(w.configText) as object },
    { source: boot, config: w.configText, fs_type: 5 },
    { source: boot, config: w.configText, prefetch_files: '/x' },
    { source: boot, config: w.configText, prefetch_files: [1, 2] },
    { source: null, config: null },
    { source: '', config: w.configText },
    { source: boot, config: '' },
    { source: boot, config: w.configText, fs_type: 'blobfs' },
    { source: boot, config: '{"device":{"backend":{"type":"localfs","config":{}}}}' },
    { source: boot, config: '{"version":2,"backend":{"type":"nope"}}' },
    { source: boot, config: 12 },
    [good],
    'a string',
    42,
    true,
  ];
  const gens: Array<() => Case> = [
    () => ({ what: 'random bytes to POST /mount', method: 'POST', path: `/api/v1/mount?mountpoint=${mp()}`, dataFile: randBytes(1 + Math.floor(r() * 4000)) }),
    () => ({ what: 'random bytes to PUT /mount', method: 'PUT', path: `/api/v1/mount?mountpoint=/sub`, dataFile: randBytes(1 + Math.floor(r() * 500)) }),
    () => ({ what: 'random bytes to PUT /daemon', method: 'PUT', path: '/api/v1/daemon', dataFile: randBytes(1 + Math.floor(r() * 300)) }),
    () => ({ what: 'random bytes to PUT /config', method: 'PUT', path: '/api/v1/config', dataFile: randBytes(1 + Math.floor(r() * 300)) }),
    () => ({ what: 'truncated JSON', method: pick(['POST', 'PUT']), path: `/api/v1/mount?mountpoint=${pick([mp(), '/sub'])}`, data: good.slice(0, 1 + Math.floor(r() * (good.length - 2))) }),
    () => ({ what: 'wrong types', method: 'POST', path: `/api/v1/mount?mountpoint=${mp()}`, data: JSON.stringify(pick(wrongTypes)) }),
    () => ({ what: 'wrong type for remount', method: 'PUT', path: '/api/v1/mount?mountpoint=/sub', data: JSON.stringify(pick(wrongTypes)) }),
    () => ({ what: 'wrong log_level', method: 'PUT', path: '/api/v1/daemon', data: JSON.stringify(pick([{ log_level: 5 }, { log_level: 'LOUD' }, {}, [], null, { level: 'info' }, { log_level: 'x'.repeat(100_000) }])) }),
    () => ({ what: 'bad PUT /config', method: 'PUT', path: `/api/v1/config${pick(['', '?id=/sub', '?id=/nope'])}`, data: JSON.stringify(pick([{ unknown_key: 'x' }, { registry_auth: 5 }, { proxy_url: ['x'] }, { registry_auth: 'dXNlcjpwYXNz' }, [], 'str'])) }),
    () => ({ what: 'huge source string', method: 'POST', path: `/api/v1/mount?mountpoint=${mp()}`, dataFile: hugeSource[Math.floor(r() * hugeSource.length)]! }),
    () => ({ what: 'body over 1 MiB', method: 'POST', path: `/api/v1/mount?mountpoint=${mp()}`, dataFile: bigFile }),
    () => ({ what: 'non-existent bootstrap', method: pick(['POST', 'PUT']), path: `/api/v1/mount?mountpoint=${pick([mp(), '/sub'])}`, data: JSON.stringify({ source: join(w.root, `missing-${Math.floor(r() * 1e6)}`), fs_type: 'rafs', config: w.configText }) }),
    () => ({ what: 'garbage bootstrap', method: 'POST', path: `/api/v1/mount?mountpoint=${mp()}`, data: JSON.stringify({ source: pick([garbageBoot, truncBoot, w.blobs, '/dev/null', '/proc/self/status', w.configPath]), fs_type: 'rafs', config: w.configText }) }),
    () => ({ what: 'garbage bootstrap remount', method: 'PUT', path: '/api/v1/mount?mountpoint=/sub', data: JSON.stringify({ source: pick([garbageBoot, truncBoot]), fs_type: 'rafs', config: w.configText }) }),
    () => ({ what: 'config with unknown keys and a wrong type', method: pick(['POST', 'PUT']), path: `/api/v1/mount?mountpoint=${pick([mp(), '/sub'])}`, data: JSON.stringify({ source: boot, fs_type: 'rafs', config: unknownKeys }) }),
    () => ({ what: 'bad mountpoint', method: pick(['POST', 'PUT', 'DELETE']), path: `/api/v1/mount${pick(['', '?mountpoint=', '?mountpoint=sub', '?mountpoint=/a/../sub', '?mountpoint=/./sub', '?mountpoint=%00', '?mountpoint=/sub%00x', '?mountpoint=../../etc', '?mountpoint=/..', '?mount=/sub', '?mountpoint=/' + 'y'.repeat(300) + '/..'])}`, data: good }),
    () => ({ what: 'nested mountpoint', method: 'POST', path: `/api/v1/mount?mountpoint=${pick(['/sub/inner', '/sub/dir/x'])}`, data: good }),
    () => ({ what: 'remount/umount of an absent mountpoint', method: pick(['PUT', 'DELETE']), path: `/api/v1/mount?mountpoint=${mp()}`, data: good }),
    () => ({ what: 'traversal path', method: pick(['GET', 'PUT', 'POST']), path: pick(['/api/v1/../../etc/passwd', '/../api/v1/daemon/../../../x', '/api/v1/daemon/..%2F..%2Fexit', '/api/v1/%2e%2e/daemon', '/api/v1//daemon//exit', '/api/v1/mount/../../../../bin/sh']), args: ['--path-as-is'] }),
    () => ({ what: 'NUL and junk in the path', method: 'GET', path: pick(['/api/v1/daemon%00', '/api/v1/metrics%00/x', '/api/v1/%ff%fe', '/api/v1/metrics/nope', '/api/v3/daemon', '/', '/api', '/metrics/extra', '/api/v1/daemon/' + 'z'.repeat(4000)]) }),
    () => ({ what: 'fuzzed query', method: 'GET', path: `/api/v1/${pick(['metrics', 'metrics/backend', 'metrics/blobcache', 'metrics/files', 'metrics/pattern', 'config'])}?${pick(['id=/nope', 'id=%00', 'id=../../x', 'id=' + 'q'.repeat(5000), 'id=/sub%00'])}` }),
    () => ({ what: 'fuzzed query', method: 'GET', path: `/api/v1/daemon/backend${pick(['', '?mountpoint=/nope', '?mountpoint=relative', '?mountpoint=%00', '?id=/sub', '?mountpoint=/../sub'])}` }),
    // Disabled per-file metrics answer 200 with an empty body, as upstream; an unknown id is 404.
    () => ({ what: 'metrics of an unknown id', method: 'GET', path: pick(['/api/v1/metrics/files?id=/nosuch', '/api/v1/metrics/pattern?id=/nosuch', '/api/v1/metrics/files?id=/nosuch&latest=true']) }),
    () => ({ what: 'wrong method', method: pick(['DELETE', 'POST', 'PATCH', 'OPTIONS']), path: pick(['/api/v1/daemon', '/api/v1/metrics', '/api/v1/metrics/backend', '/api/v1/daemon/events', '/api/v1/daemon/exit', '/api/v1/config', '/metrics', '/api/v2/daemon']), data: '{}' }),
    () => ({ what: 'bad v2 blobs request', method: pick(['GET', 'PUT', 'DELETE']), path: `/api/v2/blobs${pick(['', '?blob_id=../../etc/passwd', '?blob_id=' + 'f'.repeat(63), '?domain_id=nope&blob_id=x', '?domain_id=%00'])}`, data: JSON.stringify(pick([{}, { type: 'bootstrap' }, { type: 'x', id: 'a', config_v2: {} }, { type: 'datablob', id: 'a/b', config_v2: {} }, { type: 'datablob', id: 'a' }, { type: 'bootstrap', id: 'b', config: 'str' }, [], null])) }),
    () => ({ what: 'wrong method on /mount', method: pick(['GET', 'PATCH']), path: '/api/v1/mount?mountpoint=/sub' }),
    () => ({
      what: 'broken HTTP on the raw socket',
      method: 'RAW',
      path: '',
      raw: Buffer.from(pick([
        'GET /api/v1/daemon\0 HTTP/1.1\r\nHost: x\r\n\r\n',
        'GET /api/v1/da mon HTTP/1.1\r\nHost: x\r\n\r\n',
        'BLAH\r\n\r\n',
        `GET /api/v1/daemon HTTP/1.1\r\nHost: x\r\nX-Big: ${'h'.repeat(20_000)}\r\n\r\n`,
        'POST /api/v1/mount?mountpoint=/fzraw HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nzzzzz',
        'PUT /api/v1/daemon HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nbroken\r\n',
        '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03',
      ]), 'latin1'),
    }),
  ];
  return Array.from({ length: TOTAL }, () => pick(gens)());
}

describe('API fuzz: 1,000 malformed requests', { skip }, () => {
  it('every one gets a 4xx JSON error; reads of /sub keep working', { timeout: 600_000 }, async (t) => {
    let w: Workspace | undefined;
    let d: Daemon | undefined;
    try {
      w = makeWorkspace('fuzz', 1);
      const ws = w;
      const img = ws.images[0]!;
      d = await startDaemon(ws);
      const sock = ws.sock;
      const m = await curl(sock, 'POST', '/api/v1/mount?mountpoint=/sub', { data: JSON.stringify({ source: img.bootstrap, fs_type: 'rafs', config: ws.configText }) });
      assert.equal(m.status, 204, m.text);
      const files = [...img.tree.keys()];
      const checkReads = (round: number): void => {
        for (const f of files) assert.ok(readFileSync(join(ws.mnt, 'sub', f)).equals(img.tree.get(f)!), `after ${round} requests: /sub/${f} reads wrong`);
      };
      checkReads(0);
      const cases = makeCases(ws, rng(0x6e796475));
      const bad: string[] = [];
      const byWhat = new Map<string, number>();
      for (let i = 0; i < cases.length; i += 10) {
        const batch = cases.slice(i, i + 10);
        const results = await Promise.all(batch.map((c) => (c.raw ? rawRequest(sock, c.raw) : curl(sock, c.method, c.path, { ...(c.data !== undefined ? { data: c.data } : {}), ...(c.dataFile ? { dataFile: c.dataFile } : {}), ...(c.args ? { args: c.args } : {}) })).catch((e: Error) => ({ status: -1, text: e.message, json: undefined }))));
        batch.forEach((c, k) => {
          const r = results[k]!;
          byWhat.set(c.what, (byWhat.get(c.what) ?? 0) + 1);
          const body = r.json as { code?: unknown; message?: unknown } | undefined;
          const okShape = body !== undefined && typeof body === 'object' && typeof body.code === 'string' && typeof body.message === 'string';
          if (!(r.status >= 400 && r.status < 500) || !okShape) bad.push(`#${i + k} ${c.what}: ${c.method} ${c.path.slice(0, 120)} ${c.data?.slice(0, 80) ?? ''} → ${r.status} ${r.text.slice(0, 200)}`);
        });
        if ((i + 10) % 100 === 0) {
          assert.equal(d.proc.exitCode, null, `nydusd died after ${i + 10} requests: ${d.log()}`);
          checkReads(i + 10);
        }
      }
      t.diagnostic(`cases: ${[...byWhat].map(([k, v]) => `${k}=${v}`).join(', ')}`);
      const kinds = [...new Set(bad.map((b) => b.split(':')[0]!.replace(/^#\d+ /, '')))].join(', ');
      assert.deepEqual(bad.slice(0, 25), [], `${bad.length} of ${TOTAL} requests were not answered with a 4xx JSON error (${kinds})`);
      const info = (await curl(sock, 'GET', '/api/v1/daemon')).json as { state: string; backend_collection: Record<string, unknown> };
      assert.equal(info.state, 'RUNNING');
      assert.deepEqual(Object.keys(info.backend_collection), ['/sub'], 'no malformed request mounted or unmounted anything');
      checkReads(TOTAL);
    } finally {
      if (w) await stopDaemon(d, w);
    }
  });
});
