import { versionOf } from '../model/image-ref.js';
import type { KnownGood } from '../store/store.js';
import type { KnownReplica, Replica, ReplicaTarget } from '../targets/target.js';
import { ofKnownVersion } from '../targets/versions.js';
import { deployedName, parkedName } from '../targets/parked-names.js';
import { rethrowLapse, type FailedAt, type RevertOutcome, type RevertRun } from './revert-run.js';
import { verifyRecovery } from './verify-recovery.js';

const names = (rs: readonly { name: string }[]): string => rs.map((r) => r.name).join(', ');

/**
 * The runbook's "Strategy 2: container revert", for every replica of the service. Sets aside each
 * replica not of the known-good version (stopped, renamed, kept), puts back each known-good
 * replica that is not running — the same count, each with its own name, settings and volumes —
 * verifies the recovery criteria across them, and only then removes the bad ones. Replicas
 * already of the known-good version are left alone. Retries up to max_attempts, then escalates.
 * When no known-good replica could be started at all, the bad ones are put back: a degraded
 * service beats no service.
 *
 * With `resume`, a revert cut short by a crash is finished from what the target shows: a bad
 * replica already set aside is not stopped again, and a known-good replica already running is
 * verified rather than created a second time.
 */
export async function revertReplicas(run: RevertRun, target: ReplicaTarget, known: KnownGood, image: string, resume: boolean): Promise<RevertOutcome> {
  const { deps, service, deployment, log, step, record, phase, fail, guard, failpoint } = run;
  const { writes } = deps;
  const knownReplicas = target.knownReplicas(known.spec);
  /** The bad replicas as they ran, or the ones that replaced them when removed --rm replicas were put back. */
  let deployedIds = [deployment.container_id];
  const unchanged = (): FailedAt => ({ state: 'rollback_failed', containerIds: deployedIds, image: deployment.to_image, ref: deployment.to_ref });

  // The replicas to set aside: every running one not of the known-good version, and any set aside before a restart.
  let bad: Replica[];
  let kept: Replica[];
  try {
    const running = await deps.running(service);
    const parked = await target.parkedReplicas(service, deployment.id);
    bad = [...running.filter((r) => !ofKnownVersion(r, knownReplicas)), ...parked.filter((p) => !running.some((r) => r.id === p.id))];
    kept = running.filter((r) => ofKnownVersion(r, knownReplicas));
  } catch (err) {
    return fail(`cannot list the replicas of ${service.name}: ${err instanceof Error ? err.message : String(err)}; nothing was changed`, unchanged());
  }
  if (bad.length) deployedIds = bad.map((r) => r.id);
  // Resuming, a known-good replica started after the decision is this revert's own, from before the restart.
  const decidedAt = deployment.decided_at?.getTime();
  const alreadyGood = kept.filter((r) => !(resume && decidedAt !== undefined && r.startedAt.getTime() >= decidedAt));
  if (alreadyGood.length) {
    await step('keep-good', `${names(alreadyGood)} already of the known-good version; left alone`, () => Promise.resolve());
  }
  if (!bad.length && !resume) {
    // Stopped and removed by someone else: the known-good version is started all the same, so something serves.
    await step('bad-gone', `the deployed container ${deployment.container_id.slice(0, 12)} (${deployment.container_name}) is already gone; starting the known-good version`, () => Promise.resolve());
  }

  /** Bad replicas as they ran, under their own names: what is put back when no known-good replica can be started. */
  const asDeployed = bad.map((r) => ({ ...r, name: deployedName(r.name) }));
  /** Bad replicas Docker removed as they stopped (--rm): nothing is left to remove. */
  const removed = new Set<string>();
  /** Bad replicas this revert has begun to set aside: only these are put back. */
  const touched = new Set<string>();
  const putBack = async (why: string): Promise<boolean> => {
    let all = true;
    const ids: string[] = [];
    const back = asDeployed.filter((r) => touched.has(r.id));
    for (const r of back) {
      const ok = await step('restore-bad', `${why}; put ${r.name} back`, async () => {
        guard();
        const id = await target.restore(r);
        deps.ownContainers.add(id);
        ids.push(id);
        return true;
      }).catch((err: unknown) => {
        rethrowLapse(err);
        return false;
      });
      all &&= ok;
    }
    if (ids.length) deployedIds = [...ids, ...asDeployed.filter((r) => !touched.has(r.id)).map((r) => r.id)];
    return all && back.length > 0;
  };

  for (const r of bad) {
    const setAside = parkedName(r.name, deployment.id);
    const original = deployedName(r.name);
    const already = r.name === setAside && !r.running;
    touched.add(r.id);
    try {
      const parked = await step('stop-bad', already
        ? `${original} was already stopped and set aside as ${setAside}`
        : `stop ${original} (grace ${service.stopTimeoutMs} ms) and rename it ${setAside}`, () =>
        already ? Promise.resolve('parked' as const) : (guard(), target.park(r, setAside, service.stopTimeoutMs)),
      );
      if (parked === 'removed') {
        removed.add(r.id);
        log.info({ container: original }, 'the bad container was run with --rm: Docker removed it as it stopped; its settings are kept');
        await step('bad-removed', `${original} was run with --rm, so Docker removed it as it stopped; its settings are kept to put it back if needed`, () => Promise.resolve());
      }
    } catch (err) {
      rethrowLapse(err);
      await putBack('the bad replicas could not all be set aside');
      return fail(`could not set the bad container ${original} aside: ${(err as Error).message}`, unchanged());
    }
  }
  await phase('parked');
  const parkedAt = deps.now().getTime();
  await failpoint('revert.after-park', { deployment: deployment.id });

  const template = { service: service.name, container: knownReplicas[0]?.name ?? deployment.container_name, image: known.image_ref, version: versionOf(known.image_ref) };
  /** Known-good replicas this revert started in the previous attempt and that did not serve: removed before the next one. */
  let lastStarted: string[] = [];
  /** Known-good replicas that served through the previous attempt: kept, since recreating them would not help. */
  let serving = new Set<string>();
  let lastRunning: string[] = [];
  /** Why the last known-good replica could not be started, for the escalation. */
  let startError: string | undefined;
  // Resuming redoes the attempt the crash cut short rather than counting it twice.
  for (run.attempt = resume ? Math.max(1, run.attempt) : 1; run.attempt <= service.maxAttempts; run.attempt++) {
    await writes.updateDeployment(deployment.id, { attempts: run.attempt });
    for (const id of lastStarted) {
      await step('remove-failed', `remove the failed attempt ${id.slice(0, 12)}`, () => (guard(), target.remove(id))).catch(rethrowLapse);
    }
    const started: string[] = [];
    const ids: string[] = [];
    let startFailed = false;
    for (const k of knownReplicas) {
      const outcome = await putBackKnown(k);
      if (!outcome) {
        startFailed = true;
        break;
      }
      ids.push(outcome.id);
      if (outcome.started) started.push(outcome.id);
    }
    lastStarted = started;
    if (startFailed) continue;
    lastRunning = ids;
    if (started.length) {
      await phase('started');
      await failpoint('revert.after-start', { deployment: deployment.id, container: started[0] });
    }
    const now = deps.now().getTime();
    run.revertAt = now;
    const startTimes = await Promise.all(ids.map((id) => target.replica(id).then((r) => r?.startedAt.getTime() ?? now, () => now)));
    // The restored version serves alone from the later of its last start and the bad replicas' park.
    const verified = await verifyRecovery(deps, service, deployment, run.attempt, ids, template, Math.max(...startTimes, parkedAt));
    run.criteria = verified.criteria;
    serving = verified.serving;
    lastStarted = ids.filter((id) => !serving.has(id) && (started.includes(id) || !alreadyGood.some((r) => r.id === id)));
    await record({ deployment_id: deployment.id, attempt: run.attempt, kind: 'verify', started_at: verified.started, finished_at: deps.now(), ok: verified.met, detail: verified.detail });
    if (verified.met) {
      for (const r of bad) {
        if (removed.has(r.id)) continue;
        await step('remove-bad', `remove the bad container ${parkedName(r.name, deployment.id)} (its volumes are kept)`, () => (guard(), target.remove(r.id))).catch(rethrowLapse);
      }
      return run.succeed({ containerIds: [...new Set([...kept.map((r) => r.id), ...ids])], image: known.image_id, ref: known.image_ref, replicas: ids.length });
    }
  }
  run.attempt = service.maxAttempts;
  const parkedNames = bad.filter((r) => !removed.has(r.id)).map((r) => parkedName(r.name, deployment.id));
  if (lastRunning.length) {
    return fail(`recovery criteria not met after ${run.attempt} attempt(s); the known-good ${knownReplicas.length > 1 ? 'replicas are' : 'container is'} running${parkedNames.length ? ` and the bad one${parkedNames.length > 1 ? 's are' : ' is'} kept stopped as ${parkedNames.join(', ')}` : ''}`, {
      state: 'rollback_failed', containerIds: lastRunning, image: known.image_id, ref: known.image_ref,
    });
  }
  for (const id of lastStarted) await step('remove-failed', `remove the failed attempt ${id.slice(0, 12)}`, () => (guard(), target.remove(id))).catch(rethrowLapse);
  const why = startError ? ` (${startError})` : '';
  if (!bad.length) return fail(`the known-good container could not be started in ${run.attempt} attempt(s)${why}, and the deployed container is gone`, unchanged());
  if (run.migratedDown) {
    // The deployed version would run on a schema migrated down under it: worse than not running.
    return fail(`the known-good container could not be started in ${run.attempt} attempt(s)${why}; the deployed version was NOT put back, since the schema was migrated down under it: neither version runs, ${names(asDeployed)} ${asDeployed.length > 1 ? 'are' : 'is'} kept stopped as ${bad.filter((r) => !removed.has(r.id)).map((r) => parkedName(r.name, deployment.id)).join(', ') || 'nothing (removed by Docker)'}`, unchanged());
  }
  const back = await putBack('no known-good replica could be started');
  return fail(`the known-good container could not be started in ${run.attempt} attempt(s)${why}; ${back ? 'the deployed version was put back' : `putting the deployed version back failed too, so ${names(asDeployed)} may not be running`}`, unchanged());

  /** One known-good replica running again: found running already (a restart cut the revert short), or started now. */
  async function putBackKnown(k: KnownReplica): Promise<{ id: string; started: boolean } | undefined> {
    const existing = await target.replica(k.name).catch(() => undefined);
    if (existing && existing.running && existing.version === k.version) {
      deps.ownContainers.add(existing.id);
      if (serving.has(existing.id)) {
        await step('keep-serving', `${k.name} (${existing.id.slice(0, 12)}) served through the last attempt; kept rather than recreated`, () => Promise.resolve());
      } else if (!alreadyGood.some((r) => r.id === existing.id)) {
        await step('adopt-good', `${k.name} (${existing.id.slice(0, 12)}) on the known-good version was already started before the restart`, () => Promise.resolve());
      }
      return { id: existing.id, started: false };
    }
    const replaced = bad.find((r) => deployedName(r.name) === k.name) ?? (knownReplicas.length === 1 ? bad[0] : undefined);
    try {
      const out = await step('start-good', (o: { id: string; notes: string[] }) => [`create and start ${k.name} from ${image}`, ...o.notes].join('; '), async () => {
        guard();
        const o = await target.start(k, image, replaced);
        deps.ownContainers.add(o.id);
        return o;
      });
      return { id: out.id, started: true };
    } catch (err) {
      rethrowLapse(err);
      startError = err instanceof Error ? err.message : String(err);
      return undefined;
    }
  }
}
