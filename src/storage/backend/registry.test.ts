// Registry backend against Debian docker-registry (no auth, htpasswd, token) and a tiny redirecting
// registry in front of a blob store. All on 127.0.0.1; every process is stopped in finally.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { BackendError } from '../../util/errors.js';
import { setLogSink } from '../../util/log.js';
import { hasDockerRegistry, pushBlob, startRegistry } from '../../../test/helpers/registry.js';
import { startFaultServer } from '../../../test/helpers/http-faults.js';
import { createRegistryBackend } from './registry.js';
import { parseWwwAuthenticate } from './registry-auth.js';

const skip = hasDockerRegistry() ? false : 'docker-registry is not installed';
const DATA = randomBytes(300_000);
const b64 = (s: string) => Buffer.from(s).toString('base64');
const logLines: string[] = [];
setLogSink((l) => logLines.push(l));

test('parseWwwAuthenticate() keeps commas inside quoted scopes', () => {
  assert.deepEqual(parseWwwAuthenticate('Bearer realm="http://a/token",service="reg",scope="repository:x/y:pull,push"'), {
    scheme: 'bearer',
    params: { realm: 'http://a/token', service: 'reg', scope: 'repository:x/y:pull,push' },
  });
  assert.equal(parseWwwAuthenticate('Basic realm="basic-realm"')!.scheme, 'basic');
});

test('no-auth registry: ranged reads equal the pushed bytes; size; missing blob', { skip }, async () => {
  const reg = await startRegistry();
  const b = createRegistryBackend({ scheme: 'http', host: reg.host, repo: 'test/multi/seg', retry_limit: 1 });
  try {
    const id = await pushBlob(reg, 'test/multi/seg', DATA);
    assert.equal(await b.blobSize(id), DATA.length);
    assert.deepEqual(Buffer.from(await b.read(id, 0, 4096)), DATA.subarray(0, 4096));
    assert.deepEqual(Buffer.from(await b.read(id, 123_456, 100_000)), DATA.subarray(123_456, 223_456));
    assert.deepEqual(Buffer.from(await b.read(id, DATA.length - 5, 50)), DATA.subarray(DATA.length - 5));
    await assert.rejects(b.read('0'.repeat(64), 0, 10), (e: unknown) => e instanceof BackendError && e.code === 'ERR_BACKEND_NOT_FOUND' && e.message.includes('0'.repeat(64)));
    await assert.rejects(b.read('../etc/passwd', 0, 10), /invalid blob id/);
  } finally {
    await b.close();
    await reg.close();
  }
});

test('htpasswd registry: Basic after the challenge; wrong or missing credentials are auth errors without secrets', { skip }, async () => {
  const reg = await startRegistry({ auth: 'htpasswd' });
  const good = createRegistryBackend({ scheme: 'http', host: reg.host, repo: 'test/small', auth: b64('alice:s3cret') });
  const bad = createRegistryBackend({ scheme: 'http', host: reg.host, repo: 'test/small', auth: b64('alice:wrong-pw'), retry_limit: 0 });
  const anon = createRegistryBackend({ scheme: 'http', host: reg.host, repo: 'test/small', retry_limit: 0 });
  try {
    const id = await pushBlob(reg, 'test/small', DATA);
    assert.deepEqual(Buffer.from(await good.read(id, 10, 1000)), DATA.subarray(10, 1010));
    for (const be of [bad, anon]) {
      await assert.rejects(be.read(id, 0, 10), (e: unknown) => {
        assert.ok(e instanceof BackendError && e.code === 'ERR_BACKEND_AUTH', String(e));
        assert.ok(!e.message.includes('wrong-pw') && !e.message.includes(b64('alice:wrong-pw')));
        return true;
      });
    }
    assert.ok(!logLines.some((l) => l.includes(b64('alice:s3cret')) || l.includes('s3cret')));
  } finally {
    await Promise.all([good.close(), bad.close(), anon.close()]);
    await reg.close();
  }
});

test('token registry: Bearer flow, cached token, refresh on expiry and on 401', { skip }, async () => {
  // Tokens live 600 s on the registry's (real) clock; our refresh runs on an injected clock.
  const reg = await startRegistry({ auth: 'token', tokenExpiresIn: 600 });
  const ts = reg.token!;
  let skew = 0;
  const b = createRegistryBackend({ scheme: 'http', host: reg.host, repo: 'test/tok', auth: b64('alice:s3cret'), retry_limit: 0 }, { now: () => Date.now() + skew });
  const wrong = createRegistryBackend({ scheme: 'http', host: reg.host, repo: 'test/tok', auth: b64('alice:nope'), retry_limit: 0 });
  try {
    const id = await pushBlob(reg, 'test/tok', DATA);
    ts.requests = 0;
    assert.deepEqual(Buffer.from(await b.read(id, 0, 1000)), DATA.subarray(0, 1000));
    assert.deepEqual(Buffer.from(await b.read(id, 1000, 1000)), DATA.subarray(1000, 2000));
    assert.equal(ts.requests, 1, 'token reused while valid');
    // Just before the refresh point (expires_in less 30 s) the token is still used...
    skew = 560_000;
    assert.deepEqual(Buffer.from(await b.read(id, 1500, 100)), DATA.subarray(1500, 1600));
    assert.equal(ts.requests, 1);
    // ...past it, it is refreshed before use, not after a 401.
    skew = 601_000;
    assert.deepEqual(Buffer.from(await b.read(id, 2000, 1000)), DATA.subarray(2000, 3000));
    assert.equal(ts.requests, 2);
    // A token the registry refuses (expired JWT, though expires_in says 600 s) → 401 → new token.
    ts.issueExpired = 1;
    b.auth.invalidate();
    assert.deepEqual(Buffer.from(await b.read(id, 3000, 1000)), DATA.subarray(3000, 4000));
    assert.equal(ts.requests, 4);
    await assert.rejects(wrong.read(id, 0, 10), (e: unknown) => e instanceof BackendError && e.code === 'ERR_BACKEND_AUTH' && !e.message.includes('nope'));
  } finally {
    await b.close();
    await wrong.close();
    await reg.close();
  }
});

test('redirects to blob storage are followed without Authorization, rewritten, and cached', async () => {
  const ID = 'c'.repeat(64);
  const store = await startFaultServer({ [ID]: DATA });
  let registryHits = 0;
  const registry = http.createServer((req, res) => {
    registryHits++;
    if (req.headers.authorization !== `Basic ${b64('bob:pw')}`) return void res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' }).end();
    // Points at a host that does not exist; blob_redirected_host must rewrite it.
    res.writeHead(307, { location: `https://storage.invalid/bucket/${ID}?X-Amz-Signature=secret` }).end();
  });
  await new Promise<void>((r) => registry.listen(0, '127.0.0.1', r));
  const host = `127.0.0.1:${(registry.address() as AddressInfo).port}`;
  const b = createRegistryBackend({ scheme: 'http', host, repo: 'r', auth: b64('bob:pw'), blob_url_scheme: 'http', blob_redirected_host: `127.0.0.1:${store.port}`, retry_limit: 0 });
  try {
    assert.deepEqual(Buffer.from(await b.read(ID, 5, 500)), DATA.subarray(5, 505));
    assert.deepEqual(Buffer.from(await b.read(ID, 1000, 500)), DATA.subarray(1000, 1500));
    assert.equal(registryHits, 2, '401 then 307; the second read uses the cached storage URL');
    assert.equal(store.requests.length, 2);
    for (const r of store.requests) assert.equal(r.headers.authorization, undefined);
    // The cached URL is refused (expired presign): back to the registry once.
    store.faults.push({ kind: 'status', status: 403 });
    assert.deepEqual(Buffer.from(await b.read(ID, 0, 10)), DATA.subarray(0, 10));
    assert.equal(registryHits, 3);
  } finally {
    await b.close();
    await store.close();
    await new Promise<void>((r) => registry.close(() => r()));
  }
});

test('mirrors are tried first and fail over to the registry', async () => {
  const ID = 'd'.repeat(64);
  const mirror = await startFaultServer({ [ID]: DATA });
  const origin = await startFaultServer({ [ID]: DATA });
  const b = createRegistryBackend({ scheme: 'http', host: `127.0.0.1:${origin.port}`, repo: 'r', retry_limit: 0, mirrors: [{ host: mirror.url, headers: { 'x-mirror': '1' } }] });
  try {
    assert.deepEqual(Buffer.from(await b.read(ID, 0, 100)), DATA.subarray(0, 100));
    assert.equal(mirror.requests.length, 1);
    assert.equal(mirror.requests[0]!.headers['x-mirror'], '1');
    assert.equal(origin.requests.length, 0);
    mirror.broken = true;
    assert.deepEqual(Buffer.from(await b.read(ID, 100, 100)), DATA.subarray(100, 200));
    assert.equal(origin.requests.length, 1);
  } finally {
    await b.close();
    await mirror.close();
    await origin.close();
  }
});
