import { constants } from 'node:fs';
import { open, stat, unlink, type FileHandle } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { makePrivate, PRIVATE_FILE_MODE } from '../store/private-files.js';

/** fs-native-extensions: OS file locks on a descriptor (open file description locks on Linux, flock elsewhere). */
interface FileLocks {
  /** Takes the lock without waiting; false when another descriptor holds a conflicting one. */
  tryLock(fd: number, opts?: { shared?: boolean }): boolean;
  unlock(fd: number): void;
}
const locks = createRequire(import.meta.url)('fs-native-extensions') as FileLocks;

/** What the running daemon records in its lock file; `api` is empty until its HTTP server listens. */
export interface RunningDaemon {
  /** Undefined when the lock is held but its record cannot be read (not written by rollguard). */
  pid?: number;
  api: string;
}

/** Thrown when another live rollguard holds the state directory's lock. */
export class StateDirBusyError extends Error {
  constructor(readonly holder: RunningDaemon | undefined, dir: string, lockFile: string) {
    const who = holder?.pid ? `pid ${holder.pid}` : 'pid not recorded';
    const api = holder?.api ? `, API ${holder.api}` : '';
    super(`another rollguard (${who}) is running with state directory ${dir}: it holds the lock on ${lockFile}${api}`);
    this.name = 'StateDirBusyError';
  }
}

/** The lock file: held locked for the daemon's lifetime, its content says who holds it. */
export const lockFile = (dir: string): string => path.join(dir, 'rollguard.pid');

/** A daemon's record as written by `claimStateDir`; undefined for anything else (empty, half-written). */
export function parseRecord(text: string): RunningDaemon | undefined {
  try {
    const info = JSON.parse(text) as Partial<RunningDaemon> | null;
    if (typeof info?.pid === 'number' && Number.isInteger(info.pid) && info.pid > 0 && typeof info.api === 'string') return { pid: info.pid, api: info.api };
  } catch {
    // not a record
  }
  return undefined;
}

/** The holder writes its record right after taking the lock: a reader may catch it half-written. */
async function readRecord(file: FileHandle): Promise<RunningDaemon | undefined> {
  const buffer = Buffer.alloc(4096);
  for (let tries = 0; tries < 20; tries++) {
    // Read from the start each time (a file handle's readFile goes on from where the last one ended).
    const { bytesRead } = await file.read(buffer, 0, buffer.length, 0);
    const record = parseRecord(buffer.toString('utf8', 0, bytesRead).trim());
    if (record) return record;
    await sleep(10);
  }
  return undefined;
}

/**
 * The daemon running with this state directory, if any: one holds the lock on the lock file.
 * Its record gives the pid and API address. A lock file nobody holds (left by a process that is
 * gone, whatever process has its pid now) means none runs. The check takes a shared lock for an
 * instant, which a daemon starting at that moment waits out.
 */
export async function runningDaemon(dir: string): Promise<RunningDaemon | undefined> {
  const name = lockFile(dir);
  let file: FileHandle;
  try {
    file = await open(name, constants.O_RDONLY);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read the lock file ${name}: ${(err as Error).message}`, { cause: err });
  }
  try {
    if (locks.tryLock(file.fd, { shared: true })) {
      locks.unlock(file.fd);
      return undefined;
    }
    return (await readRecord(file)) ?? { api: '' };
  } finally {
    await file.close();
  }
}

/** How long a claim waits out a shared lock taken by `runningDaemon` (held for an instant). */
const CLAIM_PATIENCE_MS = 1_000;

async function lockWithin(file: FileHandle, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (locks.tryLock(file.fd)) return true;
    if (Date.now() >= deadline) return false;
    await sleep(25);
  }
}

/**
 * Claims the state directory for this process: one rollguard at a time uses a state directory
 * and its embedded database, leading every service it watches. An exclusive OS lock on the lock file, held until `release` or the process ends (the
 * kernel drops it with the process, however it ends), decides; so two daemons starting together
 * cannot both win, and one that was killed never keeps the directory. The lock file's content,
 * the holder's pid and API address, is only for the CLI and for the refusal message. The
 * directory and everything already in it are made private first: an older version left them
 * world-readable.
 */
export async function claimStateDir(dir: string): Promise<{ publish: (api: string) => Promise<void>; release: () => Promise<void> }> {
  await makePrivate(dir);
  const name = lockFile(dir);
  for (;;) {
    // Opened without truncating: a daemon that is refused leaves the holder's record alone.
    const file = await open(name, constants.O_RDWR | constants.O_CREAT, PRIVATE_FILE_MODE);
    try {
      if (!(await lockWithin(file, CLAIM_PATIENCE_MS))) throw new StateDirBusyError(await readRecord(file), dir, name);
      // The holder before removes the file as it releases: a lock on that removed file proves
      // nothing, so only a lock on the file still at this name counts.
      const [held, current] = await Promise.all([file.stat(), stat(name).catch(() => undefined)]);
      if (!current || current.ino !== held.ino || current.dev !== held.dev) {
        await file.close();
        continue;
      }
    } catch (err) {
      await file.close();
      throw err;
    }
    const write = async (api: string): Promise<void> => {
      const text = JSON.stringify({ pid: process.pid, api } satisfies RunningDaemon);
      await file.truncate(0);
      await file.write(text, 0, 'utf8');
      await file.sync();
    };
    try {
      await write('');
    } catch (err) {
      await file.close();
      throw err;
    }
    let released = false;
    return {
      publish: write,
      async release() {
        if (released) return;
        released = true;
        // Removed while still locked, so no other process locks it first and then sees it go. A
        // file that cannot be removed is harmless: nobody holds its lock once this one closes.
        await unlink(name).catch(() => {});
        await file.close();
      },
    };
  }
}
