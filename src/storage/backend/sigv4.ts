// AWS Signature Version 4 (header form) with node:crypto. Spec: AWS "Create a signed AWS API request"
// (canonical request → string to sign → derived key → HMAC). S3 paths are encoded once, not twice.
import { createHash, createHmac } from 'node:crypto';

export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export interface SigV4Input {
  method: string;
  url: URL;
  /** Headers to sign (and send); duplicates may be given as arrays. `host` is added from the URL. */
  headers?: Record<string, string | string[]>;
  /** Hex SHA-256 of the body; default: the empty body. */
  payloadHash?: string;
  region: string;
  service: string;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  now?: Date;
  /** S3 signs the path as sent; other services encode each segment a second time. */
  doubleEncodePath?: boolean;
  /** Add `x-amz-content-sha256` (S3 requires it). */
  contentSha256Header?: boolean;
}

export interface SigV4Result {
  /** All headers to send, lower-case names, including authorization. */
  headers: Record<string, string>;
  signature: string;
  canonicalRequest: string;
  stringToSign: string;
}

/** RFC 3986 encoding with only unreserved characters left alone (AWS UriEncode). */
export function uriEncode(s: string, keepSlash = false): string {
  let out = '';
  for (const ch of s) {
    if (/[A-Za-z0-9\-._~]/.test(ch) || (keepSlash && ch === '/')) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function sha256Hex(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}
function hmac(key: Buffer | string, s: string): Buffer {
  return createHmac('sha256', key).update(s, 'utf8').digest();
}

/** `20130524T000000Z` */
export function amzDate(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

export function signV4(input: SigV4Input): SigV4Result {
  const now = input.now ?? new Date();
  const date = amzDate(now);
  const day = date.slice(0, 8);
  const payloadHash = input.payloadHash ?? EMPTY_SHA256;
  const hdrs = new Map<string, string[]>();
  const add = (k: string, v: string | string[]): void => {
    const key = k.toLowerCase().trim();
    hdrs.set(key, [...(hdrs.get(key) ?? []), ...(Array.isArray(v) ? v : [v])]);
  };
  for (const [k, v] of Object.entries(input.headers ?? {})) add(k, v);
  if (!hdrs.has('host')) add('host', input.url.host);
  hdrs.set('x-amz-date', [date]);
  if (input.contentSha256Header) hdrs.set('x-amz-content-sha256', [payloadHash]);
  if (input.sessionToken) hdrs.set('x-amz-security-token', [input.sessionToken]);

  // Canonical URI: decode what URL() encoded, then encode per AWS rules.
  const rawPath = input.url.pathname || '/';
  const segments = rawPath.split('/').map((seg) => {
    const once = uriEncode(decodeURIComponent(seg));
    return input.doubleEncodePath ? uriEncode(once) : once;
  });
  const canonicalUri = segments.join('/') || '/';
  const query = [...input.url.searchParams.entries()]
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const names = [...hdrs.keys()].sort();
  // Values: trimmed, inner runs of spaces collapsed, duplicates joined with commas.
  const canonicalHeaders = names.map((n) => `${n}:${hdrs.get(n)!.map((v) => v.trim().replace(/\s+/g, ' ')).join(',')}\n`).join('');
  const signedHeaders = names.join(';');
  const canonicalRequest = [input.method.toUpperCase(), canonicalUri, query, canonicalHeaders, signedHeaders, payloadHash].join('\n');
  const scope = `${day}/${input.region}/${input.service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', date, scope, sha256Hex(canonicalRequest)].join('\n');
  const kDate = hmac(`AWS4${input.secretAccessKey}`, day);
  const kSigning = hmac(hmac(hmac(kDate, input.region), input.service), 'aws4_request');
  const signature = createHmac('sha256', kSigning).update(stringToSign, 'utf8').digest('hex');
  const headers: Record<string, string> = {};
  for (const n of names) headers[n] = hdrs.get(n)!.join(',');
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${input.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return { headers, signature, canonicalRequest, stringToSign };
}
