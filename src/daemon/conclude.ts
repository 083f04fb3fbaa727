import { formatDuration } from '../config/duration.js';
import { shortId } from '../model/image-ref.js';
import { concludeWindow, type EarlyPass } from '../policy/assess.js';
import type { Replica, UpdateState } from '../targets/target.js';
import { WatchContext, type Watch } from './context.js';
import { activeHold } from './holds.js';
import { inconclusive } from './outcomes.js';
import { announce } from './record.js';

// How a watch ends without a revert: at the window's end (passed, inconclusive or unproven), or
// earlier with `pass_after` (passed_early) — one path to known-good for both.

/** Judges a window that ran to its end: passed and known-good, or inconclusive. */
export async function conclude(ctx: WatchContext, watch: Watch): Promise<void> {
  const { service } = watch;
  const outcome = concludeWindow(service, watch.tally);
  if (outcome.kind === 'unproven' || (outcome.kind === 'inconclusive' && !service.inconclusiveIsGood)) return inconclusive(ctx, watch, outcome.reason);
  const proof = await provenReplicas(ctx, watch);
  // Leadership may have lapsed while Docker answered: the instance that leads now concludes.
  if (!proof) return;
  if ('problem' in proof) return inconclusive(ctx, watch, `the window passed but ${proof.problem}`);
  await makeKnownGood(ctx, watch, proof);
  if (outcome.kind === 'inconclusive') {
    // inconclusive_is_good: recorded as inconclusive, but the version becomes the revert target.
    return inconclusive(ctx, watch, `${outcome.reason}; now known-good (inconclusive_is_good)`);
  }
  await passed(ctx, watch, proof);
}

/** The replicas of the deployed version running now, and the orchestrator's update state when it has one. */
type Proof = { replicas: [Replica, ...Replica[]]; decidedAt: Date; update?: UpdateState };

/**
 * The replicas that make the deployed version known-good, as the target shows them now; a
 * problem when they cannot: not inspectable, none left running, or the orchestrator's update
 * paused part-way. Undefined when this instance no longer leads the service.
 */
async function provenReplicas(ctx: WatchContext, watch: Watch): Promise<Proof | { problem: string } | undefined> {
  const { service, deployment } = watch;
  const decidedAt = ctx.now();
  let replicas: Replica[];
  try {
    replicas = (await ctx.runningReplicas(service)).filter((r) => r.image === deployment.to_image);
  } catch (err) {
    // Without their specs the version cannot become a revert target.
    return { problem: `the replicas could not be inspected (${String(err)})` };
  }
  if (!ctx.leads(service.name)) return undefined;
  const [c, ...more] = replicas;
  if (!c) return { problem: 'no replica of the version runs any more; not known-good' };
  const target = ctx.targetFor(service);
  const update = target.revertBy === 'service' ? await target.updateState(service).catch(() => undefined) : undefined;
  if (update?.paused) {
    // Half the service may still run the previous version: the update is not done, so not proven.
    return { problem: `Swarm paused the update part-way (${update.state}${update.message ? `: ${update.message}` : ''}); not known-good` };
  }
  return { replicas: [c, ...more], decidedAt, update };
}

/** The deployed version, as its replicas run now, becomes the revert target. */
async function makeKnownGood(ctx: WatchContext, watch: Watch, proof: Proof): Promise<void> {
  const target = ctx.targetFor(watch.service);
  const [c] = proof.replicas;
  await ctx.setKnownGood({
    service: watch.service.name, target: target.kind, image_id: c.image, image_ref: c.ref, container_name: c.name, spec: target.snapshot(proof.replicas), deployment_id: watch.deployment.id, since: proof.decidedAt,
  });
}

/** Records the deployment passed (at the window's end, or early) and tells people; its replicas are known-good already. */
async function passed(ctx: WatchContext, watch: Watch, proof: Proof, early?: EarlyPass): Promise<void> {
  const { service, deployment } = watch;
  const state = early ? 'passed_early' : 'passed';
  const why = early ? earlyReason(watch, early) : undefined;
  await ctx.deps.writes.updateDeployment(deployment.id, { state, reason: why ? `${why}; now known-good` : 'window survived; now known-good', decided_at: proof.decidedAt });
  deployment.state = state;
  await announce(ctx, watch, 'deployment_passed', 'P2', why ? { reason: why } : {},
    { kind: 'pass', detail: why ?? `survived ${watch.tally.ticks} samples with no rollback rule breached` });
  const c = proof.replicas[0];
  ctx.log.info({ service: service.name, deployment: deployment.id, image: shortId(c.image), ref: c.ref, replicas: proof.replicas.map((r) => r.name), early: !!early }, 'deployment passed; now known-good');
}

/** `passed early after 20 ok samples in 2m30s` and what that means, for the record and the message. */
function earlyReason(watch: Watch, early: EarlyPass): string {
  const { service } = watch;
  const rule = service.passAfter ? `every rule ok for ${service.passAfter.ok} samples in a row, at least ${formatDuration(service.passAfter.minMs)} after the deploy; ` : '';
  return `passed early after ${early.oks} ok samples in ${formatDuration(early.afterMs)} (pass_after: ${rule}the window is ${formatDuration(service.windowMs)})`;
}

/**
 * `pass_after`: every rule was ok long enough, so the version becomes known-good before its
 * window ends, by the window's own path. A hold or a revert in the meantime (the plan was made
 * without one) or replicas that cannot be proven now (not inspectable, none left, an update
 * paused) only defer it: the watch goes on, and the window's end decides as before. Returns
 * whether the watch ended.
 */
export async function passEarly(ctx: WatchContext, watch: Watch, early: EarlyPass): Promise<boolean> {
  const { service, deployment } = watch;
  if (activeHold(ctx, watch) || ctx.reverting.has(service.name) || deployment.state !== 'watching') return false;
  const proof = await provenReplicas(ctx, watch);
  if (!proof || 'problem' in proof) {
    if (proof) ctx.log.debug({ service: service.name, deployment: deployment.id, problem: proof.problem }, 'not passing early; still watching');
    return false;
  }
  if (proof.update && proof.update.state !== 'completed') {
    // A rolling update still under way: some tasks may not run the version yet, so it is not proven early.
    ctx.log.debug({ service: service.name, deployment: deployment.id, update: proof.update.state }, 'not passing early while the update is under way');
    return false;
  }
  ctx.endWatch(watch);
  await makeKnownGood(ctx, watch, proof);
  await passed(ctx, watch, proof, early);
  return true;
}
