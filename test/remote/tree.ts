// Source trees for the remote tests, generated in the test: incompressible data from a seeded
// generator (fast: sha256 counter blocks expanded with AES-CTR), text, nesting, links.
import { createCipheriv, createHash } from 'node:crypto';
import { linkSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Deterministic incompressible bytes: AES-256-CTR keystream keyed by the seed (≈1 GB/s). */
export function seeded(seed: string, size: number): Buffer {
  const key = createHash('sha256').update(seed).digest();
  const c = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return c.update(Buffer.alloc(size));
}

function text(seed: string, size: number): Buffer {
  const lines: string[] = [];
  let n = 0;
  for (let i = 0; n < size; i++) {
    const l = `${seed} ${i}: lorem ipsum dolor sit amet ${i % 13}\n`;
    lines.push(l);
    n += l.length;
  }
  return Buffer.from(lines.join('')).subarray(0, size);
}

/** A ~12 MiB tree with every ordinary shape: big/odd-sized/empty files, text, deep dirs, links. */
export function makeSmallTree(root: string, seed = 'remote'): void {
  const w = (rel: string, data: Buffer): void => {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), data);
  };
  w('bin/big', seeded(`${seed}-big`, 5 * 1024 * 1024 + 333));
  w('bin/mid', seeded(`${seed}-mid`, 1024 * 1024));
  w('lib/x/y/z/deep.so', seeded(`${seed}-deep`, 2 * 1024 * 1024 - 1));
  w('etc/config.txt', text(seed, 300_000));
  w('etc/os-release', Buffer.from('NAME="nydus-ts test"\nID=test\n'));
  w('empty', Buffer.alloc(0));
  for (let i = 0; i < 60; i++) w(`many/f${String(i).padStart(3, '0')}`, seeded(`${seed}-m${i}`, 1 + i * 1531));
  w('tail/last', seeded(`${seed}-last`, 3 * 1024 * 1024 + 17));
  mkdirSync(join(root, 'empty-dir'));
  symlinkSync('../bin/big', join(root, 'etc/link-to-big'));
  linkSync(join(root, 'bin/mid'), join(root, 'bin/mid-hardlink'));
}

/** `count` files of `size` bytes each under dir (incompressible), named f0000… */
export function makeBulk(dir: string, count: number, size: number, seed: string): void {
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < count; i++) writeFileSync(join(dir, `f${String(i).padStart(4, '0')}`), seeded(`${seed}-${i}`, size));
}
