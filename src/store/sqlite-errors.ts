import { StoreError } from './sql.js';

/**
 * SQLite's result codes, each given the SQLSTATE PostgreSQL reports for the same condition, so
 * that a failure means the same on either store (write-behind.ts classifies by SQLSTATE): a
 * statement wrong in itself (classes 23, 42) is rejected; a database that is locked, read-only,
 * full or failing on disk (55, 25, 53, 58, XX) refuses writes for now. Extended codes
 * (SQLITE_CONSTRAINT_CHECK) come first; a primary code (SQLITE_CONSTRAINT) covers the rest.
 */
const SQLSTATE: Readonly<Record<string, string>> = {
  SQLITE_CONSTRAINT_CHECK: '23514',
  SQLITE_CONSTRAINT_NOTNULL: '23502',
  SQLITE_CONSTRAINT_UNIQUE: '23505',
  SQLITE_CONSTRAINT_PRIMARYKEY: '23505',
  SQLITE_CONSTRAINT_FOREIGNKEY: '23503',
  SQLITE_CONSTRAINT: '23000',
  SQLITE_MISMATCH: '42804',
  SQLITE_RANGE: '42P02',
  SQLITE_ERROR: '42000',
  SQLITE_TOOBIG: '54000',
  SQLITE_AUTH: '42501',
  SQLITE_PERM: '42501',
  SQLITE_BUSY: '55P03',
  SQLITE_LOCKED: '55P03',
  SQLITE_READONLY: '25006',
  SQLITE_FULL: '53100',
  SQLITE_NOMEM: '53200',
  SQLITE_INTERRUPT: '57014',
  SQLITE_ABORT: '40000',
  SQLITE_SCHEMA: '40000',
  SQLITE_IOERR: '58030',
  SQLITE_CANTOPEN: '58030',
  SQLITE_NOLFS: '58030',
  SQLITE_PROTOCOL: '58030',
  SQLITE_CORRUPT: 'XX001',
  SQLITE_NOTADB: 'XX001',
};

/** The SQLSTATE for an SQLite result code; XX000 (internal error) for one not listed. */
export function sqlStateOf(sqliteCode: string): string {
  const primary = /^SQLITE_[A-Z]+/.exec(sqliteCode)?.[0] ?? sqliteCode;
  return SQLSTATE[sqliteCode] ?? SQLSTATE[primary] ?? 'XX000';
}

/** A statement SQLite refused: its message, PostgreSQL's SQLSTATE in `code`, SQLite's own code beside it. */
export class SqliteStatementError extends StoreError {
  constructor(message: string, readonly sqliteCode: string, cause: unknown) {
    super(message, { cause, code: sqlStateOf(sqliteCode) });
    this.name = 'SqliteStatementError';
  }
}

/**
 * The error to throw for one better-sqlite3 threw: its SqliteError (which has a result code)
 * becomes a SqliteStatementError; anything else (a TypeError or RangeError for a parameter it
 * cannot bind, which write-behind.ts counts as rejected) is thrown as it is.
 */
export function fromSqlite(err: unknown): unknown {
  const e = err as { name?: unknown; code?: unknown; message?: unknown };
  if (e?.name === 'SqliteError' && typeof e.code === 'string') return new SqliteStatementError(String(e.message), e.code, err);
  return err;
}
