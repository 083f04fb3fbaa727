import type { Logger } from 'pino';
import { migrate } from './migrations.js';
import { convertPgliteApart, pglitePending } from './pglite-convert.js';
import { makePrivate } from './private-files.js';
import { postgresSql, StoreError, type Sql } from './sql.js';
import { sqliteSql } from './sqlite.js';
import { Store } from './store.js';

/**
 * The embedded SQLite database under `stateDir`, its directory made private first. An older
 * version's embedded PGlite database found there is converted to it once, in a child process
 * (pglite-convert.ts).
 */
async function embedded(stateDir: string, log: Logger): Promise<Sql> {
  await makePrivate(stateDir);
  if (pglitePending(stateDir)) log.info({ stateDir }, 'converting the embedded PGlite database to SQLite');
  const converted = await convertPgliteApart(stateDir);
  if (converted?.renameError) {
    log.warn({ stateDir, file: converted.file, keptAs: converted.keptAs, rows: converted.rows, error: converted.renameError }, 'embedded PGlite database converted to SQLite; the PGlite directory could not be renamed and stays where it was (it is no longer read; remove it once satisfied)');
  } else if (converted) {
    log.info({ stateDir, file: converted.file, keptAs: converted.keptAs, rows: converted.rows }, 'embedded PGlite database converted to SQLite; the PGlite directory is kept, renamed');
  }
  return sqliteSql(stateDir);
}

/** PostgreSQL when `databaseUrl` is set, else the embedded SQLite database under `stateDir`; migrated either way. */
export async function openStore(opts: { databaseUrl?: string; stateDir: string; log: Logger; migrate?: boolean }): Promise<Store> {
  let sql: Sql;
  try {
    sql = opts.databaseUrl ? postgresSql(opts.databaseUrl, opts.log) : await embedded(opts.stateDir, opts.log);
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
