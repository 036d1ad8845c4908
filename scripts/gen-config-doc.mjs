#!/usr/bin/env node
// Writes docs/config.md from the config schema (src/config/reference.ts). Run after `npm run build`.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { configReference } = await import(join(root, 'dist/src/config/reference.js'));
writeFileSync(join(root, 'docs/config.md'), configReference());
