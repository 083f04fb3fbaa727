import type { Logger } from 'pino';
import { migrate } from './migrations.js';
import { pgliteSql, postgresSql, StoreError, type Sql } from './sql.js';
import { Store } from './store.js';

/** PostgreSQL when `databaseUrl` is set, else the embedded PGlite under `stateDir`; migrated either way. */
export async function openStore(opts: { databaseUrl?: string; stateDir: string; log: Logger; migrate?: boolean }): Promise<Store> {
  let sql: Sql;
  try {
    sql = opts.databaseUrl ? postgresSql(opts.databaseUrl, opts.log) : await pgliteSql(opts.stateDir);
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
