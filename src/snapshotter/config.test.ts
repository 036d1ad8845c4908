import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from './config.js';

test('upstream key names: root, address, daemon_mode, daemon.nydusd_config, log.level, cache_manager.cache_dir', () => {
  const c = parseConfig(
    `version = 1
root = "/var/lib/n"
address = "/run/n.sock"
daemon_mode = "dedicated"
[daemon]
nydusd_config = "/etc/nydus/nydusd-config.fusedev.json"
nydusd_path = "/usr/bin/nydusd"
fs_driver = "fusedev"
[log]
level = "debug"
[cache_manager]
cache_dir = "/var/cache/n"
[remote]
skip_ssl_verify = true
`,
    'c.toml',
  );
  assert.deepEqual(c, { root: '/var/lib/n', address: '/run/n.sock', daemonMode: 'multiple', nydusdConfig: '/etc/nydus/nydusd-config.fusedev.json', nydusdPath: '/usr/bin/nydusd', logLevel: 'debug', cacheDir: '/var/cache/n', skipSslVerify: true });
  assert.equal(parseConfig('daemon_mode = "shared"', 'c.toml').daemonMode, 'shared');
});

test('bad config: one line naming the file and key', () => {
  assert.throws(() => parseConfig('rooot = "/x"', 'c.toml'), /^ConfigError: c\.toml: unknown key "rooot"$/m);
  assert.throws(() => parseConfig('[daemon]\nmode = 1', 'c.toml'), /c\.toml: unknown key "daemon\.mode"/);
  assert.throws(() => parseConfig('daemon_mode = "none"', 'c.toml'), /"daemon_mode" must be/);
  assert.throws(() => parseConfig('root = 5', 'c.toml'), /"root" must be a string/);
  assert.throws(() => parseConfig('root = "', 'c.toml'), /c\.toml: not valid TOML/);
  assert.throws(() => parseConfig('[log]\nlevel = "loud"', 'c.toml'), /"log\.level" must be one of/);
});
