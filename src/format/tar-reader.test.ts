// The one tar reader: its pull driver (readTar, the builder) and push driver (TarParser, nydusify's
// layer tap) must see the same entries, whatever the chunking, or the safety guard would check
// something other than what gets built.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TarParser, readTar, type TarHeader } from './tar-reader.js';
import { TAR_END as end, padBlock as pad, ustarHeader as header, longNameTree } from './testing/tar.js';


function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let n = body.length + 1;
  while (`${n}${body}`.length !== n) n++;
  return `${n}${body}`;
}
function pax(flag: 'x' | 'g', records: Array<[string, string]>): Buffer {
  const data = Buffer.from(records.map(([k, v]) => paxRecord(k, v)).join(''));
  return Buffer.concat([header('PaxHeader', { type: flag, size: data.length }), pad(data)]);
}

type Seen = { h: Omit<TarHeader, 'offset'>; sha: string };
const norm = (h: TarHeader): Omit<TarHeader, 'offset'> => {
  const { offset: _, ...rest } = h;
  return rest;
};

async function* chunked(b: Buffer, seed: number): AsyncGenerator<Buffer> {
  let x = seed;
  for (let i = 0; i < b.length; ) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const n = 1 + (x % 1500);
    yield b.subarray(i, i + n);
    i += n;
  }
}

async function pull(tar: Buffer, seed: number): Promise<Seen[]> {
  const out: Seen[] = [];
  for await (const e of readTar(chunked(tar, seed))) {
    const h = createHash('sha256');
    for await (const b of e.body) h.update(b);
    const { body: _, ...hdr } = e;
    out.push({ h: norm(hdr), sha: h.digest('hex') });
  }
  return out;
}

async function push(tar: Buffer, seed: number): Promise<Seen[]> {
  const out: Seen[] = [];
  let hash = createHash('sha256');
  const p = new TarParser({
    entry: () => void (hash = createHash('sha256')),
    data: (c) => void hash.update(c),
    end: (h) => void out.push({ h: norm(h), sha: hash.digest('hex') }),
  });
  for await (const c of chunked(tar, seed)) p.write(c);
  p.end();
  return out;
}

async function bothAgree(tar: Buffer): Promise<Seen[]> {
  const a = await pull(tar, 1);
  for (const seed of [2, 3, 4]) {
    assert.deepEqual(await push(tar, seed), a, `push driver, chunking ${seed}`);
    assert.deepEqual(await pull(tar, seed), a, `pull driver, chunking ${seed}`);
  }
  return a;
}

test('pull and push drivers read GNU tar archives (gnu, posix) identically', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nydus-tar-reader-'));
  try {
    const src = join(dir, 'src');
    const long = longNameTree(src);
    writeFileSync(join(src, Buffer.from([0x66, 0xff, 0xfe]).toString('latin1')), 'odd name');
    for (const format of ['gnu', 'posix']) {
      const tarPath = join(dir, `${format}.tar`);
      execFileSync('tar', [`--format=${format}`, '-cf', tarPath, '-C', src, '.']);
      const seen = await bothAgree(readFileSync(tarPath));
      const byName = new Map(seen.map((s) => [s.h.path.toString().replace(/^\.\//, ''), s]));
      assert.equal(byName.get(long)?.h.size, 4, format);
      assert.equal(byName.get('longlink')?.h.linkpath.toString(), 't'.repeat(200));
      assert.equal(byName.get('x-link')?.h.type, 'hardlink');
      assert.equal(byName.get('x')?.sha, createHash('sha256').update(Buffer.alloc(70000, 7)).digest('hex'));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('PAX: SCHILY and LIBARCHIVE xattrs, global records, numeric overrides; names stay raw bytes', async () => {
  const rawName = Buffer.from([0x61, 0x2f, 0xc3, 0x28]); // not UTF-8
  const nameHdr = header('placeholder', { size: 3 });
  const tar = Buffer.concat([
    pax('g', [['uid', '1234'], ['SCHILY.xattr.user.g', 'global']]),
    pax('x', [['SCHILY.xattr.user.a', 'va'], ['LIBARCHIVE.xattr.user.b%3Dc', Buffer.from('vb').toString('base64')], ['mtime', '1700000000.25'], ['gid', '77']]),
    nameHdr, pad(Buffer.from('abc')),
    // A GNU long name with raw bytes.
    header('././@LongLink', { type: 'L', size: rawName.length + 1 }), pad(Buffer.concat([rawName, Buffer.alloc(1)])),
    header('short', { size: 0 }),
    end,
  ]);
  const [a, b] = await bothAgree(tar);
  assert.deepEqual(a!.h.xattrs.map(([k, v]) => [k.toString(), v.toString()]), [['user.g', 'global'], ['user.a', 'va'], ['user.b=c', 'vb']]);
  assert.equal(a!.h.uid, 1234);
  assert.equal(a!.h.gid, 77);
  assert.deepEqual([a!.h.mtime, a!.h.mtimeNsec], [1700000000, 250000000]);
  assert.deepEqual(b!.h.path, rawName);
  assert.equal(b!.h.uid, 1234, 'a global record applies to every later entry');
  assert.deepEqual(b!.h.xattrs.map(([k]) => k.toString()), ['user.g'], 'a local record applies to one entry');
});

test('zero blocks do not end the archive, and a size on a non-file entry is skipped, by both drivers', async () => {
  const tar = Buffer.concat([
    header('dir/', { type: '5', size: 700 }), pad(Buffer.alloc(700, 9)),
    end,
    header('after-zeros', { size: 2 }), pad(Buffer.from('hi')),
    end,
  ]);
  const seen = await bothAgree(tar);
  assert.deepEqual(seen.map((s) => [s.h.path.toString(), s.h.size]), [['dir/', 0], ['after-zeros', 2]]);
});

test('truncated archives and bad headers are errors in both drivers', async () => {
  const cases: Array<[Buffer, RegExp]> = [
    [Buffer.concat([header('big', { size: 5000 }), Buffer.alloc(1000)]), /before the size its header declares/],
    [Buffer.concat([header('a', { size: 0 }), Buffer.alloc(100, 1)]), /unexpected end of input in tar header/],
    [Buffer.concat([Buffer.alloc(512, 0x41), end]), /bad header checksum/],
    [Buffer.concat([pax('x', [['size', '12x']]), header('f'), end]), /invalid PAX size/],
    [Buffer.concat([header('dev', { type: 'Z' }), end]), /unsupported entry type 'Z'/],
  ];
  for (const [tar, re] of cases) {
    await assert.rejects(pull(tar, 1), re);
    await assert.rejects(push(tar, 1), re);
  }
  const big = Buffer.concat([pax('x', [['path', 'x'.repeat(100)]]), header('f'), end]);
  await assert.rejects(readTar(chunked(big, 1), 64).next(), /PAX record at offset 0 is too large/);
  assert.throws(() => new TarParser({ entry: () => {} }, 64).write(big), /PAX record at offset 0 is too large/);
});
