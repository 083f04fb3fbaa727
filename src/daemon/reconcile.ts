import { BY_HAND } from './by-hand.js';
import type { ServicePolicy } from '../config/policy.js';
import type { DeployTarget, Replica } from '../targets/target.js';
import { isChange, ofKnownVersion } from '../targets/versions.js';
import { parkedBy } from '../targets/parked-names.js';
import { namesVersion, shortId } from '../model/image-ref.js';
import { emptyTally } from '../policy/assess.js';
import type { Deployment } from '../store/store.js';
import { withServingRule } from '../policy/serving.js';
import { MIGRATIONS_LABEL, nowRunning, WatchContext, type Watch } from './context.js';
import { onBadImage, revert, rolledBackByOrchestrator } from './outcomes.js';
import { announce, recordMigrations } from './record.js';
import { beginWatch, watchFor } from './watch.js';

/** Level-triggered catch-up for one service: adopt, resume or detect from what runs now. */
export async function reconcile(ctx: WatchContext, service: ServicePolicy): Promise<void> {
  const { store } = ctx.deps;
  const log = ctx.log.child({ service: service.name });
  const running = await ctx.runningReplicas(service);
  const current = running[0];
  /** The replicas of the newest image, the one judged. */
  const ofCurrent = running.filter((r) => r.image === current?.image);
  if (ofCurrent.length < running.length) {
    log.warn({ replicas: running.map((r) => `${r.name} (${r.ref})`) }, 'replicas of several images run; the newest image is the one judged');
  }
  const known = await store.getKnownGood(service.name);
  const open = (await store.openDeployments()).filter((d) => d.service === service.name);
  const s = ctx.serviceState(service.name);
  s.knownGood = known;

  for (const d of open) {
    if (d.state === 'rolling_back' || (await parkedByRevert(ctx, service, d))) {
      // Level-triggered: what Docker shows decides where the revert picks up, not only the recorded phase.
      await resumeRevert(ctx, service, d);
      return;
    }
    const deployed = running.find((r) => r.id === d.container_id && r.image === d.to_image);
    if (d.state === 'watching' && deployed) {
      log.info({ deployment: d.id }, 'resuming the watch of a deployment');
      const replicas = running.filter((r) => r.image === deployed.image);
      nowRunning(s, replicas);
      await beginWatch(ctx, service, d, 'replay', deployed, replicas);
      const resumed = s.watch;
      if (resumed && !resumed.migrations) resumed.migrations = (await store.listDecisions(d.id).catch(() => [])).some((x) => x.kind === 'migrations');
      continue;
    }
    const reason = 'the deployed container was no longer running when rollguard started';
    await ctx.deps.writes.updateDeployment(d.id, { state: 'superseded', reason, decided_at: ctx.now() });
  }
  if (!current) return;
  if (s.watch && !s.watch.done) return;
  nowRunning(s, ofCurrent);
  const latest = await store.latestDeployment(service.name);
  if (!known && !latest) {
    await adopt(ctx, service, ofCurrent);
    return;
  }
  const knownReplicas = ctx.knownReplicas(service, known);
  if (known && knownReplicas.length && running.every((r) => ofKnownVersion(r, knownReplicas))) {
    await refreshKnownGood(ctx, service, ofCurrent);
    return;
  }
  if (latest && latest.to_image === current.image && ofCurrent.some((r) => r.id === latest.container_id)) return;
  log.info({ container: current.name, image: shortId(current.image) }, 'a deployment happened while rollguard was not watching');
  await detect(ctx, service, current, known?.image_id ?? null, known?.image_ref ?? null, ofCurrent);
}

/** Whether the deployment's container is one a revert set aside (stopped and renamed) before rollguard stopped. */
export async function parkedByRevert(ctx: WatchContext, service: ServicePolicy, d: Deployment): Promise<boolean> {
  const target = ctx.targetFor(service);
  if (target.revertBy !== 'replica') return false;
  const parked = await target.parkedReplicas(service, d.id).catch(() => []);
  return parked.length > 0;
}

/**
 * Finishes a revert that a crash or restart cut short: the decision stands, and each step is
 * picked up from what Docker shows (see revertDeployment), so nothing is done twice and the
 * messages already queued are not queued again.
 */
export async function resumeRevert(ctx: WatchContext, policyService: ServicePolicy, d: Deployment): Promise<void> {
  const service = withServingRule(policyService);
  const decisions = await ctx.deps.store.listDecisions(d.id).catch(() => []);
  const decided = decisions.filter((x) => x.kind === 'rollback').pop();
  const rule = decided?.rule === BY_HAND.name ? BY_HAND : service.rules.find((r) => r.name === decided?.rule) ?? service.rules.find((r) => r.action === 'rollback') ?? service.rules[0];
  const log = ctx.log.child({ service: service.name, deployment: d.id });
  if (!rule) {
    const reason = 'rollguard stopped during a revert of a service that no longer has rules; check the service and finish by hand';
    await ctx.deps.writes.updateDeployment(d.id, { state: 'rollback_failed', reason, phase: 'done' });
    log.error({ escalate: true, reason }, 'ROLLBACK FAILED — escalate to a human');
    return;
  }
  log.warn({ phase: d.phase ?? null, attempts: d.attempts, rule: rule.name }, 'rollguard stopped during this revert; finishing it');
  d.state = 'rolling_back';
  if (d.phase === null || d.phase === undefined) await ctx.deps.writes.updateDeployment(d.id, { state: 'rolling_back', phase: 'decided' });
  const watch = watchFor(ctx, service, d, emptyTally(service), undefined, []);
  watch.done = true;
  // The revert of a deployment carrying migrations goes on with its snapshot and down-migration.
  watch.migrations = decisions.some((x) => x.kind === 'migrations');
  ctx.serviceState(service.name).watch = watch;
  await announce(ctx, watch, 'rollback_started', rule.severity, { rule },
    { kind: 'resume', rule: rule.name, severity: rule.severity, detail: `rollguard restarted during the revert (phase ${d.phase ?? 'decided'}); finishing it from what Docker shows` });
  await revert(ctx, watch, rule, true);
}

/** The running replicas of one version become the known-good set (nothing recorded before). */
export async function adopt(ctx: WatchContext, service: ServicePolicy, replicas: readonly Replica[]): Promise<void> {
  const first = replicas[0];
  if (!first) return;
  await ctx.setKnownGood({
    service: service.name, target: ctx.targetFor(service).kind, image_id: first.image, image_ref: first.ref, container_name: first.name, spec: ctx.targetFor(service).snapshot(replicas), deployment_id: null, since: ctx.now(),
  });
  ctx.log.info({ service: service.name, replicas: replicas.map((r) => r.name), image: shortId(first.image), ref: first.ref }, 'adopted the running replicas as known-good');
}

/**
 * Replicas of the known-good version came or went (scaled, restarted under another name): the
 * known-good set follows what runs, so a revert puts back as many as ran.
 */
export async function refreshKnownGood(ctx: WatchContext, service: ServicePolicy, replicas: readonly Replica[]): Promise<void> {
  const known = ctx.serviceState(service.name).knownGood;
  const target = ctx.targetFor(service);
  // A version recorded on another kind of target is not this one's to follow.
  if (!known || !replicas.length || known.target !== target.kind) return;
  const before = ctx.knownReplicas(service, known).map((k) => k.name).sort();
  const now = replicas.map((r) => r.name).sort();
  if (JSON.stringify(before) === JSON.stringify(now)) return;
  await ctx.setKnownGood({ ...known, container_name: replicas[0]?.name ?? known.container_name, spec: target.snapshot(replicas) });
  ctx.log.info({ service: service.name, before, now }, 'the known-good version runs as other replicas now; its set follows');
}

export async function onReplicaStarted(ctx: WatchContext, target: DeployTarget, id: string): Promise<void> {
  if (ctx.stopping || ctx.ownContainers.has(id)) return;
  let r: Replica | undefined;
  try {
    r = await target.replica(id);
  } catch (err) {
    ctx.log.warn({ err, container: id.slice(0, 12) }, 'cannot inspect a started container');
    // The follower hands it over again if it can (a Swarm task is listed again at the next poll).
    throw err;
  }
  if (!r) return; // gone already (a one-off run with --rm)
  const services = target.servicesOf(ctx.policy, r);
  if (services.length > 1) ctx.log.error({ container: r.name, services: services.map((s) => s.name) }, 'a container matches several services; it is not watched');
  const service = services.length === 1 ? services[0] : undefined;
  if (!service || !ctx.leads(service.name)) return;
  if (!ctx.isServiceReplica(service, r)) return;
  const replica = r;
  void ctx.queue.run(service.name, () => onServiceStart(ctx, service, replica)).catch((err) =>
    ctx.log.error({ err, service: service.name }, 'handling a deployment failed'),
  );
}

export async function onServiceStart(ctx: WatchContext, service: ServicePolicy, started: Replica): Promise<void> {
  if (ctx.stopping || ctx.ownContainers.has(started.id) || !ctx.leads(service.name)) return;
  const target = ctx.targetFor(service);
  // The start waited in the service's queue, perhaps behind a revert: judged as the replica is now.
  // One a revert removed or set aside meanwhile (a crash loop restarting the bad container while
  // it was being reverted) is not a deployment.
  const now = await target.replica(started.id).catch(() => started);
  if (!now || parkedBy(now.name) !== undefined) {
    ctx.log.debug({ service: service.name, replica: started.name }, 'a replica that started while queued is gone or set aside now; not a deployment');
    return;
  }
  const r = now;
  const s = ctx.serviceState(service.name);
  const w = s.watch;
  if (target.revertBy === 'service' && r.version !== (await target.specVersion(service).catch(() => r.version))) {
    // The service's spec has moved on (a revert, Swarm's own rollback, a newer update): the
    // orchestrator is replacing this task already, so it is no deployment.
    ctx.log.debug({ service: service.name, replica: r.name, task: r.id }, 'a task of a version the service no longer specifies; not a deployment');
    return;
  }
  const known = s.knownGood && ctx.knownReplicas(service, s.knownGood);
  const previous = s.versions.get(r.name) ?? known?.find((k) => k.name === r.name)?.version;
  const changed = isChange(r, previous, s.image ?? s.knownGood?.image_id);
  if (w && w.done && target.revertBy === 'service' && w.deployment.state === 'rollback_failed' && w.version !== undefined && r.version === w.version) {
    // Swarm goes on rolling out a version rollguard could not revert (max_rollbacks, a failed
    // revert): the same deployment, already escalated, not a new one to page about again.
    nowRunning(s, [r], true);
    ctx.log.info({ service: service.name, deployment: w.deployment.id, replica: r.name }, 'another task of a deployment that was not reverted started; it was escalated already');
    return;
  }
  if (w && !w.done && target.revertBy === 'service' && known && ofKnownVersion(r, known)) {
    // A known-good task while a deployment is watched: Swarm may be rolling the update back itself.
    const update = await target.updateState(service).catch(() => undefined);
    if (update?.rolledBack && (await rolledBackByOrchestrator(ctx, w, update))) {
      nowRunning(s, [r], true);
      return;
    }
  }
  if (w && !w.done && r.image === w.deployment.to_image && (changed || !w.replicas.has(r.id))) {
    // Another replica of the version being rolled out (replaced one by one, or one more): the same deployment.
    w.replicas.add(r.id);
    nowRunning(s, [r], true);
    ctx.log.info({ service: service.name, deployment: w.deployment.id, container: r.name, replicas: w.replicas.size }, 'another replica of the deployment started; watching it too');
    return;
  }
  if (!changed && (s.image || s.knownGood)) {
    // A restart, a recreate with the same image and settings, or one more replica: not a deployment.
    s.containerId = r.id;
    s.versions.set(r.name, r.version);
    s.replicas.set(r.name, r.id);
    if (known && r.image === s.knownGood?.image_id && !(w && !w.done)) {
      await refreshKnownGood(ctx, service, (await ctx.runningReplicas(service)).filter((x) => x.image === r.image));
    }
    return;
  }
  if (!s.image && !s.knownGood) {
    // First replica ever seen for this service: there is nothing to compare or revert to.
    const replicas = (await ctx.runningReplicas(service)).filter((x) => x.image === r.image);
    nowRunning(s, replicas.length ? replicas : [r]);
    await adopt(ctx, service, replicas.length ? replicas : [r]);
    return;
  }
  await detect(ctx, service, r, s.image ?? null, s.ref ?? null, [r]);
}

export async function detect(ctx: WatchContext, service: ServicePolicy, c: Replica, fromImage: string | null, fromRef: string | null, replicas: readonly Replica[]): Promise<void> {
  const s = ctx.serviceState(service.name);
  const previous = s.watch;
  if (previous && !previous.done) {
    ctx.endWatch(previous);
    await ctx.deps.writes.updateDeployment(previous.deployment.id, { state: 'superseded', reason: `superseded by ${c.ref} (${shortId(c.image)})`, decided_at: ctx.now() });
  }
  const startedAt = c.startedAt.getTime() > 0 ? c.startedAt : ctx.now();
  const detectedAt = ctx.now();
  const deployment = await ctx.deps.writes.insertDeployment({
    service: service.name,
    target: ctx.targetFor(service).kind,
    container_id: c.id,
    container_name: c.name,
    from_image: fromImage,
    from_ref: fromRef,
    to_image: c.image,
    to_ref: c.ref,
    dry_run: !!ctx.deps.dryRun,
    started_at: startedAt,
    detected_at: detectedAt,
    window_ends_at: new Date(detectedAt.getTime() + service.windowMs),
  });
  const sameImage = s.knownGood && s.knownGood.image_id === c.image ? { sameImage: true, changed: ctx.targetFor(service).changedSettings(s.knownGood.spec, c) } : {};
  nowRunning(s, replicas, true);
  ctx.deps.metrics.deploymentsSeen.inc({ service: service.name });
  ctx.log.info(
    { service: service.name, deployment: deployment.id, from: fromRef, fromImage: fromImage && shortId(fromImage), to: c.ref, toImage: shortId(c.image), replicas: replicas.length, ...sameImage },
    'deployment detected',
  );
  await beginWatch(ctx, service, deployment, emptyTally(service), c, replicas);
  const watch = ctx.serviceState(service.name).watch as Watch;
  const announced = ctx.pendingMigrations.get(service.name);
  const wasAnnounced = namesVersion(announced, c.ref, c.image);
  if (wasAnnounced) {
    watch.migrations = true;
    ctx.pendingMigrations.delete(service.name);
  }
  if (watch.migrations) await recordMigrations(ctx, watch, wasAnnounced ? 'announced through the deploy API' : `labelled ${MIGRATIONS_LABEL}=true`);
  await announce(ctx, watch, 'deployment_detected', 'P2', {});
  await onBadImage(ctx, watch);
}
