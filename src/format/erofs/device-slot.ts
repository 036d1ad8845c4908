// EROFS device table slot: 128 bytes per extra device (spec §5.4). Slot i = blob i = device id i+1.
import { Reader, Writer } from '../../util/bytes.js';
import { FormatError } from '../../util/errors.js';
import { EROFS_DEVT_SLOT_SIZE } from './constants.js';

const S = 'EROFS device slot';
const TAG_SIZE = 64;

export interface ErofsDeviceSlot {
  /** Blob id (ASCII, NUL padding trimmed). */
  tag: string;
  blocks: number;
  mappedBlkaddr: number;
}

export function decodeErofsDeviceSlot(buf: Uint8Array, offset: number): ErofsDeviceSlot {
  const r = new Reader(buf, offset, EROFS_DEVT_SLOT_SIZE, S);
  return { tag: decodeTag(r.bytes(0, TAG_SIZE), S, offset), blocks: r.u32(64), mappedBlkaddr: r.u32(68) };
}

export function encodeErofsDeviceSlot(d: ErofsDeviceSlot, out = new Uint8Array(EROFS_DEVT_SLOT_SIZE), offset = 0): Uint8Array {
  out.fill(0, offset, offset + EROFS_DEVT_SLOT_SIZE);
  const w = new Writer(out, offset);
  w.bytes(0, encodeTag(d.tag, S));
  w.u32(64, d.blocks);
  w.u32(68, d.mappedBlkaddr);
  return out;
}

/** 64-byte NUL-padded UTF-8 id (device tag, RafsV6Blob blob_id). */
export function decodeTag(b: Uint8Array, structure: string, offset: number): string {
  let end = b.indexOf(0);
  if (end < 0) end = b.length;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(b.subarray(0, end));
  } catch {
    throw new FormatError('ERR_FORMAT_INVALID', structure, 'id is not valid UTF-8', offset);
  }
}

export function encodeTag(s: string, structure: string): Uint8Array {
  const b = new TextEncoder().encode(s);
  if (b.length > TAG_SIZE) throw new FormatError('ERR_FORMAT_INVALID', structure, `id "${s}" is longer than ${TAG_SIZE} bytes`);
  const out = new Uint8Array(TAG_SIZE);
  out.set(b);
  return out;
}
