// A daemon that dies must not leave a mount that hangs its users.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { isFuseMounted, unmountFuse } from './mount.js';
import { run } from './testing/harness.js';
import type { MemFsInit } from './testing/memfs.js';

const SERVER = new URL('./testing/serve-memfs.js', import.meta.url);
const init: MemFsInit = { tree: { type: 'dir', entries: { f: { type: 'file', content: 'data' } } } };

async function startDaemon(mnt: string): Promise<{ child: ChildProcess; connId: number | undefined; exited: Promise<void> }> {
  const child = spawn(process.execPath, [SERVER.pathname, mnt, JSON.stringify(init)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', resolve);
    child.once('exit', (c) => reject(new Error(`daemon exited early (${c})`)));
  });
  assert.match(line, /^ready/);
  const id = line.split(' ')[1];
  return { child, connId: id ? Number(id) : undefined, exited };
}

/** Runs `body` with a fresh mountpoint; whatever the outcome, a mount left there is removed. */
async function withMountpoint(prefix: string, body: (mnt: string, d: Awaited<ReturnType<typeof startDaemon>>) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(join(tmpdir(), prefix));
  const mnt = join(dir, 'mnt');
  fs.mkdirSync(mnt);
  let d: Awaited<ReturnType<typeof startDaemon>> | undefined;
  try {
    d = await startDaemon(mnt);
    await body(mnt, d);
  } finally {
    // A failed assertion must not leave the daemon running.
    if (d && d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
    if (isFuseMounted(mnt)) await unmountFuse(mnt, d?.connId);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('SIGKILLed daemon: ls on the mountpoint returns promptly (ENOTCONN, not a hang), then it unmounts', async () => {
  await withMountpoint('nydus-fuse-kill-', async (mnt, d) => {
    assert.equal((await run('cat', [join(mnt, 'f')])).stdout, 'data');
    d.child.kill('SIGKILL');
    await d.exited;
    const t0 = process.hrtime.bigint();
    const ls = await run('ls', [mnt], { timeoutMs: 30_000 });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    // A hang would run into the 30 s kill; an answer takes milliseconds (the bound is generous for load).
    assert.ok(ms < 10_000, `ls took ${ms} ms`);
    assert.match(ls.stderr, /Transport endpoint is not connected/);
    assert.ok(isFuseMounted(mnt)); // dead but not hung; cleanup is the supervisor's job:
    const step = await unmountFuse(mnt, d.connId);
    assert.ok(step === 'umount' || step === 'lazy', step);
    assert.equal(isFuseMounted(mnt), false);
  });
});

test('SIGTERMed daemon unmounts itself (exit handlers)', async () => {
  await withMountpoint('nydus-fuse-term-', async (mnt, d) => {
    assert.ok(d.connId !== undefined && d.connId > 0);
    d.child.kill('SIGTERM');
    await d.exited;
    assert.equal(isFuseMounted(mnt), false);
    assert.deepEqual(fs.readdirSync(mnt), []);
  });
});
