// The worker's view of the mount table: a request must never be served from a table older than the
// version it saw, even when it arrives while an older refresh is still in flight.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { RequestInfo, WorkerContext } from '../fuse/index.js';
import { openBootstrap } from '../rafs/index.js';
import { FIXTURE_V6_22_BOOT } from '../../test/helpers/paths.js';
import { until } from '../../test/helpers/poll.js';
import { newFsStatsBuffer } from './fs-stats.js';
import { createFileSystem, type DaemonRequest, type FuseFsInit, type MountTable } from './fuse-fs.js';
import { INO_SPACE, ROOT_ID, type MountSpec } from './vfs.js';

const REQ = { uid: 0, gid: 0, pid: 0, unique: 1n } as unknown as RequestInfo;

describe('fuse-fs mount table refresh', () => {
  it('a request joining a stale in-flight refresh waits for the newer table (no ESTALE)', async () => {
    const boot = new Uint8Array(readFileSync(FIXTURE_V6_22_BOOT));
    const rootIno = openBootstrap(boot, 'fixture').rootIno;
    const versionBuf = new SharedArrayBuffer(4);
    const version = new Int32Array(versionBuf);
    const mounts: MountSpec[] = [];
    const retired: MountSpec[] = [];
    // Table requests are answered with the table as of the request, but only when the test says so.
    const pending: Array<() => void> = [];
    const ctx: WorkerContext = {
      workerIndex: 0,
      postToMain: () => undefined,
      request: <T>(msg: unknown): Promise<T> => {
        assert.equal((msg as DaemonRequest).t, 'table');
        const table: MountTable = { version: Atomics.load(version, 0), mounts: [...mounts], retired: [...retired] };
        return new Promise<T>((resolve) => pending.push(() => resolve(table as T)));
      },
    };
    const init: FuseFsInit = { tableVersion: versionBuf, entryTimeout: 1, attrTimeout: 1, pseudoTimeout: 1 };
    const created = createFileSystem(init, ctx);
    pending.shift()!();
    const fs = await created;

    // The main thread mounts /a: the next request starts a refresh that reads the version-1 table...
    const spec = (index: number, mountpoint: string): MountSpec => ({ index, mountpoint, bootstrap: boot, enableXattr: false, stats: newFsStatsBuffer(), uid: 0, gid: 0 });
    mounts.push(spec(1, '/a'));
    Atomics.add(version, 0, 1);
    const first = fs.getattr!(ROOT_ID, undefined, REQ);
    assert.equal(pending.length, 1);
    // ...then it mounts /b and bumps again before that answer arrives.
    mounts.push(spec(2, '/b'));
    Atomics.add(version, 0, 1);
    // An inode of /b (handed out by a fresher worker) arrives meanwhile.
    const second = Promise.resolve(fs.getattr!(2 * INO_SPACE + rootIno, undefined, REQ));
    pending.shift()!();
    // The stale answer must not be enough: a second refresh fetches the version-2 table.
    await until('a newer table to be requested', () => pending.length === 1 || undefined, 10_000, 1);
    pending.shift()!();
    await first;
    const attr = (await second) as { attr: { ino: number; mode: number } };
    assert.equal(attr.attr.ino, 2 * INO_SPACE + rootIno);
    assert.equal(attr.attr.mode & 0o170000, 0o040000);
  });
  it('a worker idle across a remount still serves inodes of the replaced image (no ESTALE)', async () => {
    const boot = new Uint8Array(readFileSync(FIXTURE_V6_22_BOOT));
    const rootIno = openBootstrap(boot, 'fixture').rootIno;
    const versionBuf = new SharedArrayBuffer(4);
    const version = new Int32Array(versionBuf);
    const mounts: MountSpec[] = [];
    const retired: MountSpec[] = [];
    const ctx: WorkerContext = {
      workerIndex: 1,
      postToMain: () => undefined,
      request: <T>(): Promise<T> => Promise.resolve({ version: Atomics.load(version, 0), mounts: [...mounts], retired: [...retired] } as T),
    };
    const fs = await createFileSystem({ tableVersion: versionBuf, entryTimeout: 1, attrTimeout: 1, pseudoTimeout: 1 }, ctx);
    const spec = (index: number): MountSpec => ({ index, mountpoint: '/a', bootstrap: boot, enableXattr: false, stats: newFsStatsBuffer(), uid: 0, gid: 0 });
    // While this worker sleeps, /a is mounted (another worker hands out its inodes), then remounted.
    mounts.push(spec(1));
    Atomics.add(version, 0, 1);
    retired.push(mounts.pop()!);
    mounts.push(spec(2));
    Atomics.add(version, 0, 1);
    const old = (await fs.getattr!(INO_SPACE + rootIno, undefined, REQ)) as { attr: { ino: number } };
    assert.equal(old.attr.ino, INO_SPACE + rootIno, 'the replaced image is still served');
    const cur = (await fs.getattr!(2 * INO_SPACE + rootIno, undefined, REQ)) as { attr: { ino: number } };
    assert.equal(cur.attr.ino, 2 * INO_SPACE + rootIno);
  });
});
