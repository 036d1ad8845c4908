// Golden tests over the upstream nydus-image 2.2 v6 bootstrap (spec §5, §12).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { FIXTURE_V6_22_BLOB, FIXTURE_V6_22_BOOT } from '../../test/helpers/paths.js';
import { decompress } from '../format/compress.js';
import { digest } from '../format/digest.js';
import { FormatError, FsError } from '../util/errors.js';
import { openRafsV6 } from './v6.js';
import { hex } from '../util/bytes.js';
import { BlobChunkFlags, BlobFeatures, RafsSuperFlags } from '../format/constants.js';
import {
  decodeChunkIndex,
  decodeDirentBlock,
  decodeErofsDeviceSlot,
  decodeErofsInode,
  decodeErofsSuperBlock,
  encodeChunkIndex,
  encodeDirents,
  encodeErofsDeviceSlot,
  encodeErofsInode,
  encodeErofsSuperBlock,
  EROFS_FT_DIR,
  EROFS_FT_REG_FILE,
} from '../format/erofs/index.js';
import {
  decodeRafsV6Blob,
  decodeRafsV6SuperBlockExt,
  encodeRafsV6Blob,
  encodeRafsV6SuperBlockExt,
  blobInfoToRafsV6Blob,
  rafsV6BlobToBlobInfo,
} from '../format/rafs-v6/index.js';

const boot = new Uint8Array(readFileSync(FIXTURE_V6_22_BOOT));
const BLOB_ID = 'be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef';
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

test('v6 fixture: EROFS superblock fields and byte-identical re-encode', () => {
  const sb = decodeErofsSuperBlock(boot);
  assert.equal(sb.magic, 0xe0f5e1e2);
  assert.equal(sb.featureCompat, 0x4000_0000);
  assert.equal(sb.blkszbits, 12);
  assert.equal(sb.rootNid, 128);
  assert.equal(sb.inos, 3);
  assert.equal(sb.metaBlkaddr, 2);
  assert.equal(sb.featureIncompat, 0x0c);
  assert.equal(sb.extraDevices, 1);
  assert.equal(sb.devtSlotoff, 11);
  assert.equal(sb.blocks, 9);
  assert.equal(boot.length, 0x5000);
  assert.deepEqual(encodeErofsSuperBlock(sb), boot.subarray(1024, 1152));
});

test('v6 fixture: extended superblock, blob table, device slot', () => {
  const ext = decodeRafsV6SuperBlockExt(boot);
  assert.equal(ext.blobTableOffset, 4096);
  assert.equal(ext.blobTableSize, 256);
  assert.equal(ext.chunkSize, 0x100000);
  assert.equal(ext.chunkTableOffset, 0x4000);
  assert.equal(ext.chunkTableSize, 160);
  assert.equal(ext.prefetchTableSize, 0);
  assert.equal(ext.flags, RafsSuperFlags.COMPRESSION_ZSTD | RafsSuperFlags.HASH_BLAKE3 | RafsSuperFlags.EXPLICIT_UID_GID | RafsSuperFlags.INLINED_CHUNK_DIGEST);
  assert.deepEqual(encodeRafsV6SuperBlockExt(ext), boot.subarray(1152, 1408));

  const blob = decodeRafsV6Blob(boot, 4096);
  assert.equal(blob.blobId, BLOB_ID);
  assert.equal(blob.blobIndex, 0);
  assert.equal(blob.chunkCount, 2);
  assert.equal(blob.compressionAlgo, 3);
  assert.equal(blob.digestAlgo, 0);
  assert.equal(blob.features, 0x7000_0021);
  assert.ok(blob.features & BlobFeatures.ALIGNED);
  assert.equal(blob.compressedSize, 14554);
  assert.equal(blob.uncompressedSize, 0x9000);
  assert.equal(blob.ciUncompressedSize, 32);
  assert.deepEqual(encodeRafsV6Blob(blob), boot.subarray(4096, 4096 + 256));
  // BlobInfo round trip keeps every byte of a non-encrypted entry.
  assert.deepEqual(encodeRafsV6Blob(blobInfoToRafsV6Blob(rafsV6BlobToBlobInfo(blob))), boot.subarray(4096, 4096 + 256));

  const slot = decodeErofsDeviceSlot(boot, 1408);
  assert.equal(slot.tag, BLOB_ID);
  assert.equal(slot.blocks, 9);
  assert.equal(slot.mappedBlkaddr, 512);
  assert.deepEqual(encodeErofsDeviceSlot(slot), boot.subarray(1408, 1536));
});

test('v6 fixture: inodes, dirents and chunk indexes re-encode identically', () => {
  const root = decodeErofsInode(boot, 0x3000);
  assert.equal(root.mode, 0o40755);
  assert.equal(root.size, 67);
  assert.equal(root.nlink, 2);
  assert.deepEqual(encodeErofsInode(root), boot.subarray(0x3000, 0x3040));
  const tail = boot.subarray(0x3040, 0x3040 + 67);
  const ents = decodeDirentBlock(tail);
  assert.deepEqual(ents.map((e) => Buffer.from(e.name).toString()), ['.', '..', 'lib.rs', 'sync_io.rs']);
  assert.deepEqual(ents.map((e) => e.fileType), [EROFS_FT_DIR, EROFS_FT_DIR, EROFS_FT_REG_FILE, EROFS_FT_REG_FILE]);
  assert.deepEqual(encodeDirents(ents), tail);
  const ci = decodeChunkIndex(boot, 0x3140);
  assert.deepEqual(ci, { blobIndex: 0, ciIndex: 1, blkaddr: 5 });
  assert.deepEqual(encodeChunkIndex(ci), boot.subarray(0x3140, 0x3148));
  const f = decodeErofsInode(boot, 0x30a0);
  assert.deepEqual(encodeErofsInode(f), boot.subarray(0x30a0, 0x30e0));
});

test('openRafsV6 over the 2.2 fixture: tree, chunks, validate', () => {
  const rs = openRafsV6(boot);
  rs.validate();
  assert.equal(rs.meta.version, 6);
  assert.equal(rs.meta.compressor, 'zstd');
  assert.equal(rs.meta.digester, 'blake3');
  assert.equal(rs.meta.explicitUidGid, true);
  assert.equal(rs.rootIno, 128);
  assert.equal(rs.blobs[0]!.blobId, BLOB_ID);
  const names: string[] = [];
  rs.readdir(rs.rootIno, 0, (e) => (names.push(Buffer.from(e.name).toString()), true));
  assert.deepEqual(names, ['lib.rs', 'sync_io.rs']);
  const after: string[] = [];
  rs.readdir(rs.rootIno, 1, (e, next) => (after.push(`${Buffer.from(e.name).toString()}@${next}`), true));
  assert.deepEqual(after, ['sync_io.rs@2']);
  const lib = rs.lookup(rs.rootIno, enc('lib.rs'))!;
  const sync = rs.lookup(rs.rootIno, enc('sync_io.rs'))!;
  assert.equal(rs.lookup(rs.rootIno, enc('nope')), undefined);
  assert.equal(lib.size, 16931);
  assert.equal(sync.size, 13400);
  assert.equal(lib.mode, 0o100644);
  assert.equal(rs.parentOf(lib.ino), rs.rootIno);
  assert.equal(rs.parentOf(rs.rootIno), rs.rootIno);
  const [c0] = rs.fileChunks(lib.ino);
  const [c1] = rs.fileChunks(sync.ino);
  assert.equal(c0!.uncompressedSize, 16931);
  assert.equal(c0!.uncompressedOffset, 0);
  assert.equal(c1!.uncompressedOffset, 5 * 4096);
  assert.equal(c1!.index, 1);
  assert.equal(c0!.compressedOffset, 0);
  assert.equal(c1!.compressedOffset, c0!.compressedSize);
  assert.equal(hex(c0!.digest).length, 64);
  assert.deepEqual(rs.prefetchInodes(), []);
  assert.throws(() => rs.getInode(10 ** 9), (e: Error) => e.name === 'FsError');
});

test('v6 fixture: resolved chunks locate real zstd data in the upstream blob', () => {
  const rs = openRafsV6(boot);
  const blob = new Uint8Array(readFileSync(FIXTURE_V6_22_BLOB));
  for (const name of ['lib.rs', 'sync_io.rs']) {
    const ino = rs.lookup(rs.rootIno, enc(name))!;
    for (const c of rs.fileChunks(ino.ino)) {
      assert.ok(c.flags & BlobChunkFlags.COMPRESSED);
      const raw = decompress(blob.subarray(c.compressedOffset, c.compressedOffset + c.compressedSize), rs.meta.compressor, c.uncompressedSize);
      assert.equal(hex(digest(raw, rs.meta.digester)), hex(c.digest), `${name} chunk digest`);
    }
  }
});

test('openRafsV6 rejects corrupt superblocks with FormatErrors naming the field', () => {
  const bad = (patch: (b: Uint8Array) => void, re: RegExp): void => {
    const b = boot.slice();
    patch(b);
    assert.throws(() => openRafsV6(b), (e: Error) => e instanceof FormatError && re.test(e.message));
  };
  bad((b) => (b[1024] = 0), /EROFS superblock: magic/);
  bad((b) => (b[1028] = 1), /checksum/);
  bad((b) => (b[1024 + 80] = 0x0d), /feature_incompat/);
  bad((b) => (b[1024 + 12] = 13), /blkszbits/);
  bad((b) => (b[1152] = 0x83), /exactly one compression bit/);
  bad((b) => (b[1152 + 20] = 1), /chunk_size/);
  bad((b) => (b[4096 + 84] = 0x20), /lacks ALIGNED/);
  bad((b) => (b[4096 + 64] = 1), /blob_index/);
  assert.throws(() => openRafsV6(boot.subarray(0, 3000)), FormatError);
  // Directory entries out of order are caught by validate().
  const b = boot.slice();
  b.set(enc('z'), 0x3040 + 51);
  assert.throws(() => openRafsV6(b).validate(), /not strictly sorted/);
  const rs = openRafsV6(boot);
  assert.throws(() => rs.getInode(-1), (e: Error) => e instanceof FsError && e.errno === 2);
  assert.throws(() => rs.fileChunks(rs.rootIno), FsError);
  assert.throws(() => rs.readdir(rs.lookup(rs.rootIno, enc('lib.rs'))!.ino, 0, () => true), FsError);
});

test('openRafsV6 works over a SharedArrayBuffer without copying the metadata', () => {
  const shared = new Uint8Array(new SharedArrayBuffer(boot.length));
  shared.set(boot);
  const a = openRafsV6(shared);
  const b = openRafsV6(shared);
  assert.equal(a.buf, shared);
  const lib = b.lookup(b.rootIno, enc('lib.rs'))!;
  const [c] = b.fileChunks(lib.ino);
  assert.equal(c!.digest.buffer, shared.buffer, 'chunk digests are views into the bootstrap');
  const names: Uint8Array[] = [];
  a.readdir(a.rootIno, 0, (e) => (names.push(e.name), true));
  assert.equal(names[0]!.buffer, shared.buffer, 'dirent names are views too');
});
