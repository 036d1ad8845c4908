// Registry authentication: anonymous, Basic (`auth` = base64 user:pass), a preset `registry_token`,
// and the Bearer challenge flow (WWW-Authenticate → token server → cached until `expires_in`).
// Spec: distribution "Token Authentication Specification"; upstream nydus
// storage/src/backend/registry.rs (RegistryState, get_token, refresh loop).
import { BackendError } from '../../util/errors.js';
import { logger } from '../../util/log.js';
import type { HttpClient } from './http.js';

const log = logger('registry-auth');

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses `WWW-Authenticate` (RFC 9110 §11.6.1): `Bearer realm="…",service="…",scope="a:b:pull,push"`. */
export function parseWwwAuthenticate(header: string): Challenge | undefined {
  const m = /^\s*([A-Za-z][\w-]*)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  // Quoted values may contain commas (scope lists), so a plain split would be wrong.
  const re = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?/g;
  for (let p = re.exec(m[2]!); p; p = re.exec(m[2]!)) {
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '');
  }
  return { scheme: m[1]!.toLowerCase(), params };
}

export interface RegistryAuthOptions {
  backend: string;
  /** base64(user:pass): config `auth`, or docker credentials (nydusify). */
  basic?: string | undefined;
  /** Preset bearer token, config `registry_token`. */
  token?: string | undefined;
  /** Scope asked for when neither the caller nor the challenge names one. */
  defaultScope?: string;
  now?: () => number;
}

interface CachedToken {
  value: string;
  /** Epoch ms after which the token is refreshed before use. */
  refreshAt: number;
  challenge: Challenge;
  scopes: string[];
}

/** The distribution spec's default when a token reply has no `expires_in`. */
const DEFAULT_EXPIRES_IN_S = 60;
/** Tokens are kept per scope set (nydusify pulls and pushes with different ones); a bound for safety. */
const MAX_TOKENS = 64;

/**
 * The one registry auth stack (nydusd's registry backend and nydusify's registry client): anonymous,
 * Basic, a preset token, and Bearer tokens cached per scope set, refreshed before they lapse, fetched
 * once for a burst of 401s.
 */
export class RegistryAuth {
  readonly #opts: RegistryAuthOptions;
  readonly #client: HttpClient;
  readonly #now: () => number;
  #useBasic = false;
  readonly #tokens = new Map<string, CachedToken>();
  readonly #inflight = new Map<string, Promise<CachedToken>>();
  /** Statistics for tests and metrics. */
  tokenFetches = 0;

  constructor(client: HttpClient, opts: RegistryAuthOptions) {
    this.#client = client;
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  get hasCredentials(): boolean {
    return Boolean(this.#opts.basic || this.#opts.token);
  }

  /**
   * Authorization header for the next request needing `scopes` (default: the challenge's or the
   * configured scope), refreshing an expired token first.
   */
  async header(signal?: AbortSignal, scopes?: string[]): Promise<string | undefined> {
    const key = scopes?.join(' ') ?? '';
    let t = this.#tokens.get(key);
    if (t) {
      // Days-long mounts outlive any token: refresh it before use rather than eat a 401.
      if (this.#now() >= t.refreshAt) t = await this.#fetchToken(key, t.challenge, t.scopes, signal);
      return `Bearer ${t.value}`;
    }
    if (this.#opts.token) return `Bearer ${this.#opts.token}`;
    if (this.#useBasic && this.#opts.basic) return `Basic ${this.#opts.basic}`;
    // Another scope set already learnt that this registry wants tokens: ask for one up front.
    const known = [...this.#tokens.values()][0];
    if (known && scopes) return `Bearer ${(await this.#fetchToken(key, known.challenge, scopes, signal)).value}`;
    return undefined;
  }

  /**
   * Handles a 401 whose challenge is `wwwAuthenticate`; `sent` is the Authorization that was refused.
   * Returns true when a retry with header() may succeed, false when there is nothing more to try;
   * throws ERR_BACKEND_AUTH when the token server refuses.
   */
  async unauthorized(wwwAuthenticate: string | undefined, sent: string | undefined, signal?: AbortSignal, scopes?: string[]): Promise<boolean> {
    const ch = wwwAuthenticate ? parseWwwAuthenticate(wwwAuthenticate) : undefined;
    const key = scopes?.join(' ') ?? '';
    if (ch?.scheme === 'bearer' && ch.params.realm) {
      const t = this.#tokens.get(key);
      // Another request may already have refreshed the token that was refused here.
      if (t && sent !== `Bearer ${t.value}`) return true;
      const wanted = scopes ?? (ch.params.scope ?? this.#opts.defaultScope ?? '').split(' ').filter(Boolean);
      await this.#fetchToken(key, ch, wanted, signal, true);
      return true;
    }
    if (ch?.scheme === 'basic' && this.#opts.basic && !this.#useBasic) {
      this.#useBasic = true;
      return true;
    }
    return false;
  }

  /** The error for a 401 that unauthorized() could do nothing about. */
  refused(status = 401): BackendError {
    const who = this.hasCredentials ? 'the configured credentials' : 'anonymous access';
    return new BackendError('ERR_BACKEND_AUTH', this.#opts.backend, `registry refused ${who} (HTTP ${status})`, { status });
  }

  /** Hot update of the configured credentials (PUT /api/v1/config `registry_auth`). */
  setBasic(basic: string): void {
    this.#opts.basic = basic;
    this.#tokens.clear();
  }

  /** Forget the cached tokens (e.g. the registry's auth changed). */
  invalidate(): void {
    this.#tokens.clear();
  }

  #fetchToken(key: string, ch: Challenge, scopes: string[], signal?: AbortSignal, force = false): Promise<CachedToken> {
    // Single flight: a burst of reads that all hit 401 ask the token server once.
    let p = this.#inflight.get(key);
    if (!p || force) {
      p = this.#doFetchToken(ch, scopes, signal).then((t) => {
        if (this.#tokens.size >= MAX_TOKENS && !this.#tokens.has(key)) this.#tokens.delete(this.#tokens.keys().next().value!);
        this.#tokens.set(key, t);
        return t;
      });
      const q = p.finally(() => {
        if (this.#inflight.get(key) === q) this.#inflight.delete(key);
      });
      this.#inflight.set(key, q);
      p = q;
    }
    return p;
  }

  async #doFetchToken(ch: Challenge, scopes: string[], signal?: AbortSignal): Promise<CachedToken> {
    const backend = this.#opts.backend;
    let realm: URL;
    try {
      realm = new URL(ch.params.realm!);
    } catch {
      throw new BackendError('ERR_BACKEND_AUTH', backend, 'registry sent a Bearer challenge with an invalid realm');
    }
    if (ch.params.service) realm.searchParams.set('service', ch.params.service);
    for (const s of scopes) realm.searchParams.append('scope', s);
    realm.searchParams.set('client_id', 'nydus-registry-client');
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.#opts.basic) headers.authorization = `Basic ${this.#opts.basic}`;
    this.tokenFetches++;
    const res = await this.#client.request({ method: 'GET', url: realm, headers, signal });
    if (res.status === 401 || res.status === 403) {
      res.discard();
      throw new BackendError('ERR_BACKEND_AUTH', backend, `token server ${realm.host} refused ${this.#opts.basic ? 'the configured credentials' : 'anonymous access'} (HTTP ${res.status})`, { status: res.status });
    }
    if (res.status !== 200) {
      res.discard();
      throw new BackendError('ERR_BACKEND_AUTH', backend, `token server ${realm.host} answered HTTP ${res.status}`, { status: res.status, retryable: res.status >= 500 || res.status === 429 });
    }
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse((await res.readAll()).toString('utf8')) as typeof body;
    } catch (err) {
      if (err instanceof BackendError) throw err;
      throw new BackendError('ERR_BACKEND_AUTH', backend, `token server ${realm.host} sent invalid JSON`);
    }
    const value = typeof body.token === 'string' && body.token ? body.token : typeof body.access_token === 'string' ? body.access_token : '';
    if (!value) throw new BackendError('ERR_BACKEND_AUTH', backend, `token server ${realm.host} sent no token`);
    const lifetimeMs = (typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : DEFAULT_EXPIRES_IN_S) * 1000;
    // Refresh a little early (10%, at most 30 s) so a request never leaves with a token about to lapse.
    const refreshAt = this.#now() + lifetimeMs - Math.min(30_000, lifetimeMs / 10);
    log.debug(`got a registry token from ${realm.host} for ${scopes.join(' ') || 'no scope'}, valid ${Math.round(lifetimeMs / 1000)} s`);
    return { value, refreshAt, challenge: ch, scopes };
  }
}
