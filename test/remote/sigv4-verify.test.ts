// Issue 15, acceptance 3: the S3 suites fail when the signer is broken. The verifier in front of
// s3rver is checked against AWS's published example (not against our signer), our signer must pass
// it on awkward keys, and a build copy whose canonical request is mutated turns the S3 suite red.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { signV4 } from '../../src/storage/backend/sigv4.js';
import { buildCopy, runTestsIn } from '../helpers/run-tests.js';
import { verifySigV4, type WireRequest } from '../helpers/sigv4-verify.js';

// AWS S3 docs, "Signature Calculations for the Authorization Header: Transferring Payload in a Single
// Chunk", example GET Object (a ranged read of examplebucket/test.txt).
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const EMPTY = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const DOC_GET: WireRequest = {
  method: 'GET',
  target: '/test.txt',
  headers: {
    Host: ['examplebucket.s3.amazonaws.com'],
    Range: ['bytes=0-9'],
    'x-amz-content-sha256': [EMPTY],
    'x-amz-date': ['20130524T000000Z'],
    Authorization: ['AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41'],
  },
  body: Buffer.alloc(0),
};
const DOC_NOW = new Date('2013-05-24T00:01:00Z');

describe('independent SigV4 verifier', () => {
  it('accepts the AWS documented GET Object example and rejects any change to it', () => {
    assert.equal(verifySigV4(DOC_GET, SECRET, DOC_NOW), undefined);
    assert.equal(verifySigV4(DOC_GET, SECRET.replace('K7', 'K8'), DOC_NOW), 'SignatureDoesNotMatch');
    assert.equal(verifySigV4({ ...DOC_GET, target: '/test.txT' }, SECRET, DOC_NOW), 'SignatureDoesNotMatch');
    assert.equal(verifySigV4({ ...DOC_GET, headers: { ...DOC_GET.headers, Range: ['bytes=0-10'] } }, SECRET, DOC_NOW), 'SignatureDoesNotMatch');
    assert.equal(verifySigV4({ ...DOC_GET, method: 'HEAD' }, SECRET, DOC_NOW), 'SignatureDoesNotMatch');
    assert.match(verifySigV4(DOC_GET, SECRET, new Date('2013-05-24T01:00:00Z')) ?? '', /TooSkewed/);
    assert.match(verifySigV4({ ...DOC_GET, body: Buffer.from('x') }, SECRET, DOC_NOW) ?? '', /does not match the body/);
  });

  it('accepts our signer on awkward keys, queries and PUT bodies (the wire form is what is checked)', () => {
    const now = new Date();
    const body = Buffer.from('payload bytes');
    for (const [method, path, query, payload] of [
      ['GET', '/bucket/nydus/blobs/' + 'a'.repeat(64), '', undefined],
      ['GET', '/bucket/dir%20with%20space/%E2%9C%93/x~y_z-.', 'list-type=2&prefix=a%2Fb&delimiter=%2F', undefined],
      ['PUT', '/bucket/meta/image+name', 'uploads=', body],
    ] as const) {
      const url = new URL(`http://127.0.0.1:9000${path}${query ? '?' + query : ''}`);
      const s = signV4({ method, url, region: 'us-east-1', service: 's3', accessKeyId: 'AK', secretAccessKey: 'SK', contentSha256Header: true, now, ...(payload ? { payloadHash: sha256(payload), headers: { 'content-length': String(payload.length) } } : {}) });
      const headers: Record<string, string[]> = {};
      for (const [k, v] of Object.entries(s.headers)) headers[k] = [v];
      const wire: WireRequest = { method, target: url.pathname + url.search, headers, body: payload ?? Buffer.alloc(0) };
      assert.equal(verifySigV4(wire, 'SK', now), undefined, `${method} ${wire.target}`);
    }
  });
});

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('a broken signer turns the S3 suite red', () => {
  it('a mutated canonical request (dist copy) fails src/storage/backend/s3.test.js', { timeout: 240_000 }, async () => {
    const d = buildCopy('sigv4-mutant-');
    const file = join(d, 'dist/src/storage/backend/sigv4.js');
    const src = readFileSync(file, 'utf8');
    // The mutant leaves the signed-header list out of the canonical request.
    const mutant = src.replace('[input.method.toUpperCase(), canonicalUri, query, canonicalHeaders, signedHeaders, payloadHash]', '[input.method.toUpperCase(), canonicalUri, query, canonicalHeaders, payloadHash]');
    assert.notEqual(mutant, src, 'the mutation point exists in dist/src/storage/backend/sigv4.js');
    writeFileSync(file, mutant);
    const r = await runTestsIn(d, ['dist/src/storage/backend/s3.test.js']);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /SignatureDoesNotMatch|HTTP 403/);
  });
});
