import type { Sql } from './sql.js';

/**
 * Inserts many rows on the embedded SQLite store: one prepared single-row `insert` (its `$n`
 * are a row's values) run once per row, all in one transaction — all or none, and as fast on
 * SQLite as a multi-row INSERT (prepared once; no round trips). A multi-row INSERT would stop at
 * SQLite's 32,766 parameters (3,640 samples of 9 columns) with "too many SQL variables", which
 * the write queue counts as a rejected write.
 */
export async function insertRowsSqlite(sql: Sql, insert: string, rows: readonly unknown[][]): Promise<void> {
  if (!rows.length) return;
  await sql.transaction(async (tx) => {
    for (const row of rows) await tx.query(insert, row);
  });
}
