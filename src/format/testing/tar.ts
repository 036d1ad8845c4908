// Hand-made tar pieces for the tar reader's tests (not shipped: dist/src/**/testing/ is excluded).
import { linkSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A tree that makes GNU tar write long names (L/K or PAX), a hardlink and a 70000-byte file 'x'; returns the long path. */
export function longNameTree(src: string): string {
  const long = 'd'.repeat(120) + '/' + 'n'.repeat(150);
  mkdirSync(join(src, 'd'.repeat(120)), { recursive: true });
  writeFileSync(join(src, long), 'long');
  writeFileSync(join(src, 'x'), Buffer.alloc(70000, 7));
  linkSync(join(src, 'x'), join(src, 'x-link'));
  symlinkSync('t'.repeat(200), join(src, 'longlink'));
  return long;
}

/** A ustar header; checksum computed. */
export function ustarHeader(name: string, o: { type?: string; size?: number; mode?: number; link?: string; major?: number; minor?: number } = {}): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write((o.mode ?? 0o644).toString(8).padStart(7, '0') + '\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write((o.size ?? 0).toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000001\0', 136);
  h.write(o.type ?? '0', 156);
  if (o.link) h.write(o.link, 157, 100, 'utf8');
  h.write('ustar\0' + '00', 257, 'latin1');
  h.write((o.major ?? 0).toString(8).padStart(7, '0') + '\0', 329);
  h.write((o.minor ?? 0).toString(8).padStart(7, '0') + '\0', 337);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return h;
}

/** Zero padding to the next 512-byte block. */
export const padBlock = (b: Buffer): Buffer => Buffer.concat([b, Buffer.alloc((512 - (b.length % 512)) % 512)]);

/** The two zero blocks that end an archive. */
export const TAR_END = Buffer.alloc(1024);
