// Minimal HTTP/1.1 requests on node:http/https (global fetch cannot skip TLS verification without
// undici's Agent): streaming request and response bodies, redirects, plain-HTTP fallback.
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { BackendError } from '../util/errors.js';
import { redact } from '../util/log.js';

export type Body = Buffer | (() => Readable) | undefined;

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: http.IncomingMessage;
  url: URL;
}

export interface RawRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body?: Body;
  /** Skip TLS certificate verification. */
  insecure?: boolean;
  timeoutMs?: number;
}

// Keep-alive agents: conversion makes many small requests (HEAD, token, manifest) to one host.
const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
const httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 16 });
const httpsInsecureAgent = new https.Agent({ keepAlive: true, maxSockets: 16, rejectUnauthorized: false });

export function rawRequest(req: RawRequest): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const isHttps = req.url.protocol === 'https:';
    const mod = isHttps ? https : http;
    const agent = isHttps ? (req.insecure ? httpsInsecureAgent : httpsAgent) : httpAgent;
    const headers: Record<string, string> = { 'user-agent': 'nydusify-ts/0.1', ...req.headers };
    if (Buffer.isBuffer(req.body)) headers['content-length'] = String(req.body.length);
    const r = mod.request(req.url, { method: req.method, headers, agent }, (res) => {
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, url: req.url });
    });
    r.setTimeout(req.timeoutMs ?? 120_000, () => r.destroy(new BackendError('ERR_BACKEND_TIMEOUT', 'registry', `${req.method} ${redact(req.url.href)}: timed out`, { retryable: true })));
    r.on('error', (e) => {
      if (e instanceof BackendError) return reject(e);
      reject(new BackendError('ERR_BACKEND_NETWORK', 'registry', `${req.method} ${redact(req.url.origin + req.url.pathname)}: ${(e as Error).message}`, { retryable: true, cause: e }));
    });
    if (req.body === undefined) r.end();
    else if (Buffer.isBuffer(req.body)) r.end(req.body);
    else {
      const src = req.body();
      src.on('error', (e) => r.destroy(e));
      src.pipe(r);
    }
  });
}

export async function readAll(res: RawResponse, limit = 64 << 20): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of res.body) {
    n += (c as Buffer).length;
    // Manifests, configs and error bodies are small; a huge answer is a misbehaving server.
    if (n > limit) {
      res.body.destroy();
      throw new BackendError('ERR_REGISTRY', 'registry', `response from ${res.url.origin}${res.url.pathname} exceeds ${limit} bytes`);
    }
    parts.push(c as Buffer);
  }
  return Buffer.concat(parts);
}

export function drain(res: RawResponse): void {
  res.body.resume();
}

/** True for errors that mean "an HTTPS client talked to an HTTP server". */
export function isTlsMismatch(e: unknown): boolean {
  const msg = e instanceof Error ? `${e.message} ${(e.cause as Error | undefined)?.message ?? ''}` : '';
  return /wrong version number|EPROTO|packet length too long|http response to https client/i.test(msg);
}
