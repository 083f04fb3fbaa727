import { splitPassword } from './pg-url.js';
import type { Snapshot } from './snapshot.js';

/** One word for a POSIX shell, whatever it holds: in single quotes, each `'` written as `'\''`. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The command that puts a snapshot back (runbook Option 4), for a person to run: `pg_restore`
 * of the dump into the database it came from, dropping what the dump recreates, in one
 * transaction (all or nothing). The note after it is a shell comment, so the whole text can be
 * pasted. rollguard never runs it: a restore loses the writes made since the snapshot.
 */
export function restoreHint(snapshot: Pick<Snapshot, 'database' | 'path'>): string {
  // The sidecar never holds a password; taken out again in case one was edited in by hand.
  const database = splitPassword(snapshot.database).url;
  return [
    `pg_restore --clean --if-exists --single-transaction --no-owner --dbname ${shellQuote(database)} ${shellQuote(snapshot.path)}`,
    '# The password is taken from PGPASSWORD or ~/.pgpass. rollguard never restores by itself: a restore',
    '# (runbook Option 4) is a human decision and loses the writes made since the snapshot; stop the application first.',
  ].join('\n');
}
