/**
 * The embedded PGlite database of versions before SQLite, kept only to be converted
 * (pglite-convert.ts): PGlite is imported when one is found, never otherwise.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { StoreError, type Sql } from './sql.js';

/** Where an older version kept its embedded PGlite database, under the state directory. */
export const PGLITE_DIR = 'pglite';

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
  const dataDir = path.resolve(stateDir, PGLITE_DIR);
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
