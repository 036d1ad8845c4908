// Docker config credentials: credHelpers and credsStore run `docker-credential-<name> get` the way
// docker does (server address on stdin, JSON on stdout), before falling back to `auths`.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { dockerCredentials } from './docker-config.js';

const dir = mkdtempSync(join(tmpdir(), 'docker-cfg-'));
const savedPath = process.env.PATH;
process.env.PATH = `${dir}:${savedPath ?? ''}`;
after(() => {
  process.env.PATH = savedPath;
  rmSync(dir, { recursive: true, force: true });
});

// A helper speaking the docker-credential-helpers protocol; it records what it was asked.
function helper(name: string, known: Record<string, [string, string]>): void {
  const cases = Object.entries(known)
    .map(([url, [u, p]]) => `  '${url}') printf '{"ServerURL":"%s","Username":"${u}","Secret":"${p}"}' "$url" ;;`)
    .join('\n');
  writeFileSync(
    join(dir, `docker-credential-${name}`),
    `#!/bin/sh\n[ "$1" = get ] || exit 2\nread -r url\necho "$url" >> '${join(dir, `${name}.asked`)}'\ncase "$url" in\n${cases}\n  *) echo 'credentials not found in native keychain'; exit 1 ;;\nesac\n`,
  );
  chmodSync(join(dir, `docker-credential-${name}`), 0o755);
}

function config(name: string, body: object): string {
  const p = join(dir, `${name}.json`);
  writeFileSync(p, JSON.stringify(body));
  return p;
}

test('credHelpers wins for its host, credsStore serves the rest, auths is the fallback', () => {
  helper('pass', { 'reg.example.com': ['alice', 's3cret'] });
  helper('store', { 'https://index.docker.io/v1/': ['bob', 'hub-pw'] });
  const p = config('helpers', {
    credHelpers: { 'reg.example.com': 'pass' },
    credsStore: 'store',
    auths: { 'other.example.com': { auth: Buffer.from('carol:file-pw').toString('base64') } },
  });
  assert.deepEqual(dockerCredentials('reg.example.com', p), { username: 'alice', password: 's3cret' });
  assert.deepEqual(dockerCredentials('docker.io', p), { username: 'bob', password: 'hub-pw' });
  // The store has nothing for this host ("credentials not found"): the auths entry is used.
  assert.deepEqual(dockerCredentials('other.example.com', p), { username: 'carol', password: 'file-pw' });
  assert.equal(dockerCredentials('anon.example.com', p), undefined);
  assert.deepEqual(readFileSync(join(dir, 'pass.asked'), 'utf8').trim().split('\n'), ['reg.example.com']);
  assert.deepEqual(readFileSync(join(dir, 'store.asked'), 'utf8').trim().split('\n'), ['https://index.docker.io/v1/', 'other.example.com', 'anon.example.com']);
});

test('a missing or misnamed helper is an error naming the config key', () => {
  assert.throws(() => dockerCredentials('r.io', config('missing', { credsStore: 'nonexistent-helper' })), /credsStore: cannot run docker-credential-nonexistent-helper: not found on PATH/);
  assert.throws(() => dockerCredentials('r.io', config('badname', { credHelpers: { 'r.io': '../../bin/sh' } })), /credHelpers\["r\.io"\]: invalid credential helper name/);
});
