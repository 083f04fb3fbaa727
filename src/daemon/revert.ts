import type { Logger } from 'pino';
import type { Metrics } from '../api/metrics.js';
import type { Rule, ServicePolicy } from '../config/policy.js';
import { shortId, versionOf } from '../model/image-ref.js';
import type { EvidenceAction, EvidenceCriterion } from '../model/notification.js';
import type { ProviderRegistry } from '../signals/registry.js';
import type { ActionRecord, Deployment, KnownGood, RevertPhase } from '../store/store.js';
import type { Writes } from '../store/write-behind.js';
import { RevertError, type DeployTarget, type KnownReplica, type Replica } from '../targets/target.js';
import { ofKnownVersion } from '../targets/versions.js';
import { deployedName, parkedName } from '../targets/parked-names.js';
import { noFailpoints, type Failpoint } from './failpoints.js';
import { verifyRecovery } from './verify-recovery.js';

export interface RevertDeps {
  writes: Writes;
  target: DeployTarget;
  /** The service's running replicas of any version (one-offs and orchestrated ones left out). */
  running: (service: ServicePolicy) => Promise<Replica[]>;
  providers: ProviderRegistry;
  metrics: Metrics;
  log: Logger;
  now: () => Date;
  sleep: (ms: number) => Promise<void>;
  /** Replicas this revert creates, so their start events are not taken for deployments. */
  ownContainers: Set<string>;
  failpoint?: Failpoint;
  /**
   * Whether this instance still leads the service, asked before every step that changes a
   * replica: an instance paused past its lease (SIGSTOP, a VM freeze) stops there and leaves the
   * revert, as recorded, to the instance that leads now. Without it, always.
   */
  leads?: () => boolean;
}

/** Thrown inside a revert when this instance no longer leads the service; nothing more is changed or recorded. */
export class LeadershipLapsed extends Error {
  constructor(service: string) {
    super(`this instance no longer leads ${service}`);
    this.name = 'LeadershipLapsed';
  }
}

const rethrowLapse = (err: unknown): void => {
  if (err instanceof LeadershipLapsed) throw err;
};

/** Where the service stands after a revert, for the daemon's bookkeeping and the messages. */
export interface RevertOutcome {
  /** handed_over: leadership lapsed mid-way; the instance that leads now finishes the revert. */
  state: 'rolled_back' | 'rollback_failed' | 'handed_over';
  /** The replicas running for the service afterwards, as far as the revert knows. */
  containerIds: string[];
  image: string;
  ref: string;
  /** Why it failed, for rollback_failed. */
  reason?: string;
  attempts: number;
  /** Every step with its timing. */
  actions: EvidenceAction[];
  /** The recovery criteria as last measured. */
  criteria: EvidenceCriterion[];
  /** When the good replicas were started (last attempt), and when recovery was verified. */
  revertAt?: number;
  recoveredAt?: number;
}

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
 * Each step is recorded (phase) before the next begins and each is safe to repeat, so with
 * `resume` a revert cut short by a crash is finished from what the target shows: a bad replica
 * already set aside is not stopped again, and a known-good replica already running is verified
 * rather than created a second time.
 */
export async function revertDeployment(deps: RevertDeps, service: ServicePolicy, deployment: Deployment, rule: Rule, known: KnownGood | undefined, resume = false): Promise<RevertOutcome> {
  try {
    return await revertSteps(deps, service, deployment, rule, known, resume);
  } catch (err) {
    if (!(err instanceof LeadershipLapsed)) throw err;
    deps.log.warn({ service: service.name, deployment: deployment.id, phase: deployment.phase }, 'revert stopped: this instance no longer leads the service; the leader finishes it from the recorded phase');
    return { state: 'handed_over', containerIds: [], image: deployment.to_image, ref: deployment.to_ref, attempts: deployment.attempts, actions: [], criteria: [] };
  }
}

async function revertSteps(deps: RevertDeps, service: ServicePolicy, deployment: Deployment, rule: Rule, known: KnownGood | undefined, resume: boolean): Promise<RevertOutcome> {
  const { writes, target, log: parentLog, metrics } = deps;
  /** Called before every change to a replica (and before recording a failure). */
  const guard = (): void => {
    if (deps.leads && !deps.leads()) throw new LeadershipLapsed(service.name);
  };
  const failpoint = deps.failpoint ?? noFailpoints;
  const log = parentLog.child({ service: service.name, deployment: deployment.id });
  const actions: EvidenceAction[] = [];
  let criteria: EvidenceCriterion[] = [];
  let revertAt: number | undefined;
  let attempt = resume ? deployment.attempts : 0;
  /** The bad replicas as they ran, or the ones that replaced them when removed --rm replicas were put back. */
  let deployedIds = [deployment.container_id];
  const unchanged = (): Omit<RevertOutcome, 'attempts' | 'actions' | 'criteria'> => ({ state: 'rollback_failed', containerIds: deployedIds, image: deployment.to_image, ref: deployment.to_ref });

  const record = (a: ActionRecord): Promise<void> => {
    actions.push({ kind: a.kind, attempt: a.attempt, startedAt: a.started_at.toISOString(), durationMs: a.finished_at.getTime() - a.started_at.getTime(), ok: a.ok, detail: a.detail ?? null });
    // A store outage never stops a revert half-way: the write queue keeps what the store cannot take.
    return writes.insertAction(a);
  };
  const step = async <T>(kind: string, detail: string | ((out: T) => string), fn: () => Promise<T>): Promise<T> => {
    const started = deps.now();
    const text = (out?: T): string => (typeof detail === 'string' ? detail : detail(out as T));
    try {
      const out = await fn();
      await record({ deployment_id: deployment.id, attempt, kind, started_at: started, finished_at: deps.now(), ok: true, detail: text(out) });
      return out;
    } catch (err) {
      rethrowLapse(err);
      const message = err instanceof Error ? err.message : String(err);
      await record({ deployment_id: deployment.id, attempt, kind, started_at: started, finished_at: deps.now(), ok: false, detail: `${typeof detail === 'string' ? detail : kind}: ${message}` });
      throw err;
    }
  };
  const phase = (p: RevertPhase): Promise<void> => {
    deployment.phase = p;
    return writes.updateDeployment(deployment.id, { phase: p });
  };
  const fail = async (reason: string, where: Omit<RevertOutcome, 'attempts' | 'actions' | 'criteria'>): Promise<RevertOutcome> => {
    guard();
    log.error({ escalate: true, severity: 'P0', reason, attempts: attempt }, 'ROLLBACK FAILED — escalate to a human');
    await writes.updateDeployment(deployment.id, { state: 'rollback_failed', reason, attempts: attempt, phase: 'done' });
    metrics.rollbacks.inc({ service: service.name, outcome: 'failed' });
    return { ...where, reason, attempts: attempt, actions, criteria, revertAt };
  };

  guard();
  if (!known) return fail(`no known-good version of ${service.name} is recorded; nothing was changed`, unchanged());
  if (known.target !== target.kind) {
    return fail(`the known-good version of ${service.name} was recorded on a ${known.target} target and the service now runs on ${target.kind}, which cannot put it back; nothing was changed`, unchanged());
  }
  const knownReplicas = target.knownReplicas(known.spec);
  log.warn({ rule: rule.name, from: deployment.to_ref, to: known.image_ref, toImage: shortId(known.image_id), replicas: knownReplicas.length, resume }, resume ? 'finishing an interrupted revert' : 'rolling back');

  let image: string;
  try {
    image = await step('check-image', `known-good image ${shortId(known.image_id)} (${known.image_ref})`, () => target.resolveImage(known.image_id, known.image_ref));
  } catch (err) {
    return fail(err instanceof RevertError ? err.message : String(err), unchanged());
  }

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
  for (attempt = resume ? Math.max(1, attempt) : 1; attempt <= service.maxAttempts; attempt++) {
    await writes.updateDeployment(deployment.id, { attempts: attempt });
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
    revertAt = now;
    const startTimes = await Promise.all(ids.map((id) => target.replica(id).then((r) => r?.startedAt.getTime() ?? now, () => now)));
    // The restored version serves alone from the later of its last start and the bad replicas' park.
    const verified = await verifyRecovery(deps, service, deployment, attempt, ids, template, Math.max(...startTimes, parkedAt));
    criteria = verified.criteria;
    serving = verified.serving;
    lastStarted = ids.filter((id) => !serving.has(id) && (started.includes(id) || !alreadyGood.some((r) => r.id === id)));
    await record({ deployment_id: deployment.id, attempt, kind: 'verify', started_at: verified.started, finished_at: deps.now(), ok: verified.met, detail: verified.detail });
    if (verified.met) {
      for (const r of bad) {
        if (removed.has(r.id)) continue;
        await step('remove-bad', `remove the bad container ${parkedName(r.name, deployment.id)} (its volumes are kept)`, () => (guard(), target.remove(r.id))).catch(rethrowLapse);
      }
      const recoveredAt = deps.now();
      await writes.updateDeployment(deployment.id, { state: 'rolled_back', recovered_at: recoveredAt, attempts: attempt, phase: 'done' });
      metrics.rollbacks.inc({ service: service.name, outcome: 'succeeded' });
      log.info({ attempts: attempt, recoveryMs: recoveredAt.getTime() - deployment.started_at.getTime(), image: shortId(known.image_id), replicas: ids.length }, 'rolled back and recovered');
      return { state: 'rolled_back', containerIds: [...new Set([...kept.map((r) => r.id), ...ids])], image: known.image_id, ref: known.image_ref, attempts: attempt, actions, criteria, revertAt, recoveredAt: recoveredAt.getTime() };
    }
  }
  attempt = service.maxAttempts;
  const parkedNames = bad.filter((r) => !removed.has(r.id)).map((r) => parkedName(r.name, deployment.id));
  if (lastRunning.length) {
    return fail(`recovery criteria not met after ${attempt} attempt(s); the known-good ${knownReplicas.length > 1 ? 'replicas are' : 'container is'} running${parkedNames.length ? ` and the bad one${parkedNames.length > 1 ? 's are' : ' is'} kept stopped as ${parkedNames.join(', ')}` : ''}`, {
      state: 'rollback_failed', containerIds: lastRunning, image: known.image_id, ref: known.image_ref,
    });
  }
  for (const id of lastStarted) await step('remove-failed', `remove the failed attempt ${id.slice(0, 12)}`, () => (guard(), target.remove(id))).catch(rethrowLapse);
  const why = startError ? ` (${startError})` : '';
  if (!bad.length) return fail(`the known-good container could not be started in ${attempt} attempt(s)${why}, and the deployed container is gone`, unchanged());
  const back = await putBack('no known-good replica could be started');
  return fail(`the known-good container could not be started in ${attempt} attempt(s)${why}; ${back ? 'the deployed version was put back' : `putting the deployed version back failed too, so ${names(asDeployed)} may not be running`}`, unchanged());

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
