import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from './daemon-config.js';

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

test('unknown keys are accepted with one warning each naming the path; wrong types are errors', () => {
  const warnings: string[] = [];
  const warn = (m: string): void => void warnings.push(m);
  const c = parseConfigText('{"device":{"backend":{"type":"localfs","config":{"dir":"x","timeout":5,"readahead":true}},"cache":{"type":"blobcache","config":{"work_dir":"w","compressed":false}}},"mode":"direct","digest_validat":true,"warmup":1}', 'cfg', warn);
  assert.equal(c.backend.config.dir, 'x');
  assert.deepEqual(warnings.sort(), [
    'cfg: ignoring unknown key "device.backend.config.timeout"',
    'cfg: ignoring unknown key "device.backend.config.readahead"',
    'cfg: ignoring unknown key "device.cache.config.compressed"',
    'cfg: ignoring unknown key "digest_validat"',
    'cfg: ignoring unknown key "warmup"',
  ].sort());
  assert.throws(() => parseConfigText('{"device":{"backend":{"type":"localfs","config":{"dir":1}}},"mode":"direct"}', 'cfg', warn), /device\.backend\.config\.dir: expected a string/);
  assert.throws(() => parseConfigText('{"device":{"backend":{"type":"registry","config":{"host":"h","repo":"r","timeout":"5"}}}}', 'cfg', warn), /device\.backend\.config\.timeout: expected a number/);
  assert.throws(() => parseConfigText('{"device":{"backend":{"type":"registry","config":{"host":"h","repo":"r","mirrors":[{"host":1}]}}}}', 'cfg', warn), /device\.backend\.config\.mirrors\[0\]\.host: expected a string/);
  assert.throws(() => parseConfigText('{"version":2,"backend":{"type":"localfs","localfs":{"dir":"d"}},"cache":{"type":"bogus"}}', 'cfg', warn), /cache\.type: expected one of/);
  assert.throws(() => parseConfigText('{"device":', 'cfg', warn), /invalid JSON/);
});

test('prefetch ranges are checked only when prefetch is enabled (nydus-snapshotter writes threads_count 0)', () => {
  const base = (fp: object): string => JSON.stringify({ device: { backend: { type: 'registry', config: { host: 'h', repo: 'r', readahead: false } } }, mode: 'direct', fs_prefetch: fp });
  const off = parseConfigText(base({ enable: false, prefetch_all: false, threads_count: 0, merging_size: 0, bandwidth_rate: 0 }), 'cfg', () => {});
  assert.equal(off.rafs.prefetch.enable, false);
  assert.throws(() => parseConfigText(base({ enable: true, threads_count: 0 }), 'cfg', () => {}), /fs_prefetch\.threads_count: must be 1\.\.1024 when prefetch is enabled/);
  assert.throws(() => parseConfigText(base({ enable: true, threads_count: 2000 }), 'cfg', () => {}), /fs_prefetch\.threads_count: must be 1\.\.1024/);
  assert.throws(() => parseConfigText(base({ enable: true, merging_size: 0x10000001 }), 'cfg', () => {}), /fs_prefetch\.merging_size: must be at most/);
});

test('registry templates without host/repo are refused, as upstream', () => {
  assert.throws(() => parseConfigText('{"device":{"backend":{"type":"registry","config":{"scheme":"https","timeout":5}}},"mode":"direct"}', 'cfg', () => {}), /registry needs "host" and "repo"/);
});

test('v2 TOML is accepted; v1 is not accepted in TOML', () => {
  const warnings: string[] = [];
  const c = parseConfigText('version = 2\nid = "x"\n[backend]\ntype = "localfs"\n[backend.localfs]\ndir = "/b"\n[cache]\ntype = "filecache"\nenable_encryption = true\n[cache.filecache]\nwork_dir = "/w"\n[rafs]\nmode = "direct"\n', 'cfg', (m) => void warnings.push(m));
  assert.equal(c.backend.config.dir, '/b');
  assert.equal(c.cache.workDir, '/w');
  assert.deepEqual(warnings, ['cfg: ignoring unknown key "cache.enable_encryption"']);
  assert.throws(() => parseConfigText('mode = "direct"\n[device.backend]\ntype = "localfs"\n', 'cfg', () => {}), /TOML config must be v2/);
  assert.throws(() => parseConfigText('version = 2\n[backend\n', 'cfg', () => {}), /neither JSON nor TOML/);
});

test('cache encryption is refused; compressed cache and Dragonfly SDK mode are warned about', () => {
  assert.throws(() => parseConfigText('{"version":2,"backend":{"type":"localfs","localfs":{"dir":"d"}},"cache":{"type":"filecache","filecache":{"work_dir":"w","enable_encryption":true}}}', 'cfg', () => {}), /cache\.filecache\.enable_encryption: cache encryption is not supported/);
  const warnings: string[] = [];
  parseConfigText('{"device":{"backend":{"type":"registry","config":{"host":"h","repo":"r","proxy":{"url":"http://p:4001","dragonfly_scheduler_endpoint":"http://s:8002"}}},"cache":{"type":"blobcache","compressed":true,"config":{"work_dir":"w"}}},"mode":"direct"}', 'cfg', (m) => void warnings.push(m));
  assert.equal(warnings.length, 2);
  assert.match(warnings[0]!, /device\.cache\.compressed: the cache keeps uncompressed data/);
  assert.match(warnings[1]!, /device\.backend\.config\.proxy\.dragonfly_scheduler_endpoint: Dragonfly SDK mode is not supported/);
  warnings.length = 0;
  parseConfigText('{"version":2,"backend":{"type":"localfs","localfs":{"dir":"d"}},"external_backends":[{"type":"x","patch":{},"config":{}}],"cache":{"type":"filecache","filecache":{"work_dir":"w","disable_indexed_map":true}}}', 'cfg', (m) => void warnings.push(m));
  assert.deepEqual(warnings.map((w) => w.split(':')[1]!.trim()), ['cache.filecache.disable_indexed_map', 'external_backends']);
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
  assert.equal(c.backend.config.auth, 'dXNlcjpwYXNz');
});

test('legacy flat proxy keys become a proxy object', () => {
  const c = parseConfigText('{"device":{"backend":{"type":"registry","config":{"host":"h","repo":"r","proxy":"http://p2p:65001","proxy_fallback":true,"proxy_ping_url":"http://p2p:40901/server/ping","proxy_check_interval":5}}},"mode":"direct"}', 'cfg');
  assert.deepEqual(c.backend.config.proxy, { url: 'http://p2p:65001', fallback: true, ping_url: 'http://p2p:40901/server/ping', check_interval: 5 });
});
