import type { Logger } from 'pino';

/**
 * Named points in the revert and notification paths where a test can stop the daemon dead, to
 * prove that a `kill -9` there is survived. `ROLLGUARD_FAILPOINTS` lists the names (comma
 * separated); when the daemon reaches a listed point it logs `failpoint reached` and waits
 * forever, so the test can kill it in exactly that state. Unset (always, in production), a
 * failpoint is a no-op.
 */
export type FailpointName =
  | 'revert.decided'
  | 'revert.after-park'
  | 'revert.after-start'
  | 'notify.after-send';

export const FAILPOINT_NAMES: readonly FailpointName[] = ['revert.decided', 'revert.after-park', 'revert.after-start', 'notify.after-send'];

/** Parses ROLLGUARD_FAILPOINTS; an unknown name is an error so a typo cannot make a test pass vacuously. */
export function parseFailpoints(raw: string | undefined): Set<FailpointName> {
  const names = (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = names.filter((n) => !FAILPOINT_NAMES.includes(n as FailpointName));
  if (unknown.length) throw new Error(`ROLLGUARD_FAILPOINTS: unknown failpoint(s) ${unknown.join(', ')}; known: ${FAILPOINT_NAMES.join(', ')}`);
  return new Set(names as FailpointName[]);
}

export type Failpoint = (name: FailpointName, fields?: Record<string, unknown>) => Promise<void>;

/** A failpoint function over the armed set; resolves at once for points not armed. */
export function failpoints(armed: ReadonlySet<FailpointName>, log: Logger): Failpoint {
  return (name, fields = {}) => {
    if (!armed.has(name)) return Promise.resolve();
    log.warn({ failpoint: name, ...fields }, 'failpoint reached; pausing here');
    return new Promise<void>(() => {});
  };
}

export const noFailpoints: Failpoint = () => Promise.resolve();
