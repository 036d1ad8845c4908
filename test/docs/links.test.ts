// Docs stay inside the repo: links are relative and point at files that exist, and paths or .md
// names quoted in the text exist too (issue 12: no links out, no references to missing files).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { REPO_ROOT } from '../helpers/paths.js';

const docs = [...readdirSync(join(REPO_ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`), 'README.md', 'bench/README.md'].filter((f) => existsSync(join(REPO_ROOT, f)));

function mdNames(dir: string, out = new Set<string>()): Set<string> {
  for (const e of readdirSync(join(REPO_ROOT, dir), { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name.startsWith('.') || e.name === 'dist') continue;
    if (e.isDirectory()) mdNames(join(dir, e.name), out);
    else if (e.name.endsWith('.md')) out.add(e.name);
  }
  return out;
}

test('docs and READMEs link only to files of the repo that exist', () => {
  const known = mdNames('.');
  const problems: string[] = [];
  for (const f of docs) {
    const text = readFileSync(join(REPO_ROOT, f), 'utf8');
    for (const m of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
      const t = m[1]!;
      if (/^[a-z]+:/i.test(t)) problems.push(`${f}: link out of the repo: ${t}`);
      else if (!existsSync(normalize(join(REPO_ROOT, dirname(f), t)))) problems.push(`${f}: link to a missing file: ${t}`);
    }
    for (const m of text.matchAll(/`((?:docs|src|test|bench|scripts|bin|proto)\/[^`\s<>*{}]*)`/g)) {
      const t = m[1]!.replace(/[,.:;/]$/, '');
      if (!existsSync(join(REPO_ROOT, t))) problems.push(`${f}: names a missing path: ${t}`);
    }
    for (const m of text.matchAll(/\b([A-Za-z0-9_-]+\.md)\b/g)) if (!known.has(m[1]!)) problems.push(`${f}: names a missing document: ${m[1]}`);
  }
  assert.deepEqual(problems, []);
});
