// The one redaction helper: structural (API answers) and text (log lines, error messages).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { redact, redactSecrets, REDACTED } from './log.js';

const SECRETS = ['QUxJQ0U6c2VjcmV0', 'tok-1', 'Bearer-SECRET', 'ppass', 'AKID', 'skey', 'enc-key', 'DFTOKEN', 'ghp_abc'];

test('redactSecrets blanks credential fields at any depth and keeps the rest', () => {
  const cfg = {
    backend: {
      type: 'registry',
      registry: {
        host: 'r.example.com',
        legacy: { host: 'alice:ppass@old.example.com:5000' },
        auth: 'QUxJQ0U6c2VjcmV0',
        registry_token: 'tok-1',
        proxy: { url: 'http://puser:ppass@proxy:8080', fallback: true },
        mirrors: [{ host: 'https://ghp_abc@m.example.com', headers: { Authorization: 'Bearer Bearer-SECRET', 'X-Dragonfly-Token': 'DFTOKEN', 'X-Other': 'kept' } }],
      },
      s3: { access_key_id: 'AKID', access_key_secret: 'skey', region: 'r1' },
    },
    cache: { filecache: { encryption_key: 'enc-key', work_dir: '/c' } },
    empty: { auth: '' },
  };
  const out = redactSecrets(cfg);
  const text = JSON.stringify(out);
  for (const s of SECRETS) assert.ok(!text.includes(s), `${s} leaked: ${text}`);
  assert.equal(out.backend.registry.auth, REDACTED);
  assert.equal(out.backend.registry.host, 'r.example.com');
  assert.equal(out.backend.registry.legacy.host, `${REDACTED}@old.example.com:5000`);
  assert.equal(out.backend.registry.proxy.url, `http://${REDACTED}@proxy:8080`);
  assert.equal(out.backend.registry.mirrors[0]!.headers['X-Other'], 'kept');
  assert.equal(out.backend.s3.region, 'r1');
  assert.equal(out.cache.filecache.work_dir, '/c');
  assert.equal(out.empty.auth, '', 'an empty value says "not set" and stays');
  assert.equal(cfg.backend.registry.auth, 'QUxJQ0U6c2VjcmV0', 'the input is not modified');
});

test('redact strips credentials from free text (headers, JSON excerpts, URLs, signed queries)', () => {
  const line = [
    'GET https://u:ppass@r.example.com/v2/ failed',
    'Authorization: Bearer Bearer-SECRET',
    'config {"auth":"QUxJQ0U6c2VjcmV0","registry_token":"tok-1","headers":{"Authorization":"Bearer Bearer-SECRET"},"access_key_secret":"skey"}',
    'https://ghp_abc@github.example/x',
    'https://b.s3/obj?X-Amz-Signature=AKID&x=1',
  ].join('\n');
  const out = redact(line);
  for (const s of SECRETS) assert.ok(!out.includes(s), `${s} leaked: ${out}`);
  assert.match(out, /r\.example\.com\/v2\//);
  assert.match(out, /x=1/);
});
