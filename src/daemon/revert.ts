import type { Logger } from 'pino';
import { RevertError, type ContainerReverter } from '../targets/docker-container/revert-steps.js';
import type { Metrics } from '../api/metrics.js';
import type { Rule, ServicePolicy } from '../config/policy.js';
import { containerInspectSchema, containerName, type ContainerInspect } from '../targets/docker-container/inspect.js';
import { shortId, versionOf } from '../model/image-ref.js';
import { describeThreshold, recoveryStatus } from '../policy/assess.js';
import type { ProviderRegistry } from '../signals/registry.js';
import type { EvidenceAction, EvidenceCriterion } from '../notify/event.js';
import type { ActionRecord, Deployment, KnownGood, RevertPhase } from '../store/store.js';
import type { Writes } from '../store/write-behind.js';
import { noFailpoints, type Failpoint } from './failpoints.js';
import { recoverySignals, sampleSignals, valuesOf } from './sampling.js';

export interface RevertDeps {
  writes: Writes;
  reverter: ContainerReverter;
  providers: ProviderRegistry;
  metrics: Metrics;
  log: Logger;
  now: () => Date;
  sleep: (ms: number) => Promise<void>;
  /** Containers this revert creates, so their start events are not taken for deployments. */
  ownContainers: Set<string>;
  failpoint?: Failpoint;
}

/** Where the service stands after a revert, for the daemon's bookkeeping and the messages. */
export interface RevertOutcome {
  state: 'rolled_back' | 'rollback_failed';
  containerId: string;
  image: string;
  ref: string;
  /** Why it failed, for rollback_failed. */
  reason?: string;
  attempts: number;
  /** Every step with its timing. */
  actions: EvidenceAction[];
  /** The recovery criteria as last measured. */
  criteria: EvidenceCriterion[];
  /** When the good container was started (last attempt), and when recovery was verified. */
  revertAt?: number;
  recoveredAt?: number;
}

const PARKED = /\.rollguard-bad\.-?\d+$/;

/** The name a bad container is set aside under during the revert of `deploymentId`. */
export function parkedName(name: string, deploymentId: number): string {
  return `${name.replace(PARKED, '')}.rollguard-bad.${deploymentId}`;
}

/** Whether a container name is one rollguard gave a bad container it set aside. */
export function isParked(name: string): boolean {
  return PARKED.test(name);
}

/**
 * The runbook's "Strategy 2: container revert". Stops the bad container (keeping it, renamed),
 * recreates the known-good one from its snapshot, verifies the recovery criteria, and only then
 * removes the bad one. Retries up to max_attempts, then escalates. When no good container could
 * be started at all, the bad one is put back: a degraded service beats no service.
 *
 * Each step is recorded (phase) before the next begins and each is safe to repeat, so with
 * `resume` a revert cut short by a crash is finished from what Docker shows: a bad container
 * already set aside is not stopped again, and a known-good container already running is
 * verified rather than created a second time.
 */
export async function revertDeployment(deps: RevertDeps, service: ServicePolicy, deployment: Deployment, rule: Rule, known: KnownGood | undefined, resume = false): Promise<RevertOutcome> {
  const { writes, reverter, log: parentLog, metrics } = deps;
  const failpoint = deps.failpoint ?? noFailpoints;
  const log = parentLog.child({ service: service.name, deployment: deployment.id });
  const badId = deployment.container_id;
  const actions: EvidenceAction[] = [];
  let criteria: EvidenceCriterion[] = [];
  let revertAt: number | undefined;
  let attempt = resume ? deployment.attempts : 0;
  /** The deployed container, or the one that replaced it when a removed --rm container was put back. */
  let deployedId = badId;
  const unchanged = (): Omit<RevertOutcome, 'attempts' | 'actions' | 'criteria'> => ({ state: 'rollback_failed', containerId: deployedId, image: deployment.to_image, ref: deployment.to_ref });

  const step = async <T>(kind: string, detail: string, fn: () => Promise<T>): Promise<T> => {
    const started = deps.now();
    try {
      const out = await fn();
      await record({ deployment_id: deployment.id, attempt, kind, started_at: started, finished_at: deps.now(), ok: true, detail });
      return out;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      await record({ deployment_id: deployment.id, attempt, kind, started_at: started, finished_at: deps.now(), ok: false, detail: `${detail}: ${message}` });
      throw err;
    }
  };
  // A store outage never stops a revert half-way: the write queue keeps what the store cannot take.
  const record = (a: ActionRecord): Promise<void> => {
    actions.push({ kind: a.kind, attempt: a.attempt, startedAt: a.started_at.toISOString(), durationMs: a.finished_at.getTime() - a.started_at.getTime(), ok: a.ok, detail: a.detail ?? null });
    return writes.insertAction(a);
  };
  const phase = (p: RevertPhase, extra: Partial<Pick<Deployment, 'attempts'>> = {}): Promise<void> => {
    deployment.phase = p;
    return writes.updateDeployment(deployment.id, { phase: p, ...extra });
  };
  const fail = async (reason: string, where: Omit<RevertOutcome, 'attempts' | 'actions' | 'criteria'>): Promise<RevertOutcome> => {
    log.error({ escalate: true, severity: 'P0', reason, attempts: attempt }, 'ROLLBACK FAILED — escalate to a human');
    await writes.updateDeployment(deployment.id, { state: 'rollback_failed', reason, attempts: attempt, phase: 'done' });
    metrics.rollbacks.inc({ service: service.name, outcome: 'failed' });
    return { ...where, reason, attempts: attempt, actions, criteria, revertAt };
  };

  if (!known) return fail(`no known-good version of ${service.name} is recorded; nothing was changed`, unchanged());
  const goodSpec = containerInspectSchema.parse(known.spec);
  const goodName = containerName(goodSpec);
  log.warn({ rule: rule.name, from: deployment.to_ref, to: known.image_ref, toImage: shortId(known.image_id), resume }, resume ? 'finishing an interrupted revert' : 'rolling back');

  let image: string;
  try {
    image = await step('check-image', `known-good image ${shortId(known.image_id)} (${known.image_ref})`, () => reverter.resolveImage(known.image_id, known.image_ref));
  } catch (err) {
    return fail(err instanceof RevertError ? err.message : String(err), unchanged());
  }

  let badSpec: ContainerInspect | undefined;
  try {
    badSpec = await reverter.find(badId);
  } catch (err) {
    return fail(`cannot inspect the deployed container ${badId.slice(0, 12)}: ${String(err)}; nothing was changed`, unchanged());
  }
  const setAside = parkedName(badSpec ? containerName(badSpec) : deployment.container_name, deployment.id);
  const originalName = setAside.replace(PARKED, '');
  /** The bad container as it ran, under its own name: what puts it back when no known-good container can be started. */
  const badAsDeployed = badSpec && ({ ...badSpec, Name: `/${originalName}` } as ContainerInspect);
  const putBack = async (why: string): Promise<boolean> => {
    if (!badAsDeployed) return false;
    return step('restore-bad', `${why}; put ${originalName} back`, async () => {
      deployedId = await reverter.restore(badId, badAsDeployed);
      deps.ownContainers.add(deployedId);
      return true;
    }).catch(() => false);
  };
  // Docker removed the bad container as it stopped (--rm): nothing is left to remove, and putting it back means creating it again.
  let badRemoved = false;
  if (!badSpec && !resume) {
    // Stopped and removed by someone else: nothing serves, so the known-good version is started all the same.
    await step('bad-gone', `the deployed container ${badId.slice(0, 12)} (${originalName}) is already gone; starting the known-good version`, () => Promise.resolve());
  }
  if (badSpec) {
    const already = containerName(badSpec) === setAside && !badSpec.State.Running;
    try {
      const parked = await step('stop-bad', already
        ? `${originalName} was already stopped and set aside as ${setAside}`
        : `stop ${originalName} (grace ${service.stopTimeoutMs} ms) and rename it ${setAside}`, () =>
        already ? Promise.resolve('parked' as const) : reverter.park(badId, setAside, service.stopTimeoutMs),
      );
      if (parked === 'removed') {
        badRemoved = true;
        await step('bad-removed', `${originalName} was run with --rm, so Docker removed it as it stopped; its settings are kept to put it back if needed`, () => Promise.resolve());
      }
    } catch (err) {
      await putBack('it could not be set aside');
      return fail(`could not set the bad container aside: ${(err as Error).message}`, unchanged());
    }
  }
  await phase('parked');
  await failpoint('revert.after-park', { deployment: deployment.id });

  let lastGood: string | undefined;
  let adopted: string | undefined;
  if (resume) {
    // A known-good container from before the crash: verify it if it runs, else clear the name for a new one.
    const existing = await reverter.find(goodName).catch(() => undefined);
    if (existing && existing.Id !== badId && existing.Image === known.image_id) {
      if (existing.State.Running) {
        adopted = existing.Id;
        deps.ownContainers.add(existing.Id);
        await step('adopt-good', `${goodName} (${existing.Id.slice(0, 12)}) on the known-good image was already started before the restart`, () => Promise.resolve());
      } else {
        await step('remove-failed', `remove ${goodName} (${existing.Id.slice(0, 12)}), created but not running before the restart`, () => reverter.remove(existing.Id)).catch(() => {});
      }
    }
  }
  const template = { service: service.name, container: goodName, image: known.image_ref, version: versionOf(known.image_ref) };
  // Resuming redoes the attempt the crash cut short rather than counting it twice.
  for (attempt = resume ? Math.max(1, attempt) : 1; attempt <= service.maxAttempts; attempt++) {
    let goodId: string;
    if (adopted) {
      goodId = adopted;
      adopted = undefined;
    } else {
      await writes.updateDeployment(deployment.id, { attempts: attempt });
      if (lastGood) {
        const previous = lastGood;
        lastGood = undefined;
        await step('remove-failed', `remove the failed attempt ${previous.slice(0, 12)}`, () => reverter.remove(previous)).catch(() => {});
      }
      try {
        const started = deps.now();
        const out = await reverter.startFrom(goodSpec, image, badSpec);
        deps.ownContainers.add(out.id);
        goodId = out.id;
        await record({ deployment_id: deployment.id, attempt, kind: 'start-good', started_at: started, finished_at: deps.now(), ok: true, detail: [`create and start ${goodName} from ${image}`, ...out.notes].join('; ') });
      } catch (err) {
        await record({ deployment_id: deployment.id, attempt, kind: 'start-good', started_at: deps.now(), finished_at: deps.now(), ok: false, detail: `create and start ${goodName} from ${image}: ${err instanceof Error ? err.message : String(err)}` });
        continue;
      }
      await phase('started');
      await failpoint('revert.after-start', { deployment: deployment.id, container: goodId });
    }
    lastGood = goodId;
    revertAt = deps.now().getTime();
    const verified = await verifyRecovery(deps, service, deployment, attempt, goodId, template);
    criteria = verified.criteria;
    await record({ deployment_id: deployment.id, attempt, kind: 'verify', started_at: verified.started, finished_at: deps.now(), ok: verified.met, detail: verified.detail });
    if (verified.met) {
      if (badSpec && !badRemoved) await step('remove-bad', `remove the bad container ${setAside} (its volumes are kept)`, () => reverter.remove(badId)).catch(() => {});
      const recoveredAt = deps.now();
      await writes.updateDeployment(deployment.id, { state: 'rolled_back', recovered_at: recoveredAt, attempts: attempt, phase: 'done' });
      metrics.rollbacks.inc({ service: service.name, outcome: 'succeeded' });
      log.info({ attempts: attempt, recoveryMs: recoveredAt.getTime() - deployment.started_at.getTime(), image: shortId(known.image_id) }, 'rolled back and recovered');
      return { state: 'rolled_back', containerId: goodId, image: known.image_id, ref: known.image_ref, attempts: attempt, actions, criteria, revertAt, recoveredAt: recoveredAt.getTime() };
    }
  }
  attempt = service.maxAttempts;
  if (lastGood) {
    return fail(`recovery criteria not met after ${attempt} attempt(s); the known-good container is running and the bad one is kept stopped as ${setAside}`, {
      state: 'rollback_failed', containerId: lastGood, image: known.image_id, ref: known.image_ref,
    });
  }
  if (!badSpec) return fail(`the known-good container could not be started in ${attempt} attempt(s), and the deployed container is gone`, unchanged());
  const back = await putBack('no known-good container could be started');
  return fail(`the known-good container could not be started in ${attempt} attempt(s); ${back ? 'the deployed version was put back' : `putting the deployed version back failed too, so ${originalName} is not running`}`, unchanged());
}

async function verifyRecovery(
  deps: RevertDeps,
  service: ServicePolicy,
  deployment: Deployment,
  attempt: number,
  containerId: string,
  template: { service: string; container: string; image: string; version: string },
): Promise<{ met: boolean; detail: string; started: Date; criteria: EvidenceCriterion[] }> {
  const started = deps.now();
  const deadline = started.getTime() + service.recoveryTimeoutMs;
  const names = recoverySignals(service);
  let detail = 'no recovery criteria configured; container started';
  let criteria: EvidenceCriterion[] = [];
  for (;;) {
    const running = await deps.reverter.inspect(containerId).then((c) => c.State.Running, () => false);
    if (!running) return { met: false, detail: 'the known-good container is not running', started, criteria };
    if (!names.length) return { met: true, detail, started, criteria };
    const at = deps.now();
    const measurements = await sampleSignals(deps.providers, deps.metrics, service, names, { template, containerId, at });
    const status = recoveryStatus(service.recovery, valuesOf(measurements));
    criteria = service.recovery.map((c) => ({
      signal: c.signal, threshold: describeThreshold(c), measured: measurements[c.signal]?.value ?? null, holds: !status.unmet.some((u) => u.check === c),
    }));
    await deps.writes
      .insertSamples(names.map((name) => {
        const m = measurements[name] as { value: number | null; detail?: string; latencyMs: number };
        const holds = !status.unmet.some((u) => u.check.signal === name);
        return { deployment_id: deployment.id, stage: 'recovery', signal: name, taken_at: at, value: m.value, result: m.value === null ? 'no-data' : holds ? 'ok' : 'breach', rules: {}, detail: m.detail ?? null, latency_ms: m.latencyMs };
      }));
    detail = status.met
      ? `recovered: ${service.recovery.map((c) => `${c.signal} ${describeThreshold(c)} (${measurements[c.signal]?.value})`).join(', ')}`
      : `attempt ${attempt}: not met: ${status.unmet.map((u) => `${u.check.signal} ${describeThreshold(u.check)} (got ${u.value ?? 'no data'})`).join(', ')}`;
    if (status.met) return { met: true, detail, started, criteria };
    if (deps.now().getTime() + service.intervalMs > deadline) return { met: false, detail, started, criteria };
    await deps.sleep(service.intervalMs);
  }
}
