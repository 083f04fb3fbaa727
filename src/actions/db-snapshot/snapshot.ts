import path from 'node:path';
import { z } from 'zod';

/**
 * A database safety snapshot (runbook Option 3 step 3): a `pg_dump -Fc` file in the state
 * directory, and what its JSON sidecar records about it. Never holds a password.
 */
export interface Snapshot {
  /** The file's stem: `<service>-d<deployment>-<YYYYMMDDTHHMMSSZ>`. */
  id: string;
  service: string;
  /** The deployment whose revert the snapshot was taken for. */
  deployment: number;
  /** Absolute path of the dump. */
  path: string;
  /** The dump's size in bytes. */
  size: number;
  /** When it was taken, ISO 8601. */
  created_at: string;
  /** The database's URL with the password removed (user, host and query kept). */
  database: string;
}

/** The folder of the state directory that holds the snapshots. */
export const SNAPSHOTS_FOLDER = 'snapshots';

/** Absolute path of the snapshots folder: absolute so that a restore command works from anywhere. */
export const snapshotsDir = (stateDir: string): string => path.resolve(stateDir, SNAPSHOTS_FOLDER);

/** The dump of snapshot `id`. */
export const dumpName = (id: string): string => `${id}.dump`;
/** The JSON sidecar of snapshot `id`: listings read these, never the dumps. */
export const sidecarName = (id: string): string => `${id}.json`;

/** The names the policy allows for services; nothing that could leave the folder (no `/`). */
const SERVICE_NAME = /^[A-Za-z0-9_.-]+$/;

/** `2026-11-29T23:30:00.123Z` → `20261129T233000Z` (UTC, to the second: sortable and safe in a file name). */
export function snapshotStamp(now: Date): string {
  return now.toISOString().replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '');
}

/** The id (file stem) of the snapshot of `service` before reverting `deployment`, taken at `now`. */
export function snapshotId(service: string, deployment: number, now: Date): string {
  if (!SERVICE_NAME.test(service)) throw new Error(`cannot name a snapshot for service "${service}": service names are letters, digits, _ . and -`);
  if (!Number.isSafeInteger(deployment) || deployment < 0) throw new Error(`cannot name a snapshot for deployment ${deployment}: expected a whole number`);
  if (Number.isNaN(now.getTime())) throw new Error('cannot name a snapshot: the time is not a valid date');
  return `${service}-d${deployment}-${snapshotStamp(now)}`;
}

/** A sidecar as it must be on disk; anything else in the folder is not a snapshot. */
export const sidecarSchema = z.object({
  id: z.string().min(1),
  service: z.string().regex(SERVICE_NAME),
  deployment: z.number().int().nonnegative(),
  path: z.string(),
  size: z.number().int().nonnegative(),
  created_at: z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'expected an ISO 8601 time'),
  database: z.string(),
});

/** Newest first by `created_at`; the same second falls back to the id, so the order is stable. */
export function newestFirst(a: Snapshot, b: Snapshot): number {
  return Date.parse(b.created_at) - Date.parse(a.created_at) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}
