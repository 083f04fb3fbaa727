import type Docker from 'dockerode';
import type { Logger } from 'pino';
import type { FollowUpStep } from '../../config/policy.js';

/** What a step may use while it runs. */
export interface StepContext {
  docker: Docker;
  log: Logger;
  /**
   * Aborted when the step's `timeoutMs` has passed. The runner has then already reported the step
   * as timed out; the step only has to let go of what it holds (sockets, streams, clients).
   */
  signal: AbortSignal;
  /** When the step's time is up (epoch ms), for limits of its own that must fit inside it. */
  deadline: number;
}

/**
 * How a step went. `summary` is the result in a line (`restarted 2 containers`, `exit code 3`);
 * `output` is what it printed or answered, of which the runner keeps the tail.
 */
export interface StepOutcome {
  ok: boolean;
  summary: string;
  output?: string;
}

/** One kind of follow-up step: how it is described and how it is carried out. */
export interface FollowUpKind<S extends FollowUpStep = FollowUpStep> {
  /** A short human description, e.g. `restart himalytix-celery, himalytix-celery-beat`; the runner redacts URLs in it. */
  label(step: S): string;
  /** Carries the step out. Resolves with the outcome; a rejection counts as a failure with its message. */
  run(step: S, ctx: StepContext): Promise<StepOutcome>;
  /** Added to `timed out after N ms` when the step's effect can outlive the timeout. */
  timeoutNote?(step: S): string;
}

/** The text of an error: Docker's own message when the engine sent one, with the code of a socket error. */
export function errorText(err: unknown): string {
  if (err && typeof err === 'object') {
    const e = err as { json?: { message?: unknown }; code?: unknown; message?: unknown };
    if (typeof e.json?.message === 'string') return e.json.message;
    const message = typeof e.message === 'string' ? e.message : String(err);
    return typeof e.code === 'string' && !message.includes(e.code) ? `${e.code}: ${message}` : message;
  }
  return String(err);
}

/** True for dockerode's "no such container" answer. */
export function isNotFound(err: unknown): boolean {
  return (err as { statusCode?: number } | null)?.statusCode === 404;
}

/** Milliseconds left until `deadline`, at least 1. */
export function remainingMs(deadline: number): number {
  return Math.max(1, deadline - Date.now());
}
