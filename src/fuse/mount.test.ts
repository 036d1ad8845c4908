// Real mounts of memfs: standard tools must see exactly what an on-disk copy of the same tree shows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { FOPEN_KEEP_CACHE } from './abi.js';
import { isFuseMounted } from './mount.js';
import { materialize, run, sh, withMemfsMount } from './testing/harness.js';
import { until } from '../../test/helpers/poll.js';
import { patternBytes, type MemNode } from './testing/memfs.js';

const tree: MemNode & { type: 'dir' } = {
  type: 'dir',
  entries: {
    'hello.txt': { type: 'file', content: 'hello world\n', xattrs: { 'user.a': 'one', 'user.b': 'two' } },
    empty: { type: 'file', content: '' },
    exec: { type: 'file', content: '#!/bin/sh\necho hi\n', mode: 0o755, uid: 1000, gid: 1000, mtime: 1_600_000_000 },
    big: { type: 'file', size: 3_000_001, pattern: 7 },
    'with space': { type: 'file', content: 'x' },
    sub: {
      type: 'dir',
      mode: 0o750,
      xattrs: { 'user.dir': 'd' },
      entries: {
        deep: { type: 'dir', entries: { 'leaf.bin': { type: 'file', content: new Uint8Array([0, 1, 2, 255]) } } },
        rel: { type: 'symlink', target: '../hello.txt' },
        abs: { type: 'symlink', target: '/nonexistent/target' },
        hard: { type: 'hardlink', target: '/hello.txt' },
        null: { type: 'chardev', major: 1, minor: 3 },
        loop: { type: 'blockdev', major: 7, minor: 300 },
        pipe: { type: 'fifo' },
      },
    },
  },
};

// Every command runs with cwd = the tree root, so outputs are comparable line by line.
const COMMANDS = [
  'ls -laR --time-style=full-iso .',
  "find . -printf '%p %y %m %n %U %G %s %T@ %l\\n' | sort",
  "find . | sort | xargs -d '\\n' stat -c '%n|%s|%b|%f|%u|%g|%h|%Y|%t|%T|%N'",
  "find . -type f -exec sha256sum {} + | sort",
  "find . \\( -type f -o -type d \\) | sort | xargs -d '\\n' getfattr -d",
  'readlink sub/rel sub/abs',
  'du -a . | sort; du -ab . | sort; du -s .',
  'cat hello.txt sub/hard sub/deep/leaf.bin | od -c',
];

test('ls/stat/find/cat/getfattr/readlink/du agree with an on-disk copy; cp -a copies it exactly', async () => {
  await withMemfsMount({ tree }, {}, async ({ mnt, dir }) => {
    const ref = join(dir, 'ref');
    fs.mkdirSync(ref);
    materialize(ref, tree);
    for (const cmd of COMMANDS) {
      const [a, b] = await Promise.all([sh(cmd, mnt), sh(cmd, ref)]);
      assert.equal(a.stderr, b.stderr, cmd);
      assert.equal(a.stdout, b.stdout, cmd);
      assert.ok(a.stdout.length > 0, cmd);
    }
    const copy = join(dir, 'copy');
    const cp = await run('cp', ['-a', `${mnt}/.`, copy]);
    assert.equal(cp.code, 0, cp.stderr);
    for (const cmd of COMMANDS.slice(0, 7)) {
      const [a, b] = await Promise.all([sh(cmd, copy), sh(cmd, ref)]);
      assert.equal(a.stdout.replace(/^total \d+$/gm, ''), b.stdout.replace(/^total \d+$/gm, ''), `copy: ${cmd}`);
    }
  });
});

test('writes fail with EROFS (Read-only file system)', async () => {
  await withMemfsMount({ tree }, {}, async ({ mnt }) => {
    for (const cmd of ['touch new', 'mkdir d2', 'rm hello.txt', 'echo x > hello.txt', 'echo x >> hello.txt', 'ln -s a b', 'mv hello.txt h2', 'setfattr -n user.z -v 1 hello.txt']) {
      const r = await sh(cmd, mnt);
      assert.notEqual(r.code, 0, cmd);
      assert.match(r.stderr, /Read-only file system/, cmd);
    }
    assert.throws(() => fs.openSync(join(mnt, 'hello.txt'), 'r+'), { code: 'EROFS' });
    assert.equal(fs.readFileSync(join(mnt, 'hello.txt'), 'utf8'), 'hello world\n');
  });
});

test('16 parallel readers get the right bytes (direct_io: every read reaches the server)', async () => {
  const size = 8 * 1024 * 1024 + 123;
  const t: MemNode & { type: 'dir' } = { type: 'dir', entries: { d: { type: 'file', size, pattern: 3, directIo: true }, c: { type: 'file', size, pattern: 4 } } };
  await withMemfsMount({ tree: t }, {}, async ({ mnt, session }) => {
    const want = { d: createHash('sha256').update(patternBytes(3, 0, size)).digest('hex'), c: createHash('sha256').update(patternBytes(4, 0, size)).digest('hex') };
    const jobs = Array.from({ length: 16 }, (_, i) => (i % 2 ? 'c' : 'd') as 'c' | 'd');
    const outs = await Promise.all(jobs.map((f) => run('sha256sum', [join(mnt, f)])));
    outs.forEach((o, i) => assert.equal(o.stdout.split(' ')[0], want[jobs[i]!]));
    // 4 KiB-aligned and unaligned preads through the fd API
    const fh = await fs.promises.open(join(mnt, 'd'));
    try {
      const reads = Array.from({ length: 64 }, (_, i) => ({ off: (i * 1_234_567) % size, len: 1 + ((i * 7919) % 200_000) }));
      await Promise.all(reads.map(async ({ off, len }) => {
        const b = Buffer.alloc(len);
        const { bytesRead } = await fh.read(b, 0, len, off);
        assert.equal(bytesRead, Math.min(len, size - off));
        assert.ok(b.subarray(0, bytesRead).equals(patternBytes(3, off, bytesRead)));
      }));
    } finally {
      await fh.close();
    }
    assert.ok((session.stats().requests.READ ?? 0) >= 16 * 8);
  });
});

test('a slow (async) read does not block other requests on the same worker', async () => {
  const t: MemNode & { type: 'dir' } = {
    type: 'dir',
    entries: { slow: { type: 'file', size: 100_000, pattern: 5, fromMain: true }, fast: { type: 'file', content: 'fast' }, other: { type: 'file', content: 'o' } },
  };
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let asked!: () => void;
  const requested = new Promise<void>((r) => (asked = r));
  const onRequest = async (msg: unknown) => {
    const m = msg as { op: string; offset: number; size: number };
    asked();
    await gate; // held until the fast requests have completed
    return patternBytes(5, m.offset, m.size);
  };
  // One worker: the fast requests can only be served if that worker keeps reading while the slow one waits.
  await withMemfsMount({ tree: t, options: { openFlags: FOPEN_KEEP_CACHE } }, { workers: 1, onRequest }, async ({ mnt }) => {
    const order: string[] = [];
    const slow = run('sha256sum', [join(mnt, 'slow')]).then((r) => (order.push('slow'), r));
    await requested;
    const st = await run('stat', ['-c', '%s', join(mnt, 'other')]);
    order.push('stat');
    assert.equal(st.stdout.trim(), '1');
    assert.equal(fs.readFileSync(join(mnt, 'fast'), 'utf8'), 'fast'); // sync read from the main thread, too
    order.push('cat');
    release();
    const r = await slow;
    assert.deepEqual(order, ['stat', 'cat', 'slow']);
    assert.equal(r.stdout.split(' ')[0], createHash('sha256').update(patternBytes(5, 0, 100_000)).digest('hex'));
  });
});

test('timer-based slow path: concurrent stat finishes first; errors from main map to errno', async () => {
  const t: MemNode & { type: 'dir' } = {
    type: 'dir',
    // The timer must outlast a stat on a loaded machine by far (the ordering is the behaviour).
    entries: { slow: { type: 'file', content: 'zzz', slowMs: 2500 }, bad: { type: 'file', size: 10, fromMain: true }, x: { type: 'file', content: 'x' } },
  };
  const onRequest = () => {
    throw Object.assign(new Error('backend says no'), { code: 'EACCES' });
  };
  await withMemfsMount({ tree: t }, { workers: 1, onRequest }, async ({ mnt, session }) => {
    const order: string[] = [];
    const slow = fs.promises.readFile(join(mnt, 'slow'), 'utf8').then((s) => (order.push('slow'), s));
    // Poll the server's counters: the READ must be in flight before we stat (fails, never proceeds, on timeout).
    await until('the slow READ to reach the daemon', () => (session.stats().requests.READ ?? 0) > 0, 30_000, 5);
    await fs.promises.stat(join(mnt, 'x'));
    order.push('stat');
    assert.equal(await slow, 'zzz');
    assert.deepEqual(order, ['stat', 'slow']);
    await assert.rejects(fs.promises.readFile(join(mnt, 'bad')), { code: 'EACCES' });
  });
});

test('lseek SEEK_DATA/SEEK_HOLE and statfs', async () => {
  await withMemfsMount({ tree }, {}, async ({ mnt }) => {
    const py = `import os;fd=os.open('big',os.O_RDONLY);print(os.lseek(fd,5,os.SEEK_DATA),os.lseek(fd,5,os.SEEK_HOLE))`;
    const r = await run('python3', ['-c', py], { cwd: mnt });
    assert.equal(r.stdout.trim(), '5 3000001');
    const df = await run('stat', ['-f', '-c', '%b %S %l', mnt]);
    assert.match(df.stdout, /^\d+ 4096 255$/m);
  });
});

test('unmounting while files are open: session ends, open fds fail instead of hanging', async () => {
  const dir = await withMemfsMount({ tree }, {}, async ({ mnt, session }) => {
    const fh = await fs.promises.open(join(mnt, 'big'));
    const b = Buffer.alloc(10);
    await fh.read(b, 0, 10, 0);
    const dh = await fs.promises.opendir(mnt);
    const closed = new Promise<void>((r) => session.once('closed', r));
    const step = await session.unmount();
    assert.notEqual(step, 'umount'); // busy: needed the lazy/abort path
    await closed;
    assert.equal(isFuseMounted(mnt), false);
    await assert.rejects(fh.read(b, 0, 10, 4096 * 100), { code: 'ENOTCONN' });
    // close(2) releases the fd even when the (aborted) FLUSH reports ENOTCONN.
    await fh.close().catch((e: { code?: string }) => assert.equal(e.code, 'ENOTCONN'));
    await dh.close().catch(() => {});
    return mnt;
  });
  assert.equal(fs.readFileSync('/proc/mounts', 'utf8').includes(dir), false);
});
