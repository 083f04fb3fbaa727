import { AsyncLocalStorage } from 'node:async_hooks';
import { closeSync, openSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from './private-files.js';
import { StoreError, type Sql } from './sql.js';
import { fromSqlite } from './sqlite-errors.js';

/** The embedded database's file under the state directory (with its `-wal` and `-shm` beside it). */
export const SQLITE_FILE = 'rollguard.db';

/**
 * How long a statement waits for another process's write lock (a CLI beside the daemon) before
 * SQLITE_BUSY. better-sqlite3 waits synchronously, stopping the whole event loop meanwhile, so
 * this stays short: the write queue treats SQLITE_BUSY as a store refusing writes and retries.
 */
const BUSY_TIMEOUT_MS = 1_000;

/** Prepared statements kept per connection: the repositories' statements, and a few built per call. */
const STATEMENT_CACHE = 256;

type Bindable = number | bigint | string | Buffer | null;

/**
 * A parameter as SQLite keeps it, the way PostgreSQL would take it: a Date as integer
 * milliseconds since the epoch (how every timestamptz column holds time), a boolean as 1 or 0,
 * an integer as an integer (a JavaScript number would be bound as a real, and a text column
 * would read "5.0"), NaN as the text 'NaN' (SQLite would turn a NaN real into NULL), an array or
 * object as its JSON (an array parameter is read with json_each, see dialect.ts). `undefined` is
 * NULL, as with pg.
 */
export function toSqlite(value: unknown, n: number): Bindable {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) {
    const ms = value.getTime();
    if (Number.isNaN(ms)) throw new TypeError(`parameter $${n} is an invalid date`);
    return BigInt(ms);
  }
  if (typeof value === 'boolean') return value ? 1n : 0n;
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : Number.isSafeInteger(value) ? BigInt(value) : value;
  if (typeof value === 'bigint' || typeof value === 'string' || Buffer.isBuffer(value)) return value;
  if (typeof value === 'object') return JSON.stringify(value);
  throw new TypeError(`parameter $${n} is a ${typeof value}, which SQLite cannot store`);
}

/** Reads a column back as PostgreSQL's driver gives the same column; `column` names it in errors. */
type Reader = (value: unknown, column: string) => unknown;

const unexpected = (value: unknown, column: string, what: string): StoreError =>
  new StoreError(`column ${column} holds ${JSON.stringify(value)} (${typeof value}), not ${what}`);

/** By declared type (migrations.ts, SQLite's DDL): the columns whose values SQLite keeps in another form. */
const READERS: Readonly<Record<string, Reader>> = {
  timestamptz: (v, c) => {
    if (v === null) return null;
    if (typeof v === 'number' || typeof v === 'bigint') return new Date(Number(v));
    throw unexpected(v, c, 'a time in milliseconds');
  },
  boolean: (v, c) => {
    if (v === null) return null;
    if (v === 0 || v === 1) return v === 1;
    throw unexpected(v, c, 'a boolean (0 or 1)');
  },
  json: (v, c) => {
    if (v === null) return null;
    if (typeof v === 'string') return JSON.parse(v) as unknown;
    throw unexpected(v, c, 'JSON text');
  },
  'double precision': (v, c) => {
    if (v === null || typeof v === 'number') return v;
    if (v === 'NaN') return Number.NaN;
    throw unexpected(v, c, 'a number');
  },
};

interface Prepared {
  statement: BetterSqlite3.Statement<[Record<string, Bindable>?], Record<string, unknown>>;
  /** The result's columns that need reading back, by name. */
  readers: [string, Reader][];
}

/**
 * One SQLite connection behind the async Sql interface. better-sqlite3 runs each statement
 * synchronously; what needs care is the transaction, which spans awaits: while one is open, every
 * other statement and transaction waits for it (a queue), so none slips inside it. A statement on
 * the connection itself from inside its own transaction (rather than on the transaction's handle)
 * would wait for that transaction forever, so it fails at once instead.
 */
class Connection {
  private readonly statements = new Map<string, Prepared>();
  private tail: Promise<unknown> = Promise.resolve();
  /** The transaction the current async context runs in, while it is open. */
  private readonly within = new AsyncLocalStorage<{ open: boolean }>();

  constructor(private readonly db: BetterSqlite3.Database, private readonly file: string) {}

  readonly sql: Sql = {
    kind: 'sqlite',
    query: <R>(text: string, params?: unknown[]) => this.queued(() => this.run(text, params) as R[]),
    transaction: (fn) => this.queued(() => this.transaction(fn)),
    close: () => this.queued(() => {
      this.db.close();
    }),
  };

  /** Runs `fn` after every statement and transaction queued before it. */
  private queued<T>(fn: () => T | Promise<T>): Promise<T> {
    if (this.within.getStore()?.open) {
      return Promise.reject(new StoreError(`a statement on ${this.file} from inside one of its transactions must use the transaction's handle`));
    }
    const result = this.tail.then(fn);
    this.tail = result.catch(() => undefined);
    return result;
  }

  private async transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
    const scope = { open: true };
    const tx: Sql = {
      kind: 'sqlite',
      query: async <R>(text: string, params?: unknown[]) => {
        if (!scope.open) throw new StoreError(`a statement on ${this.file} after its transaction ended`);
        return this.run(text, params) as R[];
      },
      transaction: (f) => f(tx),
      close: async () => {},
    };
    // IMMEDIATE: the write lock is taken now, so a transaction never fails half-way for want of it.
    this.run('BEGIN IMMEDIATE');
    try {
      const out = await this.within.run(scope, () => fn(tx));
      this.run('COMMIT');
      return out;
    } catch (err) {
      if (this.db.inTransaction) {
        try {
          this.run('ROLLBACK');
        } catch (failed) {
          throw new StoreError(`rolling back on ${this.file} failed (${(failed as Error).message}) after: ${(err as Error).message}`, { cause: err });
        }
      }
      throw err;
    } finally {
      scope.open = false;
    }
  }

  private prepared(text: string): Prepared {
    let p = this.statements.get(text);
    if (!p) {
      const statement = this.db.prepare<[Record<string, Bindable>?], Record<string, unknown>>(text);
      const readers: [string, Reader][] = [];
      if (statement.reader) {
        for (const c of statement.columns()) {
          const reader = c.type ? READERS[c.type.toLowerCase()] : undefined;
          if (reader) readers.push([c.name, reader]);
        }
      }
      p = { statement, readers };
      if (this.statements.size >= STATEMENT_CACHE) this.statements.delete(this.statements.keys().next().value as string);
      this.statements.set(text, p);
    }
    return p;
  }

  /** One statement, `$n` being SQLite's parameter named `n`. */
  private run(text: string, params: unknown[] = []): Record<string, unknown>[] {
    try {
      const { statement, readers } = this.prepared(text);
      const args: [Record<string, Bindable>?] = params.length ? [Object.fromEntries(params.map((v, i) => [String(i + 1), toSqlite(v, i + 1)]))] : [];
      if (!statement.reader) {
        statement.run(...args);
        return [];
      }
      const rows = statement.all(...args);
      if (readers.length) for (const row of rows) for (const [name, read] of readers) row[name] = read(row[name], name);
      return rows;
    } catch (err) {
      throw fromSqlite(err);
    }
  }
}

/**
 * Opens (creating if needed) an SQLite database file for the store: write-ahead logging with
 * `synchronous=FULL`, so a committed write is on disk before COMMIT returns and survives a
 * crash or a power loss; foreign keys enforced; a busy timeout. The file is created 0600, and
 * SQLite gives its `-wal` and `-shm` files the database file's mode.
 */
export async function openSqlite(file: string): Promise<Sql> {
  const { default: Database } = await import('better-sqlite3');
  let db: BetterSqlite3.Database;
  try {
    closeSync(openSync(file, 'a', PRIVATE_FILE_MODE));
    db = new Database(file, { timeout: BUSY_TIMEOUT_MS });
  } catch (err) {
    throw new StoreError(`cannot open ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') throw new StoreError(`${file}: SQLite keeps journal_mode ${String(mode)}, not wal`);
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // now(): the database's clock, as PostgreSQL's statements name it; here the process's.
    db.function('now', { deterministic: false }, () => BigInt(Date.now()));
  } catch (err) {
    db.close();
    throw fromSqlite(err);
  }
  return new Connection(db, file).sql;
}

/** The embedded store: `<stateDir>/rollguard.db`. */
export async function sqliteSql(stateDir: string): Promise<Sql> {
  await mkdir(stateDir, { recursive: true, mode: PRIVATE_DIR_MODE });
  return openSqlite(path.join(stateDir, SQLITE_FILE));
}
