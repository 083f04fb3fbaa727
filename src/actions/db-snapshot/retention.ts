import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { readSnapshots } from './list.js';
import { dumpName, newestFirst, sidecarName, type Snapshot } from './snapshot.js';

/**
 * The snapshots of `service` past its newest `keep` (by `created_at`), which retention deletes;
 * other services' are never among them. `justTaken` always counts as the newest: a clock set
 * back must not make retention delete the snapshot a revert is about to rely on.
 */
export function expiredSnapshots(all: readonly Snapshot[], service: string, keep: number, justTaken?: string): Snapshot[] {
  const mine = all.filter((s) => s.service === service).sort(newestFirst);
  const ordered = [...mine.filter((s) => s.id === justTaken), ...mine.filter((s) => s.id !== justTaken)];
  return ordered.slice(Math.max(1, Math.floor(keep)));
}

/**
 * Deletes the snapshots of `service` in the snapshots folder `dir` beyond its newest `keep`,
 * each sidecar first (so a dump is never listed once its deletion began), then its dump. Returns
 * the ids deleted. A snapshot that cannot be deleted is logged and skipped: retention never
 * fails the snapshot that was just taken.
 */
export async function pruneSnapshots(dir: string, service: string, keep: number, opts: { justTaken?: string; log?: Logger } = {}): Promise<string[]> {
  const deleted: string[] = [];
  for (const old of expiredSnapshots(await readSnapshots(dir), service, keep, opts.justTaken)) {
    try {
      await rm(path.join(dir, sidecarName(old.id)), { force: true });
      await rm(path.join(dir, dumpName(old.id)), { force: true });
      deleted.push(old.id);
    } catch (err) {
      opts.log?.warn({ err, snapshot: old.id, service }, 'could not delete an old database snapshot');
    }
  }
  if (deleted.length) opts.log?.info({ service, deleted, keep }, 'old database snapshots deleted');
  return deleted;
}
