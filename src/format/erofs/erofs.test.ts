// Unit tests of the EROFS codecs (spec §5.7–5.10) on hand-made values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DirentBlock,
  EROFS_FT_REG_FILE,
  EROFS_INODE_CHUNK_BASED,
  EROFS_INODE_FLAT_INLINE,
  EROFS_INODE_LAYOUT_COMPACT,
  EROFS_INODE_LAYOUT_EXTENDED,
  decodeChunkIndex,
  decodeDevV6,
  decodeDirentBlock,
  decodeErofsInode,
  decodeXattrIbody,
  direntSize,
  encodeChunkIndex,
  encodeDevV6,
  encodeDirents,
  encodeErofsInode,
  encodeXattrIbody,
  encodedXattrSize,
  makedev,
  xattrIcountOf,
  xattrIbodySize,
  type ErofsInode,
} from './index.js';
import { FormatError } from '../../util/errors.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

test('inode codec: compact and extended round trips', () => {
  const base: ErofsInode = { version: EROFS_INODE_LAYOUT_COMPACT, dataLayout: EROFS_INODE_FLAT_INLINE, xattrIcount: 3, mode: 0o40755, size: 1234, u: 7, ino: 9, uid: 65535, gid: 12, mtime: 0, mtimeNsec: 0, nlink: 4 };
  const c = encodeErofsInode(base);
  assert.equal(c.length, 32);
  assert.equal(c[0], 0 | (2 << 1));
  assert.deepEqual(decodeErofsInode(c, 0), base);
  const ext = { ...base, version: EROFS_INODE_LAYOUT_EXTENDED, dataLayout: EROFS_INODE_CHUNK_BASED, size: 2 ** 40, uid: 100000, mtime: 1_700_000_000, mtimeNsec: 5, nlink: 70000 };
  const e = encodeErofsInode(ext);
  assert.equal(e.length, 64);
  assert.deepEqual(decodeErofsInode(e, 0), ext);
  e[0] = 0x21;
  assert.throws(() => decodeErofsInode(e, 0), FormatError);
  e[0] = 1 | (1 << 1); // compressed layouts are not RAFS
  assert.throws(() => decodeErofsInode(e, 0), /data layout 1/);
});

test('device numbers: glibc dev_t <-> new_encode_dev', () => {
  assert.equal(encodeDevV6(makedev(1, 3)), 0x103);
  assert.equal(encodeDevV6(makedev(259, 70000)), (70000 & 0xff) | (259 << 8) | ((70000 & ~0xff) << 12));
  for (const [maj, min] of [[0, 0], [8, 1], [4095, 0xfffff], [259, 70000]] as const) {
    assert.equal(decodeDevV6(encodeDevV6(makedev(maj, min))), makedev(maj, min));
  }
});

test('xattr ibody: prefixes, padding, icount', () => {
  const pairs: Array<[Uint8Array, Uint8Array]> = [
    [enc('user.a'), enc('xyz')],
    [enc('security.selinux'), enc('ctx')],
    [enc('system.posix_acl_access'), new Uint8Array([2, 0, 0, 0])],
    [enc('trusted.overlay.opaque'), enc('y')],
  ];
  const body = encodeXattrIbody(pairs);
  assert.equal(body.length, encodedXattrSize(pairs));
  assert.equal(body.length % 4, 0);
  assert.equal(xattrIbodySize(xattrIcountOf(body.length)), body.length);
  assert.equal(body[12], 1); // "a" after the user. prefix
  assert.equal(body[13], 1);
  const back = decodeXattrIbody(body, 0, body.length);
  assert.deepEqual(back.entries.map(([n, v]) => [Buffer.from(n).toString(), Buffer.from(v).toString('hex')]), pairs.map(([n, v]) => [Buffer.from(n).toString(), Buffer.from(v).toString('hex')]));
  body[13] = 9;
  assert.throws(() => decodeXattrIbody(body, 0, body.length), /e_name_index 9/);
});

test('dirents: packing across blocks, decode, binary search', () => {
  const names = ['.', '..', ...Array.from({ length: 400 }, (_, i) => `n${String(i).padStart(4, '0')}-${'p'.repeat(i % 40)}`)].map(enc).sort(Buffer.compare);
  const entries = names.map((name, i) => ({ name, nid: 1000 + i, fileType: EROFS_FT_REG_FILE }));
  const data = encodeDirents(entries);
  assert.equal(data.length, direntSize(names));
  assert.ok(data.length > 4096 * 3);
  const got = [];
  for (let off = 0; off < data.length; off += 4096) got.push(...decodeDirentBlock(data.subarray(off, Math.min(data.length, off + 4096))));
  assert.deepEqual(got.map((e) => [Buffer.from(e.name).toString(), e.nid]), entries.map((e) => [Buffer.from(e.name).toString(), e.nid]));
  const blk = new DirentBlock(data.subarray(0, 4096));
  assert.equal(blk.find(blk.name(5)), 5);
  assert.ok(blk.find(enc('zzz')) < 0);
  const bad = data.slice(0, 4096);
  bad[8] = 13; // nameoff[0] not a multiple of 12
  assert.throws(() => new DirentBlock(bad), /nameoff\[0\]/);
});

test('chunk index: device id low byte blob+1, high byte ci_index bits 16..23', () => {
  const e = { blobIndex: 4, ciIndex: 0x12_3456, blkaddr: 0xdead };
  const b = encodeChunkIndex(e);
  assert.deepEqual([...b], [0x56, 0x34, 5, 0x12, 0xad, 0xde, 0, 0]);
  assert.deepEqual(decodeChunkIndex(b, 0), e);
  assert.throws(() => decodeChunkIndex(new Uint8Array(8), 0), /device_id 0/);
  assert.throws(() => encodeChunkIndex({ blobIndex: 255, ciIndex: 0, blkaddr: 0 }), FormatError);
});
