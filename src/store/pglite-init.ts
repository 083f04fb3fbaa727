/**
 * Creates an embedded PGlite database directory and exits. Run as a child process by
 * `pgliteSql`, so that the memory initdb touches (600+ MB) is returned to the system
 * instead of staying resident in the long-running daemon.
 */
import { PGlite } from '@electric-sql/pglite';
import { PGLITE_OPTIONS } from './pglite-options.js';

const dataDir = process.argv[2];
if (!dataDir) {
  process.stderr.write('usage: pglite-init DATA_DIR\n');
  process.exit(2);
}
const db = await PGlite.create(dataDir, PGLITE_OPTIONS);
await db.close();
