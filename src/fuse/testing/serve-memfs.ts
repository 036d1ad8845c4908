// Child-process daemon for tests: serves memfs at argv[2] with the MemFsInit JSON in argv[3],
// prints "ready <connId>" once INIT is answered, and exits on SIGTERM (unmounting) or SIGKILL.
import { FuseSession, installExitHandlers } from '../session.js';
import { MEMFS_MODULE } from './harness.js';

const [mnt, json] = process.argv.slice(2);
if (!mnt || !json) throw new Error('usage: serve-memfs <mountpoint> <init-json>');
const session = await FuseSession.mount(mnt, { fsModule: MEMFS_MODULE, initData: JSON.parse(json), workers: 2 });
installExitHandlers(session);
session.on('closed', () => process.exit(0));
process.stdout.write(`ready ${session.connId ?? ''}\n`);
