import { randomBytes } from 'node:crypto';
import { access, chmod, open, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { makePrivate, PRIVATE_FILE_MODE } from '../../store/private-files.js';
import { runPgDump } from './pg-dump.js';
import { splitPassword } from './pg-url.js';
import { pruneSnapshots } from './retention.js';
import { dumpName, sidecarName, snapshotId, snapshotsDir, type Snapshot } from './snapshot.js';

export interface TakeSnapshotOptions {
  /** The database's `postgresql://` URL, password included if it has one. */
  url: string;
  stateDir: string;
  service: string;
  /** The deployment about to be reverted. */
  deploymentId: number;
  now: Date;
  /** pg_dump is killed past this. */
  timeoutMs: number;
  /** How many of the service's snapshots to keep, this one included. */
  keep: number;
  log: Logger;
}

const exists = (file: string): Promise<boolean> => access(file).then(() => true, () => false);

/**
 * The id for a new snapshot: normally `<service>-d<deployment>-<stamp>`; a second snapshot of the
 * same deployment within the same second gets `-2`, `-3`… instead of replacing the first.
 */
async function freeId(dir: string, stem: string): Promise<string> {
  for (let n = 1; ; n++) {
    const id = n === 1 ? stem : `${stem}-${n}`;
    if (!(await exists(path.join(dir, dumpName(id)))) && !(await exists(path.join(dir, sidecarName(id))))) return id;
  }
}

/** Writes `text` to `file` with mode 0600 through a temporary name, so a reader never sees half of it. */
async function writePrivately(file: string, text: string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString('hex')}.partial`);
  try {
    await writeFile(tmp, text, { mode: PRIVATE_FILE_MODE, flag: 'wx' });
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Takes a safety snapshot of the service's database before a revert (runbook Option 3 step 3):
 * `pg_dump -Fc` into `<stateDir>/snapshots/<id>.dump` (folder 0700, files 0600), written under a
 * temporary name and renamed once pg_dump succeeded, so no partial dump ever carries the final
 * name; then its JSON sidecar, which is what makes it listed. Then keeps the service's newest
 * `keep`. Throws when pg_dump fails or overruns `timeoutMs`, leaving no file behind.
 */
export async function takeSnapshot(opts: TakeSnapshotOptions): Promise<Snapshot> {
  const { url, password } = splitPassword(opts.url);
  if (!/^postgres(ql)?:\/\//i.test(url)) throw new Error('the database to snapshot must be given as a postgresql:// URL');
  const stem = snapshotId(opts.service, opts.deploymentId, opts.now);
  const dir = snapshotsDir(opts.stateDir);
  await makePrivate(dir);
  const id = await freeId(dir, stem);
  const file = path.join(dir, dumpName(id));
  const log = opts.log.child({ service: opts.service, deployment: opts.deploymentId, snapshot: id });
  // Created empty and private before pg_dump opens it (pg_dump keeps the mode of a file it
  // truncates), so the dump is never readable by others, whatever the umask.
  const tmp = path.join(dir, `.${dumpName(id)}.${randomBytes(4).toString('hex')}.partial`);
  const started = Date.now();
  try {
    await (await open(tmp, 'wx', PRIVATE_FILE_MODE)).close();
    await runPgDump({ url, password, file: tmp, timeoutMs: opts.timeoutMs });
    await chmod(tmp, PRIVATE_FILE_MODE);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const snapshot: Snapshot = {
    id,
    service: opts.service,
    deployment: opts.deploymentId,
    path: file,
    size: (await stat(file)).size,
    created_at: opts.now.toISOString(),
    database: url,
  };
  try {
    await writePrivately(path.join(dir, sidecarName(id)), `${JSON.stringify(snapshot, null, 2)}\n`);
  } catch (err) {
    // Without its sidecar the dump would be listed nowhere: the snapshot failed as a whole.
    await rm(file, { force: true });
    throw new Error(`could not record the database snapshot ${id}: ${(err as Error).message}`, { cause: err });
  }
  log.info({ path: file, size: snapshot.size, ms: Date.now() - started }, 'database snapshot taken');
  await pruneSnapshots(dir, opts.service, opts.keep, { justTaken: id, log }).catch((err: unknown) => {
    log.warn({ err }, 'could not apply the snapshot retention');
  });
  return snapshot;
}
