// Snapshot metadata in SQLite (better-sqlite3, synchronous, WAL + full sync: a committed
// transaction survives a crash). Upstream keeps the same records in bolt.
import { createRequire } from 'node:module';
import { NydusError } from '../util/errors.js';

export const KIND_VIEW = 1;
export const KIND_ACTIVE = 2;
export const KIND_COMMITTED = 3;
export type Kind = typeof KIND_VIEW | typeof KIND_ACTIVE | typeof KIND_COMMITTED;

export interface SnapshotRecord {
  id: number;
  key: string;
  parent: string;
  kind: Kind;
  created: number;
  updated: number;
  labels: Record<string, string>;
}

/** A nydusd this snapshotter started, re-attached after a restart. */
export interface DaemonRecord {
  id: string;
  pid: number;
  apiSock: string;
  mountpoint: string;
  /** Snapshot id of the bootstrap layer it serves ('' for the shared daemon). */
  snapshotId: number;
  /** In shared mode: the API mount path inside the daemon. */
  mountPath?: string;
}

interface Stmt {
  run(...a: unknown[]): { lastInsertRowid: number | bigint; changes: number };
  get(...a: unknown[]): unknown;
  all(...a: unknown[]): unknown[];
}
interface Db {
  prepare(sql: string): Stmt;
  exec(sql: string): void;
  pragma(s: string): unknown;
  transaction<T extends (...a: never[]) => unknown>(fn: T): T;
  close(): void;
}

interface Row {
  id: number;
  key: string;
  parent: string;
  kind: number;
  created: number;
  updated: number;
  labels: string;
}

const toRecord = (r: Row): SnapshotRecord => ({ id: r.id, key: r.key, parent: r.parent, kind: r.kind as Kind, created: r.created, updated: r.updated, labels: JSON.parse(r.labels) as Record<string, string> });

export class MetaStore {
  readonly #db: Db;
  constructor(file: string) {
    const require = createRequire(import.meta.url);
    let Database: new (f: string) => Db;
    try {
      Database = require('better-sqlite3') as new (f: string) => Db;
    } catch (e) {
      throw new NydusError('ERR_INTERNAL', `cannot load better-sqlite3: ${(e as Error).message}`);
    }
    this.#db = new Database(file);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = FULL');
    this.#db.exec(`CREATE TABLE IF NOT EXISTS snapshots (
      id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, parent TEXT NOT NULL,
      kind INTEGER NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL, labels TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS snapshots_parent ON snapshots(parent);
      CREATE TABLE IF NOT EXISTS daemons (id TEXT PRIMARY KEY, info TEXT NOT NULL);`);
  }

  close(): void {
    this.#db.close();
  }

  tx<T>(fn: () => T): T {
    return this.#db.transaction(fn)();
  }

  get(key: string): SnapshotRecord | undefined {
    const r = this.#db.prepare('SELECT * FROM snapshots WHERE key = ?').get(key) as Row | undefined;
    return r && toRecord(r);
  }

  byId(id: number): SnapshotRecord | undefined {
    const r = this.#db.prepare('SELECT * FROM snapshots WHERE id = ?').get(id) as Row | undefined;
    return r && toRecord(r);
  }

  all(): SnapshotRecord[] {
    return (this.#db.prepare('SELECT * FROM snapshots ORDER BY id').all() as Row[]).map(toRecord);
  }

  hasChildren(key: string): boolean {
    return this.#db.prepare('SELECT 1 FROM snapshots WHERE parent = ? LIMIT 1').get(key) !== undefined;
  }

  insert(key: string, parent: string, kind: Kind, labels: Record<string, string>): SnapshotRecord {
    const now = Date.now();
    const r = this.#db.prepare('INSERT INTO snapshots (key, parent, kind, created, updated, labels) VALUES (?, ?, ?, ?, ?, ?)').run(key, parent, kind, now, now, JSON.stringify(labels));
    return this.byId(Number(r.lastInsertRowid))!;
  }

  /** Active → committed under a new name (same id, so its directories stay). */
  commit(id: number, name: string, labels: Record<string, string>): void {
    this.#db.prepare('UPDATE snapshots SET key = ?, kind = ?, labels = ?, updated = ? WHERE id = ?').run(name, KIND_COMMITTED, JSON.stringify(labels), Date.now(), id);
  }

  setLabels(id: number, labels: Record<string, string>): void {
    this.#db.prepare('UPDATE snapshots SET labels = ?, updated = ? WHERE id = ?').run(JSON.stringify(labels), Date.now(), id);
  }

  remove(id: number): void {
    this.#db.prepare('DELETE FROM snapshots WHERE id = ?').run(id);
  }

  daemons(): DaemonRecord[] {
    return (this.#db.prepare('SELECT info FROM daemons').all() as Array<{ info: string }>).map((r) => JSON.parse(r.info) as DaemonRecord);
  }

  putDaemon(d: DaemonRecord): void {
    this.#db.prepare('INSERT OR REPLACE INTO daemons (id, info) VALUES (?, ?)').run(d.id, JSON.stringify(d));
  }

  removeDaemon(id: string): void {
    this.#db.prepare('DELETE FROM daemons WHERE id = ?').run(id);
  }
}
