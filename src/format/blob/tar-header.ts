// 512-byte tar headers that close each section of a nydus blob ("reversed tar": the header
// follows the data it describes). Spec rafs-format.md §7.5; upstream writes them with Rust
// `tar::Header::new_gnu()` + set_path/set_entry_type(Regular)/set_size/set_cksum.
import { Reader } from '../../util/bytes.js';
import { FormatError } from '../../util/errors.js';

export const TAR_HEADER_SIZE = 512;
/** GNU magic "ustar " + version " \0" at +257 (§7.5). */
const GNU_MAGIC = 'ustar  \0';
const NAME_MAX = 100;

export interface TarHeader {
  name: string;
  /** Length of the section just before the header. */
  size: number;
}

function putAscii(out: Uint8Array, off: number, s: string): void {
  for (let i = 0; i < s.length; i++) out[off + i] = s.charCodeAt(i);
}

/** Byte sum of the header with the checksum field (+148, 8 bytes) read as spaces. */
function tarChecksum(h: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < TAR_HEADER_SIZE; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  return sum;
}

/** Encodes the exact bytes nydus-image writes for section `name` of `size` bytes (§7.5). */
export function encodeTarHeader(h: TarHeader, out: Uint8Array = new Uint8Array(TAR_HEADER_SIZE), offset = 0): Uint8Array {
  if (h.name.length === 0 || h.name.length >= NAME_MAX || !/^[\x21-\x7e]+$/.test(h.name)) {
    throw new FormatError('ERR_FORMAT_INVALID', 'tar header', `bad section name "${h.name}"`);
  }
  if (!Number.isSafeInteger(h.size) || h.size < 0 || h.size > 0o77777777777) {
    throw new FormatError('ERR_FORMAT_INVALID', 'tar header', `size ${h.size} does not fit 11 octal digits`);
  }
  const b = out.subarray(offset, offset + TAR_HEADER_SIZE);
  b.fill(0);
  putAscii(b, 0, h.name);
  // mode/uid/gid (+100, 24 bytes) stay all-zero bytes: new_gnu() never fills them (§7.5).
  putAscii(b, 124, h.size.toString(8).padStart(11, '0')); // + NUL at +135
  putAscii(b, 136, '00000000000'); // mtime, + NUL at +147
  b[156] = 0x30; // '0': regular file
  putAscii(b, 257, GNU_MAGIC);
  // Checksum: 7 octal digits + NUL (not the POSIX "6 digits NUL space"), §7.5.
  putAscii(b, 148, tarChecksum(b).toString(8).padStart(7, '0'));
  b[155] = 0;
  return out;
}

function parseOctal(field: Uint8Array, what: string, at: number): number {
  let s = '';
  for (const c of field) {
    if (c === 0 || c === 0x20) {
      if (s.length > 0) break;
      continue;
    }
    if (c < 0x30 || c > 0x37) throw new FormatError('ERR_FORMAT_INVALID', 'tar header', `${what} is not octal`, at);
    s += String.fromCharCode(c);
  }
  return s.length === 0 ? 0 : parseInt(s, 8);
}

/** Decodes and checks (magic, checksum, optionally the name) one blob tar header. */
export function decodeTarHeader(buf: Uint8Array, offset = 0, expectedName?: string): TarHeader {
  const r = new Reader(buf, offset, TAR_HEADER_SIZE, 'tar header');
  const raw = r.bytes(0, TAR_HEADER_SIZE);
  const magic = String.fromCharCode(...raw.subarray(257, 265));
  if (magic !== GNU_MAGIC && !magic.startsWith('ustar\0')) {
    throw new FormatError('ERR_FORMAT_BAD_MAGIC', 'tar header', `magic is ${JSON.stringify(magic)}, expected GNU "ustar  "`, offset + 257);
  }
  const stored = parseOctal(raw.subarray(148, 156), 'checksum', offset + 148);
  const actual = tarChecksum(raw);
  if (stored !== actual) {
    throw new FormatError('ERR_FORMAT_INVALID', 'tar header', `checksum ${stored} does not match computed ${actual}`, offset + 148);
  }
  const nul = raw.indexOf(0);
  const name = String.fromCharCode(...raw.subarray(0, nul < 0 || nul > NAME_MAX ? NAME_MAX : nul));
  if (expectedName !== undefined && name !== expectedName) {
    throw new FormatError('ERR_FORMAT_INVALID', 'tar header', `section is "${name}", expected "${expectedName}"`, offset);
  }
  return { name, size: parseOctal(raw.subarray(124, 136), 'size', offset + 124) };
}
