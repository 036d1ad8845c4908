// An independent AWS Signature Version 4 verifier (header form) for the S3 tests, written from the
// AWS spec ("Create a signed AWS API request" / "Authenticating Requests: Using the Authorization
// Header"), deliberately sharing no code with src/storage/backend/sigv4.ts: s3rver accepts any
// signature, so without this a signing bug could never fail the suite.
//
// Run as a program it is a reverse proxy: `node sigv4-verify.js <upstream host:port> <secret>`
// listens on 127.0.0.1 (port printed as the first stdout line), answers 403
// SignatureDoesNotMatch to anything not signed correctly, forwards the rest to the upstream, and
// reports `{verified, rejected, lastRejection}` at GET /__sigv4/stats. It is a separate process so
// it keeps answering while a test process blocks on a FUSE read.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { fileURLToPath } from 'node:url';

export interface WireRequest {
  method: string;
  /** Path and query exactly as on the request line. */
  target: string;
  /** Header name (any case) → values in order. */
  headers: Record<string, string[]>;
  body: Buffer;
}

const hex = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
const mac = (k: Buffer | string, s: string): Buffer => createHmac('sha256', k).update(s, 'utf8').digest();

/** AWS UriEncode: every byte except A-Z a-z 0-9 - _ . ~ as %XX (upper-case hex); '/' kept when asked. */
function awsEncode(s: string, keepSlash: boolean): string {
  const bytes = Buffer.from(s, 'utf8');
  let out = '';
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    const unreserved = (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || c === '-' || c === '_' || c === '.' || c === '~';
    out += unreserved || (keepSlash && c === '/') ? c : '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/** Percent-decoding of the wire form ('+' is a literal plus in S3 paths and queries). */
function pctDecode(s: string): string {
  return Buffer.from(s.replace(/%([0-9a-fA-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8');
}

/** The S3 canonical request for a request as received (S3: the path is encoded once, not normalised). */
export function canonicalRequestOf(r: WireRequest, signedHeaders: string[], payloadHash: string): string {
  const q = r.target.indexOf('?');
  const path = q < 0 ? r.target : r.target.slice(0, q);
  const query = q < 0 ? '' : r.target.slice(q + 1);
  const canonicalUri = awsEncode(pctDecode(path), true) || '/';
  const pairs = query === '' ? [] : query.split('&').map((kv) => {
    const eq = kv.indexOf('=');
    const k = eq < 0 ? kv : kv.slice(0, eq);
    const v = eq < 0 ? '' : kv.slice(eq + 1);
    return [awsEncode(pctDecode(k), false), awsEncode(pctDecode(v), false)] as [string, string];
  });
  pairs.sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0) : a[0] < b[0] ? -1 : 1));
  const lower = new Map<string, string[]>();
  for (const [k, vs] of Object.entries(r.headers)) lower.set(k.toLowerCase(), [...(lower.get(k.toLowerCase()) ?? []), ...vs]);
  const canonHeaders = signedHeaders.map((h) => `${h}:${(lower.get(h) ?? []).map((v) => v.trim().split(/\s+/).join(' ')).join(',')}\n`).join('');
  return [r.method, canonicalUri, pairs.map(([k, v]) => `${k}=${v}`).join('&'), canonHeaders, signedHeaders.join(';'), payloadHash].join('\n');
}

/** undefined when `r` carries a valid SigV4 Authorization header for `secret`, else why not. */
export function verifySigV4(r: WireRequest, secret: string, now = new Date()): string | undefined {
  const one = (name: string): string | undefined => {
    const hit = Object.entries(r.headers).find(([k]) => k.toLowerCase() === name);
    return hit?.[1][0];
  };
  const auth = one('authorization');
  if (!auth) return 'no Authorization header';
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return `malformed Authorization header: ${auth.slice(0, 80)}`;
  const [, , day, region, service, signedList, signature] = m as unknown as string[];
  const signed = signedList!.split(';');
  if (signed.join(';') !== [...signed].sort().join(';')) return 'SignedHeaders not sorted';
  if (!signed.includes('host')) return 'host is not signed';
  if (!signed.includes('x-amz-date')) return 'x-amz-date is not signed';
  const date = one('x-amz-date');
  if (!date || !/^\d{8}T\d{6}Z$/.test(date)) return 'missing or malformed x-amz-date';
  if (date.slice(0, 8) !== day) return 'credential scope day differs from x-amz-date';
  const when = Date.UTC(+date.slice(0, 4), +date.slice(4, 6) - 1, +date.slice(6, 8), +date.slice(9, 11), +date.slice(11, 13), +date.slice(13, 15));
  if (Math.abs(when - now.getTime()) > 15 * 60_000) return 'x-amz-date more than 15 minutes off (RequestTimeTooSkewed)';
  const payload = one('x-amz-content-sha256');
  if (!payload) return 'missing x-amz-content-sha256';
  if (payload !== 'UNSIGNED-PAYLOAD' && payload !== hex(r.body)) return 'x-amz-content-sha256 does not match the body';
  const canonical = canonicalRequestOf(r, signed, payload);
  const scope = `${day}/${region}/${service}/aws4_request`;
  const toSign = `AWS4-HMAC-SHA256\n${date}\n${scope}\n${hex(canonical)}`;
  const key = mac(mac(mac(mac(`AWS4${secret}`, day!), region!), service!), 'aws4_request');
  const want = createHmac('sha256', key).update(toSign, 'utf8').digest();
  const got = Buffer.from(signature!, 'hex');
  return timingSafeEqual(want, got) ? undefined : 'SignatureDoesNotMatch';
}

function serve(upstream: string, secret: string): void {
  const stats = { verified: 0, rejected: 0, lastRejection: '' };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/__sigv4/stats') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats));
        return;
      }
      const body = Buffer.concat(chunks);
      const headers: Record<string, string[]> = {};
      for (let i = 0; i < req.rawHeaders.length; i += 2) (headers[req.rawHeaders[i]!] ??= []).push(req.rawHeaders[i + 1]!);
      const why = verifySigV4({ method: req.method ?? 'GET', target: req.url ?? '/', headers, body }, secret);
      if (why) {
        stats.rejected++;
        stats.lastRejection = `${req.method} ${req.url}: ${why}`;
        res.writeHead(403, { 'content-type': 'application/xml' }).end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code><Message>${why}</Message></Error>`);
        return;
      }
      stats.verified++;
      const fwd = http.request({ host: upstream.split(':')[0], port: Number(upstream.split(':')[1]), method: req.method, path: req.url, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      fwd.on('error', (e) => res.writeHead(502).end(String(e)));
      fwd.end(body);
    });
  });
  server.listen(0, '127.0.0.1', () => {
    const a = server.address();
    process.stdout.write(`${typeof a === 'object' && a ? a.port : 0}\n`);
  });
  process.on('SIGTERM', () => process.exit(0));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) serve(process.argv[2]!, process.argv[3]!);
