// RAFS v6 prefetch table (spec §5.13): u32 nids, in pattern order.
import { Reader } from '../../util/bytes.js';
import { FormatError } from '../../util/errors.js';

const S = 'RAFS v6 prefetch table';

export function decodeRafsV6PrefetchTable(buf: Uint8Array, offset: number, size: number): number[] {
  if (size % 4 !== 0) throw new FormatError('ERR_FORMAT_INVALID', S, `size ${size} is not a multiple of 4`, offset);
  const r = new Reader(buf, offset, size, S);
  const out: number[] = [];
  for (let p = 0; p < size; p += 4) out.push(r.u32(p));
  return out;
}

export function encodeRafsV6PrefetchTable(nids: readonly number[]): Uint8Array {
  const out = new Uint8Array(nids.length * 4);
  const dv = new DataView(out.buffer);
  nids.forEach((n, i) => dv.setUint32(i * 4, n, true));
  return out;
}
