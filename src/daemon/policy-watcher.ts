import { realpathSync, statSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';

export interface PolicyWatchOptions {
  log: Logger;
  /** Called once per burst of changes, `debounceMs` after the last event. Must not throw. */
  onChange: () => void;
  debounceMs?: number;
  /** While the policy's directory cannot be watched (gone, inotify limits), try again this often. */
  retryMs?: number;
}

export interface PolicyWatch {
  close(): void;
}

/** A directory to watch and the entry in it that is the policy (or what its symlink points at). */
interface Target { dir: string; base: string; ino: number | undefined }

function inode(dir: string): number | undefined {
  try {
    return statSync(dir).ino;
  } catch {
    return undefined;
  }
}

/** The policy path and, when it is a symlink into another directory, the file it resolves to. */
function targetsOf(file: string): Target[] {
  const entries = [file];
  try {
    const real = realpathSync(file);
    if (path.dirname(real) !== path.dirname(file)) entries.push(real);
  } catch {
    // Missing right now (mid-save, or removed); its directory is still watched.
  }
  return entries.map((f) => ({ dir: path.dirname(f), base: path.basename(f), ino: inode(path.dirname(f)) }));
}

const sameTargets = (a: Target[], b: Target[]): boolean =>
  a.length === b.length && a.every((t, i) => t.dir === b[i]?.dir && t.base === b[i]?.base && t.ino === b[i]?.ino);

/**
 * Watches the policy file for changes. It watches the file's directory, not the file: editors
 * save by writing a new file and renaming it over the old one, which would leave a watch on the
 * file itself looking at a deleted inode. When the directory itself is replaced or removed the
 * watch is re-armed (retrying until the directory is back), and a change is reported so that
 * the file is re-read. Events come in bursts (truncate, write, rename); one call follows each burst.
 */
export function watchPolicyFile(file: string, opts: PolicyWatchOptions): PolicyWatch {
  const absolute = path.resolve(file);
  const debounceMs = opts.debounceMs ?? 300;
  const retryMs = opts.retryMs ?? 1_000;
  const log = opts.log.child({ policy: absolute });
  let targets: Target[] = [];
  let watchers: FSWatcher[] = [];
  let debounce: NodeJS.Timeout | undefined;
  let retry: NodeJS.Timeout | undefined;
  let failing = false;
  let closed = false;

  const changed = (): void => {
    if (closed) return;
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      debounce = undefined;
      if (closed) return;
      // A symlink may now point elsewhere, or a directory may have been swapped under us.
      if (!sameTargets(targets, targetsOf(absolute))) arm();
      opts.onChange();
    }, debounceMs);
  };

  const disarm = (): void => {
    for (const w of watchers) w.close();
    watchers = [];
    clearTimeout(retry);
    retry = undefined;
  };

  /** The directory was moved or deleted: the watch follows the old inode, so watch the path again. */
  const directoryMoved = (target: Target): void => {
    if (inode(target.dir) === target.ino) return;
    log.info({ dir: target.dir }, 'policy directory replaced; watching it again');
    arm();
    changed();
  };

  function arm(): void {
    disarm();
    if (closed) return;
    targets = targetsOf(absolute);
    try {
      for (const target of targets) {
        const w = watch(target.dir, { persistent: false });
        watchers.push(w);
        w.on('change', (_event, name) => {
          const entry = name === null ? null : String(name);
          if (entry === null || entry === target.base) changed();
          else if (entry === path.basename(target.dir)) directoryMoved(target);
        });
        w.on('error', (err) => {
          log.warn({ err, dir: target.dir }, 'policy watch failed; watching again');
          arm();
          changed();
        });
      }
      if (failing) log.info('watching the policy file for changes again');
      failing = false;
    } catch (err) {
      disarm();
      if (!failing) log.warn({ err }, 'cannot watch the policy file for changes; retrying (SIGHUP still reloads)');
      failing = true;
      retry = setTimeout(() => {
        arm();
        if (!failing) changed();
      }, retryMs);
      retry.unref();
    }
  }

  arm();
  return {
    close() {
      closed = true;
      clearTimeout(debounce);
      disarm();
    },
  };
}
