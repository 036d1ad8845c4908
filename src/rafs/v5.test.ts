// Golden tests of the v5 reader on the two repeatable upstream fixtures (spec §12).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURE_V5_BLAKE3, FIXTURE_V5_BLOB_DIR, FIXTURE_V5_SHA256 } from '../../test/helpers/paths.js';
import { flattenTreeJ, parseResultFile, treeReport, type FlatEntry } from '../../test/helpers/result-tree.js';
import { isChunkCompressed } from '../format/chunk-info.js';
import { decompress } from '../format/compress.js';
import { digest } from '../format/digest.js';
import { FormatError, FsError } from '../util/errors.js';
import { openRafsV5, type RafsV5Super } from './v5.js';
import { isDir, isReg, isSymlink } from '../format/image-model.js';

const BLOB_ID = '7334a2594e133cf8ae364189c2276b090fc490c627bcc3fb1077f0419a538e00';
const blob = readFileSync(join(FIXTURE_V5_BLOB_DIR, BLOB_ID));

/** Every entry of the image as '/path' → { ino, kind }. */
function walk(sb: RafsV5Super): Map<string, { ino: number; mode: number }> {
  const out = new Map<string, { ino: number; mode: number }>([['/', { ino: 1, mode: sb.getInode(1).mode }]]);
  const stack: Array<[number, string]> = [[1, '']];
  while (stack.length) {
    const [ino, prefix] = stack.pop()!;
    sb.readdir(ino, 0, (e) => {
      const path = `${prefix}/${Buffer.from(e.name).toString()}`;
      const inode = sb.getInode(e.ino);
      out.set(path, { ino: e.ino, mode: inode.mode });
      if (isDir(inode.mode)) stack.push([e.ino, path]);
      return true;
    });
  }
  return out;
}

function readFile(sb: RafsV5Super, ino: number): Buffer {
  const parts: Uint8Array[] = [];
  for (const c of sb.fileChunks(ino)) {
    assert.equal(c.blobIndex, 0);
    const stored = blob.subarray(c.compressedOffset, c.compressedOffset + c.compressedSize);
    const data = isChunkCompressed(c) ? decompress(stored, sb.meta.compressor, c.uncompressedSize) : stored;
    assert.equal(data.length, c.uncompressedSize);
    assert.deepEqual(Buffer.from(digest(data, sb.meta.digester)), Buffer.from(c.digest), `chunk ${c.index} digest`);
    parts.push(data);
  }
  return Buffer.concat(parts).subarray(0, sb.getInode(ino).size);
}

for (const [fixture, digester, flags] of [
  [FIXTURE_V5_SHA256, 'sha256', 0x9],
  [FIXTURE_V5_BLAKE3, 'blake3', 0x5],
] as const) {
  describe(`RafsV5Super on ${fixture.split('/').pop()}`, () => {
    const buf = new Uint8Array(readFileSync(fixture));
    const sb = openRafsV5(buf);
    const result = parseResultFile(readFileSync(`${fixture}.result`, 'utf8'));

    it('decodes the superblock and blob tables', () => {
      const s = sb.superBlock;
      assert.equal(s.blockSize, 0x100000);
      assert.equal(s.flags, flags);
      assert.equal(s.inodeTableEntries, 54);
      assert.equal(s.inodesCount, 51);
      assert.equal(s.inodeTableOffset, 8192);
      assert.equal(s.prefetchTableEntries, 0);
      assert.equal(s.extendedBlobTableEntries, 1);
      assert.equal(sb.meta.digester, digester);
      assert.equal(sb.meta.compressor, 'none');
      assert.equal(sb.meta.explicitUidGid, false);
      assert.equal(sb.blobs.length, 1);
      assert.equal(sb.blobs[0]!.blobId, BLOB_ID);
      assert.equal(sb.blobs[0]!.chunkCount, 23);
      assert.equal(sb.blobs[0]!.compressedSize, blob.length);
      assert.equal(sb.blobs[0]!.features, 0);
      assert.deepEqual(sb.prefetchInodes(), []);
    });

    it('validates, and every stored inode digest recomputes equal (§4.9)', () => {
      sb.validate();
      sb.verifyDigests();
    });

    it('has the tree of the .result file (tree -J semantics)', () => {
      const entries = walk(sb);
      const flat = new Map<string, FlatEntry>();
      for (const [path, e] of entries) {
        if (isSymlink(e.mode)) flat.set(path, { type: 'link', target: Buffer.from(sb.readlink(e.ino)).toString() });
        else flat.set(path, { type: isDir(e.mode) ? 'directory' : 'file' });
      }
      assert.deepEqual(flat, flattenTreeJ(result.root));
      assert.deepEqual(treeReport(flat), result.report);
      assert.deepEqual(result.report, { directories: 26, files: 27 });
    });

    it('reads every regular file with the md5 of the .result file', () => {
      const entries = walk(sb);
      let n = 0;
      for (const [path, e] of entries) {
        if (!isReg(e.mode)) continue;
        n++;
        assert.equal(createHash('md5').update(readFile(sb, e.ino)).digest('hex'), result.md5.get(path), path);
      }
      assert.equal(n, 23);
      assert.equal(result.md5.size, 23);
    });

    it('looks up by binary search and shares i_ino across hardlink names', () => {
      const hl = sb.lookup(1, Buffer.from('hardlink-test'))!;
      const foo = sb.lookup(hl.ino, Buffer.from('foo'))!;
      const test = sb.lookup(hl.ino, Buffer.from('test.sh'))!;
      const nft = sb.lookup(1, Buffer.from('normal-file-test'))!;
      const other = sb.lookup(nft.ino, Buffer.from('test.sh'))!;
      assert.equal(foo.ino, 5);
      assert.equal(test.ino, 5);
      assert.equal(other.ino, 5);
      assert.equal(test.index, 6);
      assert.equal(foo.nlink, 3);
      assert.equal(sb.lookup(hl.ino, Buffer.from('nope')), undefined);
      assert.equal(sb.lookup(hl.ino, Buffer.from('a')), undefined);
      assert.equal(sb.lookup(hl.ino, Buffer.from('zzz')), undefined);
      // Index 6 is only a second name of inode 5, not an inode of its own.
      assert.throws(() => sb.getInode(6), FsError);
      assert.throws(() => sb.getInode(0), FsError);
      assert.throws(() => sb.getInode(55), FsError);
      assert.equal(sb.parentOf(1), 1);
      assert.equal(sb.parentOf(hl.ino), 1);
      assert.throws(() => sb.lookup(5, Buffer.from('x')), FsError);
    });

    it('readdir honours offsets and early stop', () => {
      const names: string[] = [];
      const nexts: number[] = [];
      sb.readdir(1, 1, (e, next) => {
        names.push(Buffer.from(e.name).toString());
        nexts.push(next);
        return true;
      });
      assert.deepEqual(names, ['normal-file-test', 'symlink-test']);
      assert.deepEqual(nexts, [2, 3]);
      let calls = 0;
      sb.readdir(1, 0, () => ++calls < 1);
      assert.equal(calls, 1);
      const types: number[] = [];
      sb.readdir(sb.lookup(1, Buffer.from('symlink-test'))!.ino, 0, (e) => (types.push(e.type), true));
      assert.deepEqual(types, Array(7).fill(10));
    });

    it('readlink, xattrs and synthesized attributes', () => {
      const sl = sb.lookup(1, Buffer.from('symlink-test'))!;
      const root = sb.lookup(sl.ino, Buffer.from('root-1'))!;
      assert.equal(Buffer.from(sb.readlink(root.ino)).toString(), '/////////////////');
      assert.equal(root.size, 17);
      assert.throws(() => sb.readlink(1), FsError);
      assert.deepEqual(sb.listXattrs(1), []);
      assert.equal(sb.getXattr(1, Buffer.from('user.x')), undefined);
      const r = sb.getInode(1);
      assert.equal(r.mtime, 0);
      assert.equal(r.size, 4096);
      assert.equal(r.nlink, 5);
      assert.deepEqual(sb.fileChunks(1), []);
    });
  });
}

describe('openRafsV5 rejections', () => {
  const good = new Uint8Array(readFileSync(FIXTURE_V5_SHA256));
  const mutate = (f: (b: Uint8Array, dv: DataView) => void): Uint8Array => {
    const b = good.slice();
    f(b, new DataView(b.buffer));
    return b;
  };
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['bad magic', mutate((_, dv) => dv.setUint32(0, 0x12345678, true)), /magic/],
    ['bad version', mutate((_, dv) => dv.setUint32(4, 0x600, true)), /fs_version/],
    ['bad sb_size', mutate((_, dv) => dv.setUint32(8, 4096, true)), /sb_size/],
    ['bad chunk size', mutate((_, dv) => dv.setUint32(12, 0x1234, true)), /block_size/],
    ['unknown flag', mutate((_, dv) => dv.setUint32(16, 0x9 | 0x400, true)), /flags/],
    ['inodes_count too big', mutate((_, dv) => dv.setUint32(24, 55, true)), /inodes_count/],
    ['table outside the file', mutate((_, dv) => dv.setUint32(56, 100000, true)), /inode table/],
    ['overlapping tables', mutate((_, dv) => dv.setUint32(48, 8192 + 64, true)), /overlaps/],
    ['truncated', good.subarray(0, 4096), /needs 8192 bytes/],
    ['size not multiple of 8', good.subarray(0, good.length - 4), /file size/],
  ];
  for (const [name, buf, re] of cases) {
    it(`rejects ${name}`, () => assert.throws(() => openRafsV5(buf), (e: unknown) => e instanceof FormatError && re.test(e.message)));
  }

  it('validate() names the broken inode field', () => {
    // Inode index 2's record: set i_nlink to 0.
    const b = mutate((bb, dv) => dv.setUint32(dv.getUint32(8192 + 4, true) * 8 + 88, 0, true));
    assert.throws(() => openRafsV5(b).validate(), /i_nlink is 0/);
    // Make directory 2's child range point back at the root: a cycle.
    const c = mutate((bb, dv) => dv.setUint32(dv.getUint32(8192 + 4, true) * 8 + 92, 1, true));
    assert.throws(() => openRafsV5(c).validate(), FormatError);
    // A chunk referencing a blob that does not exist.
    const d = mutate((bb, dv) => dv.setUint32(dv.getUint32(8192 + 4 * 4, true) * 8 + 136 + 32, 7, true));
    assert.throws(() => openRafsV5(d).validate(), /references blob 7/);
  });

  it('verifyDigests() detects a changed chunk digest', () => {
    const b = mutate((bb, dv) => {
      const at = dv.getUint32(8192 + 4 * 4, true) * 8 + 136;
      bb[at] = bb[at]! ^ 1;
    });
    assert.throws(() => openRafsV5(b).verifyDigests(), /digest of inode 5/);
  });
});
