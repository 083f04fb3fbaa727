import type Docker from 'dockerode';
import type { Logger } from 'pino';
import type { FollowUpStep } from '../../config/policy.js';
import { redactUrlsIn } from '../../model/redact-url.js';
import { composeDetail } from './detail.js';
import { FOLLOW_UP_STEPS, type FollowUpRegistry } from './index.js';
import { errorText, type FollowUpKind, type StepOutcome } from './kind.js';

/** How one follow-up step went, as the daemon records it. */
export interface FollowUpResult {
  /** The step's position in the policy's list, from 0; details name steps from 1 (`step 2`). */
  index: number;
  kind: FollowUpStep['kind'];
  /** A short description, URLs redacted: `restart himalytix-celery, himalytix-celery-beat`. */
  label: string;
  ok: boolean;
  /** Not run, because an earlier step failed without `continueOnError`; `ok` is false. */
  skipped: boolean;
  startedAt: Date;
  finishedAt: Date;
  /** The result and, on failure, the output: at most ~2000 characters (its end), URL credentials removed. */
  detail: string;
}

/** What the steps run with. */
export interface FollowUpDeps {
  docker: Docker;
  log: Logger;
  /** Clock for `startedAt` / `finishedAt`. */
  now?: () => Date;
  /** The implementation of each kind; tests pass fakes to exercise the runner alone. */
  kinds?: FollowUpRegistry;
}

function implementation(kinds: FollowUpRegistry, step: FollowUpStep): FollowUpKind | undefined {
  return (kinds as Partial<Record<string, FollowUpKind>>)[step.kind];
}

/** A label longer than this (a long argv) is shortened: it is repeated in the details of skipped steps. */
const MAX_LABEL_CHARS = 160;

function labelOf(kind: FollowUpKind | undefined, step: FollowUpStep): string {
  let label: string;
  try {
    label = redactUrlsIn(kind ? kind.label(step) : step.kind);
  } catch {
    return step.kind;
  }
  return label.length > MAX_LABEL_CHARS ? `${label.slice(0, MAX_LABEL_CHARS - 1)}…` : label;
}

/**
 * Runs one step within its `timeoutMs`. Past it the step is reported as timed out at once (its
 * signal is aborted so it lets go of what it holds) rather than waited for: a hung Docker or Redis
 * call must not hold up the daemon. Never rejects.
 */
async function runStep(kind: FollowUpKind | undefined, step: FollowUpStep, deps: FollowUpDeps): Promise<StepOutcome> {
  if (!kind) return { ok: false, summary: `unknown follow-up step kind ${step.kind}` };
  const timeoutMs = Math.max(1, Math.round(step.timeoutMs));
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<StepOutcome>((resolve) => {
    timer = setTimeout(() => {
      const note = kind.timeoutNote?.(step);
      resolve({ ok: false, summary: `timed out after ${timeoutMs} ms${note ? ` (${note})` : ''}` });
      controller.abort(new Error(`timed out after ${timeoutMs} ms`));
    }, timeoutMs);
  });
  const ctx = { docker: deps.docker, log: deps.log, signal: controller.signal, deadline: Date.now() + timeoutMs };
  const work = Promise.resolve()
    .then(() => kind.run(step, ctx))
    .catch((err: unknown): StepOutcome => ({ ok: false, summary: errorText(err) }));
  try {
    const outcome = await Promise.race([work, timedOut]);
    // A step that gives up because of the abort resolves too; the timeout is what it reports.
    return controller.signal.aborted ? await timedOut : outcome;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs the follow-up steps of a verified revert in order, each within its own time limit. A
 * failure skips the steps after it (reported as skipped) unless the step has `continueOnError`;
 * nothing is undone. `onStep` is called with each result as soon as it is known, skipped steps
 * included, so the daemon records them one by one. Never rejects: a failing step, a throwing
 * implementation or a failing `onStep` is a result or a log line.
 */
export async function runFollowUps(
  steps: readonly FollowUpStep[],
  deps: FollowUpDeps,
  onStep?: (r: FollowUpResult) => Promise<void>,
): Promise<FollowUpResult[]> {
  const now = deps.now ?? (() => new Date());
  const kinds = deps.kinds ?? FOLLOW_UP_STEPS;
  const results: FollowUpResult[] = [];
  let stoppedBy: FollowUpResult | undefined;
  for (const [index, step] of steps.entries()) {
    const kind = implementation(kinds, step);
    const label = labelOf(kind, step);
    let result: FollowUpResult;
    if (stoppedBy) {
      const at = now();
      const detail = `skipped: step ${stoppedBy.index + 1} (${stoppedBy.label}) failed`;
      result = { index, kind: step.kind, label, ok: false, skipped: true, startedAt: at, finishedAt: at, detail };
    } else {
      const startedAt = now();
      const outcome = await runStep(kind, step, deps);
      result = { index, kind: step.kind, label, ok: outcome.ok, skipped: false, startedAt, finishedAt: now(), detail: composeDetail(outcome.summary, outcome.output) };
      if (!outcome.ok && !step.continueOnError) stoppedBy = result;
    }
    results.push(result);
    const fields = { step: index + 1, kind: step.kind, label, ok: result.ok, skipped: result.skipped, ms: result.finishedAt.getTime() - result.startedAt.getTime() };
    if (result.ok || result.skipped) deps.log.info(fields, 'follow-up step finished');
    else deps.log.warn({ ...fields, detail: result.detail, continueOnError: step.continueOnError }, 'follow-up step failed');
    try {
      await onStep?.(result);
    } catch (err) {
      deps.log.warn({ err, step: index + 1 }, 'recording a follow-up step failed');
    }
  }
  return results;
}
