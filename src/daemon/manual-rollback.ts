import { shortId } from '../model/image-ref.js';
import { emptyTally } from '../policy/assess.js';
import type { KnownGood } from '../store/store.js';
import { WatchContext, type Watch } from './context.js';
import { BY_HAND } from './by-hand.js';
import { rollback } from './outcomes.js';
import { watchFor } from './watch.js';

/** A manual rollback that cannot be done; `status` is the HTTP status the API answers with. */
export class RollbackRefused extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
    this.name = 'RollbackRefused';
  }
}

/** What `rollguard rollback` started: the deployment being reverted and the version put back. */
export interface ManualRollback {
  service: string;
  deployment_id: number;
  from: string;
  to: string;
}

/** How long a rollback by hand waits for the service's queue (a tick, a reconcile) before it is refused. */
const QUEUE_WAIT_MS = 10_000;

/**
 * `rollguard rollback SERVICE [--to IMAGE]`: the runbook's manual revert, through the automatic
 * revert's own path (recorded phase by phase, so a crash is finished at the next start; told to
 * every route; verified against the recovery criteria; retried, then escalated). It reverts the
 * service's current deployment — the one watched now, or the last one recorded when it is what
 * runs — to the known-good version, or with `to` to that image run with the known-good settings,
 * which becomes the known-good version once the revert recovers (a revert to it cut short by a
 * crash is finished to the known-good version: the proven one). `deployment` pins the deployment
 * the operator saw: another one is refused. An operator's call is not limited by `max_rollbacks`
 * and ends a hold, but it counts like any revert and marks the reverted image bad.
 *
 * Resolves once the revert is decided and recorded; the revert goes on in the background and
 * its progress is the deployment's state and phase. Refused (RollbackRefused, nothing changed)
 * while a revert of the service runs, or when the service's queue stays busy for 10 s.
 */
export async function manualRollback(ctx: WatchContext, serviceName: string, opts: { to?: string; reason: string; deployment?: number }): Promise<ManualRollback> {
  const service = ctx.policy.services[serviceName];
  if (!service) throw new RollbackRefused(`unknown service "${serviceName}"; the policy has: ${Object.keys(ctx.policy.services).join(', ')}`, 404);
  if (ctx.deps.dryRun) throw new RollbackRefused('rollguard runs with --dry-run and never changes containers; roll back by hand', 409);
  const refuseNow = (): void => {
    if (ctx.stopping) throw new RollbackRefused('rollguard is stopping; nothing was changed', 503);
    if (!ctx.leads(serviceName)) throw new RollbackRefused(`this instance does not lead ${serviceName}; ask the instance that does (see its status)`, 409);
    if (ctx.reverting.has(serviceName)) throw new RollbackRefused(`a revert of ${serviceName} is running now; follow it with \`rollguard history --service ${serviceName}\``, 409);
  };
  refuseNow();
  let started!: (m: ManualRollback) => void;
  const decided = new Promise<ManualRollback>((resolve) => { started = resolve; });
  let gaveUp = false;
  let begun = false;
  const run = ctx.queue.run(serviceName, async () => {
    if (gaveUp) return;
    begun = true;
    refuseNow();
    const s = ctx.serviceState(serviceName);
    const watch = s.watch && !s.watch.done ? s.watch : await lastDeployment(ctx, serviceName, s.image);
    const d = watch.deployment;
    if (opts.deployment !== undefined && d.id !== opts.deployment) {
      throw new RollbackRefused(`${serviceName}'s current deployment is ${d.id} (${d.to_ref}), not ${opts.deployment}; nothing was changed`, 409);
    }
    if (d.id < 0) throw new RollbackRefused(`deployment of ${d.to_ref} is not recorded yet (the store is unreachable); try again when it is`, 503);
    if (d.state === 'rolling_back') throw new RollbackRefused(`deployment ${d.id} of ${serviceName} is already being rolled back`, 409);
    const known = opts.to ? await knownWith(ctx, serviceName, s.knownGood, opts.to) : s.knownGood;
    if (!known) throw new RollbackRefused(`no known-good version of ${serviceName} is recorded; pass --to IMAGE`, 409);
    if (!opts.to && (known.deployment_id === d.id || (d.to_image === known.image_id && d.state !== 'watching'))) {
      throw new RollbackRefused(`${serviceName} already runs its known-good version ${known.image_ref} (${shortId(known.image_id)}); pass --to IMAGE to go back further`, 409);
    }
    const because = `rolled back by hand: ${opts.reason}`;
    ctx.log.warn({ service: serviceName, deployment: d.id, to: known.image_ref, reason: opts.reason }, 'rollback by hand requested');
    ctx.endWatch(watch);
    await endHold(ctx, serviceName);
    await rollback(ctx, watch, BY_HAND, null, because, {
      byHand: true,
      known: opts.to ? known : undefined,
      decided: () => started({ service: serviceName, deployment_id: d.id, from: d.to_ref, to: known.image_ref }),
    });
  });
  run.catch((err: unknown) => {
    if (!(err instanceof RollbackRefused)) ctx.log.error({ err, service: serviceName }, 'rollback by hand failed');
  });
  let timer: NodeJS.Timeout | undefined;
  const busy = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      // Once the queued work has begun it is decided or refused shortly: only waiting is given up.
      if (begun) return;
      gaveUp = true;
      reject(new RollbackRefused(`${serviceName} is busy (a sample or a catch-up holds it); nothing was changed — try again`, 503));
    }, QUEUE_WAIT_MS);
  });
  // The revert is decided (resolves) or refused (rejects); one that ends without either was not started.
  const notStarted = run.then(() => { throw new RollbackRefused(`the rollback of ${serviceName} was not started (see rollguard's log)`, 409); });
  try {
    return await Promise.race([decided, notStarted, busy]);
  } finally {
    clearTimeout(timer);
  }
}

/** A rollback by hand ends the service's hold or migration freeze: the operator has decided. */
async function endHold(ctx: WatchContext, serviceName: string): Promise<void> {
  const hold = ctx.holds.get(serviceName);
  if (!hold) return;
  ctx.holds.delete(serviceName);
  await ctx.holdRepo.release(hold.id, ctx.now()).catch((err: unknown) => ctx.log.error({ err, service: serviceName }, 'could not record the release of a hold'));
}

/** The last recorded deployment, as a watch to revert, when it is what runs now. */
async function lastDeployment(ctx: WatchContext, serviceName: string, runningImage: string | undefined): Promise<Watch> {
  const service = ctx.policy.services[serviceName]!;
  const latest = await ctx.deps.store.latestDeployment(serviceName).catch((err: unknown) => {
    throw new RollbackRefused(`cannot read ${serviceName}'s deployments from the store: ${String(err)}`, 503);
  });
  if (!latest) throw new RollbackRefused(`no deployment of ${serviceName} is recorded; nothing to roll back`, 409);
  if (runningImage && latest.to_image !== runningImage) {
    throw new RollbackRefused(`${serviceName} runs ${shortId(runningImage)}, not the last recorded deployment ${latest.id} (${latest.to_ref}); nothing was changed`, 409);
  }
  const replicas = await ctx.runningReplicas(service).catch(() => []);
  const deployed = replicas.find((r) => r.image === latest.to_image);
  const watch = watchFor(ctx, service, latest, emptyTally(service), deployed, replicas);
  // A deployment carrying migrations (its label, or announced and recorded) keeps its snapshot and down-migration when reverted by hand.
  if (!watch.migrations) watch.migrations = (await ctx.deps.store.listDecisions(latest.id).catch(() => [])).some((x) => x.kind === 'migrations');
  return watch;
}

/** The known-good snapshot with `to` (tag or image ID) as its image; the image must be on the host. */
async function knownWith(ctx: WatchContext, serviceName: string, known: KnownGood | undefined, to: string): Promise<KnownGood> {
  if (!known) throw new RollbackRefused(`no known-good version of ${serviceName} is recorded, so there are no settings to run ${to} with`, 409);
  const target = ctx.targetFor(ctx.policy.services[serviceName]!);
  try {
    return await target.withImage(known, to);
  } catch (err) {
    throw new RollbackRefused(err instanceof Error ? err.message : String(err), 409);
  }
}
