import { findSnapshot, listSnapshots, restoreHint, shellQuote, snapshotsDir, type Snapshot } from '../actions/db-snapshot/index.js';
import { EXIT } from './exit-codes.js';
import { renderTable } from './format.js';

/** A size for people: `812 B`, `3.4 KiB`, `120 MiB`, `1.2 GiB`. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${n} B` : `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** The JSON shape of `rollguard snapshots --json` (operators script against it). */
export function snapshotJson(s: Snapshot): { id: string; service: string; deployment: number; path: string; size: number; created_at: string } {
  return { id: s.id, service: s.service, deployment: s.deployment, path: s.path, size: s.size, created_at: s.created_at };
}

/** `rollguard snapshots`: the database safety snapshots in the state directory, newest first. Needs no daemon. */
export async function printSnapshots(opts: { service?: string; json: boolean; stateDir: string }): Promise<number> {
  const snapshots = await listSnapshots(opts.stateDir, opts.service);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(snapshots.map(snapshotJson), null, 2)}\n`);
    return EXIT.ok;
  }
  if (!snapshots.length) {
    process.stdout.write(`no database snapshots${opts.service ? ` of service ${opts.service}` : ''} in ${snapshotsDir(opts.stateDir)}\n`);
    return EXIT.ok;
  }
  const rows = snapshots.map((s) => [s.id, s.service, String(s.deployment), s.created_at, formatBytes(s.size)]);
  process.stdout.write(`${renderTable(['ID', 'SERVICE', 'DEPLOYMENT', 'CREATED', 'SIZE'], rows)}\n`);
  process.stdout.write(`\nin ${snapshotsDir(opts.stateDir)}; the command to restore one: rollguard restore-hint ID\n`);
  return EXIT.ok;
}

/** `rollguard restore-hint ID`: the pg_restore command for a snapshot; rollguard never runs it. */
export async function printRestoreHint(id: string, opts: { stateDir: string }): Promise<number> {
  const snapshot = await findSnapshot(opts.stateDir, id);
  if (!snapshot) {
    process.stderr.write(`no database snapshot "${id}" in ${snapshotsDir(opts.stateDir)}; list them with: rollguard snapshots --state-dir ${/^[\w./-]+$/.test(opts.stateDir) ? opts.stateDir : shellQuote(opts.stateDir)}\n`);
    return EXIT.failure;
  }
  process.stdout.write(`${restoreHint(snapshot)}\n`);
  return EXIT.ok;
}
