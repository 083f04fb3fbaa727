import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { link, open, rename, rm, unlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { migrate, MIGRATIONS } from './migrations.js';
import { PGLITE_DIR, pgliteSql } from './pglite.js';
import { makePrivate } from './private-files.js';
import { StoreError, type Sql } from './sql.js';
import { openSqlite, SQLITE_FILE } from './sqlite.js';

/** rollguard's tables, each before the tables that reference it. */
const TABLES = ['schema_migrations', 'deployments', 'samples', 'decisions', 'actions', 'known_good', 'outbox', 'holds', 'bad_images', 'leases'] as const;
/** The tables with an identity `id`, read in pages of PAGE rows by it (samples can be many). */
const BY_ID: ReadonlySet<string> = new Set(['deployments', 'samples', 'decisions', 'actions', 'outbox', 'holds']);
const PAGE = 2_000;

/** What a conversion did: where the PGlite directory is kept now, and the rows copied per table. */
export interface Conversion {
  file: string;
  /** Where the PGlite directory is now: renamed, or left where it was when the rename failed (`renameError`). */
  keptAs: string;
  rows: Record<string, number>;
  renameError?: string;
}

/** fs-native-extensions: OS file locks on a descriptor, released with it. */
interface FileLocks {
  waitForLock(fd: number): Promise<void>;
}
const locks = createRequire(import.meta.url)('fs-native-extensions') as FileLocks;

/** Held while a conversion runs, so a CLI command opening the store during the daemon's start waits for it instead of converting again. */
export const CONVERT_LOCK = '.convert.lock';

const quote = (name: string): string => `"${name}"`;

/** A directory name's form of `at`: ISO 8601 basic format, `20261130T120501Z`. */
const stamp = (at: Date): string => at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');

async function removeDatabase(file: string): Promise<void> {
  for (const suffix of ['', '-wal', '-shm', '-journal']) await rm(file + suffix, { force: true });
}

/** Makes a rename in `dir` durable. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function sourceTables(source: Sql): Promise<string[]> {
  const rows = await source.query<{ name: string }>(
    "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
  );
  return rows.map((r) => r.name);
}

async function columns(db: Sql, table: string): Promise<string[]> {
  const rows = db.kind === 'sqlite'
    ? await db.query<{ name: string }>('SELECT name FROM pragma_table_info($1)', [table])
    : await db.query<{ name: string }>('SELECT column_name AS name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position', [table]);
  return rows.map((r) => r.name);
}

const sameSet = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x) => b.includes(x));

/** Checks that the source holds exactly rollguard's tables and columns at the version this one knows. */
async function checkSource(source: Sql, target: Sql): Promise<void> {
  const extra = (await sourceTables(source)).filter((t) => !(TABLES as readonly string[]).includes(t));
  if (extra.length) throw new Error(`it holds tables that are not rollguard's (${extra.join(', ')}); converting would lose them`);
  const versions = (await source.query<{ version: number }>('SELECT version FROM schema_migrations')).map((r) => Number(r.version));
  const unknown = versions.filter((v) => !MIGRATIONS.some((m) => m.version === v));
  if (unknown.length) throw new Error(`it records schema versions this rollguard does not know (${unknown.join(', ')}): it was used by a newer version`);
  for (const table of TABLES) {
    const [from, to] = [await columns(source, table), await columns(target, table)];
    if (!sameSet(from, to)) throw new Error(`table ${table} has columns (${from.join(', ')}), SQLite's has (${to.join(', ')})`);
  }
}

/** Copies every row of `table`, IDs included; returns how many. */
async function copyTable(source: Sql, tx: Sql, table: string): Promise<number> {
  const cols = await columns(tx, table);
  const list = cols.map(quote).join(', ');
  const insert = `INSERT INTO ${quote(table)} (${list}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})`;
  let copied = 0;
  let after: number | undefined = BY_ID.has(table) ? 0 : undefined;
  for (;;) {
    const rows = after === undefined
      ? await source.query(`SELECT ${list} FROM ${quote(table)}`)
      : await source.query(`SELECT ${list} FROM ${quote(table)} WHERE id > $1 ORDER BY id LIMIT ${PAGE}`, [after]);
    for (const row of rows) {
      try {
        await tx.query(insert, cols.map((c) => row[c]));
      } catch (err) {
        const key = 'id' in row ? `id ${String(row.id)}` : JSON.stringify(Object.fromEntries(cols.slice(0, 2).map((c) => [c, row[c]])));
        throw new Error(`copying ${table} (${key}): ${(err as Error).message}`, { cause: err });
      }
    }
    copied += rows.length;
    if (after === undefined || rows.length < PAGE) return copied;
    after = Number(rows[rows.length - 1]?.id);
  }
}

/** Whether `stateDir` holds an older version's PGlite database and no SQLite file yet. */
export function pglitePending(stateDir: string): boolean {
  return !existsSync(path.join(stateDir, SQLITE_FILE)) && existsSync(path.join(stateDir, PGLITE_DIR, 'PG_VERSION'));
}

/**
 * Converts the embedded PGlite database an older version kept under `stateDir` to the SQLite
 * file, once: when `<stateDir>/pglite/PG_VERSION` exists and `<stateDir>/rollguard.db` does not.
 * The PGlite database is first brought to this version's schema (as starting this version on it
 * did before), then every row of every table is copied, IDs kept (so they go on after the
 * highest), in one transaction, into a new file that becomes rollguard.db only once complete;
 * the PGlite directory is then renamed `pglite.converted-<time>`, not deleted. When anything
 * fails, the new file is removed and the PGlite directory left where it was, and this throws:
 * the next start tries again. Returns undefined when there is nothing to convert.
 */
export async function convertPglite(stateDir: string, at: Date = new Date()): Promise<Conversion | undefined> {
  if (!pglitePending(stateDir)) return undefined;
  const lock = await open(path.join(stateDir, CONVERT_LOCK), 'a', 0o600);
  try {
    await locks.waitForLock(lock.fd);
    // Another process may have converted while this one waited.
    if (!pglitePending(stateDir)) return undefined;
    return await convertLocked(stateDir, at);
  } finally {
    await lock.close(); // releases the lock
  }
}

async function convertLocked(stateDir: string, at: Date): Promise<Conversion> {
  const file = path.join(stateDir, SQLITE_FILE);
  const pgliteDir = path.join(stateDir, PGLITE_DIR);
  const partial = `${file}.converting`;
  const keptAs = `${pgliteDir}.converted-${stamp(at)}`;
  let source: Sql | undefined;
  let target: Sql | undefined;
  let linked = false;
  let rows: Record<string, number>;
  try {
    await removeDatabase(partial); // what an interrupted conversion left
    source = await pgliteSql(stateDir);
    await migrate(source);
    target = await openSqlite(partial);
    await migrate(target);
    await checkSource(source, target);
    const from = source;
    rows = await target.transaction(async (tx) => {
      await tx.query('DELETE FROM schema_migrations'); // PGlite's rows, with the times they were applied, instead
      const counts: Record<string, number> = {};
      for (const table of TABLES) counts[table] = await copyTable(from, tx, table);
      return counts;
    });
    await target.close();
    target = undefined;
    await source.close();
    source = undefined;
    if (existsSync(`${partial}-wal`)) throw new Error(`${partial}-wal is still there after closing the database`);
    // The commit point: rollguard.db appears (never replacing one) and the directory is synced.
    await link(partial, file);
    linked = true;
    await syncDir(stateDir);
  } catch (err) {
    await target?.close().catch(() => {});
    await source?.close().catch(() => {});
    await removeDatabase(partial);
    if (linked) await removeDatabase(file);
    throw new StoreError(`converting the embedded PGlite database in ${pgliteDir} to SQLite failed; the PGlite database is kept and no SQLite file was made: ${(err as Error).message}`, { cause: err });
  } finally {
    await makePrivate(stateDir); // PGlite writes its files world-readable
  }
  // Converted: from here nothing removes rollguard.db. Setting PGlite's directory aside is tidying.
  await unlink(partial).catch(() => {});
  try {
    await rename(pgliteDir, keptAs);
    await syncDir(stateDir);
    return { file, keptAs, rows };
  } catch (err) {
    return { file, keptAs: existsSync(keptAs) ? keptAs : pgliteDir, rows, renameError: (err as Error).message };
  }
}

/** What pglite-convert-main prints as its last line of output. */
export type ConversionOutcome = { converted: Conversion | null } | { error: string };

/**
 * convertPglite in a child process (pglite-convert-main), which gives PGlite's memory (128 MiB of
 * WebAssembly memory and its compiled code) back to the system when it exits, rather than leaving
 * it in the daemon for its whole run. From source (tests), the child runs the TypeScript with this
 * process's loader.
 */
export async function convertPgliteApart(stateDir: string): Promise<Conversion | undefined> {
  if (!pglitePending(stateDir)) return undefined;
  const compiled = fileURLToPath(new URL('./pglite-convert-main.js', import.meta.url));
  const [script, flags] = existsSync(compiled) ? [compiled, []] : [fileURLToPath(new URL('./pglite-convert-main.ts', import.meta.url)), process.execArgv];
  let stdout: string;
  try {
    ({ stdout } = await promisify(execFile)(process.execPath, [...flags, script, stateDir], { maxBuffer: 16 * 1024 * 1024 }));
  } catch (err) {
    stdout = (err as { stdout?: string }).stdout ?? '';
    if (!stdout.trim()) throw new StoreError(`converting the embedded PGlite database under ${stateDir} to SQLite failed: ${(err as { stderr?: string }).stderr || (err as Error).message}`, { cause: err });
  }
  const last = stdout.trim().split('\n').at(-1) ?? '';
  let outcome: ConversionOutcome;
  try {
    outcome = JSON.parse(last) as ConversionOutcome;
  } catch (err) {
    throw new StoreError(`converting the embedded PGlite database under ${stateDir} to SQLite ended without saying how: ${last}`, { cause: err });
  }
  if ('error' in outcome) throw new StoreError(outcome.error);
  return outcome.converted ?? undefined;
}
