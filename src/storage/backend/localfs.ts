// localfs backend: blobs are plain files, `<dir>/<blob_id>` (falling back to `alt_dirs`) or one fixed
// `blob_file`. Positional reads into preallocated buffers. Upstream: storage/src/backend/localfs.rs.
// `readahead`/`readahead_sec` are accepted by the config schema but ignored, as upstream does now.
import { statSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { BackendError, ConfigError } from '../../util/errors.js';
import { newBackendMetrics, type BackendMetrics, type BlobBackend } from './backend.js';
import { trackRead } from './retry.js';

export interface LocalFsConfig {
  dir?: string;
  blob_file?: string;
  alt_dirs?: string[];
}

const BACKEND = 'localfs';

export class LocalFsBackend implements BlobBackend {
  readonly type = BACKEND;
  readonly metrics: BackendMetrics = newBackendMetrics();
  readonly #cfg: LocalFsConfig;
  /** One open handle per blob; opening is shared by concurrent first readers. */
  readonly #handles = new Map<string, Promise<{ fh: FileHandle; path: string }>>();

  constructor(cfg: LocalFsConfig) {
    if (!cfg.dir && !cfg.blob_file) throw new ConfigError('backend.localfs: one of "dir" or "blob_file" is required');
    // A missing or mistyped blob directory is a config error, reported before anything is mounted;
    // a missing blob inside an existing directory stays a per-read error (it may be copied in later).
    if (cfg.dir && !cfg.blob_file && !statSync(cfg.dir, { throwIfNoEntry: false })?.isDirectory()) {
      throw new ConfigError(`backend.localfs: "dir" ${cfg.dir} is not an existing directory`);
    }
    this.#cfg = cfg;
  }

  /** Candidate paths for a blob, in lookup order. */
  pathsOf(blobId: string): string[] {
    if (this.#cfg.blob_file) return [this.#cfg.blob_file];
    // A blob id comes from an untrusted bootstrap: never let it escape the directory.
    if (!blobId || blobId.includes('/') || blobId.includes('\0') || blobId === '.' || blobId === '..') {
      throw new BackendError('ERR_BACKEND_NOT_FOUND', BACKEND, `Cannot open blob "${blobId}": not a valid blob id for a file name`);
    }
    return [this.#cfg.dir ?? '', ...(this.#cfg.alt_dirs ?? [])].filter(Boolean).map((d) => join(d, blobId));
  }

  #handle(blobId: string): Promise<{ fh: FileHandle; path: string }> {
    let h = this.#handles.get(blobId);
    if (!h) {
      h = this.#open(blobId);
      this.#handles.set(blobId, h);
      // A failed open is not remembered: the blob may appear later (e.g. copied in after mount).
      h.catch(() => this.#handles.delete(blobId));
    }
    return h;
  }

  async #open(blobId: string): Promise<{ fh: FileHandle; path: string }> {
    const paths = this.pathsOf(blobId);
    let lastErr: unknown;
    for (const path of paths) {
      try {
        return { fh: await open(path, 'r'), path };
      } catch (e) {
        lastErr = e;
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') break;
      }
    }
    const code = (lastErr as NodeJS.ErrnoException | undefined)?.code;
    throw new BackendError(
      code === 'ENOENT' ? 'ERR_BACKEND_NOT_FOUND' : 'ERR_IO',
      BACKEND,
      `Cannot open blob "${blobId}": ${code === 'ENOENT' ? `no such file (${paths.join(', ')})` : `${paths.at(-1)}: ${(lastErr as Error).message}`}`,
      { cause: lastErr },
    );
  }

  /**
   * Reads `length` bytes at `offset`. Fewer bytes only when the file ends first (upstream allows
   * short reads; blob-io turns a truncated chunk into an error naming the chunk). Reading at or
   * past the end of the file is an error naming the blob and path.
   */
  read(blobId: string, offset: number, length: number): Promise<Uint8Array> {
    return trackRead(this.metrics, async () => {
      const { fh, path } = await this.#handle(blobId);
      const buf = Buffer.allocUnsafe(length);
      let got = 0;
      while (got < length) {
        let n: number;
        try {
          ({ bytesRead: n } = await fh.read(buf, got, length - got, offset + got));
        } catch (e) {
          throw new BackendError('ERR_IO', BACKEND, `Cannot read blob "${blobId}" (${path}) at ${offset + got}: ${(e as Error).message}`, { cause: e });
        }
        if (n === 0) break;
        got += n;
      }
      if (got === 0 && length > 0) {
        throw new BackendError('ERR_IO', BACKEND, `Short read of blob "${blobId}" (${path}): nothing at offset ${offset} (wanted ${length} bytes); the file is shorter`);
      }
      return got === length ? buf : buf.subarray(0, got);
    });
  }

  async blobSize(blobId: string): Promise<number> {
    const { fh } = await this.#handle(blobId);
    return (await fh.stat()).size;
  }

  async close(): Promise<void> {
    const hs = [...this.#handles.values()];
    this.#handles.clear();
    await Promise.all(hs.map((h) => h.then((x) => x.fh.close()).catch(() => undefined)));
  }
}

export function createLocalFsBackend(config: Record<string, unknown> | LocalFsConfig): LocalFsBackend {
  const c = config as Record<string, unknown>;
  const str = (k: string): string | undefined => (typeof c[k] === 'string' && c[k] !== '' ? (c[k] as string) : undefined);
  const alt = Array.isArray(c.alt_dirs) ? c.alt_dirs.filter((x): x is string => typeof x === 'string' && x !== '') : [];
  const cfg: LocalFsConfig = { alt_dirs: alt };
  const dir = str('dir');
  const blobFile = str('blob_file');
  if (dir !== undefined) cfg.dir = dir;
  if (blobFile !== undefined) cfg.blob_file = blobFile;
  return new LocalFsBackend(cfg);
}
