/**
 * Database safety snapshots (runbook Option 3): taken before a revert of a deployment that
 * carries migrations, kept in the state directory, listed, and turned into the restore command
 * a person may run. rollguard itself never restores.
 */
export { takeSnapshot, type TakeSnapshotOptions } from './take.js';
export { findSnapshot, listSnapshots } from './list.js';
export { restoreHint, shellQuote } from './restore-hint.js';
export { snapshotsDir, type Snapshot } from './snapshot.js';
