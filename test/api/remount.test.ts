// Acceptance (issue 6, item 4): PUT /api/v1/mount swaps /sub to another image while 4 readers loop
// over its files. Every read must succeed and equal the old or the new image for that path (never an
// error, never a mix within one read); once the remount is done, new opens see the new image.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { curl, makeWorkspace, skipReason, startDaemon, stopDaemon, until, type Daemon, type Workspace } from './harness.js';

const skip = skipReason();

describe('remount under load', { skip }, () => {
  it('PUT /api/v1/mount swaps /sub while 4 readers loop over its files', { timeout: 300_000 }, async (t) => {
    let w: Workspace | undefined;
    let d: Daemon | undefined;
    try {
      w = makeWorkspace('remount', 2);
      const ws = w;
      const [oldImg, newImg] = ws.images as [typeof ws.images[0], typeof ws.images[0]];
      d = await startDaemon(ws);
      const mount = await curl(ws.sock, 'POST', '/api/v1/mount?mountpoint=/sub', { data: JSON.stringify({ source: oldImg.bootstrap, fs_type: 'rafs', config: ws.configText }) });
      assert.equal(mount.status, 204, mount.text);
      const sub = join(ws.mnt, 'sub');
      const paths = [...oldImg.tree.keys()];
      assert.deepEqual([...newImg.tree.keys()], paths, 'both images have the same paths');
      for (const p of paths) assert.ok(!oldImg.tree.get(p)!.equals(newImg.tree.get(p)!), `${p} differs between the images`);

      let stop = false;
      let remounted = false;
      const counts = { old: 0, new: 0, newBeforeRemount: 0 };
      const failures: string[] = [];
      const reader = async (id: number): Promise<void> => {
        for (let i = id; !stop; i++) {
          const p = paths[i % paths.length]!;
          // Taken when the read starts: the daemon swaps before its 204 reaches us, so a read that
          // ends before we see the answer may rightly return the new image; one that started before
          // the PUT was sent may not.
          const startedBeforePut = !remounted;
          try {
            // One readFile = open + reads + close of one inode: all of it must come from one image.
            const got = await readFile(join(sub, p));
            if (got.equals(oldImg.tree.get(p)!)) counts.old++;
            else if (got.equals(newImg.tree.get(p)!)) {
              counts.new++;
              if (startedBeforePut) counts.newBeforeRemount++;
            } else failures.push(`reader ${id}: ${p}: ${got.length} bytes equal neither image`);
          } catch (e) {
            failures.push(`reader ${id}: ${p}: ${(e as Error).message}`);
          }
          if (failures.length > 20) return;
        }
      };
      const readers = [0, 1, 2, 3].map(reader);
      try {
        await until('readers to get going', () => counts.old >= 20 || failures.length > 0 || undefined, 60_000, 10);
        remounted = true; // set as the PUT is sent (see startedBeforePut)
        const r = await curl(ws.sock, 'PUT', '/api/v1/mount?mountpoint=/sub', { data: JSON.stringify({ source: newImg.bootstrap, fs_type: 'rafs', config: ws.configText }) });
        assert.equal(r.status, 204, r.text);
        // Kernel entry/attr caches hold the old root for up to 1 s: wait for new opens to land on the new image.
        const before = counts.new;
        await until('readers to see the new image', () => counts.new >= before + 40 || failures.length > 0 || undefined, 30_000, 10);
      } finally {
        stop = true;
        await Promise.all(readers);
      }
      t.diagnostic(`reads: ${counts.old} old, ${counts.new} new`);
      assert.deepEqual(failures, [], 'every read succeeds with the bytes of one image');
      assert.equal(counts.newBeforeRemount, 0);
      // After the remount settles (the kernel may keep an old dentry for its entry timeout, 1 s), a
      // fresh open of every path yields the new image.
      await until(
        'every path to read as the new image',
        async () => {
          for (const p of paths) if (!(await readFile(join(sub, p))).equals(newImg.tree.get(p)!)) return undefined;
          return true;
        },
        15_000,
        50,
      );
      const info = (await curl(ws.sock, 'GET', '/api/v1/daemon')).json as { backend_collection: Record<string, unknown> };
      assert.deepEqual(Object.keys(info.backend_collection), ['/sub']);
      const missing = await curl(ws.sock, 'PUT', '/api/v1/mount?mountpoint=/nope', { data: JSON.stringify({ source: newImg.bootstrap, fs_type: 'rafs', config: ws.configText }) });
      assert.equal(missing.status, 404, 'remount of a mountpoint that is not mounted');
    } finally {
      if (w) await stopDaemon(d, w);
    }
  });
});
