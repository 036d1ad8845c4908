// --log-file: appended, ".log" added without an extension, rotated into upstream-named gzip files with
// nothing lost or reordered, and only the newest LOG_ROTATED_KEEP kept.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { LOG_ROTATED_KEEP, logger, logToFile, setLogLevel, setLogSink } from './log.js';

const dir = mkdtempSync(join(tmpdir(), 'log-file-'));
after(() => {
  setLogSink((line) => process.stderr.write(line + '\n'));
  rmSync(dir, { recursive: true, force: true });
});

async function settled(stem: string): Promise<string[]> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const names = readdirSync(dir).filter((n) => n.startsWith(`${stem}_r`));
    if (names.every((n) => n.endsWith('.log.gz'))) return names.sort();
    if (Date.now() > deadline) throw new Error(`rotated files not compressed: ${names.join(' ')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('appends to an existing file and adds .log to a name without extension', () => {
  writeFileSync(join(dir, 'plain.log'), 'old line\n');
  assert.equal(logToFile(join(dir, 'plain')), join(dir, 'plain.log'));
  setLogLevel('info');
  logger('t').info('new line');
  const lines = readFileSync(join(dir, 'plain.log'), 'utf8').trim().split('\n');
  assert.equal(lines[0], 'old line');
  assert.match(lines[1]!, /INFO t: new line$/);
});

test('rotation keeps every line, in order, in <stem>_r<timestamp>[.restart-N].log.gz files', async () => {
  const file = logToFile(join(dir, 'rot.log'), 2000 / (1024 * 1024));
  const log = logger('t');
  for (let i = 0; i < 60; i++) log.info(`line ${String(i).padStart(4, '0')} ${'x'.repeat(60)}`);
  const rotated = await settled('rot');
  assert.ok(rotated.length >= 2, `rotated several times: ${rotated.join(' ')}`);
  for (const n of rotated) assert.match(n, /^rot_r\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d(\.restart-\d{4})?\.log\.gz$/);
  const texts = rotated.map((n) => gunzipSync(readFileSync(join(dir, n))).toString('utf8'));
  for (const t of texts) assert.ok(t.length <= 2000, `each rotated file is within the limit (${t.length})`);
  const all = [...texts, readFileSync(file, 'utf8')].join('').trim().split('\n').map((l) => /line (\d{4})/.exec(l)![1]);
  assert.deepEqual(all, Array.from({ length: 60 }, (_, i) => String(i).padStart(4, '0')));
});

test(`only the newest ${LOG_ROTATED_KEEP} rotated files are kept`, async () => {
  logToFile(join(dir, 'keep.log'), 500 / (1024 * 1024));
  const log = logger('t');
  for (let i = 0; i < 120; i++) log.info(`line ${String(i).padStart(4, '0')} ${'y'.repeat(80)}`);
  // Pruning follows each compression; wait until the count settles at the limit.
  const deadline = Date.now() + 20_000;
  let rotated = await settled('keep');
  while (rotated.length > LOG_ROTATED_KEEP && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    rotated = await settled('keep');
  }
  assert.equal(rotated.length, LOG_ROTATED_KEEP);
  const lastRotated = gunzipSync(readFileSync(join(dir, rotated.at(-1)!))).toString('utf8');
  const current = readFileSync(join(dir, 'keep.log'), 'utf8');
  const firstCurrent = Number(/line (\d{4})/.exec(current)![1]);
  const lastOld = Number([...lastRotated.matchAll(/line (\d{4})/g)].at(-1)![1]);
  assert.equal(firstCurrent, lastOld + 1, 'the newest rotated file ends where the current file starts');
});
