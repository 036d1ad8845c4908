// Inline xattr body (spec §5.8): 12-byte ibody header, then entries
// {u8 e_name_len, u8 e_name_index, u16 e_value_size, name suffix, value, pad to 4}.
import { Reader, align } from '../../util/bytes.js';
import { FormatError } from '../../util/errors.js';
import {
  EROFS_XATTR_ENTRY_SIZE,
  EROFS_XATTR_IBODY_HEADER_SIZE,
  EROFS_XATTR_INDEX_POSIX_ACL_ACCESS,
  EROFS_XATTR_INDEX_POSIX_ACL_DEFAULT,
  EROFS_XATTR_INDEX_SECURITY,
  EROFS_XATTR_INDEX_TRUSTED,
  EROFS_XATTR_INDEX_USER,
} from './constants.js';

const S = 'EROFS xattr ibody';
const enc = new TextEncoder();

/** Name prefixes by e_name_index. ACL names are the whole name (stored suffix is empty). */
const PREFIXES: Array<[number, Uint8Array]> = [
  [EROFS_XATTR_INDEX_USER, enc.encode('user.')],
  [EROFS_XATTR_INDEX_POSIX_ACL_ACCESS, enc.encode('system.posix_acl_access')],
  [EROFS_XATTR_INDEX_POSIX_ACL_DEFAULT, enc.encode('system.posix_acl_default')],
  [EROFS_XATTR_INDEX_TRUSTED, enc.encode('trusted.')],
  [EROFS_XATTR_INDEX_SECURITY, enc.encode('security.')],
];

function prefixOf(index: number): Uint8Array | undefined {
  for (const [i, p] of PREFIXES) if (i === index) return p;
  return undefined;
}

/** Splits a full name into (e_name_index, suffix); index 0 keeps the whole name. */
export function splitXattrName(name: Uint8Array): [number, Uint8Array] {
  for (const [i, p] of PREFIXES) {
    const acl = i === EROFS_XATTR_INDEX_POSIX_ACL_ACCESS || i === EROFS_XATTR_INDEX_POSIX_ACL_DEFAULT;
    if (acl ? Buffer.compare(name, p) === 0 : name.length > p.length && Buffer.compare(name.subarray(0, p.length), p) === 0) {
      return [i, name.subarray(p.length)];
    }
  }
  return [0, name];
}

export interface XattrIbody {
  sharedCount: number;
  entries: Array<[Uint8Array, Uint8Array]>;
}

/** Bytes the ibody for `pairs` takes (0 without xattrs). */
export function encodedXattrSize(pairs: ReadonlyArray<readonly [Uint8Array, Uint8Array]>): number {
  if (pairs.length === 0) return 0;
  let n = EROFS_XATTR_IBODY_HEADER_SIZE;
  for (const [name, value] of pairs) n += align(EROFS_XATTR_ENTRY_SIZE + splitXattrName(name)[1].length + value.length, 4);
  return n;
}

/** i_xattr_icount for an ibody of `size` bytes. */
export function xattrIcountOf(size: number): number {
  return size === 0 ? 0 : (size - EROFS_XATTR_IBODY_HEADER_SIZE) / EROFS_XATTR_ENTRY_SIZE + 1;
}

/** Encodes the ibody in the given order; names without a known prefix keep index 0. */
export function encodeXattrIbody(pairs: ReadonlyArray<readonly [Uint8Array, Uint8Array]>): Uint8Array {
  const out = new Uint8Array(encodedXattrSize(pairs));
  if (out.length === 0) return out;
  const dv = new DataView(out.buffer);
  let p = EROFS_XATTR_IBODY_HEADER_SIZE;
  for (const [name, value] of pairs) {
    const [index, suffix] = splitXattrName(name);
    if (suffix.length > 255) throw new FormatError('ERR_FORMAT_INVALID', S, `xattr name "${Buffer.from(name).toString()}" is too long (max 255 bytes after its prefix)`);
    if (value.length > 0xffff) throw new FormatError('ERR_FORMAT_INVALID', S, `xattr "${Buffer.from(name).toString()}" value is longer than 65535 bytes`);
    out[p] = suffix.length;
    out[p + 1] = index;
    dv.setUint16(p + 2, value.length, true);
    out.set(suffix, p + 4);
    out.set(value, p + 4 + suffix.length);
    p += align(EROFS_XATTR_ENTRY_SIZE + suffix.length + value.length, 4);
  }
  return out;
}

/**
 * Decodes an ibody of `size` bytes at `offset`. Entries are views into `buf` for the value, the
 * full name is a new array (prefix + suffix). Shared xattrs are not used by RAFS and rejected.
 */
export function decodeXattrIbody(buf: Uint8Array, offset: number, size: number): XattrIbody {
  const r = new Reader(buf, offset, size, S);
  if (size < EROFS_XATTR_IBODY_HEADER_SIZE) throw new FormatError('ERR_FORMAT_INVALID', S, `size ${size} is smaller than its header`, offset);
  const sharedCount = r.u8(4);
  if (sharedCount !== 0) throw new FormatError('ERR_FORMAT_UNSUPPORTED', S, `h_shared_count ${sharedCount}: shared xattrs are not supported`, offset);
  const entries: Array<[Uint8Array, Uint8Array]> = [];
  let p = EROFS_XATTR_IBODY_HEADER_SIZE;
  while (p + EROFS_XATTR_ENTRY_SIZE <= size) {
    const nameLen = r.u8(p);
    const index = r.u8(p + 1);
    const valueSize = r.u16(p + 2);
    const prefix = index === 0 ? new Uint8Array(0) : prefixOf(index);
    if (prefix === undefined) throw new FormatError('ERR_FORMAT_INVALID', S, `e_name_index ${index} is unknown`, offset + p);
    const suffix = r.bytes(p + 4, nameLen);
    const value = r.bytes(p + 4 + nameLen, valueSize);
    const name = new Uint8Array(prefix.length + nameLen);
    name.set(prefix);
    name.set(suffix, prefix.length);
    if (name.length === 0) throw new FormatError('ERR_FORMAT_INVALID', S, 'xattr entry has an empty name', offset + p);
    entries.push([name, value]);
    p += align(EROFS_XATTR_ENTRY_SIZE + nameLen + valueSize, 4);
  }
  return { sharedCount, entries };
}
