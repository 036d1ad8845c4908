// The backends' HTTP layer honours what configs and the environment ask for: `ca_cert_files` (extra
// trusted CAs), `client_cert_file`/`client_key_file` (mutual TLS), and HTTP(S)_PROXY / NO_PROXY
// (plain requests in absolute form, https through a CONNECT tunnel), against real node TLS servers
// with openssl-made certificates and a small forward proxy.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startForwardProxy, type ForwardProxy } from '../../../test/helpers/forward-proxy.js';
import { HttpClient, clientOptionsFrom, envProxyFor, type CommonHttpConfig } from './http.js';

const dir = mkdtempSync(join(tmpdir(), 'http-tls-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A self-signed certificate valid for 127.0.0.1 (it is its own CA). */
function selfSigned(name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return { cert, key };
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

const get = async (cfg: CommonHttpConfig, url: string, env: NodeJS.ProcessEnv = {}): Promise<string> => {
  const client = new HttpClient({ ...clientOptionsFrom({ timeout: 5, connect_timeout: 5, ...cfg }, 'registry'), env });
  try {
    const res = await client.request({ method: 'GET', url: new URL(url) });
    return `${res.status} ${(await res.readAll()).toString()}`;
  } finally {
    client.close();
  }
};

describe('backend HTTPS and proxies', () => {
  const server = selfSigned('server');
  const client = selfSigned('client');
  let tlsPort = 0;
  let mtlsPort = 0;
  let plainPort = 0;
  let proxy: ForwardProxy;
  const servers: net.Server[] = [];

  before(async () => {
    const tlsServer = https.createServer({ cert: readFileSync(server.cert), key: readFileSync(server.key) }, (_q, s) => s.end('tls'));
    const mtlsServer = https.createServer({ cert: readFileSync(server.cert), key: readFileSync(server.key), requestCert: true, rejectUnauthorized: true, ca: readFileSync(client.cert) }, (_q, s) => s.end('mtls'));
    const plain = http.createServer((q, s) => s.end(`plain ${q.url}`));
    proxy = await startForwardProxy();
    servers.push(tlsServer, mtlsServer, plain);
    [tlsPort, mtlsPort, plainPort] = await Promise.all([listen(tlsServer), listen(mtlsServer), listen(plain)]);
  });
  after(() => {
    proxy.close();
    for (const s of servers) {
      (s as http.Server).closeAllConnections?.();
      s.close();
    }
  });

  it('ca_cert_files makes a private CA trusted; without it the certificate is refused', async () => {
    await assert.rejects(get({}, `https://127.0.0.1:${tlsPort}/`), /SELF_SIGNED_CERT|certificate/i);
    assert.equal(await get({ ca_cert_files: [server.cert] }, `https://127.0.0.1:${tlsPort}/`), '200 tls');
    assert.throws(() => clientOptionsFrom({ ca_cert_files: [join(dir, 'missing.pem')] }, 'registry'), /ca_cert_files\[0\] .*missing\.pem: cannot read \(ENOENT\)/);
  });

  it('client_cert_file/client_key_file present a client certificate (mutual TLS)', async () => {
    await assert.rejects(get({ ca_cert_files: [server.cert] }, `https://127.0.0.1:${mtlsPort}/`));
    assert.equal(await get({ ca_cert_files: [server.cert], client_cert_file: client.cert, client_key_file: client.key }, `https://127.0.0.1:${mtlsPort}/`), '200 mtls');
  });

  it('HTTP_PROXY carries plain requests, HTTPS_PROXY tunnels https, NO_PROXY bypasses', async () => {
    const proxied = proxy.seen;
    proxied.length = 0;
    const env = { HTTP_PROXY: proxy.url, https_proxy: proxy.url.replace('http://', '') };
    assert.equal(await get({}, `http://127.0.0.1:${plainPort}/v2/x`, env), '200 plain /v2/x');
    assert.deepEqual(proxied, [`GET http://127.0.0.1:${plainPort}/v2/x`]);
    assert.equal(await get({ ca_cert_files: [server.cert] }, `https://127.0.0.1:${tlsPort}/`, env), '200 tls');
    assert.deepEqual(proxied.slice(1), [`CONNECT 127.0.0.1:${tlsPort}`]);
    assert.equal(await get({}, `http://127.0.0.1:${plainPort}/direct`, { ...env, NO_PROXY: 'example.com,127.0.0.1' }), '200 plain /direct');
    assert.equal(proxied.length, 2, 'NO_PROXY host went direct');
  });

  it('envProxyFor follows curl: scheme-specific variables, ALL_PROXY, NO_PROXY suffixes, ports and *', () => {
    const env = { http_proxy: 'http://p:3128', HTTPS_PROXY: 'http://s:3128', NO_PROXY: '.internal, example.com, 10.0.0.1:5000' };
    assert.equal(envProxyFor(new URL('http://reg.io/v2/'), env)?.href, 'http://p:3128/');
    assert.equal(envProxyFor(new URL('https://reg.io/v2/'), env)?.href, 'http://s:3128/');
    assert.equal(envProxyFor(new URL('https://a.internal/'), env), undefined);
    assert.equal(envProxyFor(new URL('https://example.com/'), env), undefined);
    assert.equal(envProxyFor(new URL('https://x.example.com/'), env), undefined);
    assert.equal(envProxyFor(new URL('https://notexample.com/'), env)?.host, 's:3128');
    assert.equal(envProxyFor(new URL('http://10.0.0.1:5000/'), env), undefined);
    assert.equal(envProxyFor(new URL('http://10.0.0.1:5001/'), env)?.host, 'p:3128');
    assert.equal(envProxyFor(new URL('http://reg.io/'), { ALL_PROXY: 'http://all:1' })?.host, 'all:1');
    assert.equal(envProxyFor(new URL('http://reg.io/'), { ALL_PROXY: 'http://all:1', no_proxy: '*' }), undefined);
    assert.equal(envProxyFor(new URL('http://reg.io/'), {}), undefined);
  });
});
