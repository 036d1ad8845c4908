// A tiny validator: every value of a known key must have the right type; errors name the full key
// path (e.g. "device.cache.config.work_dir: expected a string"). Unknown keys are not errors (upstream's
// serde ignores them) but are collected by path so the caller warns about each one.
import { ConfigError } from '../util/errors.js';

/** What docs/config.md says about a key (scripts/gen-config-doc.mjs renders it from these tables). */
export interface FieldDoc {
  text: string;
  /** Upstream's default, as written in a config. */
  default?: string;
  /** Absent when nydus-ts does what the key asks; else what happens instead. */
  not?: string;
}

export type Field = (
  | { t: 'string' }
  | { t: 'bool' }
  | { t: 'int'; min?: number; max?: number }
  | { t: 'num'; min?: number }
  | { t: 'enum'; values: readonly string[] }
  | { t: 'strings' }
  | { t: 'object'; fields: Record<string, Field>; open?: boolean }
  | { t: 'array'; of: Field }
  | { t: 'any' }
  | { t: 'oneOf'; options: Field[] }
) & { doc?: FieldDoc };

export const S: Field = { t: 'string' };
export const B: Field = { t: 'bool' };
export const I = (min?: number, max?: number): Field => ({ t: 'int', ...(min !== undefined ? { min } : {}), ...(max !== undefined ? { max } : {}) });
export const N = (min?: number): Field => ({ t: 'num', ...(min !== undefined ? { min } : {}) });
export const E = (...values: string[]): Field => ({ t: 'enum', values });
export const O = (fields: Record<string, Field>): Field => ({ t: 'object', fields });
/** `f` documented: one line of meaning, upstream's default, and what happens if nydus-ts does not honour it. */
export const D = (f: Field, text: string, dflt?: string, not?: string): Field => ({ ...f, doc: { text, ...(dflt !== undefined ? { default: dflt } : {}), ...(not ? { not } : {}) } });

function kind(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

/** Checks `v` against `f`; the path of every unknown key (not inside an `open` object) is pushed to `unknown`. */
export function check(v: unknown, f: Field, path: string, source: string, unknown: string[] = []): void {
  const fail = (what: string): never => {
    throw new ConfigError(`${source}: ${path || '(top level)'}: ${what}`);
  };
  switch (f.t) {
    case 'string':
      if (typeof v !== 'string') fail(`expected a string, got ${kind(v)}`);
      return;
    case 'bool':
      if (typeof v !== 'boolean') fail(`expected true or false, got ${kind(v)}`);
      return;
    case 'int':
      if (typeof v !== 'number' || !Number.isInteger(v)) fail(`expected an integer, got ${kind(v)}`);
      if (f.min !== undefined && (v as number) < f.min) fail(`must be at least ${f.min}`);
      if (f.max !== undefined && (v as number) > f.max) fail(`must be at most ${f.max}`);
      return;
    case 'num':
      if (typeof v !== 'number' || !Number.isFinite(v)) fail(`expected a number, got ${kind(v)}`);
      if (f.min !== undefined && (v as number) < f.min) fail(`must be at least ${f.min}`);
      return;
    case 'enum':
      if (typeof v !== 'string' || !f.values.includes(v)) fail(`expected one of ${f.values.map((x) => `"${x}"`).join(', ')}, got ${JSON.stringify(v)}`);
      return;
    case 'strings':
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) fail('expected an array of strings');
      return;
    case 'any':
      return;
    case 'array':
      if (!Array.isArray(v)) fail(`expected an array, got ${kind(v)}`);
      (v as unknown[]).forEach((x, i) => check(x, f.of, `${path}[${i}]`, source, unknown));
      return;
    case 'oneOf': {
      const errs: string[] = [];
      for (const o of f.options) {
        const found: string[] = [];
        try {
          check(v, o, path, source, found);
          unknown.push(...found);
          return;
        } catch (e) {
          errs.push((e as Error).message);
        }
      }
      fail(`unexpected value (${errs[0] ?? 'no option matched'})`);
      return;
    }
    case 'object': {
      if (kind(v) !== 'object') fail(`expected an object, got ${kind(v)}`);
      const obj = v as Record<string, unknown>;
      for (const [k, val] of Object.entries(obj)) {
        const sub = f.fields[k];
        const p = path ? `${path}.${k}` : k;
        if (!sub) {
          if (!f.open) unknown.push(p);
          continue;
        }
        check(val, sub, p, source, unknown);
      }
    }
  }
}
