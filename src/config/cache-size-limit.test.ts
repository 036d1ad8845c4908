// cache_size_limit (our extension): v1 device.cache.config and v2 cache.filecache; bytes, 0 = unlimited.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from './daemon-config.js';

test('cache_size_limit parses in v1 and v2 configs, defaults to unlimited, rejects bad values', () => {
  const v1 = (limit?: unknown): string =>
    JSON.stringify({ device: { backend: { type: 'localfs', config: { dir: 'b' } }, cache: { type: 'blobcache', config: { work_dir: 'c', ...(limit === undefined ? {} : { cache_size_limit: limit }) } } }, mode: 'direct' });
  assert.equal(parseConfigText(v1(), 'cfg').cache.sizeLimit, 0);
  assert.equal(parseConfigText(v1(1 << 30), 'cfg').cache.sizeLimit, 1 << 30);
  assert.throws(() => parseConfigText(v1('1G'), 'cfg'), /cache_size_limit/);
  assert.throws(() => parseConfigText(v1(-1), 'cfg'), /cache_size_limit/);
  const v2 = JSON.stringify({ version: 2, backend: { type: 'localfs', localfs: { dir: 'b' } }, cache: { type: 'filecache', filecache: { work_dir: 'c', cache_size_limit: 4096 } } });
  assert.equal(parseConfigText(v2, 'cfg').cache.sizeLimit, 4096);
});
