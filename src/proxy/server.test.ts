// nydus-backend-proxy as a real process on 127.0.0.1: ranges, HEAD, traversal, big files, curl.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync, rmSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { BIN } from '../../test/helpers/paths.js';
import { parseRange } from './range.js';

let dir = '';
let proc: ChildProcess | undefined;
let base = '';
const small = randomBytes(10_000);
const smallId = createHash('sha256').update(small).digest('hex');
const bigId = 'b'.repeat(64);
const BIG = 48 * 1024 * 1024;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nbp-'));
  writeFileSync(join(dir, smallId), small);
  // Big file written in slices: only its pattern is checked, never held whole.
  const fd = openSync(join(dir, bigId), 'w');
  const slice = Buffer.alloc(1 << 20);
  for (let i = 0; i < BIG >> 20; i++) writeSync(fd, slice.fill(i & 0xff));
  closeSync(fd);
  proc = spawn(process.execPath, [BIN('nydus-backend-proxy'), '--blobsdir', dir, '--address', '127.0.0.1', '--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.setEncoding('utf8');
  base = await new Promise<string>((resolve, reject) => {
    proc!.stderr!.on('data', (d: string) => {
      err += d;
      const m = /on (http:\/\/127\.0\.0\.1:\d+)/.exec(err);
      if (m) resolve(m[1]!);
    });
    proc!.once('exit', (c) => reject(new Error(`proxy exited ${c}: ${err}`)));
  });
});

after(() => {
  if (proc && proc.exitCode === null) proc.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const url = (id: string, repo = 'v2/library/ubuntu') => `${base}/${repo}/blobs/sha256:${id}`;

test('parseRange() handles open, suffix, clamped and unsatisfiable ranges', () => {
  assert.deepEqual(parseRange('bytes=0-9', 100), { kind: 'range', start: 0, end: 9 });
  assert.deepEqual(parseRange('bytes=90-', 100), { kind: 'range', start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=-10', 100), { kind: 'range', start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=-1000', 100), { kind: 'range', start: 0, end: 99 });
  assert.deepEqual(parseRange('bytes=50-5000', 100), { kind: 'range', start: 50, end: 99 });
  assert.deepEqual(parseRange('bytes=100-', 100), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=-0', 100), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=5-1', 100), { kind: 'none' });
  assert.deepEqual(parseRange('items=0-1', 100), { kind: 'none' });
  assert.deepEqual(parseRange('bytes=0-1,5-6', 100), { kind: 'range', start: 0, end: 1 });
});

test('GET whole blob, ranges, suffix and open ranges, 416', async () => {
  let r = await fetch(url(smallId));
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('docker-content-digest'), `sha256:${smallId}`);
  assert.equal(r.headers.get('content-length'), '10000');
  assert.deepEqual(Buffer.from(await r.arrayBuffer()), small);
  r = await fetch(url(smallId), { headers: { range: 'bytes=100-1099' } });
  assert.equal(r.status, 206);
  assert.equal(r.headers.get('content-range'), 'bytes 100-1099/10000');
  assert.deepEqual(Buffer.from(await r.arrayBuffer()), small.subarray(100, 1100));
  r = await fetch(url(smallId), { headers: { range: 'bytes=-100' } });
  assert.equal(r.headers.get('content-range'), 'bytes 9900-9999/10000');
  assert.deepEqual(Buffer.from(await r.arrayBuffer()), small.subarray(9900));
  r = await fetch(url(smallId), { headers: { range: 'bytes=9000-' } });
  assert.deepEqual(Buffer.from(await r.arrayBuffer()), small.subarray(9000));
  r = await fetch(url(smallId), { headers: { range: 'bytes=10000-10010' } });
  assert.equal(r.status, 416);
  assert.equal(r.headers.get('content-range'), 'bytes */10000');
  await r.arrayBuffer();
});

test('HEAD, multi-segment repos, static route, 404, 405, 400', async () => {
  let r = await fetch(url(smallId, 'v2/a/b/c'), { method: 'HEAD' });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-length'), '10000');
  r = await fetch(`${base}/${smallId}`);
  assert.equal(r.status, 200);
  await r.arrayBuffer();
  r = await fetch(url('0'.repeat(64)));
  assert.equal(r.status, 404);
  await r.arrayBuffer();
  r = await fetch(url(smallId), { method: 'DELETE' });
  assert.equal(r.status, 405);
  await r.arrayBuffer();
  r = await fetch(`${base}/v2/x/blobs/md5:abc`);
  assert.equal(r.status, 400);
  await r.arrayBuffer();
});

test('path traversal attempts never reach the filesystem', () => {
  // curl --path-as-is sends the dots unnormalised.
  for (const p of ['/v2/x/blobs/sha256:..%2f..%2f..%2fetc%2fpasswd', '/v2/x/blobs/sha256:../../etc/passwd', '/..%2f..%2fetc%2fpasswd', `/v2/x/blobs/sha256:${smallId}%00`, '/%2e%2e/%2e%2e/etc/passwd']) {
    const code = execFileSync('curl', ['-s', '--path-as-is', '-o', '/dev/null', '-w', '%{http_code}', base + p], { encoding: 'utf8' });
    assert.ok(['400', '404'].includes(code), `${p} → ${code}`);
  }
});

test('curl ranged download and a big blob streamed with exact bytes and metrics', async () => {
  const out = execFileSync('curl', ['-s', '-r', '0-99', url(smallId)]);
  assert.deepEqual(out, small.subarray(0, 100));
  const before = (await (await fetch(`${base}/metrics`)).json()) as { bytesServed: number };
  const hash = createHash('sha256');
  let n = 0;
  const r = await fetch(url(bigId), { headers: { range: `bytes=1048575-${BIG - 2}` } });
  assert.equal(r.status, 206);
  for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
    hash.update(chunk);
    n += chunk.length;
  }
  assert.equal(n, BIG - 1048576);
  const want = createHash('sha256');
  const slice = Buffer.alloc(1 << 20);
  want.update(Buffer.from([0]));
  for (let i = 1; i < BIG >> 20; i++) want.update(i === (BIG >> 20) - 1 ? slice.fill(i & 0xff).subarray(0, (1 << 20) - 1) : slice.fill(i & 0xff));
  assert.equal(hash.digest('hex'), want.digest('hex'));
  const afterM = (await (await fetch(`${base}/metrics`)).json()) as { bytesServed: number };
  assert.equal(afterM.bytesServed - before.bytesServed, n);
});

test('SIGTERM shuts the server down cleanly', async () => {
  proc!.kill('SIGTERM');
  const [code] = (await once(proc!, 'exit')) as [number | null];
  assert.equal(code, 0);
});
