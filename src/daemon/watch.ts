import type { ServicePolicy } from '../config/policy.js';
import type { TemplateValues } from '../config/template.js';
import type { Replica } from '../targets/target.js';
import { shortId, versionOf } from '../model/image-ref.js';
import { describeThreshold, emptyTally, withBaseline, type WatchTally } from '../policy/assess.js';
import type { Deployment } from '../store/store.js';
import { PrometheusProvider, rangeAverage } from '../signals/prometheus.js';
import type { Measurement } from '../signals/provider.js';
import { renderTemplate } from '../config/template.js';
import { withServingRule } from '../policy/serving.js';
import { planTick, tallyFromSamples } from '../policy/tick-plan.js';
import { replicaReaders, ruleSignals, sampleBurnRates, sampleSignals, valuesOf } from './sampling.js';
import { MIGRATIONS_LABEL, WatchContext, type Watch } from './context.js';
import { activeHold, paused } from './holds.js';
import { noFailpoints } from './failpoints.js';
import { onNoData, rollback, rolledBackByOrchestrator } from './outcomes.js';
import { conclude, passEarly } from './conclude.js';
import { announce, recordSamples } from './record.js';

export async function replayTally(ctx: WatchContext, service: ServicePolicy, d: Deployment): Promise<WatchTally> {
  const samples = (await ctx.deps.store.listSamples(d.id)).filter((x) => x.stage === 'watch');
  const tally = tallyFromSamples(service, emptyTally(service), samples.map((x) => ({ at: x.taken_at.getTime(), signal: x.signal, value: x.value })));
  // Nothing watched the deployment while rollguard was down: pass_after's run of ok samples starts again.
  return { ...tally, okStreak: 0 };
}

/**
 * Applies baseline-relative rules: each one's threshold comes from the same query's average
 * over its baseline range before the deploy (a range query at deploy time). A baseline that
 * cannot be measured leaves the rule without data — never a guess.
 */
export async function resolveBaselines(ctx: WatchContext, service: ServicePolicy, deployment: Deployment, template: TemplateValues): Promise<ServicePolicy> {
  if (!service.rules.some((r) => r.baseline)) return service;
  const prometheus = ctx.deps.providers.prometheus;
  const rules = await Promise.all(service.rules.map(async (rule) => {
    if (!rule.baseline) return rule;
    const signal = service.signals[rule.signal];
    const measured = signal?.kind === 'prometheus' && prometheus instanceof PrometheusProvider
      ? await rangeAverage(prometheus, renderTemplate(signal.query, template), deployment.started_at, rule.baseline.windowMs, service.intervalMs)
      : { value: null, points: 0, detail: 'no Prometheus configured' };
    const resolved = withBaseline(rule, measured.value);
    const detail = `${rule.name}: baseline ${measured.value ?? 'unknown'} over ${rule.baseline.windowMs / 1000} s before the deploy (${measured.points} points${measured.detail ? `; ${measured.detail}` : ''}); threshold ${describeThreshold(resolved)}`;
    ctx.log.info({ service: service.name, deployment: deployment.id, rule: rule.name, baseline: measured.value, threshold: resolved.above }, 'baseline measured');
    await ctx.deps.writes.insertDecision({ deployment_id: deployment.id, decided_at: ctx.now(), kind: 'baseline', rule: rule.name, severity: rule.severity, detail });
    return resolved;
  }));
  return { ...service, rules };
}

/** Starts (or, with 'replay', resumes from its recorded samples) the watch of a deployment. */
export async function beginWatch(ctx: WatchContext, policyService: ServicePolicy, deployment: Deployment, start: WatchTally | 'replay', deployed: Replica, replicas: readonly Replica[]): Promise<void> {
  const template = { service: policyService.name, container: deployment.container_name, image: deployment.to_ref, version: versionOf(deployment.to_ref) };
  const service = await resolveBaselines(ctx, withServingRule(policyService), deployment, template);
  const tally = start === 'replay' ? await replayTally(ctx, service, deployment) : start;
  const watch = watchFor(ctx, service, deployment, tally, deployed, replicas);
  ctx.serviceState(service.name).watch = watch;
  ctx.deps.metrics.activeWatches.set(ctx.activeWatches());
  schedule(ctx, watch);
  void checkRevertTarget(ctx, watch);
}

/**
 * Checks, when the watch begins rather than when a revert needs it, that the known-good image
 * is still on this host, so a missing revert target is known while there is time to act.
 */
export async function checkRevertTarget(ctx: WatchContext, watch: Watch): Promise<void> {
  const known = ctx.serviceState(watch.service.name).knownGood;
  if (!known || ctx.deps.dryRun) return;
  try {
    await ctx.targetFor(watch.service).resolveImage(known.image_id, known.image_ref);
  } catch (err) {
    const detail = `no revert target: ${(err as Error).message}; a revert of this deployment would fail`;
    ctx.log.error({ service: watch.service.name, deployment: watch.deployment.id, image: shortId(known.image_id), ref: known.image_ref }, 'the known-good image is missing; this deployment cannot be reverted');
    await ctx.deps.writes.insertDecision({ deployment_id: watch.deployment.id, decided_at: ctx.now(), kind: 'no_revert_target', detail });
  }
}

export function watchFor(ctx: WatchContext, service: ServicePolicy, deployment: Deployment, tally: WatchTally, deployed: Replica | undefined, replicas: readonly Replica[]): Watch {
  const template = { service: service.name, container: deployment.container_name, image: deployment.to_ref, version: versionOf(deployment.to_ref) };
  return {
    migrations: deployed?.labels[MIGRATIONS_LABEL] === 'true', deployment, replicas: new Set(replicas.map((r) => r.id)), version: deployed?.version,
    service, tally, history: new Map(), done: false, template,
  };
}

/**
 * Ticks never overlap: the next one is scheduled only after the previous has finished, one
 * interval after the previous one sampled — so a watch samples once per interval whatever its
 * tick's query and writes take, and the watches a batched query answered come back together.
 * A tick that took longer than the interval is followed at once.
 */
export function schedule(ctx: WatchContext, watch: Watch, delayMs = watch.service.intervalMs): void {
  if (watch.done || ctx.stopping) return;
  watch.dueAt = ctx.now().getTime() + delayMs;
  watch.timer = setTimeout(() => {
    const started = ctx.now().getTime();
    watch.sampledAt = undefined;
    watch.ticking = tick(ctx, watch)
      .catch((err) => ctx.log.error({ err, service: watch.service.name, deployment: watch.deployment.id }, 'watch tick failed'))
      .finally(() => {
        watch.ticking = undefined;
        // Set by the tick once it sampled, even when it failed afterwards.
        schedule(ctx, watch, nextTickDelay(watch.sampledAt ?? started, watch.service.intervalMs, ctx.now().getTime()));
      });
  }, delayMs);
}

/** How long until the next tick: one interval after the last sample was taken, at once when that has passed. */
export function nextTickDelay(sampledAt: number, intervalMs: number, now: number): number {
  return Math.max(0, sampledAt + intervalMs - now);
}

/**
 * The moment a tick's signals describe, which the next tick is timed from: a batched query's
 * time when one answered (the rhythm of its batch), else when the tick was due — a tick run late
 * because many were due at once keeps its place rather than drift by the delay.
 */
export function sampleTime(measurements: readonly Measurement[], at: number, dueAt: number | undefined): number {
  const batched = measurements.flatMap((m) => (m.takenAt === undefined ? [] : [m.takenAt]));
  if (batched.length) return Math.max(...batched);
  return dueAt !== undefined && dueAt <= at ? dueAt : at;
}

/** One tick; records in `watch.sampledAt` when its signals were sampled (see sampleTime). */
export async function tick(ctx: WatchContext, watch: Watch): Promise<void> {
  if (watch.done || ctx.stopping) return;
  const { service, deployment } = watch;
  const at = ctx.now();
  const warmingUp = at.getTime() < deployment.started_at.getTime() + service.warmupMs;
  const floor = service.minRequests;
  const names = warmingUp ? [] : [...new Set([...ruleSignals(service), ...(floor ? [floor.signal] : [])])];
  const probe = { template: watch.template, containerId: deployment.container_id, containerIds: [...watch.replicas], at, dueAt: watch.dueAt, intervalMs: service.intervalMs, deployedAt: deployment.started_at.getTime(), ...replicaReaders(ctx.targetFor(service)) };
  const providers = ctx.sampling.get();
  const [measurements, burns] = await Promise.all([
    sampleSignals(providers, ctx.deps.metrics, service, names, probe),
    warmingUp ? {} : sampleBurnRates(providers, service, probe),
  ]);
  Object.assign(measurements, burns);
  watch.sampledAt = sampleTime(Object.values(measurements), at.getTime(), watch.dueAt);
  await ctx.queue.run(service.name, async () => {
    // Leadership may have lapsed while the signals were sampled (this instance paused past its
    // lease): nothing is recorded or decided; the lapse ends the watch for the leader to resume.
    if (watch.done || ctx.stopping || !ctx.leads(service.name)) return;
    if (await followUpdate(ctx, watch)) return;
    // pass_after: nothing passes early while a hold or migration freeze is in force or a revert runs.
    const held = service.passAfter ? !!activeHold(ctx, watch) || ctx.reverting.has(service.name) : undefined;
    const plan = planTick({
      service, tally: watch.tally, values: valuesOf(measurements), warmingUp, windowEnded: at.getTime() >= deployment.window_ends_at.getTime(),
      elapsedMs: at.getTime() - deployment.started_at.getTime(), held,
    });
    watch.tally = plan.tally;
    for (const step of plan.steps) {
      switch (step.kind) {
        case 'record':
          await recordSamples(ctx, watch, at, measurements, step.results, step.note);
          break;
        case 'notify':
          await announce(ctx, watch, 'rule_breached', step.rule.severity, { rule: step.rule },
            { kind: 'notify', rule: step.rule.name, severity: step.rule.severity, detail: `${step.rule.name}: ${step.rule.signal} ${describeThreshold(step.rule)} for ${step.rule.for} samples` }, step.rule.name);
          ctx.log.warn({ service: service.name, deployment: deployment.id, rule: step.rule.name, severity: step.rule.severity }, 'rule breached (notify only)');
          break;
        case 'revert':
          await (ctx.deps.failpoint ?? noFailpoints)('watch.revert-due', { deployment: deployment.id, rule: step.rule.name });
          if (await paused(ctx, watch, step.rule)) return;
          ctx.endWatch(watch);
          await rollback(ctx, watch, step.rule, step.value);
          return;
        case 'no-data':
          if (await onNoData(ctx, watch, step.rules)) return;
          break;
        case 'conclude':
          if (activeHold(ctx, watch)) return;
          ctx.endWatch(watch);
          await conclude(ctx, watch);
          return;
        case 'pass-early':
          if (await passEarly(ctx, watch, step)) return;
          break;
      }
    }
  });
}

/**
 * Records the orchestrator's own account of the update (Swarm's UpdateStatus) whenever it
 * changes, beside the samples; ends the watch when Swarm rolled the update back by itself.
 * Returns whether the watch ended.
 */
async function followUpdate(ctx: WatchContext, watch: Watch): Promise<boolean> {
  const target = ctx.targetFor(watch.service);
  if (target.revertBy !== 'service') return false;
  const update = await target.updateState(watch.service).catch(() => undefined);
  if (!update) return false;
  const text = `${update.state}${update.message ? `: ${update.message}` : ''}`;
  if (text !== watch.updateState) {
    watch.updateState = text;
    await ctx.deps.writes.insertDecision({ deployment_id: watch.deployment.id, decided_at: ctx.now(), kind: 'update_state', detail: `Swarm's update: ${text}` });
  }
  if (!update.rolledBack) return false;
  return rolledBackByOrchestrator(ctx, watch, update);
}
