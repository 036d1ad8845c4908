// Starts Debian's docker-registry (distribution 2.8) on a free 127.0.0.1 port with no auth, htpasswd
// (bcrypt) or token auth, the last with a small in-process ES256 JWT token server
// (dependencies.md §5). Callers must close() in finally; the registry is killed by its own PID.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, randomUUID, sign, X509Certificate, createPrivateKey } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type RegistryAuthMode = 'none' | 'htpasswd' | 'token';

export interface TokenServer {
  url: string;
  /** Token requests answered (any outcome). */
  requests: number;
  /** `expires_in` in replies and the JWT lifetime, seconds. */
  expiresIn: number;
  /** Issue the next N tokens already expired (while claiming `expiresIn`), to provoke a 401. */
  issueExpired: number;
}

export interface RegistryHandle {
  /** host:port */
  host: string;
  url: string;
  mode: RegistryAuthMode;
  users: Record<string, string>;
  token?: TokenServer;
  close(): Promise<void>;
}

export function hasDockerRegistry(): boolean {
  try {
    execFileSync('docker-registry', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

async function startTokenServer(dir: string, users: Record<string, string>, expiresIn: number): Promise<{ ts: TokenServer; server: http.Server }> {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'token.key'), '-out', join(dir, 'token.crt'), '-days', '2', '-subj', '/CN=token-issuer'], { stdio: 'ignore' });
  const key = createPrivateKey(readFileSync(join(dir, 'token.key')));
  const certDer = new X509Certificate(readFileSync(join(dir, 'token.crt'))).raw;
  const ts: TokenServer = { url: '', requests: 0, expiresIn, issueExpired: 0 };
  const server = http.createServer((req, res) => {
    ts.requests++;
    const u = new URL(req.url ?? '/', 'http://x');
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
    let sub = '';
    if (basic) {
      const [user, ...rest] = Buffer.from(basic[1]!, 'base64').toString().split(':');
      if (users[user!] !== rest.join(':')) return void res.writeHead(401, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      sub = user!;
    } else if (Object.keys(users).length > 0) {
      return void res.writeHead(401).end();
    }
    const access = u.searchParams.getAll('scope').map((s) => {
      const [type, name, actions] = [s.split(':')[0]!, s.split(':').slice(1, -1).join(':'), s.split(':').at(-1)!];
      return { type, name, actions: actions.split(',') };
    });
    const now = Math.floor(Date.now() / 1000);
    const expired = ts.issueExpired > 0;
    if (expired) ts.issueExpired--;
    const claims = { iss: 'test-issuer', sub, aud: u.searchParams.get('service'), exp: expired ? now - 60 : now + ts.expiresIn, nbf: now - 120, iat: now - 120, jti: randomUUID(), access };
    const data = `${b64url(JSON.stringify({ typ: 'JWT', alg: 'ES256', x5c: [certDer.toString('base64')] }))}.${b64url(JSON.stringify(claims))}`;
    const sig = sign('sha256', Buffer.from(data), { key, dsaEncoding: 'ieee-p1363' });
    const token = `${data}.${b64url(sig)}`;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: ts.expiresIn, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  ts.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
  return { ts, server };
}

export async function startRegistry(opts: { auth?: RegistryAuthMode; users?: Record<string, string>; tokenExpiresIn?: number } = {}): Promise<RegistryHandle> {
  const mode = opts.auth ?? 'none';
  const users = opts.users ?? (mode === 'none' ? {} : { alice: 's3cret' });
  const dir = mkdtempSync(join(tmpdir(), 'reg-'));
  let tokenServer: http.Server | undefined;
  let token: TokenServer | undefined;
  let auth = '';
  if (mode === 'htpasswd') {
    const lines = Object.entries(users).map(([u, p]) => execFileSync('htpasswd', ['-Bbn', u, p], { encoding: 'utf8' }).trim());
    writeFileSync(join(dir, 'htpasswd'), lines.join('\n') + '\n');
    auth = `auth:\n  htpasswd:\n    realm: basic-realm\n    path: ${join(dir, 'htpasswd')}\n`;
  } else if (mode === 'token') {
    ({ ts: token, server: tokenServer } = await startTokenServer(dir, users, opts.tokenExpiresIn ?? 600));
    auth = `auth:\n  token:\n    realm: ${token.url}\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: ${join(dir, 'token.crt')}\n`;
  }
  let proc: ChildProcess | undefined;
  let host = '';
  for (let attempt = 0; attempt < 5 && !proc; attempt++) {
    const port = await freePort();
    host = `127.0.0.1:${port}`;
    const cfg = `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\n  delete:\n    enabled: true\nhttp:\n  addr: ${host}\n${auth}`;
    writeFileSync(join(dir, 'reg.yml'), cfg);
    // Its log goes to a file, not a pipe: a test blocked in a synchronous read of a FUSE file could
    // not drain a pipe, and a registry blocked on a full pipe answers nobody (a deadlock until timeouts).
    const logFd = openSync(join(dir, 'registry.log'), 'a');
    const p = spawn('docker-registry', ['serve', join(dir, 'reg.yml')], { stdio: ['ignore', 'ignore', logFd] });
    closeSync(logFd);
    let exited = false;
    p.once('exit', () => (exited = true));
    for (let i = 0; i < 100 && !exited; i++) {
      const up = await fetch(`http://${host}/v2/`).then((r) => (void r.arrayBuffer(), true), () => false);
      if (up) {
        proc = p;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!proc && !exited) p.kill('SIGKILL');
  }
  if (!proc) {
    tokenServer?.close();
    rmSync(dir, { recursive: true, force: true });
    throw new Error('docker-registry did not start');
  }
  const child = proc;
  const handle: RegistryHandle = {
    host,
    url: `http://${host}`,
    mode,
    users,
    close: async () => {
      if (child.exitCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      tokenServer?.closeAllConnections();
      await new Promise<void>((r) => (tokenServer ? tokenServer.close(() => r()) : r()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  if (token) handle.token = token;
  return handle;
}

/** Authorization for pushing as the first user (Basic, or a push token from the token server). */
async function pushAuth(reg: RegistryHandle, repo: string): Promise<string | undefined> {
  const first = Object.entries(reg.users)[0];
  if (!first || reg.mode === 'none') return undefined;
  const basic = `Basic ${Buffer.from(`${first[0]}:${first[1]}`).toString('base64')}`;
  if (reg.mode === 'htpasswd') return basic;
  const before = reg.token!.requests;
  const r = await fetch(`${reg.token!.url}?service=test-registry&scope=repository:${repo}:pull,push`, { headers: { authorization: basic } });
  const { token } = (await r.json()) as { token: string };
  reg.token!.requests = before; // pushes are not the backend's token traffic
  return `Bearer ${token}`;
}

/** Monolithic upload: POST /v2/<repo>/blobs/uploads/ then PUT <location>&digest=. Returns the hex digest. */
export async function pushBlob(reg: RegistryHandle, repo: string, data: Buffer): Promise<string> {
  const hex = createHash('sha256').update(data).digest('hex');
  const auth = await pushAuth(reg, repo);
  const h: Record<string, string> = auth ? { authorization: auth } : {};
  const post = await fetch(`${reg.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: h });
  await post.arrayBuffer();
  if (post.status !== 202) throw new Error(`upload start: HTTP ${post.status}`);
  const loc = new URL(post.headers.get('location')!, reg.url);
  loc.searchParams.set('digest', `sha256:${hex}`);
  const put = await fetch(loc, { method: 'PUT', headers: { ...h, 'content-type': 'application/octet-stream' }, body: new Uint8Array(data) });
  await put.arrayBuffer();
  if (put.status !== 201) throw new Error(`upload finish: HTTP ${put.status}`);
  return hex;
}
