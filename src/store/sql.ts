import pg from 'pg';
import type { Logger } from 'pino';

/**
 * The SQL surface the repositories use; PostgreSQL and the embedded SQLite both provide it.
 * Statements take `$1…$n` parameters and give back the same JavaScript values on every store for
 * the columns they read: Date for timestamptz, boolean, parsed JSON, numbers (±Infinity and NaN
 * included) for double precision; bigint and count columns may come back as strings, so callers
 * Number() them. A computed time (`min(created_at)`) comes back as SQLite keeps times, integer
 * milliseconds, so callers pass it through `new Date()`. The
 * few fragments the two dialects spell differently come from dialect.ts. A failed statement's
 * error carries PostgreSQL's SQLSTATE in `code` (the SQLite adapter maps its result codes to
 * them), which is how write-behind.ts tells a rejected write from a store that refuses writes.
 */
export interface Sql {
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<R[]>;
  /** Runs `fn` in one transaction; rolls back when it throws. */
  transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /**
   * For logs, status and the dialect: `postgres` (DATABASE_URL) or `sqlite` (the embedded store);
   * `pglite` only while an older version's embedded PGlite database is converted (pglite.ts).
   */
  readonly kind: 'postgres' | 'sqlite' | 'pglite';
}

/** Thrown when the store cannot be reached or refuses a statement. */
export class StoreError extends Error {
  /** PostgreSQL's SQLSTATE for the failure, when it comes from a statement. */
  readonly code?: string;

  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(message, options);
    this.name = 'StoreError';
    if (options?.code) this.code = options.code;
  }
}

/**
 * Connects to PostgreSQL. The pool reports idle-client errors to the log instead of crashing.
 * A connection whose statement failed is closed rather than pooled again (pg's `pool.query` does
 * so for single statements; a transaction does the same): its session may refuse every write
 * for its life — connected to a standby after a failover, or opened while the database was set
 * `default_transaction_read_only` — or be in an unknown state after a timeout, so the next
 * statement gets a new connection, which reaches the primary, or the database once writable.
 */
export function postgresSql(connectionString: string, log: Logger): Sql {
  const pool = new pg.Pool({ connectionString, max: 5, connectionTimeoutMillis: 5_000, statement_timeout: 10_000, query_timeout: 15_000 });
  // Only the message and code: pg attaches the whole client (connection parameters included) to this error.
  pool.on('error', (err) => log.warn({ error: err.message, code: (err as { code?: string }).code }, 'idle PostgreSQL connection failed'));
  const run = async <R>(client: pg.Pool | pg.PoolClient, text: string, params?: unknown[]): Promise<R[]> => {
    const result = await client.query(text, params as unknown[]);
    return result.rows as R[];
  };
  return {
    kind: 'postgres',
    query: (text, params) => run(pool, text, params),
    async transaction(fn) {
      const client = await pool.connect();
      // pg emits a connection cut between two statements as an 'error' event on the client, and
      // pg-pool listens only while the client is idle: without this the event is uncaught and
      // ends the process. The statement that follows fails, and the transaction with it.
      const onError = (err: Error): void => {
        log.warn({ error: err.message, code: (err as { code?: string }).code }, 'PostgreSQL connection failed inside a transaction');
      };
      client.on('error', onError);
      let failed = false;
      try {
        await client.query('BEGIN');
        const tx: Sql = { kind: 'postgres', query: (t, p) => run(client, t, p), transaction: (f) => f(tx), close: async () => {} };
        const out = await fn(tx);
        await client.query('COMMIT');
        return out;
      } catch (err) {
        failed = true;
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      } finally {
        client.removeListener('error', onError);
        client.release(failed);
      }
    },
    close: () => pool.end(),
  };
}
