// Registry credentials from the docker CLI config ($DOCKER_CONFIG/config.json or
// ~/.docker/config.json, `auths.<host>.auth` = base64 "user:pass"), as nydusify reads them.
// Credential helpers (credsStore) are not run: we never execute programs named by a config file.
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
  const auths = (cfg as { auths?: Record<string, { auth?: string; username?: string; password?: string }> }).auths ?? {};
  for (const key of candidateKeys(host)) {
    const e = auths[key];
    if (!e) continue;
    if (typeof e.auth === 'string' && e.auth) return decodeBasicAuth(e.auth, `docker config ${path}, auths["${key}"]`);
    if (typeof e.username === 'string' && typeof e.password === 'string') return { username: e.username, password: e.password };
  }
  return undefined;
}

