import { chmod, lstat, mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';

/** A new state directory's mode: it holds every guarded container's spec, environment secrets included. */
export const PRIVATE_DIR_MODE = 0o700;
/** The mode of the files rollguard itself creates in the state directory. */
export const PRIVATE_FILE_MODE = 0o600;

/** Thrown when a file under the state directory cannot be made private (not ours, read-only file system). */
export class PrivateFilesError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PrivateFilesError';
  }
}

const gone = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';

/** Takes away every group and other permission (and the set-id and sticky bits); the owner's stay as they are. */
async function ownerOnly(file: string, current: number): Promise<void> {
  const mode = current & 0o700;
  if ((current & 0o7777) === mode) return;
  try {
    await chmod(file, mode);
  } catch (err) {
    if (gone(err)) return;
    throw new PrivateFilesError(`cannot make ${file} private (chmod ${mode.toString(8)}): ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Creates `dir` when missing and makes it and everything under it private to this user: group
 * and other lose every permission, so the database's directories become 0700 and its files 0600,
 * whatever the umask and whatever an older version left. Owner bits are kept (an operator's
 * executable stays executable). An older version's PGlite database writes its files
 * world-readable (0666, past the umask), so this runs again once one has been converted.
 * Symbolic links are left alone, never followed; a file that disappears during the walk is skipped.
 */
export async function makePrivate(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const walk = async (at: string): Promise<void> => {
    let info;
    try {
      info = await lstat(at);
    } catch (err) {
      if (gone(err)) return;
      throw new PrivateFilesError(`cannot read ${at}: ${(err as Error).message}`, { cause: err });
    }
    if (info.isFile()) return ownerOnly(at, info.mode);
    if (!info.isDirectory()) return;
    await ownerOnly(at, info.mode);
    let names: string[];
    try {
      names = await readdir(at);
    } catch (err) {
      if (gone(err)) return;
      throw new PrivateFilesError(`cannot list ${at}: ${(err as Error).message}`, { cause: err });
    }
    for (const name of names) await walk(path.join(at, name));
  };
  await walk(dir);
}
