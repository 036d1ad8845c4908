import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText, withoutSecrets } from './daemon-config.js';

test('the seed v1 localfs config parses (blobcache, xattr)', () => {
  const c = parseConfigText(
    JSON.stringify({
      device: { backend: { type: 'localfs', config: { dir: 'image-store' } }, cache: { type: 'blobcache', config: { work_dir: 'cache' } } },
      mode: 'direct', digest_validate: false, iostats_files: false, enable_xattr: true,
    }),
    'cfg',
  );
  assert.equal(c.backend.type, 'localfs');
  assert.equal(c.cache.type, 'blobcache');
  assert.equal(c.cache.workDir, 'cache');
  assert.equal(c.rafs.enableXattr, true);
  assert.equal(c.rafs.prefetch.prefetchAll, true);
});

test('the documented example with comments and trailing commas parses', () => {
  const text = `{
    "device": {
      "backend": {
        "type": "localfs",
        "config": {
          // the blob directory
          "dir": "/path/to/blobs",
        }
      }
    }
  }`;
  assert.equal(parseConfigText(text, 'cfg').backend.config.dir, '/path/to/blobs');
});

test('unknown keys and wrong types are errors that name the key', () => {
  assert.throws(() => parseConfigText('{"device":{"backend":{"type":"localfs","config":{"dir":"x"}}},"mode":"direct","digest_validat":true}', 'cfg'), /unknown key "digest_validat"/);
  assert.throws(() => parseConfigText('{"device":{"backend":{"type":"localfs","config":{"dir":1}}},"mode":"direct"}', 'cfg'), /device\.backend\.config\.dir: expected a string/);
  assert.throws(() => parseConfigText('{"device":{"backend":{"type":"registry","config":{"host":"h","repo":"r","timeoutt":5}}}}', 'cfg'), /unknown key "device\.backend\.config\.timeoutt"/);
  assert.throws(() => parseConfigText('{"version":2,"backend":{"type":"localfs","localfs":{"dir":"d"}},"cache":{"type":"bogus"}}', 'cfg'), /cache\.type: expected one of/);
  assert.throws(() => parseConfigText('{"device":', 'cfg'), /invalid JSON/);
});

test('v2 config normalises and secrets are blanked for display', () => {
  const c = parseConfigText(
    JSON.stringify({
      version: 2, id: 'x',
      backend: { type: 'registry', registry: { scheme: 'http', host: '127.0.0.1:5000', repo: 'a/b', auth: 'dXNlcjpwYXNz', proxy: { url: 'http://p', fallback: true } } },
      cache: { type: 'filecache', filecache: { work_dir: '/tmp/c' }, prefetch: { enable: true, threads: 4 } },
      rafs: { mode: 'direct', validate: true, prefetch: { enable: true, prefetch_all: true } },
    }),
    'cfg',
  );
  assert.equal(c.cache.type, 'blobcache');
  assert.equal(c.cache.workDir, '/tmp/c');
  assert.equal(c.rafs.validate, true);
  assert.equal(c.rafs.prefetch.prefetchAll, true);
  assert.equal(withoutSecrets(c).backend.config.auth, '');
  assert.equal(c.backend.config.auth, 'dXNlcjpwYXNz');
});

test('legacy flat proxy keys become a proxy object', () => {
  const c = parseConfigText('{"device":{"backend":{"type":"registry","config":{"host":"h","repo":"r","proxy":"http://p2p:65001","proxy_fallback":true,"proxy_ping_url":"http://p2p:40901/server/ping","proxy_check_interval":5}}},"mode":"direct"}', 'cfg');
  assert.deepEqual(c.backend.config.proxy, { url: 'http://p2p:65001', fallback: true, ping_url: 'http://p2p:40901/server/ping', check_interval: 5 });
});
