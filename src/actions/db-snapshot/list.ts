import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { dumpName, newestFirst, sidecarName, sidecarSchema, snapshotsDir, type Snapshot } from './snapshot.js';

const gone = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';

/** The snapshot whose sidecar is `name` in `dir`, or undefined when it is not one (a stray file, a dump gone). */
async function readSnapshot(dir: string, name: string): Promise<Snapshot | undefined> {
  let parsed;
  try {
    parsed = sidecarSchema.safeParse(JSON.parse(await readFile(path.join(dir, name), 'utf8')));
  } catch {
    return undefined;
  }
  if (!parsed.success || sidecarName(parsed.data.id) !== name) return undefined;
  // The dump is found beside its sidecar, wherever the state directory is now; its size is read
  // from the file itself. A sidecar whose dump was deleted by hand lists nothing to restore.
  const file = path.join(dir, dumpName(parsed.data.id));
  try {
    const info = await stat(file);
    if (!info.isFile()) return undefined;
    return { ...parsed.data, path: file, size: info.size };
  } catch (err) {
    if (gone(err)) return undefined;
    throw err;
  }
}

/** Every snapshot in a snapshots folder, newest first; a folder that does not exist has none. */
export async function readSnapshots(dir: string): Promise<Snapshot[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if (gone(err)) return [];
    throw new Error(`cannot list the snapshots in ${dir}: ${(err as Error).message}`, { cause: err });
  }
  // Temporary files start with a dot and do not end in .json; anything else that is not a valid
  // sidecar next to its dump is left alone and not listed.
  const sidecars = names.filter((n) => n.endsWith('.json') && !n.startsWith('.'));
  const found = await Promise.all(sidecars.map((n) => readSnapshot(dir, n)));
  return found.filter((s): s is Snapshot => s !== undefined).sort(newestFirst);
}

/** The database snapshots kept in the state directory, newest first; only `service`'s when given. */
export async function listSnapshots(stateDir: string, service?: string): Promise<Snapshot[]> {
  const all = await readSnapshots(snapshotsDir(stateDir));
  return service === undefined ? all : all.filter((s) => s.service === service);
}

/** The snapshot with this id in the state directory, if there is one. */
export async function findSnapshot(stateDir: string, id: string): Promise<Snapshot | undefined> {
  return (await listSnapshots(stateDir)).find((s) => s.id === id);
}
