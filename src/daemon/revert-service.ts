import { versionOf } from '../model/image-ref.js';
import type { KnownGood } from '../store/store.js';
import { RevertError, type Convergence, type PutBack, type ServiceTarget, type UpdateState } from '../targets/target.js';
import { rethrowLapse, type FailedAt, type RevertOutcome, type RevertRun } from './revert-run.js';
import { verifyRecovery } from './verify-recovery.js';

/** How often convergence is checked while the orchestrator replaces the replicas. */
const CONVERGE_POLL_MS = 500;

/**
 * A service put back as a whole by its orchestrator (a Swarm service): the known-good spec goes
 * back — through Swarm's own rollback when its previous spec is the known-good one, else by
 * updating the service to the saved spec — then rollguard waits until every replica runs the
 * known-good version and verifies the recovery criteria across them. A later attempt recreates
 * the replicas (a forced update). Swarm is never fought: a service Swarm already rolled back
 * itself is recorded as such and only verified, and a paused update is resumed by this revert
 * alone. Safe to repeat, so with `resume` a revert cut short by a crash goes on from what the
 * service runs.
 */
export async function revertService(run: RevertRun, target: ServiceTarget, known: KnownGood, resume: boolean): Promise<RevertOutcome> {
  const { deps, service, deployment, step, record, fail, guard } = run;
  const unchanged: FailedAt = { state: 'rollback_failed', containerIds: [deployment.container_id], image: deployment.to_image, ref: deployment.to_ref };
  const before = await target.updateState(service).catch(() => undefined);
  const knownVersion = target.knownReplicas(known.spec)[0]?.version;
  const newer = await newerUpdate(run, target, knownVersion, before);
  if (newer) {
    // Nothing changed: the newer update is the operator's, judged by a watch of its own.
    run.log.warn({ reason: newer }, 'not reverting: the service was updated again');
    await deps.writes.updateDeployment(deployment.id, { state: 'superseded', reason: newer, phase: 'done' });
    return { state: 'superseded', containerIds: [], image: deployment.to_image, ref: deployment.to_ref, reason: newer, attempts: run.attempt, actions: run.actions, criteria: [] };
  }
  if (before?.paused) {
    await step('update-paused', `Swarm paused the update (${before.state}${before.message ? `: ${before.message}` : ''}); the revert puts the known-good spec back`, () => Promise.resolve());
  }
  const template = { service: service.name, container: deployment.container_name, image: known.image_ref, version: versionOf(known.image_ref) };
  let lastDetail = '';
  let running: string[] = [];
  const firstAttempt = resume ? Math.max(1, run.attempt) : 1;
  for (run.attempt = firstAttempt; run.attempt <= service.maxAttempts; run.attempt++) {
    await deps.writes.updateDeployment(deployment.id, { attempts: run.attempt });
    // A later attempt recreates the replicas: the known-good spec is in place, but they did not recover.
    const force = run.attempt > firstAttempt;
    let put: PutBack;
    try {
      put = await step('put-back', (p: PutBack) => p.detail, () => (guard(), target.putBack(service, known.spec, { force, resume: resume && run.attempt === firstAttempt })));
    } catch (err) {
      rethrowLapse(err);
      lastDetail = err instanceof Error ? err.message : String(err);
      if (run.attempt === firstAttempt && !resume && err instanceof RevertError) return fail(`${lastDetail}; nothing was changed`, unchanged);
      continue;
    }
    if (put.how !== 'already') await run.phase('started');
    await run.failpoint('revert.after-start', { deployment: deployment.id });
    const startedAt = deps.now();
    const converged = await convergence(run, target, known.spec);
    await record({ deployment_id: deployment.id, attempt: run.attempt, kind: 'converge', started_at: startedAt, finished_at: deps.now(), ok: converged.done, detail: converged.detail });
    for (const r of converged.replicas) deps.ownContainers.add(r.id);
    if (!converged.done) {
      lastDetail = converged.detail;
      continue;
    }
    running = converged.replicas.map((r) => r.id);
    const now = deps.now().getTime();
    run.revertAt = now;
    const restoredAt = Math.max(...converged.replicas.map((r) => Math.min(r.startedAt.getTime() || now, now)));
    const verified = await verifyRecovery(deps, service, deployment, run.attempt, running, template, restoredAt);
    run.criteria = verified.criteria;
    await record({ deployment_id: deployment.id, attempt: run.attempt, kind: 'verify', started_at: verified.started, finished_at: deps.now(), ok: verified.met, detail: verified.detail });
    if (verified.met) return run.succeed({ containerIds: running, image: known.image_id, ref: known.image_ref, replicas: running.length });
    lastDetail = verified.detail;
  }
  run.attempt = service.maxAttempts;
  const onKnown = (await target.specVersion(service).catch(() => undefined)) === knownVersion;
  return fail(`the service was not recovered after ${run.attempt} attempt(s): ${lastDetail}; ${onKnown ? 'it keeps the known-good spec' : 'it is NOT on the known-good spec (the known-good spec could not be put back)'}`, {
    state: 'rollback_failed', containerIds: running, image: known.image_id, ref: known.image_ref,
  });
}

/**
 * Why the revert must not go ahead: the service was updated again (by someone, not rolled back
 * by Swarm) to a version that is neither the deployment's nor the known-good one — a hotfix
 * pushed meanwhile, or a deploy made while rollguard was down. Undefined when it may.
 */
async function newerUpdate(run: RevertRun, target: ServiceTarget, knownVersion: string | undefined, update: UpdateState | undefined): Promise<string | undefined> {
  const { service, deployment } = run;
  const [spec, deployed] = await Promise.all([
    target.specVersion(service).catch(() => undefined),
    target.replica(deployment.container_id).then((r) => r?.version, () => undefined),
  ]);
  if (!spec || !deployed || spec === deployed || spec === knownVersion || update?.state.startsWith('rollback')) return undefined;
  return `the service was updated again (to another version than ${deployment.to_ref}) before the revert; that update is watched on its own, and nothing was reverted`;
}

/**
 * Waits until every replica the service wants runs the known-good version: as long as the bad
 * replicas need to stop (their grace each) and the known-good ones to start and recover.
 */
async function convergence(run: RevertRun, target: ServiceTarget, snapshot: unknown): Promise<Convergence> {
  const { deps, service } = run;
  const replicas = Math.max(1, target.knownReplicas(snapshot).length);
  const deadline = deps.now().getTime() + service.stopTimeoutMs * replicas + service.recoveryTimeoutMs;
  let last: Convergence = { done: false, replicas: [], detail: 'not checked yet' };
  for (;;) {
    try {
      last = await target.converged(service, snapshot);
    } catch (err) {
      last = { done: false, replicas: [], detail: `cannot read the service: ${err instanceof Error ? err.message : String(err)}` };
    }
    if (last.done || deps.now().getTime() + CONVERGE_POLL_MS > deadline) return last;
    await deps.sleep(CONVERGE_POLL_MS);
  }
}
