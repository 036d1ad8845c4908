// Registry credentials from the docker CLI config ($DOCKER_CONFIG/config.json or
// ~/.docker/config.json), as nydusify reads them: `credHelpers.<host>`, then `credsStore`, run as
// docker does (`docker-credential-<name> get`, server address on stdin, JSON on stdout; the helper
// is looked up on PATH and its name may not contain a path), then `auths.<host>.auth` (base64 "user:pass").
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { NydusError } from '../util/errors.js';

export interface Credentials {
  username: string;
  password: string;
}

function configPath(): string {
  const dir = process.env.DOCKER_CONFIG ?? join(homedir(), '.docker');
  return join(dir, 'config.json');
}

/** Host keys docker writes for the same registry ("https://index.docker.io/v1/" for Hub). */
function candidateKeys(host: string): string[] {
  if (host === 'docker.io' || host === 'registry-1.docker.io') return ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io'];
  return [host, `https://${host}`, `http://${host}`, `https://${host}/v1/`, `https://${host}/v2/`];
}

export function decodeBasicAuth(auth: string, where: string): Credentials {
  const plain = Buffer.from(auth, 'base64').toString('utf8');
  const i = plain.indexOf(':');
  if (i <= 0) throw new NydusError('ERR_CONFIG_INVALID', `${where}: "auth" is not base64 of "user:password"`);
  return { username: plain.slice(0, i), password: plain.slice(i + 1) };
}

/** Server address docker stores Hub credentials under; other registries by bare host. */
function helperServerUrl(host: string): string {
  return host === 'docker.io' || host === 'registry-1.docker.io' || host === 'index.docker.io' ? 'https://index.docker.io/v1/' : host;
}

/** Asks `docker-credential-<helper> get`; undefined when the helper has nothing for `host`. */
export function credentialsFromHelper(helper: string, host: string, where: string): Credentials | undefined {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(helper)) throw new NydusError('ERR_CONFIG_INVALID', `${where}: invalid credential helper name "${helper}"`);
  const prog = `docker-credential-${helper}`;
  const r = spawnSync(prog, ['get'], { input: helperServerUrl(host), encoding: 'utf8', timeout: 30_000, stdio: ['pipe', 'pipe', 'pipe'] });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    throw new NydusError('ERR_CONFIG_INVALID', `${where}: cannot run ${prog}: ${code === 'ENOENT' ? 'not found on PATH' : code ?? r.error.message}`);
  }
  if (r.status !== 0) {
    // docker-credential-helpers' "credentials not found" answer: anonymous, like docker.
    if (/credentials not found/i.test(`${r.stdout}${r.stderr}`)) return undefined;
    throw new NydusError('ERR_CONFIG_INVALID', `${where}: ${prog} get failed (exit ${r.status}): ${(r.stderr || r.stdout).trim().split('\n')[0] ?? ''}`);
  }
  let out: { Username?: unknown; Secret?: unknown };
  try {
    out = JSON.parse(r.stdout) as typeof out;
  } catch {
    throw new NydusError('ERR_CONFIG_INVALID', `${where}: ${prog} get did not answer JSON`);
  }
  if (typeof out.Username !== 'string' || typeof out.Secret !== 'string') throw new NydusError('ERR_CONFIG_INVALID', `${where}: ${prog} get: answer without Username/Secret`);
  if (!out.Secret) return undefined;
  return { username: out.Username, password: out.Secret };
}

/** Credentials for `host`, or undefined (anonymous). A missing config file is not an error. */
export function dockerCredentials(host: string, path = configPath()): Credentials | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  let cfg: unknown;
  try {
    cfg = JSON.parse(text);
  } catch {
    throw new NydusError('ERR_CONFIG_INVALID', `docker config ${path}: not valid JSON`);
  }
  const c = cfg as { auths?: Record<string, { auth?: string; username?: string; password?: string }>; credHelpers?: Record<string, unknown>; credsStore?: unknown };
  const helpers = c.credHelpers && typeof c.credHelpers === 'object' ? c.credHelpers : {};
  for (const key of candidateKeys(host)) {
    const h = helpers[key];
    if (typeof h === 'string' && h) return credentialsFromHelper(h, host, `docker config ${path}, credHelpers["${key}"]`);
  }
  if (typeof c.credsStore === 'string' && c.credsStore) {
    const fromStore = credentialsFromHelper(c.credsStore, host, `docker config ${path}, credsStore`);
    if (fromStore) return fromStore;
  }
  const auths = c.auths ?? {};
  for (const key of candidateKeys(host)) {
    const e = auths[key];
    if (!e) continue;
    if (typeof e.auth === 'string' && e.auth) return decodeBasicAuth(e.auth, `docker config ${path}, auths["${key}"]`);
    if (typeof e.username === 'string' && typeof e.password === 'string') return { username: e.username, password: e.password };
  }
  return undefined;
}

