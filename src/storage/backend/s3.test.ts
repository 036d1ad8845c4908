// S3 backend against s3rver behind an independent SigV4-verifying proxy (test/helpers/sigv4-verify.ts:
// s3rver itself accepts any signature), plus URL layouts and
// signatures of S3 virtual-host style and OSS checked through a recording forward proxy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { BackendError } from '../../util/errors.js';
import { startS3rver } from '../../../test/helpers/s3rver.js';
import { startFaultServer } from '../../../test/helpers/http-faults.js';
import { createS3Backend } from './s3.js';
import { createOssBackend } from './oss.js';

const DATA = randomBytes(2 * 1024 * 1024 + 17);
const ID = 'e'.repeat(64);

test('s3 backend reads ranges from s3rver with object_prefix, sizes via HEAD, 404 as not found', async () => {
  const s3 = await startS3rver();
  const b = createS3Backend({ scheme: 'http', endpoint: s3.endpoint, region: 'us-east-1', bucket_name: s3.bucket, object_prefix: 'nydus/blobs/', access_key_id: s3.accessKeyId, access_key_secret: s3.secretAccessKey, retry_limit: 1 });
  try {
    await s3.put(`nydus/blobs/${ID}`, DATA);
    assert.equal(await b.blobSize(ID), DATA.length);
    assert.deepEqual(Buffer.from(await b.read(ID, 0, 1000)), DATA.subarray(0, 1000));
    assert.deepEqual(Buffer.from(await b.read(ID, 1_048_570, 1_048_576)), DATA.subarray(1_048_570, 2_097_146));
    assert.deepEqual(Buffer.from(await b.read(ID, DATA.length - 7, 100)), DATA.subarray(DATA.length - 7));
    await assert.rejects(b.read('f'.repeat(64), 0, 10), (e: unknown) => e instanceof BackendError && e.code === 'ERR_BACKEND_NOT_FOUND');
    assert.equal(b.metrics.readCount, 4);
    assert.equal(b.metrics.readErrors, 1);
    const st = await s3.stats();
    assert.equal(st.rejected, 0, st.lastRejection);
    assert.ok(st.verified >= 5, `every request went through the verifier (${st.verified})`);
    // The verifier is live: a wrong secret is refused (403), never served.
    const bad = createS3Backend({ scheme: 'http', endpoint: s3.endpoint, region: 'us-east-1', bucket_name: s3.bucket, object_prefix: 'nydus/blobs/', access_key_id: s3.accessKeyId, access_key_secret: 'not-the-secret', retry_limit: 0 });
    try {
      await assert.rejects(bad.read(ID, 0, 10));
    } finally {
      await bad.close();
    }
    assert.match((await s3.stats()).lastRejection, /SignatureDoesNotMatch/);
  } finally {
    await b.close();
    await s3.close();
  }
});

test('s3 virtual-host style puts the bucket in the host and signs every request', async () => {
  const rec = await startFaultServer({ [ID]: DATA });
  const b = createS3Backend({ scheme: 'http', endpoint: 's3.example.test', region: 'eu-west-1', bucket_name: 'bkt', object_prefix: 'p/', addressing_style: 'virtual', access_key_id: 'AKID', access_key_secret: 'SECRET', proxy: { url: rec.url } });
  try {
    assert.deepEqual(Buffer.from(await b.read(ID, 3, 30)), DATA.subarray(3, 33));
    const r = rec.requests[0]!;
    assert.equal(r.headers.host, 'bkt.s3.example.test');
    assert.equal(r.path, `/p/${ID}`);
    assert.match(String(r.headers.authorization), /^AWS4-HMAC-SHA256 Credential=AKID\/\d{8}\/eu-west-1\/s3\/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, /);
    assert.ok(!JSON.stringify(r.headers).includes('SECRET'));
  } finally {
    await b.close();
    await rec.close();
  }
});

/**
 * Aliyun OSS header signature (V1), written from the OSS docs for this test: base64(HMAC-SHA1(secret,
 * VERB \n Content-MD5 \n Content-Type \n Date \n CanonicalizedOSSHeaders CanonicalizedResource)).
 */
function ossV1Authorization(method: string, headers: Record<string, string | string[] | undefined>, resource: string, id: string, secret: string): string {
  const h = (k: string): string => {
    const v = Object.entries(headers).find(([n]) => n.toLowerCase() === k)?.[1];
    return v === undefined ? '' : Array.isArray(v) ? v.join(',') : v;
  };
  const ossHeaders = Object.keys(headers)
    .map((k) => k.toLowerCase())
    .filter((k) => k.startsWith('x-oss-'))
    .sort()
    .map((k) => `${k}:${h(k).trim()}\n`)
    .join('');
  const toSign = `${method}\n${h('content-md5')}\n${h('content-type')}\n${h('date')}\n${ossHeaders}${resource}`;
  return `OSS ${id}:${createHmac('sha1', secret).update(toSign, 'utf8').digest('base64')}`;
}

test('the independent OSS V1 signer reproduces the Aliyun documented example', () => {
  const headers = { 'Content-MD5': 'ODBGOERFMDMzQTczRUY3NUE3NzA5QzdFNUYzMDQxNEM=', 'Content-Type': 'text/html', Date: 'Thu, 17 Nov 2005 18:49:58 GMT', 'X-OSS-Meta-Author': 'foo@bar.com', 'X-OSS-Magic': 'abracadabra' };
  assert.equal(ossV1Authorization('PUT', headers, '/oss-example/nelson', '44CF9590006BF252F707', 'OtxrzxIsfpFjA7SwPzILwy8Bw21TLhquhboDYROV'), 'OSS 44CF9590006BF252F707:26NBxoKdsyly4EDv6inkoDft/yA=');
});

test('oss backend: bucket.endpoint/prefix+id, Date + OSS signature that verifies', async () => {
  const rec = await startFaultServer({ [ID]: DATA });
  const b = createOssBackend({ scheme: 'http', endpoint: 'oss-cn-hangzhou.aliyuncs.com', bucket_name: 'oss-example', object_prefix: 'nydus/', access_key_id: 'AK', access_key_secret: 'SK', proxy: { url: rec.url } });
  try {
    assert.equal(await b.blobSize(ID), DATA.length);
    assert.deepEqual(Buffer.from(await b.read(ID, 100, 200)), DATA.subarray(100, 300));
    for (const r of rec.requests) {
      assert.equal(r.headers.host, 'oss-example.oss-cn-hangzhou.aliyuncs.com');
      assert.equal(r.path, `/nydus/${ID}`);
      // Checked by an independent implementation of the OSS V1 rule, not by our signer.
      assert.equal(r.headers.authorization, ossV1Authorization(r.method, r.headers, `/oss-example/nydus/${ID}`, 'AK', 'SK'));
    }
  } finally {
    await b.close();
    await rec.close();
  }
});
