import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Thrown when another live rollguard already owns the state directory. */
export class StateDirBusyError extends Error {
  constructor(readonly pid: number, dir: string) {
    super(`another rollguard (pid ${pid}) is running with state directory ${dir}`);
    this.name = 'StateDirBusyError';
  }
}

export interface RunningDaemon { pid: number; api: string }

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const pidFile = (dir: string): string => path.join(dir, 'rollguard.pid');

/** The daemon running with this state directory, if any (a stale pid file is ignored). */
export async function runningDaemon(dir: string): Promise<RunningDaemon | undefined> {
  try {
    const info = JSON.parse(await readFile(pidFile(dir), 'utf8')) as RunningDaemon;
    return typeof info.pid === 'number' && alive(info.pid) ? info : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Claims the state directory for this process; the embedded database allows one process at a
 * time. The pid file is created exclusively, so two daemons starting together cannot both win;
 * a pid file left by a process that is gone is replaced.
 */
export async function claimStateDir(dir: string): Promise<{ publish: (api: string) => Promise<void>; release: () => Promise<void> }> {
  await mkdir(dir, { recursive: true });
  const write = (api: string, flag: 'w' | 'wx'): Promise<void> => writeFile(pidFile(dir), JSON.stringify({ pid: process.pid, api }), { flag });
  for (let tries = 0; ; tries++) {
    try {
      await write('', 'wx');
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || tries > 0) throw err;
      const other = await runningDaemon(dir);
      if (other) throw new StateDirBusyError(other.pid, dir);
      await rm(pidFile(dir), { force: true });
    }
  }
  return { publish: (api) => write(api, 'w'), release: () => rm(pidFile(dir), { force: true }) };
}
