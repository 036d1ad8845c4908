// nydus-image create -t tar-rafs: a layer tar (file or stdin) gives the same filesystem as
// dir-rafs of the extracted directory; unsafe or broken tars are rejected with one line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { comparable, describeImage, linkGroups, makeSourceTree, runCli } from './create-helpers.js';

function withTmp(fn: (dir: string) => void): () => void {
  return () => {
    const dir = mkdtempSync(join(tmpdir(), 'nydus-create-tar-'));
    try {
      fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

function build(dir: string, tag: string, args: string[], input?: Buffer): ReturnType<typeof describeImage> {
  const r = runCli(['create', '-B', join(dir, `${tag}.boot`), '-b', join(dir, `${tag}.blob`), '--log-level', 'warn', ...args], input);
  assert.equal(r.code, 0, `${tag}: ${r.stderr}`);
  return describeImage(readFileSync(join(dir, `${tag}.boot`)), () => join(dir, `${tag}.blob`));
}

test(
  'tar-rafs of `tar --xattrs -cf` (file, stdin, gzip) equals dir-rafs of the extracted directory',
  withTmp((dir) => {
    const src = join(dir, 'src');
    const ext = join(dir, 'ext');
    mkdirSync(src);
    mkdirSync(ext);
    makeSourceTree(src);
    const tarPath = join(dir, 'layer.tar');
    execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--format=posix', '-cf', tarPath, '-C', src, '.'], { stdio: ['ignore', 'ignore', 'ignore'] });
    execFileSync('tar', ['--xattrs', '--xattrs-include=*', '-xpf', tarPath, '-C', ext]);
    const fromDir = build(dir, 'dir', [ext]);
    const fromTar = build(dir, 'tar', ['-t', 'tar-rafs', tarPath]);
    assert.deepEqual(comparable(fromTar.entries), comparable(fromDir.entries));
    assert.deepEqual(linkGroups(fromTar.entries), [['/dir/hl-b', '/hl-a']]);
    const tarBoot = readFileSync(join(dir, 'tar.boot'));
    build(dir, 'stdin', ['--type', 'tar-rafs', '-'], readFileSync(tarPath));
    assert.deepEqual(readFileSync(join(dir, 'stdin.boot')), tarBoot, 'stdin gives the same bootstrap');
    writeFileSync(join(dir, 'layer.tar.gz'), gzipSync(readFileSync(tarPath)));
    build(dir, 'gz', ['--type', 'tar-rafs', join(dir, 'layer.tar.gz')]);
    assert.deepEqual(readFileSync(join(dir, 'gz.boot')), tarBoot, 'a gzip layer gives the same bootstrap');
  }),
);

/** ustar header with a valid checksum. */
function header(name: string, o: { type?: string; size?: number; link?: string } = {}): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100);
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write((o.size ?? 0).toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000000\0', 136);
  h.write(o.type ?? '0', 156);
  if (o.link) h.write(o.link, 157, 100);
  h.write('ustar\x0000', 257, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return h;
}

test(
  'malicious or broken tars are rejected with a one-line error and exit 1',
  withTmp((dir) => {
    const end = Buffer.alloc(1024);
    const cases: Array<[string, Buffer, RegExp]> = [
      ['dotdot', Buffer.concat([header('a/../../evil'), end]), /escapes the root/],
      ['absolute', Buffer.concat([header('/etc/cron.d/x'), end]), /absolute path/],
      ['hardlink-out', Buffer.concat([header('x', { type: '1', link: '../../etc/shadow' }), end]), /escapes the root/],
      ['through-symlink', Buffer.concat([header('l', { type: '2', link: '/etc' }), header('l/passwd'), end]), /below a non-directory/],
      ['truncated', Buffer.concat([header('big', { size: 100000 }), Buffer.alloc(4096)]), /input ends .* before the size its header declares/],
      ['garbage', Buffer.from('definitely not a tar archive\n'.repeat(40)), /bad header checksum/],
    ];
    for (const [name, tar, re] of cases) {
      writeFileSync(join(dir, `${name}.tar`), tar);
      const r = runCli(['create', '-B', join(dir, 'b'), '-b', join(dir, 'blob'), '-t', 'tar-rafs', join(dir, `${name}.tar`)]);
      assert.equal(r.code, 1, `${name}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, `${name}: one line: ${r.stderr}`);
      assert.match(r.stderr, re, name);
    }
  }),
);
