import { ConfigError } from '../config/errors.js';
import { UsageError } from './usage-error.js';

/**
 * rollguard's exit codes, as sysexits(3) has them (README *Exit codes*): a supervisor can tell a
 * bad policy (78: do not restart) from a failure worth retrying. `policy check` exits 1 on a bad
 * policy, like promtool.
 */
export const EXIT = {
  ok: 0,
  /** The command ran and the answer is no: a failed check, a revert that did not recover. */
  failure: 1,
  /** The command line is wrong. */
  usage: 2,
  /** A service rollguard needs does not answer (the Docker engine, the daemon's API). */
  unavailable: 69,
  /** The policy file or the environment's settings are wrong. */
  config: 78,
} as const;

/** The exit code for an error a command ended on. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError) return EXIT.usage;
  if (err instanceof ConfigError || (err instanceof Error && err.name === 'SettingError')) return EXIT.config;
  // By name: these classes live in modules each command loads only when it runs.
  if (err instanceof Error && (err.name === 'DockerUnreachableError' || err.name === 'DaemonUnreachableError')) return EXIT.unavailable;
  return EXIT.failure;
}
