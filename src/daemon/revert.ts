import type { Rule, ServicePolicy } from '../config/policy.js';
import { shortId } from '../model/image-ref.js';
import type { Deployment, KnownGood } from '../store/store.js';
import { RevertError } from '../targets/target.js';
import { LeadershipLapsed, RevertRun, type FailedAt, type RevertDeps, type RevertOutcome } from './revert-run.js';
import { revertReplicas } from './revert-replicas.js';
import { revertService } from './revert-service.js';
import { downMigrationName, followUp, migrateDown } from './revert-procedures.js';

export { LeadershipLapsed, type RevertDeps, type RevertOutcome } from './revert-run.js';

/**
 * Reverts a deployment to the known-good version, the way its target puts a version back:
 * replica by replica (plain containers, revert-replicas.ts) or as a whole service through its
 * orchestrator (Swarm, revert-service.ts). Either way it verifies the recovery criteria, retries up
 * to max_attempts and then escalates.
 *
 * Each step is recorded (phase) before the next begins and each is safe to repeat, so with
 * `resume` a revert cut short by a crash is finished from what the target shows.
 */
export async function revertDeployment(deps: RevertDeps, service: ServicePolicy, deployment: Deployment, rule: Rule, known: KnownGood | undefined, resume = false, opts: { migrations?: boolean } = {}): Promise<RevertOutcome> {
  const run = new RevertRun(deps, service, deployment, resume);
  try {
    return await revertWith(run, rule, known, resume, opts.migrations ?? false);
  } catch (err) {
    if (!(err instanceof LeadershipLapsed)) throw err;
    run.log.warn({ phase: deployment.phase }, 'revert stopped: this instance no longer leads the service; the leader finishes it from the recorded phase');
    return { state: 'handed_over', containerIds: [], image: deployment.to_image, ref: deployment.to_ref, attempts: deployment.attempts, actions: [], criteria: [] };
  }
}

async function revertWith(run: RevertRun, rule: Rule, known: KnownGood | undefined, resume: boolean, migrations: boolean): Promise<RevertOutcome> {
  const { deps: { target }, service, deployment } = run;
  const unchanged: FailedAt = { state: 'rollback_failed', containerIds: [deployment.container_id], image: deployment.to_image, ref: deployment.to_ref };
  run.guard();
  if (!known) return run.fail(`no known-good version of ${service.name} is recorded; nothing was changed`, unchanged);
  if (known.target !== target.kind) {
    return run.fail(`the known-good version of ${service.name} was recorded on a ${known.target} target and the service now runs on ${target.kind}, which cannot put it back; nothing was changed`, unchanged);
  }
  run.log.warn({ rule: rule.name, from: deployment.to_ref, to: known.image_ref, toImage: shortId(known.image_id), replicas: target.knownReplicas(known.spec).length, resume }, resume ? 'finishing an interrupted revert' : 'rolling back');
  let image: string;
  try {
    image = await run.step('check-image', `known-good image ${shortId(known.image_id)} (${known.image_ref})`, () => target.resolveImage(known.image_id, known.image_ref));
  } catch (err) {
    return run.fail(err instanceof RevertError ? err.message : String(err), unchanged);
  }
  // Runbook Option 3: snapshot, then the down-migration, while the deployed version still runs. A
  // revert resumed past that point (the bad version already touched) does not run them again.
  const touched = resume && deployment.phase !== undefined && deployment.phase !== null && deployment.phase !== 'decided';
  if (migrations && !touched) {
    const stop = await migrateDown(run, target, known, image);
    if (stop) return run.fail(stop, unchanged);
  } else if (migrations && service.downMigration) {
    // Resumed past the down-migration: its container may be left (removed after the phase), and the schema is migrated down.
    await target.removeOnce?.(downMigrationName(service.name, deployment.id)).catch(() => {});
    run.migratedDown = await run.deps.procedures?.snapshotOf?.(service, deployment.id).catch(() => undefined);
  }
  // Recovered once verified: the follow-up steps come after, are told with the revert's steps and never undo it.
  run.onVerified = () => followUp(run);
  return target.revertBy === 'replica'
    ? revertReplicas(run, target, known, image, resume)
    : revertService(run, target, known, resume);
}
