// Native addons (BLAKE3, zstd, lz4) are loaded on first use, but a process that serves FUSE must load
// them before its worker threads start. Their napi-rs loaders may call process.report.getReport() to
// tell glibc from musl (@napi-rs/blake-hash 1.3.4 always does on Linux), and a report waits for every
// worker thread to add its section: a FUSE worker blocked in read(2) on /dev/fuse never answers, so
// the first cold read that verified a BLAKE3 digest on the main thread hung the whole daemon.
import { preloadCompressors } from './compress.js';
import { preloadDigesters } from './digest.js';

/** Loads every native addon the read path uses; call before starting threads that block in syscalls. */
export function preloadNativeAddons(): void {
  preloadDigesters();
  preloadCompressors();
}
