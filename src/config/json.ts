// Lenient JSON for config files: upstream's documentation examples carry // comments and trailing
// commas, and users copy them verbatim. Comments and trailing commas outside strings are dropped.
import { ConfigError } from '../util/errors.js';

export function stripJsonComments(text: string): string {
  let out = '';
  let i = 0;
  let inStr = false;
  while (i < text.length) {
    const c = text[i]!;
    if (inStr) {
      out += c;
      if (c === '\\') {
        out += text[i + 1] ?? '';
        i += 2;
        continue;
      }
      if (c === '"') inStr = false;
      i++;
    } else if (c === '"') {
      inStr = true;
      out += c;
      i++;
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 2;
    } else {
      out += c;
      i++;
    }
  }
  // Trailing commas before } or ] (strings are intact, so a plain regex over structure is safe only
  // outside strings; re-scan to be exact).
  let res = '';
  inStr = false;
  for (let j = 0; j < out.length; j++) {
    const c = out[j]!;
    if (inStr) {
      res += c;
      if (c === '\\') res += out[++j] ?? '';
      else if (c === '"') inStr = false;
      continue;
    }
    if (c === '"') inStr = true;
    if (c === ',') {
      let k = j + 1;
      while (k < out.length && /\s/.test(out[k]!)) k++;
      if (out[k] === '}' || out[k] === ']') continue;
    }
    res += c;
  }
  return res;
}

export function parseLenientJson(text: string, source: string): unknown {
  try {
    return JSON.parse(stripJsonComments(text));
  } catch (e) {
    throw new ConfigError(`${source}: invalid JSON: ${(e as Error).message}`);
  }
}
