import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BackendError, ConfigError } from '../../util/errors.js';
import { newBackendMetrics, type BlobBackend } from './backend.js';
import { createBackend, registerBackend, registeredBackends } from './create-backend.js';
import { LocalFsBackend, createLocalFsBackend } from './localfs.js';
import { testDir } from '../../../test/helpers/tmp.js';

const ID = 'a'.repeat(64);

function setup(): { dir: string; data: Buffer } {
  const dir = testDir('nydus-localfs-');
  const data = Buffer.from(Array.from({ length: 10000 }, (_, i) => i & 0xff));
  writeFileSync(join(dir, ID), data);
  return { dir, data };
}

test('LocalFsBackend reads ranges of <dir>/<blob_id> and keeps metrics', async () => {
  const { dir, data } = setup();
  const be = new LocalFsBackend({ dir });
  assert.deepEqual(Buffer.from(await be.read(ID, 0, 100)), data.subarray(0, 100));
  assert.deepEqual(Buffer.from(await be.read(ID, 5000, 3000)), data.subarray(5000, 8000));
  assert.equal(await be.blobSize(ID), 10000);
  assert.equal(be.metrics.readCount, 2);
  assert.equal(be.metrics.readBytes, 3100);
  assert.equal(be.metrics.readErrors, 0);
  await be.close();
});

test('LocalFsBackend returns a short read at the end of the blob, errors past it', async () => {
  const { dir, data } = setup();
  const be = new LocalFsBackend({ dir });
  const tail = await be.read(ID, 9990, 100);
  assert.deepEqual(Buffer.from(tail), data.subarray(9990));
  await assert.rejects(be.read(ID, 10000, 16), (e: unknown) => {
    assert.ok(e instanceof BackendError);
    assert.equal(e.code, 'ERR_IO');
    assert.match(e.message, new RegExp(`Short read of blob "${ID}" \\(${join(dir, ID).replace(/[/.]/g, '\\$&')}\\)`));
    return true;
  });
  assert.equal(be.metrics.readErrors, 1);
  await be.close();
});

test('LocalFsBackend: a missing blob is ERR_BACKEND_NOT_FOUND naming blob and path', async () => {
  const { dir } = setup();
  const be = new LocalFsBackend({ dir });
  const missing = 'b'.repeat(64);
  await assert.rejects(be.read(missing, 0, 1), (e: unknown) => {
    assert.ok(e instanceof BackendError);
    assert.equal(e.code, 'ERR_BACKEND_NOT_FOUND');
    assert.equal(e.backend, 'localfs');
    assert.ok(e.message.includes(missing) && e.message.includes(join(dir, missing)), e.message);
    return true;
  });
  // A blob that appears later is found (failed opens are not cached).
  writeFileSync(join(dir, missing), 'xyz');
  assert.equal(Buffer.from(await be.read(missing, 0, 3)).toString(), 'xyz');
  await be.close();
});

test('LocalFsBackend refuses blob ids that would leave the directory', async () => {
  const { dir } = setup();
  const be = new LocalFsBackend({ dir });
  for (const bad of ['../etc/passwd', '..', 'a/b', '']) await assert.rejects(be.read(bad, 0, 1), BackendError);
});

test('LocalFsBackend: blob_file serves every blob id; alt_dirs is a fallback', async () => {
  const { dir, data } = setup();
  const one = createLocalFsBackend({ blob_file: join(dir, ID) });
  assert.deepEqual(Buffer.from(await one.read('whatever', 10, 5)), data.subarray(10, 15));
  await one.close();
  const empty = join(dir, 'empty');
  mkdirSync(empty);
  const alt = createLocalFsBackend({ dir: empty, alt_dirs: [dir] });
  assert.deepEqual(Buffer.from(await alt.read(ID, 0, 4)), data.subarray(0, 4));
  await alt.close();
  assert.throws(() => createLocalFsBackend({}), ConfigError);
});

test('createBackend() knows every backend, names the key for an unknown type, accepts registrations', () => {
  assert.deepEqual(registeredBackends().filter((t) => ['localfs', 'registry', 's3', 'oss', 'http-proxy'].includes(t)).length, 5);
  assert.ok(createBackend('localfs', { dir: '/tmp' }) instanceof LocalFsBackend);
  assert.throws(() => createBackend('ftp', {}), (e: unknown) => e instanceof ConfigError && /backend\.type: unknown backend "ftp"/.test(e.message));
  const mem: BlobBackend = { type: 'memory', metrics: newBackendMetrics(), read: async () => new Uint8Array(0), blobSize: async () => 0, close: async () => {} };
  registerBackend('memory', () => mem);
  assert.equal(createBackend('memory', undefined), mem);
});
