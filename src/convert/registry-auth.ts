// Distribution auth for the converter: Basic and the Bearer token flow (WWW-Authenticate challenge
// → token endpoint with optional Basic credentials → token cached per scope until it expires).
// Spec: distribution "Token Authentication Specification".
import { BackendError } from '../util/errors.js';
import type { Credentials } from './docker-config.js';
import { readAll, rawRequest } from './http.js';

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses `Bearer realm="…",service="…",scope="a:b:pull,push"` (quoted values may hold commas). */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*([A-Za-z][\w-]*)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?/g;
  for (let p = re.exec(m[2]!); p; p = re.exec(m[2]!)) params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '');
  return { scheme: m[1]!.toLowerCase(), params };
}

interface Token {
  value: string;
  expiresAt: number;
}

/** Refresh this long before the server's expiry so a token never dies mid-request. */
const EXPIRY_SLACK_MS = 10_000;

export class TokenAuth {
  readonly #creds: Credentials | undefined;
  readonly #insecure: boolean;
  readonly #tokens = new Map<string, Token>();
  #challenge: Challenge | undefined;
  tokenFetches = 0;

  constructor(creds: Credentials | undefined, insecure: boolean) {
    this.#creds = creds;
    this.#insecure = insecure;
  }

  get hasCredentials(): boolean {
    return this.#creds !== undefined;
  }

  /** Authorization header for a request needing `scopes`, if the registry asked for auth before. */
  cachedHeader(scopes: string[]): string | undefined {
    const c = this.#challenge;
    if (!c) return undefined;
    if (c.scheme === 'basic') return this.#basic();
    const t = this.#tokens.get(scopes.join(' '));
    if (t && t.expiresAt > Date.now()) return `Bearer ${t.value}`;
    return undefined;
  }

  #basic(): string | undefined {
    if (!this.#creds) return undefined;
    return `Basic ${Buffer.from(`${this.#creds.username}:${this.#creds.password}`).toString('base64')}`;
  }

  /** Handles a 401: learns the challenge and returns a header to retry with, or undefined. */
  async onUnauthorized(wwwAuthenticate: string | undefined, scopes: string[], what: string): Promise<string | undefined> {
    const c = wwwAuthenticate ? parseChallenge(wwwAuthenticate) : undefined;
    if (!c) return undefined;
    this.#challenge = c;
    if (c.scheme === 'basic') return this.#basic();
    if (c.scheme !== 'bearer') throw new BackendError('ERR_BACKEND_AUTH', 'registry', `${what}: unsupported auth scheme '${c.scheme}'`);
    const realm = c.params.realm;
    if (!realm) throw new BackendError('ERR_BACKEND_AUTH', 'registry', `${what}: Bearer challenge without realm`);
    const url = new URL(realm);
    if (c.params.service) url.searchParams.set('service', c.params.service);
    for (const s of scopes) url.searchParams.append('scope', s);
    const headers: Record<string, string> = { accept: 'application/json' };
    const basic = this.#basic();
    if (basic) headers.authorization = basic;
    this.tokenFetches++;
    const res = await rawRequest({ method: 'GET', url, headers, insecure: this.#insecure });
    const body = await readAll(res, 1 << 20);
    if (res.status === 401 || res.status === 403) {
      throw new BackendError('ERR_BACKEND_AUTH', 'registry', `${what}: token server ${url.origin} refused the credentials (HTTP ${res.status})`, { status: res.status });
    }
    if (res.status !== 200) throw new BackendError('ERR_BACKEND_AUTH', 'registry', `${what}: token server ${url.origin} answered HTTP ${res.status}`, { status: res.status });
    let j: { token?: string; access_token?: string; expires_in?: number };
    try {
      j = JSON.parse(body.toString('utf8')) as typeof j;
    } catch {
      throw new BackendError('ERR_BACKEND_AUTH', 'registry', `${what}: token server returned invalid JSON`);
    }
    const value = j.token ?? j.access_token;
    if (!value) throw new BackendError('ERR_BACKEND_AUTH', 'registry', `${what}: token server returned no token`);
    // The spec's default lifetime is 60 s when expires_in is absent.
    const ttl = (typeof j.expires_in === 'number' && j.expires_in > 0 ? j.expires_in : 60) * 1000;
    this.#tokens.set(scopes.join(' '), { value, expiresAt: Date.now() + Math.max(1000, ttl - EXPIRY_SLACK_MS) });
    return `Bearer ${value}`;
  }
}
