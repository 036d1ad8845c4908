// docs/config.md, rendered from the schema tables the validator checks configs against (one source:
// a key cannot be accepted without being documented; reference.test.ts keeps the committed file in
// step, scripts/gen-config-doc.mjs rewrites it).
import { BACKEND_SCHEMAS, V1, V2 } from './daemon-config.js';
import type { Field } from './schema.js';

export interface KeyRow {
  path: string;
  type: string;
  default: string;
  honoured: string;
  text: string;
}

function typeOf(f: Field): string {
  switch (f.t) {
    case 'string': return 'string';
    case 'bool': return 'boolean';
    case 'int': return f.min !== undefined && f.max !== undefined ? (f.min === f.max ? `integer ${f.min}` : `integer ${f.min}..${f.max}`) : f.min !== undefined ? `integer ≥ ${f.min}` : 'integer';
    case 'num': return f.min !== undefined ? `number ≥ ${f.min}` : 'number';
    case 'enum': return f.values.map((v) => JSON.stringify(v)).join(', ');
    case 'strings': return 'string array';
    case 'object': return 'object';
    case 'array': return `array of ${typeOf(f.of)}`;
    case 'any': return 'any';
    case 'oneOf': return f.options.map(typeOf).join(' or ');
  }
}

/** Every key of `f` (depth first, in table order); undocumented leaves are reported with an empty text. */
export function keyRows(f: Field, prefix = ''): KeyRow[] {
  const rows: KeyRow[] = [];
  const visit = (g: Field, path: string): void => {
    const leaf = g.t !== 'object' && g.t !== 'array' && g.t !== 'oneOf';
    if (g.doc || leaf) rows.push({ path, type: typeOf(g), default: g.doc?.default ?? '', honoured: g.doc?.not ?? 'yes', text: g.doc?.text ?? '' });
    if (g.t === 'object') for (const [k, sub] of Object.entries(g.fields)) visit(sub, path ? `${path}.${k}` : k);
    else if (g.t === 'array') visit(g.of, `${path}[]`);
    else if (g.t === 'oneOf') for (const o of g.options) if (o.t === 'object') for (const [k, sub] of Object.entries(o.fields)) visit(sub, `${path}.${k}`);
  };
  visit(f, prefix);
  return rows.filter((r) => r.path !== '');
}

const cell = (s: string): string => s.replace(/\|/g, '\\|');

function table(rows: KeyRow[]): string {
  const lines = ['| Key | Type | Default | Honoured by nydus-ts | Meaning |', '|---|---|---|---|---|'];
  for (const r of rows) lines.push(`| \`${r.path}\` | ${cell(r.type)} | ${r.default ? `\`${cell(r.default)}\`` : ''} | ${cell(r.honoured)} | ${cell(r.text)} |`);
  return lines.join('\n');
}

export function configReference(): string {
  const out = [
    '# nydusd configuration reference',
    '',
    '<!-- Generated from src/config/daemon-config.ts by `node scripts/gen-config-doc.mjs`; do not edit by hand. -->',
    '',
    'Every key nydusd accepts, with upstream\'s default and whether nydus-ts honours it. The validator',
    'checks configs against these same tables: a wrong type or range is an error naming the key path,',
    'an unknown key is a warning naming its path. How configs are read (formats, comments, warnings):',
    '[nydusd-config.md](nydusd-config.md). "Honoured" is `yes`, or what happens instead.',
    '',
    '## v1 (JSON)',
    '',
    table(keyRows(V1)),
    '',
    '## v2 (JSON or TOML, `version = 2`)',
    '',
    table(keyRows(V2)),
    '',
    '## Backends',
    '',
    'The keys of the selected backend: under `device.backend.config` in v1, `backend.<type>` in v2.',
  ];
  for (const [name, schema] of Object.entries(BACKEND_SCHEMAS)) out.push('', `### \`${name}\``, '', table(keyRows(schema)));
  return out.join('\n') + '\n';
}
