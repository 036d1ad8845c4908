// Issue 11, defect 5 (and the `check` items of its "smaller" line): a crafted bootstrap whose entry
// names are `..`, absolute, contain `/` or NUL, or lead through a symlink must be refused by both
// `check` and `unpack`, and unpack must leave no tar (not even a partial one) behind. A v5 symlink
// of size 0 is refused by check too.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fuseMountsUnder, fuseUsable, killAndClean, localfsConfig, startNydusd } from '../daemon/nydusd-proc.js';
import { pattern } from '../helpers/data.js';
import { testDir } from '../helpers/tmp.js';
import { cli } from './tree-helpers.js';

/** Builds `src` as v5 or v6 into `d`; returns the bootstrap bytes and paths. */
function build(d: string, src: string, v: 5 | 6): { boot: string; blobs: string; bytes: Buffer } {
  const boot = join(d, `v${v}.boot`);
  const blobs = join(d, `blobs${v}`);
  mkdirSync(blobs);
  const r = cli(['create', '--fs-version', String(v), '-B', boot, '-D', blobs, src]);
  assert.equal(r.code, 0, r.stderr);
  return { boot, blobs, bytes: readFileSync(boot) };
}

/** Replaces the one occurrence of `from` (same length) in the bootstrap. */
function patchName(bytes: Buffer, from: string, to: Buffer): Buffer {
  const a = Buffer.from(from);
  assert.equal(a.length, to.length);
  const at = bytes.indexOf(a);
  assert.ok(at >= 0 && bytes.indexOf(a, at + 1) < 0, `"${from}" occurs exactly once in the bootstrap`);
  const out = Buffer.from(bytes);
  to.copy(out, at);
  return out;
}

function assertRefused(d: string, boot: string, blobs: string, what: string, why: RegExp): void {
  const c = cli(['check', boot]);
  assert.notEqual(c.code, 0, `check accepts ${what}`);
  assert.match(c.stderr, why, `check on ${what}`);
  assert.equal(c.stderr.trim().split('\n').length, 1, `one line, no stack: ${c.stderr}`);
  const out = join(d, 'out', 'layer.tar');
  mkdirSync(join(d, 'out'), { recursive: true });
  const u = cli(['unpack', boot, '-D', blobs, '--output', out]);
  assert.notEqual(u.code, 0, `unpack accepts ${what}`);
  assert.match(u.stderr, why, `unpack on ${what}`);
  assert.deepEqual(readdirSync(join(d, 'out')), [], `unpack of ${what} leaves nothing behind`);
}

const UNSAFE: Array<[string, Buffer, RegExp]> = [
  ['a ".." component', Buffer.from('../x'), /name contains "\/"|unsafe member|\.\./],
  ['an absolute name', Buffer.from('/etc'), /name contains "\/"|unsafe member/],
  ['a "/" inside', Buffer.from('q/zz'), /name contains "\/"|unsafe member/],
  ['a NUL byte', Buffer.from('ab\0c'), /name contains NUL/],
];

for (const v of [5, 6] as const) {
  describe(`v${v}: unsafe entry names from a crafted bootstrap`, () => {
    for (const [what, to, why] of UNSAFE) {
      it(`check and unpack refuse ${what}`, { timeout: 60_000 }, () => {
        const d = testDir(`unsafe-v${v}-`);
        const src = join(d, 'src');
        mkdirSync(src);
        writeFileSync(join(src, 'nmq7'), 'hello\n');
        // Not the last name of the v6 dirent block: that one legitimately ends at the first NUL.
        writeFileSync(join(src, 'zzzz'), 'last\n');
        const b = build(d, src, v);
        // The genuine image unpacks (the test can pass only because of the name).
        const ok = cli(['unpack', b.boot, '-D', b.blobs, '--output', join(d, 'good.tar')]);
        assert.equal(ok.code, 0, ok.stderr);
        writeFileSync(b.boot, patchName(b.bytes, 'nmq7', to));
        assertRefused(d, b.boot, b.blobs, what, why);
      });
    }

    it('check and unpack refuse a name that leads through a symlink member', { timeout: 60_000 }, () => {
      const d = testDir(`unsafe-link-v${v}-`);
      const src = join(d, 'src');
      mkdirSync(join(src, 'lnk1'), { recursive: true });
      symlinkSync('/tmp', join(src, 'lnk0'));
      writeFileSync(join(src, 'lnk1', 'payload'), 'x\n');
      const b = build(d, src, v);
      // The directory takes the symlink's name: "lnk0/payload" would be written through the link.
      writeFileSync(b.boot, patchName(b.bytes, 'lnk1', Buffer.from('lnk0')));
      assertRefused(d, b.boot, b.blobs, 'a member through a symlink', /sorted|unsafe member|parent/);
    });
  });
}

describe('check: v5 symlink of size 0', () => {
  it('is refused (a symlink always has a target)', { timeout: 60_000 }, () => {
    const d = testDir('v5-symlink0-');
    const src = join(d, 'src');
    mkdirSync(src);
    symlinkSync('tgt9', join(src, 'sl'));
    const b = build(d, src, 5);
    assert.equal(cli(['check', b.boot]).code, 0);
    // i_symlink_size is the u16 at +102 of the inode (§4.10); the name follows the 128-byte inode.
    const nameAt = b.bytes.indexOf(Buffer.from('sl\0'));
    const inodeAt = nameAt - 128;
    assert.equal(b.bytes.readUInt16LE(inodeAt + 102), 4, 'found the symlink inode');
    const bad = Buffer.from(b.bytes);
    bad.writeUInt16LE(0, inodeAt + 102);
    writeFileSync(b.boot, bad);
    const c = cli(['check', b.boot]);
    assert.notEqual(c.code, 0, 'check accepts a size-0 symlink');
    assert.match(c.stderr, /symlink_size 0/);
  });
});

describe('unpack failing mid-way', () => {
  it('leaves no partial tar and keeps an existing output untouched', { timeout: 60_000 }, () => {
    const d = testDir('unpack-partial-');
    const src = join(d, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'aaaa'), 'first\n');
    writeFileSync(join(src, 'bbbb'), pattern(3 << 20, 11));
    const b = build(d, src, 6);
    const out = join(d, 'out');
    mkdirSync(out);
    writeFileSync(join(out, 'layer.tar'), 'previous');
    // Truncate the blob: entries before the file are written, then reading its chunks fails.
    for (const f of readdirSync(b.blobs)) writeFileSync(join(b.blobs, f), readFileSync(join(b.blobs, f)).subarray(0, 4096));
    const u = cli(['unpack', b.boot, '-D', b.blobs, '--output', join(out, 'layer.tar')]);
    assert.notEqual(u.code, 0, 'unpack of a truncated blob succeeds');
    assert.deepEqual(readdirSync(out), ['layer.tar']);
    assert.equal(readFileSync(join(out, 'layer.tar'), 'utf8'), 'previous');
  });
});

describe('nydusd: unsafe names from a crafted bootstrap', { skip: fuseUsable() }, () => {
  it('listing a directory holding one is EIO; its safe neighbours still read', { timeout: 60_000 }, async () => {
    const d = testDir('unsafe-nydusd-');
    const src = join(d, 'src');
    mkdirSync(join(src, 'bad'), { recursive: true });
    writeFileSync(join(src, 'bad', 'nmq7'), 'hello\n');
    writeFileSync(join(src, 'bad', 'zzzz'), 'last\n');
    writeFileSync(join(src, 'good'), 'fine\n');
    const b = build(d, src, 6);
    writeFileSync(b.boot, patchName(b.bytes, 'nmq7', Buffer.from('ab\0c')));
    const mnt = join(d, 'mnt');
    mkdirSync(mnt);
    const n = await startNydusd({ dir: d, mnt, bootstrap: b.boot, config: localfsConfig(b.blobs, join(d, 'cache')) });
    try {
      assert.equal(readFileSync(join(mnt, 'good'), 'utf8'), 'fine\n');
      assert.throws(() => readdirSync(join(mnt, 'bad')), (e: NodeJS.ErrnoException) => e.code === 'EIO');
      assert.equal(readFileSync(join(mnt, 'bad', 'zzzz'), 'utf8'), 'last\n', 'lookups of safe names still work');
    } finally {
      await killAndClean(n);
    }
    assert.deepEqual(fuseMountsUnder(d), []);
  });
});
