// Serves the benchmark tree with memfs at argv[2]; prints "ready" when INIT is done; SIGTERM unmounts.
// Timeouts are long, like squashfuse_ll's (read-only images never change), so both sides cache alike.
import { FuseSession, installExitHandlers } from '../../src/fuse/session.js';
import { benchTree } from './tree.js';

const mnt = process.argv[2];
if (!mnt) throw new Error('usage: serve.js <mountpoint> [workers]');
const workers = Number(process.argv[3] ?? 2);
const session = await FuseSession.mount(mnt, {
  fsModule: new URL('../../src/fuse/testing/memfs.js', import.meta.url).href,
  initData: { tree: benchTree(), options: { entryTimeout: 3600, attrTimeout: 3600 } },
  workers,
  mount: { fsname: 'nydus-bench' },
});
installExitHandlers(session);
session.on('closed', () => process.exit(0));
process.stdout.write('ready\n');
