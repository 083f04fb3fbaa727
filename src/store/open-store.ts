import type { Logger } from 'pino';
import { migrate } from './migrations.js';
import { makePrivate } from './private-files.js';
import { pgliteSql, postgresSql, StoreError, type Sql } from './sql.js';
import { Store } from './store.js';

/**
 * The embedded database with its files kept private: PGlite gives the files it creates mode 0666
 * whatever the umask, so they are restricted once it has opened (initdb, start-up files) and
 * again once it has closed (what it wrote while running, such as new WAL segments).
 */
async function privatePglite(stateDir: string): Promise<Sql> {
  await makePrivate(stateDir);
  const sql = await pgliteSql(stateDir);
  try {
    await makePrivate(stateDir);
  } catch (err) {
    await sql.close().catch(() => {});
    throw err;
  }
  return {
    ...sql,
    async close() {
      await sql.close();
      await makePrivate(stateDir);
    },
  };
}

/** PostgreSQL when `databaseUrl` is set, else the embedded PGlite under `stateDir`; migrated either way. */
export async function openStore(opts: { databaseUrl?: string; stateDir: string; log: Logger; migrate?: boolean }): Promise<Store> {
  let sql: Sql;
  try {
    sql = opts.databaseUrl ? postgresSql(opts.databaseUrl, opts.log) : await privatePglite(opts.stateDir);
  } catch (err) {
    throw new StoreError(`cannot open the embedded database under ${opts.stateDir}: ${(err as Error).message}`, { cause: err });
  }
  if (opts.migrate !== false) {
    try {
      const applied = await migrate(sql);
      if (applied.length) opts.log.info({ applied, store: sql.kind }, 'database migrations applied');
    } catch (err) {
      await sql.close().catch(() => {});
      const where = opts.databaseUrl ? 'PostgreSQL (DATABASE_URL)' : `the embedded database under ${opts.stateDir}`;
      throw new StoreError(`cannot prepare ${where}: ${(err as Error).message}`, { cause: err });
    }
  }
  return new Store(sql);
}
