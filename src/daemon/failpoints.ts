import type { Logger } from 'pino';

/**
 * Named points in the watch, revert and notification paths where a test can stop the daemon, to
 * prove that a fault there is survived. `ROLLGUARD_FAILPOINTS` lists the names (comma
 * separated), each with what to do there after a colon:
 * - `hang` (the default): log `failpoint reached` and wait forever, so the test can `kill -9`
 *   the daemon in exactly that state;
 * - `sigstop`: the first time the point is reached, log `failpoint reached` and stop the whole
 *   process with SIGSTOP, as `kill -STOP` or a frozen VM would stop it there; it carries on from
 *   that point when the test sends SIGCONT.
 * Unset (always, in production), a failpoint is a no-op.
 */
export type FailpointName =
  | 'watch.revert-due'
  | 'revert.decided'
  | 'revert.after-migrate'
  | 'revert.after-park'
  | 'revert.after-start'
  | 'notify.after-send';

export const FAILPOINT_NAMES: readonly FailpointName[] = ['watch.revert-due', 'revert.decided', 'revert.after-migrate', 'revert.after-park', 'revert.after-start', 'notify.after-send'];

export type FailpointAction = 'hang' | 'sigstop';

const ACTIONS: readonly FailpointAction[] = ['hang', 'sigstop'];

/** Parses ROLLGUARD_FAILPOINTS; an unknown name or action is an error so a typo cannot make a test pass vacuously. */
export function parseFailpoints(raw: string | undefined): Map<FailpointName, FailpointAction> {
  const armed = new Map<FailpointName, FailpointAction>();
  const problems: string[] = [];
  for (const entry of (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const [name = '', action = 'hang'] = entry.split(':').map((s) => s.trim());
    if (!FAILPOINT_NAMES.includes(name as FailpointName)) problems.push(`unknown failpoint ${name}`);
    else if (!ACTIONS.includes(action as FailpointAction)) problems.push(`unknown action ${action} for ${name}`);
    else armed.set(name as FailpointName, action as FailpointAction);
  }
  if (problems.length) throw new Error(`ROLLGUARD_FAILPOINTS: ${problems.join('; ')}; known failpoints: ${FAILPOINT_NAMES.join(', ')}; actions: ${ACTIONS.join(', ')}`);
  return armed;
}

export type Failpoint = (name: FailpointName, fields?: Record<string, unknown>) => Promise<void>;

/** A failpoint function over the armed points; resolves at once for points not armed. */
export function failpoints(armed: ReadonlyMap<FailpointName, FailpointAction>, log: Logger, stop: () => void = () => process.kill(process.pid, 'SIGSTOP')): Failpoint {
  const stopped = new Set<FailpointName>();
  return (name, fields = {}) => {
    const action = armed.get(name);
    if (action === 'sigstop') {
      if (stopped.has(name)) return Promise.resolve();
      stopped.add(name);
      log.warn({ failpoint: name, ...fields }, 'failpoint reached; stopping the process (SIGSTOP) here');
      // The process stops inside this call and goes on from here when it is sent SIGCONT.
      stop();
      log.warn({ failpoint: name, ...fields }, 'failpoint: the process runs again (SIGCONT)');
      return Promise.resolve();
    }
    if (action !== 'hang') return Promise.resolve();
    log.warn({ failpoint: name, ...fields }, 'failpoint reached; pausing here');
    return new Promise<void>(() => {});
  };
}

export const noFailpoints: Failpoint = () => Promise.resolve();
