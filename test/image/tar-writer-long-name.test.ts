// Regression: a path longer than 100 bytes goes into a PAX header, but the ustar header must still
// carry mode, uid, gid, size and mtime (tar reads the size from it and desynchronises otherwise).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeTarHeader } from '../../src/image/tar-writer.js';

test('encodeTarHeader() keeps the numeric fields of an entry whose path needs PAX', () => {
  const path = Buffer.from(`${'d/'.repeat(60)}file`);
  const h = encodeTarHeader({ path, type: 'file', mode: 0o100644, uid: 7, gid: 8, size: 127, mtime: 1668232305, mtimeNsec: 0 });
  // The last 512-byte block is the ustar header of the entry itself.
  const u = h.subarray(h.length - 512);
  const num = (off: number, len: number): number => parseInt(u.subarray(off, off + len).toString('latin1').replace(/\0.*$/s, '').trim() || '0', 8);
  assert.equal(num(100, 8), 0o644, 'mode');
  assert.equal(num(108, 8), 7, 'uid');
  assert.equal(num(116, 8), 8, 'gid');
  assert.equal(num(124, 12), 127, 'size');
  assert.equal(num(136, 12), 1668232305, 'mtime');
});
