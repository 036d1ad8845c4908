// The shared HTTP layer under faults (via the http-proxy backend against test/helpers/http-faults),
// plus P2P proxy routing with ping-driven fallback and recovery.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackendError } from '../../util/errors.js';
import { startFaultServer, type FaultServer } from '../../../test/helpers/http-faults.js';
import { until } from '../../../test/helpers/poll.js';
import { createHttpProxyBackend, type HttpProxyBackend } from './http-proxy.js';
import { wholeRequestDeadlineMs } from './http.js';

const ID = 'a'.repeat(64);
const DATA = randomBytes(256 * 1024);

async function withServer(fn: (s: FaultServer, b: (cfg?: Record<string, unknown>) => HttpProxyBackend) => Promise<void>): Promise<void> {
  const s = await startFaultServer({ [ID]: DATA });
  const made: HttpProxyBackend[] = [];
  try {
    await fn(s, (cfg = {}) => {
      const b = createHttpProxyBackend({ addr: s.url, path: 'blobs', timeout: 0.3, connect_timeout: 1, retry_limit: 3, ...cfg });
      made.push(b);
      return b;
    });
  } finally {
    for (const b of made) await b.close();
    await s.close();
  }
}

test('ranged reads return exact bytes; size via HEAD; short read at the blob end; 416 past the end', () =>
  withServer(async (s, mk) => {
    const b = mk();
    assert.equal(await b.blobSize(ID), DATA.length);
    assert.deepEqual(Buffer.from(await b.read(ID, 1000, 5000)), DATA.subarray(1000, 6000));
    assert.deepEqual(Buffer.from(await b.read(ID, DATA.length - 10, 100)), DATA.subarray(DATA.length - 10));
    assert.equal((await b.read(ID, DATA.length, 10)).length, 0);
    assert.equal(s.requests.at(-1)!.path, `/blobs/${ID}`);
    await assert.rejects(b.read('f'.repeat(64), 0, 10), (e: unknown) => e instanceof BackendError && e.code === 'ERR_BACKEND_NOT_FOUND' && e.message.includes('f'.repeat(64)));
  }));

test('5xx and 429 are retried, then the right bytes arrive', () =>
  withServer(async (s, mk) => {
    const b = mk();
    s.faults.push({ kind: 'status', status: 503 }, { kind: 'status', status: 500 }, { kind: 'status', status: 429 });
    assert.deepEqual(Buffer.from(await b.read(ID, 0, 4096)), DATA.subarray(0, 4096));
    assert.equal(s.requests.length, 4);
    s.faults.push({ kind: 'status', status: 502 });
    const noRetry = mk({ retry_limit: 0 });
    await assert.rejects(noRetry.read(ID, 0, 10), (e: unknown) => e instanceof BackendError && e.status === 502 && e.retryable);
  }));

test('a stalled server fails with a timeout error within the bound', () =>
  withServer(async (s, mk) => {
    const b = mk({ retry_limit: 0, timeout: 0.2 });
    s.faults.push({ kind: 'stall' });
    // The stall is endless: any finite bound shows the timeout works; 10 s is 50x the 0.2 s timeout.
    let t0 = performance.now();
    await assert.rejects(b.read(ID, 0, 100), (e: unknown) => e instanceof BackendError && e.code === 'ERR_BACKEND_TIMEOUT');
    assert.ok(performance.now() - t0 < 10_000, 'header stall bounded');
    s.faults.push({ kind: 'stall-body', after: 1000 });
    t0 = performance.now();
    await assert.rejects(b.read(ID, 0, 100_000), (e: unknown) => e instanceof BackendError && e.code === 'ERR_BACKEND_TIMEOUT');
    assert.ok(performance.now() - t0 < 10_000, 'body stall bounded');
    // A stall followed by a healthy answer is retried into the right bytes.
    s.faults.push({ kind: 'stall-body', after: 10 });
    assert.deepEqual(Buffer.from(await mk({ timeout: 0.2 }).read(ID, 10, 50_000)), DATA.subarray(10, 50_010));
  }));

test('a trickling server (1 byte per 50 ms) hits the whole-request deadline, then a healthy retry succeeds', { timeout: 30_000 }, () =>
  withServer(async (s, mk) => {
    // timeout 0.3 s never elapses between bytes; the deadline is 0.3 (connect) + 2 × 0.3 s for 4 KiB.
    const b = mk({ retry_limit: 0, timeout: 0.3, connect_timeout: 0.3 });
    assert.equal(wholeRequestDeadlineMs({ connectTimeoutMs: 300, timeoutMs: 300 }, 4096), 900);
    s.faults.push({ kind: 'trickle', everyMs: 50 });
    const t0 = performance.now();
    await assert.rejects(b.read(ID, 0, 4096), (e: unknown) => e instanceof BackendError && e.code === 'ERR_BACKEND_TIMEOUT' && /whole-request deadline/.test(e.message));
    assert.ok(performance.now() - t0 < 5000, `bounded (${Math.round(performance.now() - t0)} ms)`);
    s.faults.push({ kind: 'trickle', everyMs: 50 });
    assert.deepEqual(Buffer.from(await mk({ retry_limit: 1, timeout: 0.3, connect_timeout: 0.3 }).read(ID, 0, 4096)), DATA.subarray(0, 4096));
  }));

test('resets and mid-body drops are retried into correct bytes, or fail; never wrong data', () =>
  withServer(async (s, mk) => {
    const b = mk();
    s.faults.push({ kind: 'reset' }, { kind: 'drop', after: 3000 });
    assert.deepEqual(Buffer.from(await b.read(ID, 5, 100_000)), DATA.subarray(5, 100_005));
    const once_ = mk({ retry_limit: 0 });
    s.faults.push({ kind: 'drop', after: 3000 });
    await assert.rejects(once_.read(ID, 0, 100_000), (e: unknown) => e instanceof BackendError && e.retryable && e.code === 'ERR_BACKEND_NETWORK');
    s.faults.push({ kind: 'wrong-range', shift: 1 });
    await assert.rejects(once_.read(ID, 0, 1000), /asked for 0-999/);
    s.faults.push({ kind: 'long', extra: 7 });
    await assert.rejects(once_.read(ID, 0, 1000), /longer than the expected 1000 bytes/);
    s.faults.push({ kind: 'long', extra: 7 }, { kind: 'wrong-range', shift: 3 });
    assert.deepEqual(Buffer.from(await b.read(ID, 0, 1000)), DATA.subarray(0, 1000));
  }));

test('an aborted read rejects promptly', () =>
  withServer(async (s, mk) => {
    // The timeout is far beyond the test's: only the abort can end this read.
    const b = mk({ timeout: 600, retry_limit: 0 });
    s.faults.push({ kind: 'stall' });
    const ac = new AbortController();
    const before = s.requests.length;
    const p = b.read(ID, 0, 10, ac.signal);
    await until('the stalled request to reach the server', () => s.requests.length > before);
    ac.abort(new Error('stop'));
    await assert.rejects(p, (e: unknown) => !(e instanceof BackendError && e.code === 'ERR_BACKEND_TIMEOUT'));
  }));

test('unix-socket addr serves the same API', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hp-sock-'));
  const sock = join(dir, 's.sock');
  const server = http.createServer((req, res) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    const body = m ? DATA.subarray(Number(m[1]), Number(m[2]) + 1) : DATA;
    res.writeHead(m ? 206 : 200, m ? { 'content-range': `bytes ${m[1]}-${Number(m[1]) + body.length - 1}/${DATA.length}`, 'content-length': body.length } : { 'content-length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  server.listen(sock);
  await once(server, 'listening');
  const b = createHttpProxyBackend({ addr: sock });
  try {
    assert.equal(await b.blobSize(ID), DATA.length);
    assert.deepEqual(Buffer.from(await b.read(ID, 7, 70)), DATA.subarray(7, 77));
  } finally {
    await b.close();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('proxy block: through the proxy when healthy, origin while down, proxy again after recovery', async () => {
  const origin = await startFaultServer({ [ID]: DATA });
  const proxy = await startFaultServer({ [ID]: DATA });
  const b = createHttpProxyBackend({ addr: origin.url, retry_limit: 1, proxy: { url: proxy.url, ping_url: `${proxy.url}/ping`, fallback: true, check_interval: 0.05 } });
  const router = b.proxy!;
  const viaProxy = () => proxy.requests.filter((r) => r.viaProxy && r.path !== '/ping').length;
  // Checks run every 50 ms; a minute without the event is a failure, and the finally still runs.
  const event = (name: string) => once(router, name, { signal: AbortSignal.timeout(60_000) });
  try {
    await event('check');
    assert.deepEqual(Buffer.from(await b.read(ID, 0, 100)), DATA.subarray(0, 100));
    assert.equal(viaProxy(), 1);
    assert.equal(proxy.requests.find((r) => r.viaProxy)!.headers.host, new URL(origin.url).host);
    // Proxy goes down: the health check notices, reads go to the origin.
    proxy.healthy = false;
    proxy.broken = true;
    const [down] = (await event('health')) as [boolean];
    assert.equal(down, false);
    const originBefore = origin.requests.length;
    assert.deepEqual(Buffer.from(await b.read(ID, 100, 100)), DATA.subarray(100, 200));
    assert.equal(viaProxy(), 1);
    assert.equal(origin.requests.length, originBefore + 1);
    // Recovery: back through the proxy.
    proxy.healthy = true;
    proxy.broken = false;
    const [up] = (await event('health')) as [boolean];
    assert.equal(up, true);
    assert.deepEqual(Buffer.from(await b.read(ID, 200, 100)), DATA.subarray(200, 300));
    assert.equal(viaProxy(), 2);
  } finally {
    await b.close();
    await origin.close();
    await proxy.close();
  }
});

test('proxy 5xx on a request falls back to the origin for that request', async () => {
  const origin = await startFaultServer({ [ID]: DATA });
  const proxy = await startFaultServer({});
  proxy.broken = true;
  const b = createHttpProxyBackend({ addr: origin.url, retry_limit: 0, proxy: { url: proxy.url, fallback: true } });
  const strict = createHttpProxyBackend({ addr: origin.url, retry_limit: 0, proxy: { url: proxy.url, fallback: false } });
  try {
    assert.deepEqual(Buffer.from(await b.read(ID, 0, 10)), DATA.subarray(0, 10));
    await assert.rejects(strict.read(ID, 0, 10), (e: unknown) => e instanceof BackendError && e.status === 500);
  } finally {
    await b.close();
    await strict.close();
    await origin.close();
    await proxy.close();
  }
});
