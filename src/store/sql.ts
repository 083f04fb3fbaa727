import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import type { Logger } from 'pino';

/** The SQL surface the repositories use; PostgreSQL and the embedded PGlite both provide it. */
export interface Sql {
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<R[]>;
  /** Runs `fn` in one transaction; rolls back when it throws. */
  transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /** `postgres` or `pglite`, for logs and status. */
  readonly kind: 'postgres' | 'pglite';
}

/** Thrown when the store cannot be reached or refuses a statement. */
export class StoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
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

/** Runs initdb for a new data directory in a child process, which gives its memory back when it exits. */
async function initPglite(dataDir: string): Promise<void> {
  const script = fileURLToPath(new URL('./pglite-init.js', import.meta.url));
  if (!existsSync(script)) return; // running from source: PGlite.create() below initialises in-process
  try {
    await promisify(execFile)(process.execPath, [script, dataDir], { timeout: 120_000 });
  } catch (err) {
    throw new StoreError(`initialising the embedded database in ${dataDir} failed: ${(err as { stderr?: string }).stderr || (err as Error).message}`, { cause: err });
  }
}

/** Opens (creating if needed) the embedded PGlite database under `stateDir`. */
export async function pgliteSql(stateDir: string): Promise<Sql> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLITE_OPTIONS } = await import('./pglite-options.js');
  const dataDir = path.resolve(stateDir, 'pglite');
  await mkdir(dataDir, { recursive: true });
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) await initPglite(dataDir);
  const db = await PGlite.create(dataDir, PGLITE_OPTIONS);
  type Queryable = Pick<typeof db, 'query'>;
  const wrap = (q: Queryable): Sql['query'] => async (text, params) => (await q.query(text, params)).rows as never;
  return {
    kind: 'pglite',
    query: wrap(db),
    transaction: (fn) =>
      db.transaction(async (t) => {
        const tx: Sql = { kind: 'pglite', query: wrap(t), transaction: (f) => f(tx), close: async () => {} };
        return fn(tx);
      }),
    close: () => db.close(),
  };
}
