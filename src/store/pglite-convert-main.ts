/**
 * Converts an older version's embedded PGlite database to SQLite (convertPglite) and exits. Run as
 * a child process by `convertPgliteApart`, so that PGlite's memory goes with this process instead
 * of staying resident in the long-running daemon. Its last line of output is a ConversionOutcome.
 */
import { convertPglite, type ConversionOutcome } from './pglite-convert.js';

const stateDir = process.argv[2];
if (!stateDir) {
  process.stderr.write('usage: pglite-convert-main STATE_DIR\n');
  process.exit(2);
}
let outcome: ConversionOutcome;
try {
  outcome = { converted: (await convertPglite(stateDir)) ?? null };
} catch (err) {
  outcome = { error: (err as Error).message };
  process.exitCode = 1;
}
process.stdout.write(`${JSON.stringify(outcome)}\n`);
