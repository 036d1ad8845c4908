// Wire-level tests of the dispatcher: hand-built requests in, captured replies out (no mount).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Op } from './abi.js';
import * as A from './abi.js';
import { DEFAULT_PROTOCOL_OPTIONS, Dispatcher } from './dispatch.js';
import * as E from './errno.js';
import type { LowLevelFileSystem } from './filesystem.js';
import { MemFs } from './testing/memfs.js';

function request(opcode: number, nodeid: number, body: Buffer = Buffer.alloc(0), unique = 7n): Buffer {
  const b = Buffer.alloc(A.IN_HEADER_SIZE + body.length);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt32LE(opcode, 4);
  b.writeBigUInt64LE(unique, 8);
  A.writeU64(b, nodeid, 16);
  body.copy(b, A.IN_HEADER_SIZE);
  return b;
}

function harness(fs: LowLevelFileSystem) {
  const replies: Buffer[] = [];
  const dev = { write: (b: Buffer) => void replies.push(Buffer.from(b)), writev: (p: Buffer[]) => void replies.push(Buffer.concat(p)) };
  const d = new Dispatcher(fs, DEFAULT_PROTOCOL_OPTIONS, dev, new BigInt64Array(128));
  const send = (b: Buffer): Buffer | undefined => {
    const before = replies.length;
    d.handle(b, b.length);
    return replies.length > before ? replies[replies.length - 1] : undefined;
  };
  return { d, replies, send };
}

const errOf = (r: Buffer | undefined): number => -r!.readInt32LE(4) | 0;
const mem = () =>
  new MemFs({ tree: { type: 'dir', entries: { f: { type: 'file', content: 'abc', xattrs: { 'user.k': 'value' } }, s: { type: 'symlink', target: 'f' } } } });

test('INIT: negotiates 7.31, masks flags with the kernel offer, 1 MiB I/O', () => {
  const { send } = harness(mem());
  const body = Buffer.alloc(64);
  body.writeUInt32LE(7, 0);
  body.writeUInt32LE(45, 4);
  body.writeUInt32LE(131072, 8);
  body.writeUInt32LE(0x73fffffb, 12);
  const r = send(request(Op.FUSE_INIT, 0, body))!;
  assert.equal(r.readUInt32LE(0), 16 + 64);
  assert.equal(errOf(r), 0);
  assert.equal(r.readUInt32LE(16), 7);
  assert.equal(r.readUInt32LE(20), 31);
  assert.equal(r.readUInt32LE(24), 131072);
  const flags = r.readUInt32LE(28);
  for (const f of [A.FUSE_ASYNC_READ, A.FUSE_PARALLEL_DIROPS, A.FUSE_MAX_PAGES, A.FUSE_DO_READDIRPLUS, A.FUSE_READDIRPLUS_AUTO]) assert.ok(flags & f);
  assert.equal(flags & ~0x73fffffb, 0);
  assert.equal(r.readUInt32LE(36), 1 << 20); // max_write
  assert.equal(r.readUInt16LE(44), 256); // max_pages
  body.writeUInt32LE(20, 4); // too old
  assert.equal(errOf(send(request(Op.FUSE_INIT, 0, body))), E.EPROTO);
});

test('write-type opcodes answer EROFS, unknown ones ENOSYS, FORGET/INTERRUPT nothing', () => {
  const { send } = harness(mem());
  for (const op of [Op.FUSE_SETATTR, Op.FUSE_WRITE, Op.FUSE_CREATE, Op.FUSE_MKDIR, Op.FUSE_MKNOD, Op.FUSE_UNLINK, Op.FUSE_RMDIR,
    Op.FUSE_RENAME, Op.FUSE_RENAME2, Op.FUSE_LINK, Op.FUSE_SYMLINK, Op.FUSE_SETXATTR, Op.FUSE_REMOVEXATTR, Op.FUSE_FALLOCATE, Op.FUSE_COPY_FILE_RANGE]) {
    assert.equal(errOf(send(request(op, 1, Buffer.alloc(64)))), E.EROFS, `op ${op}`);
  }
  assert.equal(errOf(send(request(999, 1))), E.ENOSYS);
  assert.equal(errOf(send(request(Op.FUSE_BMAP, 1, Buffer.alloc(16)))), E.ENOSYS);
  assert.equal(send(request(Op.FUSE_FORGET, 2, Buffer.alloc(8))), undefined);
  assert.equal(send(request(Op.FUSE_BATCH_FORGET, 0, Buffer.alloc(24))), undefined);
  assert.equal(send(request(Op.FUSE_INTERRUPT, 0, Buffer.alloc(8))), undefined);
  const open = Buffer.alloc(8);
  open.writeUInt32LE(1, 0); // O_WRONLY
  assert.equal(errOf(send(request(Op.FUSE_OPEN, 2, open))), E.EROFS);
});

test('LOOKUP encodes fuse_entry_out; missing names are ENOENT; missing methods ENOSYS', () => {
  const { send } = harness(mem());
  const r = send(request(Op.FUSE_LOOKUP, 1, Buffer.from('f\0')))!;
  assert.equal(r.length, 16 + 128);
  assert.equal(A.readU64(r, 16), 2); // nodeid
  assert.equal(A.readU64(r, 16 + 40 + 8), 3); // attr.size
  assert.equal(r.readUInt32LE(16 + 40 + 60) & 0o170000, 0o100000);
  assert.equal(errOf(send(request(Op.FUSE_LOOKUP, 1, Buffer.from('nope\0')))), E.ENOENT);
  const bare = harness({});
  assert.equal(errOf(bare.send(request(Op.FUSE_LOOKUP, 1, Buffer.from('f\0')))), E.ENOSYS);
  assert.equal(errOf(bare.send(request(Op.FUSE_GETATTR, 1, Buffer.alloc(16)))), E.ENOSYS);
});

test('GETXATTR: size 0 probes, too small is ERANGE, exact returns the value; LISTXATTR joins with NUL', () => {
  const { send } = harness(mem());
  const body = (size: number) => {
    const b = Buffer.alloc(8 + 7);
    b.writeUInt32LE(size, 0);
    b.write('user.k\0', 8);
    return b;
  };
  const probe = send(request(Op.FUSE_GETXATTR, 2, body(0)))!;
  assert.equal(probe.length, 24);
  assert.equal(probe.readUInt32LE(16), 5);
  assert.equal(errOf(send(request(Op.FUSE_GETXATTR, 2, body(3)))), E.ERANGE);
  assert.equal(send(request(Op.FUSE_GETXATTR, 2, body(64)))!.subarray(16).toString(), 'value');
  const list = Buffer.alloc(8);
  list.writeUInt32LE(100, 0);
  assert.equal(send(request(Op.FUSE_LISTXATTR, 2, list))!.subarray(16).toString(), 'user.k\0');
});

test('READDIR packs whole 8-byte-aligned dirents up to size and resumes at the cookie', () => {
  const { send } = harness(mem());
  const rd = (off: number, size: number) => {
    const b = Buffer.alloc(40);
    A.writeU64(b, off, 8);
    b.writeUInt32LE(size, 16);
    return send(request(Op.FUSE_READDIR, 1, b))!;
  };
  const all = rd(0, 4096);
  const names: string[] = [];
  for (let p = 16; p < all.length; ) {
    const len = all.readUInt32LE(p + 16);
    names.push(all.subarray(p + 24, p + 24 + len).toString());
    p += (24 + len + 7) & ~7;
  }
  assert.deepEqual(names, ['.', '..', 'f', 's']);
  const two = rd(0, 64); // two 32-byte records fit
  assert.equal(two.length, 16 + 64);
  assert.equal(A.readU64(two, 16 + 32 + 8), 2); // next cookie
});

test('async (Promise) answers are replied when settled and counted as pending until then', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const { d, send, replies } = harness({
    read: async () => {
      await gate;
      return [Buffer.from('ab'), Buffer.from('cd')];
    },
    getattr: async () => {
      throw Object.assign(new Error('gone'), { code: 'ENOENT' });
    },
  });
  const rb = Buffer.alloc(40);
  rb.writeUInt32LE(4096, 16);
  assert.equal(send(request(Op.FUSE_READ, 2, rb, 11n)), undefined);
  assert.equal(d.pending, 1);
  release();
  await gate;
  await new Promise((r) => setImmediate(r));
  assert.equal(d.pending, 0);
  assert.equal(replies.at(-1)!.subarray(16).toString(), 'abcd');
  assert.equal(replies.at(-1)!.readBigUInt64LE(8), 11n);
  send(request(Op.FUSE_GETATTR, 2, Buffer.alloc(16)));
  await new Promise((r) => setImmediate(r));
  assert.equal(errOf(replies.at(-1)), E.ENOENT); // errnoOf maps code → errno
});
