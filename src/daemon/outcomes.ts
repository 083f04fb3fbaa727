import type { ServicePolicy } from '../config/policy.js';
import { shortId } from '../model/image-ref.js';
import { describeThreshold } from '../policy/assess.js';
import { enableMaintenance } from '../actions/maintenance.js';
import { silenceWhileReverting } from '../actions/alertmanager-silence.js';
import { type EvidenceInput } from './evidence.js';
import { revertDeployment } from './revert.js';
import { noFailpoints } from './failpoints.js';
import { badImageMessage, badImageRule, DEFAULT_MAX_ROLLBACKS, rollbackLimitMessage } from '../policy/flapping.js';
import { nowRunning, WatchContext, type Watch } from './context.js';
import { paused } from './holds.js';
import { SERVING_SIGNAL } from '../policy/serving.js';
import type { UpdateState } from '../targets/target.js';
import type { KnownGood } from '../store/store.js';
import { announce } from './record.js';

/**
 * A redeploy of an image rollguard reverted away from: reverted at once through the usual
 * revert (counted against max_rollbacks), or with `on_bad_image: warn` told and watched as usual.
 */
export async function onBadImage(ctx: WatchContext, watch: Watch): Promise<void> {
  const { service, deployment } = watch;
  const mark = await ctx.flaps().badImage(service.name, deployment.to_image, ctx.serviceState(service.name).knownGood, ctx.now());
  if (!mark || watch.done) return;
  const then = service.onBadImage ?? 'revert';
  const rule = badImageRule(service);
  const message = badImageMessage(mark, then);
  ctx.log.warn({ service: service.name, deployment: deployment.id, image: shortId(mark.image_id), markedAt: mark.marked_at, markedBy: mark.deployment_id, then }, 'an image reverted away from was redeployed');
  if (then === 'warn') {
    await announce(ctx, watch, 'rule_breached', rule.severity, { rule: { ...rule, action: 'notify' }, reason: message },
      { kind: 'bad_image', rule: rule.name, severity: rule.severity, detail: message }, 'bad-image');
    return;
  }
  if (await paused(ctx, watch, rule)) return;
  ctx.endWatch(watch);
  await rollback(ctx, watch, rule, null, message);
}

/** `on_no_data`: tell the on-call, or end the watch as inconclusive. Never a revert. Returns whether the watch ended. */
export async function onNoData(ctx: WatchContext, watch: Watch, rules: ServicePolicy['rules']): Promise<boolean> {
  const policy = watch.service.onNoData;
  if (!policy) return false;
  const names = rules.map((r) => `"${r.name}"`).join(', ');
  const reason = `no data for ${policy.after} consecutive samples of ${names}`;
  ctx.log.warn({ service: watch.service.name, deployment: watch.deployment.id, rules: rules.map((r) => r.name), then: policy.then }, 'rule without data');
  if (policy.then === 'inconclusive') {
    ctx.endWatch(watch);
    await inconclusive(ctx, watch, `${reason}; the watch ended (on_no_data: inconclusive)`);
    return true;
  }
  const rule = rules[0] as ServicePolicy['rules'][number];
  await announce(ctx, watch, 'watch_inconclusive', rule.severity, { rule, reason: `${reason}; still watching, no revert without data` },
    { kind: 'no-data', rule: rule.name, severity: rule.severity, detail: reason }, `no-data:${rule.name}:${watch.tally.ticks}`);
  return false;
}

/**
 * `because` replaces the rule's breach as the reason (a redeployed bad image, a rollback by hand).
 * `byHand`: an operator's call, counted like any revert but never refused by max_rollbacks;
 * `decided` is called once the revert is recorded as decided, before anything is touched; `known`
 * is the version to put back instead of the known-good one (`rollback --to`; it becomes known-good
 * once the revert recovers).
 */
export async function rollback(ctx: WatchContext, watch: Watch, rule: ServicePolicy['rules'][number], value: number | null, because?: string, opts: { byHand?: boolean; decided?: () => void; known?: KnownGood } = {}): Promise<void> {
  const { service, deployment } = watch;
  const reason = because ?? `${rule.name}: ${rule.signal} ${describeThreshold(rule)} for ${rule.for} consecutive samples (last ${value})`;
  if (!ctx.leads(service.name)) {
    // Leadership moved while this watch decided: the new leader resumes the watch and decides for itself.
    ctx.log.warn({ service: service.name, deployment: deployment.id, rule: rule.name }, 'not reverting: another instance now leads this service');
    return;
  }
  if (opts.byHand) await countRevert(ctx, watch, reason, opts.known);
  else if (!ctx.deps.dryRun && !(await admitRevert(ctx, watch, rule, reason))) return;
  const decidedAt = ctx.now();
  const decision = { kind: 'rollback', rule: rule.name, severity: rule.severity, detail: ctx.deps.dryRun ? `dry run: ${reason}` : reason };
  if (ctx.deps.dryRun) {
    await announce(ctx, watch, 'rule_breached', rule.severity, { rule, reason: 'Dry run: rollguard would roll back now, and changed nothing.' }, decision, rule.name);
    await ctx.deps.writes.updateDeployment(deployment.id, { state: 'would_roll_back', reason: `dry run, nothing changed: ${reason}`, decided_at: decidedAt });
    ctx.deps.metrics.rollbacks.inc({ service: service.name, outcome: 'dry_run' });
    ctx.log.warn({ service: service.name, deployment: deployment.id, rule: rule.name }, 'would roll back (dry run)');
    return;
  }
  // Recorded before anything is touched, so a crash from here on is finished at the next start.
  await ctx.deps.writes.updateDeployment(deployment.id, { state: 'rolling_back', reason, decided_at: decidedAt, phase: 'decided' });
  deployment.state = 'rolling_back';
  deployment.reason = reason;
  deployment.phase = 'decided';
  opts.decided?.();
  await announce(ctx, watch, 'rollback_started', rule.severity, { rule, reason: because }, decision);
  await (ctx.deps.failpoint ?? noFailpoints)('revert.decided', { deployment: deployment.id });
  await revert(ctx, watch, rule, false, opts.known);
}

/**
 * max_rollbacks: a revert within the limit is counted and its image marked bad (whatever the
 * revert's outcome: rollguard reverted away from it). Beyond the limit nothing is changed: the
 * deployment ends rollback_failed and a P0 page says a human must decide.
 */
export async function admitRevert(ctx: WatchContext, watch: Watch, rule: ServicePolicy['rules'][number], reason: string): Promise<boolean> {
  const { service, deployment } = watch;
  const now = ctx.now();
  const budget = await ctx.flaps().budget(service.name, service.maxRollbacks ?? DEFAULT_MAX_ROLLBACKS, now);
  if (budget.allowed) {
    await countRevert(ctx, watch, reason);
    return true;
  }
  const why = rollbackLimitMessage(service.name, budget);
  ctx.log.error({ escalate: true, severity: 'P0', service: service.name, deployment: deployment.id, rule: rule.name, reverts: budget.used, limit: budget.limit }, 'ROLLBACK LIMIT REACHED — not reverting; escalate to a human');
  await ctx.deps.writes.updateDeployment(deployment.id, { state: 'rollback_failed', reason: why, decided_at: now });
  deployment.state = 'rollback_failed';
  deployment.reason = why;
  ctx.deps.metrics.rollbacks.inc({ service: service.name, outcome: 'limited' });
  await announce(ctx, watch, 'rollback_failed', 'P0', { rule, reason: why }, { kind: 'rollback_limit', rule: rule.name, severity: 'P0', detail: `${why}; the breach: ${reason}` });
  return false;
}

/** Counts a revert against max_rollbacks and marks its image bad (unless only the settings changed). */
async function countRevert(ctx: WatchContext, watch: Watch, reason: string, to = ctx.serviceState(watch.service.name).knownGood): Promise<void> {
  const { service, deployment } = watch;
  // A reconfiguration on the image put back: the settings were bad, not the image.
  const imageChanged = deployment.to_image !== to?.image_id;
  await ctx.flaps().reverted(service.name, deployment, ctx.now(), reason, imageChanged);
}

/**
 * Reverts (or, with `resume`, finishes reverting) the watched deployment to the known-good
 * version — or to `to` (a rollback by hand with --to, which becomes known-good once it
 * recovers) — then tells people how it went.
 */
export async function revert(ctx: WatchContext, watch: Watch, rule: ServicePolicy['rules'][number], resume: boolean, to?: KnownGood): Promise<void> {
  ctx.reverting.add(watch.service.name);
  // alertmanager.silence: the service's alerts are silenced while it is reverted and verified.
  const silence = silenceWhileReverting(ctx.policy.alertmanager, { service: watch.service.name, deployment: watch.deployment.id }, ctx.log);
  try {
    await revertTo(ctx, watch, rule, resume, to);
  } finally {
    ctx.reverting.delete(watch.service.name);
    // Not awaited: expiring is tried again for a few seconds when Alertmanager fails, and nothing
    // after the revert should wait for it (end() never rejects).
    void silence.end();
  }
}

async function revertTo(ctx: WatchContext, watch: Watch, rule: ServicePolicy['rules'][number], resume: boolean, to: KnownGood | undefined): Promise<void> {
  const { service, deployment } = watch;
  const s = ctx.serviceState(service.name);
  let outcome;
  try {
    outcome = await revertDeployment(
      { ...ctx.deps, target: ctx.targetFor(service), now: ctx.now, sleep: (ms) => new Promise((r) => setTimeout(r, ms)), ownContainers: ctx.ownContainers, running: (svc) => ctx.runningReplicas(svc), leads: () => ctx.leads(service.name) },
      service,
      deployment,
      rule,
      to ?? s.knownGood,
      resume,
      { migrations: watch.migrations },
    );
  } catch (err) {
    ctx.log.error({ err, escalate: true, service: service.name, deployment: deployment.id }, 'ROLLBACK FAILED — the revert stopped on an unexpected error; escalate to a human');
    await ctx.deps.writes.updateDeployment(deployment.id, { state: 'rollback_failed', reason: `the revert stopped on an unexpected error: ${String(err)}`, phase: 'done' });
    ctx.deps.metrics.rollbacks.inc({ service: service.name, outcome: 'failed' });
    deployment.state = 'rollback_failed';
    await escalate(ctx, watch, rule, `the revert stopped on an unexpected error: ${String(err)}`, {});
    return;
  }
  if (outcome.state === 'superseded') {
    // The service was updated again before the revert: that update is watched on its own.
    ctx.endWatch(watch);
    deployment.state = 'superseded';
    return;
  }
  if (outcome.state === 'handed_over') {
    // Nothing more is recorded or announced here: the instance that leads now resumes the revert.
    ctx.endWatch(watch);
    return;
  }
  deployment.state = outcome.state;
  deployment.attempts = outcome.attempts;
  if (outcome.state === 'rolled_back') {
    deployment.recovered_at = outcome.recoveredAt ? new Date(outcome.recoveredAt) : null;
    if (to) await adoptRestored(ctx, service, to, outcome.containerIds);
    const bySwarm = rule === ORCHESTRATOR_ROLLBACK ? { reason: `Swarm rolled the update back by itself; rollguard verified the recovery: every task of ${service.name} runs the known-good version and the recovery criteria hold.` } : {};
    await announce(ctx, watch, 'rollback_succeeded', rule.severity, { rule, actions: outcome.actions, criteria: outcome.criteria, revertAt: outcome.revertAt, recoveredAt: outcome.recoveredAt, ...bySwarm });
  } else {
    await escalate(ctx, watch, rule, outcome.reason ?? 'rollback failed', { actions: outcome.actions, criteria: outcome.criteria, revertAt: outcome.revertAt });
  }
  const running = await ctx.runningReplicas(service).catch(() => []);
  const now = running.filter((r) => outcome.containerIds.includes(r.id));
  if (now.length) nowRunning(s, running.filter((r) => r.image === now[0]?.image));
  else {
    s.containerId = outcome.containerIds[0];
    s.image = outcome.image;
    s.ref = outcome.ref;
  }
}

/**
 * After a rollback by hand to another image (--to) recovered, that version becomes known-good, as
 * Docker shows it now: the replicas restored, each with the settings the new image gave it (so
 * the next start sees the same version, not a deployment).
 */
async function adoptRestored(ctx: WatchContext, service: ServicePolicy, to: KnownGood, ids: readonly string[]): Promise<void> {
  const running = await ctx.runningReplicas(service).catch(() => []);
  const restored = running.filter((r) => ids.includes(r.id) || r.image === to.image_id);
  const spec = restored.length ? ctx.targetFor(service).snapshot(restored) : to.spec;
  await ctx.setKnownGood({ ...to, spec, container_name: restored[0]?.name ?? to.container_name, since: ctx.now() });
}

/** The rule a revert that follows Swarm's own rollback is told under. */
const ORCHESTRATOR_ROLLBACK: ServicePolicy['rules'][number] = { name: 'Swarm\'s own rollback', signal: SERVING_SIGNAL, below: 1, for: 1, severity: 'P1', action: 'rollback' };

/**
 * The orchestrator is rolling the watched update back by itself (Swarm's update failure action
 * `rollback`): the watch ends and rollguard follows through rather than fighting it — recorded
 * and told as Swarm's rollback, then the service revert finds the known-good spec in place (or
 * puts it back, when Swarm rolled back to a version never proven), waits for every task and
 * verifies the recovery criteria, escalating when they do not hold. A rollback that does not
 * move the service off this deployment's version (Swarm rolling back to it from a newer one) is
 * not this deployment's: returns false and the watch goes on.
 */
export async function rolledBackByOrchestrator(ctx: WatchContext, watch: Watch, update: UpdateState): Promise<boolean> {
  const { service, deployment } = watch;
  const target = ctx.targetFor(service);
  if (watch.done || target.revertBy !== 'service') return false;
  const spec = await target.specVersion(service).catch(() => undefined);
  if (spec === undefined || (watch.version !== undefined && spec === watch.version)) return false;
  ctx.endWatch(watch);
  const reason = `Swarm rolled the update back by itself (update state ${update.state}${update.message ? `: ${update.message}` : ''})`;
  if (ctx.deps.dryRun) {
    // A dry run changes nothing and verifies nothing: Swarm's rollback is recorded and told as it is.
    await ctx.deps.writes.updateDeployment(deployment.id, { state: 'rolled_back', reason: `${reason}; dry run: rollguard verified nothing`, decided_at: ctx.now() });
    deployment.state = 'rolled_back';
    await announce(ctx, watch, 'rollback_succeeded', ORCHESTRATOR_ROLLBACK.severity, { rule: ORCHESTRATOR_ROLLBACK, reason: `${reason}. Dry run: rollguard changed and verified nothing.` }, { kind: 'orchestrator_rollback', detail: reason });
    return true;
  }
  await ctx.deps.writes.updateDeployment(deployment.id, { state: 'rolling_back', reason, decided_at: ctx.now(), phase: 'decided' });
  deployment.state = 'rolling_back';
  deployment.reason = reason;
  deployment.phase = 'decided';
  ctx.deps.metrics.rollbacks.inc({ service: service.name, outcome: 'orchestrator' });
  ctx.log.warn({ service: service.name, deployment: deployment.id, update: update.state }, 'Swarm is rolling the update back by itself; rollguard verifies the recovery');
  await announce(ctx, watch, 'rollback_started', ORCHESTRATOR_ROLLBACK.severity, { rule: ORCHESTRATOR_ROLLBACK, reason: `${reason}; rollguard changes nothing while the known-good version comes back, and verifies the recovery.` },
    { kind: 'orchestrator_rollback', rule: ORCHESTRATOR_ROLLBACK.name, severity: ORCHESTRATOR_ROLLBACK.severity, detail: reason });
  await revert(ctx, watch, ORCHESTRATOR_ROLLBACK, false);
  return true;
}

/** A window without a verdict: recorded, and the version does not become known-good. */
export async function inconclusive(ctx: WatchContext, watch: Watch, reason: string): Promise<void> {
  const { service, deployment } = watch;
  deployment.reason = reason;
  await announce(ctx, watch, 'watch_inconclusive', 'P1', { reason }, { kind: 'inconclusive', detail: reason });
  await ctx.deps.writes.updateDeployment(deployment.id, { state: 'inconclusive', reason, decided_at: ctx.now() });
  deployment.state = 'inconclusive';
  ctx.log.warn({ service: service.name, deployment: deployment.id, reason }, 'watch inconclusive');
}

/** Runbook "Rollback Failed": a P0 message to every P0 route, and the maintenance page if configured. */
export async function escalate(ctx: WatchContext, watch: Watch, rule: ServicePolicy['rules'][number], reason: string, extra: Partial<EvidenceInput>): Promise<void> {
  const d = watch.deployment;
  d.reason = reason;
  const maintenance = ctx.policy.maintenance;
  if (maintenance) {
    const started = ctx.now();
    let detail: string;
    let ok = true;
    try {
      detail = await enableMaintenance(maintenance, { service: watch.service.name, deployment: d.id });
      ctx.log.warn({ service: watch.service.name, deployment: d.id, detail }, 'maintenance mode enabled');
    } catch (err) {
      ok = false;
      detail = `maintenance hook failed: ${(err as Error).message}`;
      ctx.log.error({ service: watch.service.name, deployment: d.id, err }, 'maintenance hook failed');
    }
    await ctx.deps.writes.insertAction({ deployment_id: d.id, attempt: d.attempts, kind: 'maintenance', started_at: started, finished_at: ctx.now(), ok, detail });
  }
  await announce(ctx, watch, 'rollback_failed', 'P0', { rule, reason, ...extra }, { kind: 'escalate', rule: rule.name, severity: 'P0', detail: reason });
}
