// Public surface of the FUSE layer. `fuse` knows nothing about RAFS: it speaks the kernel protocol
// and calls a LowLevelFileSystem loaded into worker threads.
export * from './filesystem.js';
export { FuseSession, installExitHandlers, withTransfer, type SessionOptions, type AdoptOptions, type SessionStats, type RequestSource } from './session.js';
export { DEFAULT_PROTOCOL_OPTIONS, type ProtocolOptions, type InitInfo } from './dispatch.js';
export { mountFuse, unmountFuse, unmountFuseSync, abortConnection, findConnectionId, isFuseMounted, withTimeout, type MountOptions } from './mount.js';
export { FOPEN_DIRECT_IO, FOPEN_KEEP_CACHE, FOPEN_CACHE_DIR, FUSE_ROOT_ID } from './abi.js';
