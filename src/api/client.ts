// A small client for the nydusd API over a unix socket (nydusctl, tests, nydusify mount).
import { request } from 'node:http';
import { NydusError } from '../util/errors.js';

export interface ApiResponse {
  status: number;
  body: unknown;
  text: string;
}

export function apiCall(sock: string, method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<ApiResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = request(
      // agent: false: no pooled keep-alive connection, which would outlive a nydusd replaced by failover (EPIPE).
      { socketPath: sock, agent: false, method, path, headers: { 'Content-Type': 'application/json', ...(payload ? { 'Content-Length': Buffer.byteLength(payload) } : {}) }, timeout: timeoutMs },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          let parsed: unknown = undefined;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            parsed = text;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, text });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new NydusError('ERR_API', `nydusd API at ${sock} did not answer within ${timeoutMs} ms`)));
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (e instanceof NydusError) reject(e);
      else reject(new NydusError('ERR_API', `cannot reach nydusd API at ${sock}: ${e.code ?? e.message}`));
    });
    if (payload) req.write(payload);
    req.end();
  });
}

/** Calls and throws a NydusError with the daemon's message on a non-2xx status. */
export async function apiRequest(sock: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const r = await apiCall(sock, method, path, body);
  if (r.status >= 300) {
    const msg = r.body && typeof r.body === 'object' && 'message' in r.body ? String((r.body as { message: unknown }).message) : r.text;
    throw new NydusError('ERR_API', `${method} ${path}: HTTP ${r.status}: ${msg}`);
  }
  return r.body;
}
