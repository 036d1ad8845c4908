// Unit tests of the pure v5 codecs (spec §4.2–§4.8).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FormatError } from '../../util/errors.js';
import { BlobFeatures } from '../constants.js';
import {
  RAFSV5_INODE_SIZE,
  blobInfosFromRafsV5,
  decodeRafsV5BlobTable,
  decodeRafsV5ExtBlobTable,
  decodeRafsV5Inode,
  decodeRafsV5InodeTable,
  decodeRafsV5PrefetchTable,
  decodeRafsV5SuperBlock,
  decodeRafsV5Xattrs,
  encodeRafsV5BlobTable,
  encodeRafsV5ExtBlobTable,
  encodeRafsV5Inode,
  encodeRafsV5InodeTable,
  encodeRafsV5PrefetchTable,
  encodeRafsV5SuperBlock,
  encodeRafsV5Xattrs,
  rafsV5XattrTableExtent,
  validateRafsV5Inode,
  type RafsV5Inode,
} from './index.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('RAFS v5 codecs', () => {
  it('blob table: packed, last entry without NUL, zero padded to 8', () => {
    const t = encodeRafsV5BlobTable([
      { readaheadOffset: 1, readaheadSize: 2, blobId: 'abc' },
      { readaheadOffset: 0, readaheadSize: 9, blobId: 'de' },
    ]);
    // 8 + "abc\0" + 8 + "de" = 22 → 24
    assert.equal(t.length, 24);
    assert.equal(t[11], 0);
    assert.deepEqual([...t.subarray(20, 24)], [0x64, 0x65, 0, 0]);
    assert.deepEqual(decodeRafsV5BlobTable(t, 0, t.length), [
      { readaheadOffset: 1, readaheadSize: 2, blobId: 'abc' },
      { readaheadOffset: 0, readaheadSize: 9, blobId: 'de' },
    ]);
    assert.equal(encodeRafsV5BlobTable([]).length, 0);
    assert.throws(() => encodeRafsV5BlobTable([{ readaheadOffset: 0, readaheadSize: 0, blobId: '' }]), FormatError);
  });

  it('extended blob table and BlobInfo mapping', () => {
    const x = encodeRafsV5ExtBlobTable([{ chunkCount: 3, features: BlobFeatures.CAP_TAR_TOC, uncompressedSize: 2 ** 40, compressedSize: 77 }]);
    assert.equal(x.length, 64);
    const back = decodeRafsV5ExtBlobTable(x, 0, 1);
    assert.deepEqual(back, [{ chunkCount: 3, features: BlobFeatures.CAP_TAR_TOC, uncompressedSize: 2 ** 40, compressedSize: 77 }]);
    const bad = x.slice();
    new DataView(bad.buffer).setUint32(4, 0x8000_0000, true);
    assert.throws(() => decodeRafsV5ExtBlobTable(bad, 0, 1), /features/);
    const entries = [{ readaheadOffset: 0, readaheadSize: 0, blobId: 'b0' }];
    assert.equal(blobInfosFromRafsV5(entries, back, 4096, 'zstd', 'sha256')[0]!.chunkCount, 3);
    assert.equal(blobInfosFromRafsV5(entries, [], 4096, 'zstd', 'sha256')[0]!.features, BlobFeatures._V5_NO_EXT_BLOB_TABLE);
    assert.throws(() => blobInfosFromRafsV5([...entries, ...entries], back, 4096, 'zstd', 'sha256'), /does not match/);
  });

  it('inode and prefetch tables pad odd counts', () => {
    const t = encodeRafsV5InodeTable([8192 + 8, 8192 + 144, 8192 + 400]);
    assert.equal(t.length, 16);
    assert.deepEqual(decodeRafsV5InodeTable(t, 0, 3), [8200, 8336, 8592]);
    assert.throws(() => encodeRafsV5InodeTable([100]), FormatError);
    const z = new Uint8Array(8);
    assert.throws(() => decodeRafsV5InodeTable(z, 0, 1), /not in/);
    const p = encodeRafsV5PrefetchTable([5, 9, 0, 3]);
    assert.equal(p.length, 16);
    assert.deepEqual(decodeRafsV5PrefetchTable(p, 0, 4), [5, 9]);
    assert.equal(encodeRafsV5PrefetchTable([7]).length, 8);
  });

  it('superblock round-trips', () => {
    const sb = {
      magic: 0x52414653, fsVersion: 0x500, sbSize: 8192, blockSize: 0x100000, flags: 0x0100_0019, inodesCount: 3,
      inodeTableOffset: 8192, prefetchTableOffset: 8208, blobTableOffset: 8208, inodeTableEntries: 4, prefetchTableEntries: 0,
      blobTableSize: 72, extendedBlobTableEntries: 1, extendedBlobTableOffset: 8280,
    };
    const b = encodeRafsV5SuperBlock(sb);
    assert.deepEqual([...b.subarray(0, 4)], [0x53, 0x46, 0x41, 0x52]);
    assert.deepEqual(decodeRafsV5SuperBlock(b), sb);
  });

  it('inode round-trips and validates like nydusd', () => {
    const i: RafsV5Inode = {
      digest: new Uint8Array(32).fill(9), parent: 2, ino: 7, uid: 1, gid: 2, projid: 0, mode: 0o100644, size: 2 ** 33, blocks: 2 ** 24,
      flags: 4, nlink: 1, childIndex: 0, childCount: 8192, nameSize: 3, symlinkSize: 0, rdev: 0xffffffff, mtimeNsec: 999, mtime: 2 ** 34,
    };
    const b = encodeRafsV5Inode(i);
    assert.equal(b.length, RAFSV5_INODE_SIZE);
    assert.deepEqual(decodeRafsV5Inode(b, 0), i);
    validateRafsV5Inode(i, 10, false);
    assert.throws(() => validateRafsV5Inode({ ...i, ino: 11 }, 10, false), /i_ino/);
    assert.throws(() => validateRafsV5Inode({ ...i, parent: 8 }, 10, false), /i_parent/);
    validateRafsV5Inode({ ...i, parent: 8, nlink: 2 }, 10, false); // hardlinks may have parent > ino
    assert.throws(() => validateRafsV5Inode({ ...i, nameSize: 0 }, 10, false), /i_name_size/);
    assert.throws(() => validateRafsV5Inode({ ...i, parent: 0 }, 10, false), /i_parent/);
    validateRafsV5Inode({ ...i, parent: 0, ino: 1 }, 10, true);
  });

  it('xattr table keeps pair order and pads to 8', () => {
    const pairs: Array<[Uint8Array, Uint8Array]> = [[enc('user.z'), enc('1')], [enc('user.a'), new Uint8Array([0, 1, 0])]];
    const t = encodeRafsV5Xattrs(pairs);
    // size = (4+6+1+1) + (4+6+1+3) = 26 → 8 + 32
    assert.equal(new DataView(t.buffer).getUint32(0, true), 26);
    assert.equal(t.length, 40);
    assert.equal(rafsV5XattrTableExtent(t, 0), 40);
    assert.deepEqual(decodeRafsV5Xattrs(t, 0), pairs);
    const bad = t.slice();
    new DataView(bad.buffer).setUint32(8, 100, true);
    assert.throws(() => decodeRafsV5Xattrs(bad, 0), FormatError);
  });
});
