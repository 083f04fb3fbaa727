import type { ServicePolicy } from '../config/policy.js';
import { type Hold } from '../store/holds.js';
import { MIGRATIONS_LABEL, WatchContext, type Watch } from './context.js';
import { announce, recordMigrations } from './record.js';
import { namesVersion } from '../model/image-ref.js';

/** A hold or release that cannot be done; `status` is the HTTP status the API answers with. */
export class HoldError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
    this.name = 'HoldError';
  }
}

/** The hold or freeze on this watch's deployment, if still in force. */
export function activeHold(ctx: WatchContext, watch: Watch): Hold | undefined {
  const h = ctx.holds.get(watch.service.name);
  if (!h || h.deployment_id !== watch.deployment.id) return undefined;
  if (h.until && h.until.getTime() <= ctx.now().getTime()) {
    ctx.holds.delete(watch.service.name);
    ctx.log.info({ service: h.service, deployment: h.deployment_id, hold: h.id }, 'hold expired; automatic reverts resume');
    return undefined;
  }
  return h;
}

/**
 * Whether a revert the rules call for must wait: an operator's hold (fix forward), or a
 * deployment carrying DB migrations (runbook: database rollbacks can cause data loss), which
 * pages and waits for `rollguard release` unless the policy says `on_migrations: revert`.
 * The watch goes on, so when the hold ends and the rule still breaches the revert proceeds.
 */
export async function paused(ctx: WatchContext, watch: Watch, rule: ServicePolicy['rules'][number]): Promise<boolean> {
  let hold = activeHold(ctx, watch);
  if (!hold && watch.migrations && !watch.freezeReleased && watch.service.onMigrations !== 'revert') {
    hold = await addHold(ctx, watch, 'freeze', null, `deployment carries DB migrations (label ${MIGRATIONS_LABEL}=true); not reverted automatically`);
  }
  if (!hold) return false;
  if (watch.announcedHold !== hold.id) {
    watch.announcedHold = hold.id;
    const what = hold.kind === 'freeze'
      ? `${hold.reason}. Revert by hand, or run \`rollguard release ${hold.service}\` to let rollguard revert.`
      : `Held until ${hold.until?.toISOString()} by an operator: ${hold.reason}. If the rule still breaches then, the revert proceeds.`;
    ctx.log.warn({ service: hold.service, deployment: hold.deployment_id, rule: rule.name, hold: hold.kind, until: hold.until }, 'revert paused');
    await announce(ctx, watch, 'rule_breached', hold.kind === 'freeze' ? 'P0' : rule.severity, { rule, reason: what },
      { kind: hold.kind === 'freeze' ? 'frozen' : 'held', rule: rule.name, severity: rule.severity, detail: what }, `${hold.kind}:${hold.id}`);
  }
  return true;
}

export async function addHold(ctx: WatchContext, watch: Watch, kind: Hold['kind'], until: Date | null, reason: string): Promise<Hold> {
  const row = { service: watch.service.name, deployment_id: watch.deployment.id, kind, reason, created_at: ctx.now(), until };
  const hold = await ctx.holdRepo.add(row).catch((err) => {
    ctx.log.error({ err }, 'could not record a hold; it applies in memory');
    return { ...row, id: -Date.now(), released_at: null } as Hold;
  });
  ctx.holds.set(watch.service.name, hold);
  return hold;
}

/**
 * The deploy API's migration flag: the deployment of `image` (tag or image ID) carries DB
 * migrations. Applies to the watch of that image if it runs now, else to the next deployment of
 * it (pipelines call this just before deploying).
 */
export async function markMigrations(ctx: WatchContext, serviceName: string, image: string): Promise<{ service: string; image: string; applied: 'current' | 'next' }> {
  if (!ctx.policy.services[serviceName]) throw new HoldError(`unknown service "${serviceName}"`, 404);
  return ctx.queue.run(serviceName, async () => {
    const watch = ctx.state.get(serviceName)?.watch;
    if (watch && !watch.done && namesVersion(image, watch.deployment.to_ref, watch.deployment.to_image)) {
      watch.migrations = true;
      await recordMigrations(ctx, watch, 'announced through the deploy API');
      ctx.log.warn({ service: serviceName, deployment: watch.deployment.id, image }, 'deployment marked as carrying DB migrations');
      return { service: serviceName, image, applied: 'current' as const };
    }
    ctx.pendingMigrations.set(serviceName, image);
    ctx.log.warn({ service: serviceName, image }, 'the next deployment of this image is marked as carrying DB migrations');
    return { service: serviceName, image, applied: 'next' as const };
  });
}

/** `rollguard hold`: pauses automatic reverts of the service's current deployment until `until`. */
export async function hold(ctx: WatchContext, serviceName: string, forMs: number, reason: string): Promise<Hold> {
  return ctx.queue.run(serviceName, async () => {
    const watch = ctx.state.get(serviceName)?.watch;
    if (!ctx.policy.services[serviceName]) throw new HoldError(`unknown service "${serviceName}"`, 404);
    if (!watch || watch.done) throw new HoldError(`no deployment of ${serviceName} is being watched; nothing to hold`, 409);
    const existing = activeHold(ctx, watch);
    if (existing) await ctx.holdRepo.release(existing.id, ctx.now()).catch(() => {});
    const hold = await addHold(ctx, watch, 'hold', new Date(ctx.now().getTime() + forMs), reason);
    ctx.log.warn({ service: serviceName, deployment: watch.deployment.id, until: hold.until, reason }, 'hold placed: automatic reverts paused');
    return hold;
  });
}

/** `rollguard release`: ends a hold or a migration freeze; a rule still breaching reverts at the next sample. */
export async function release(ctx: WatchContext, serviceName: string): Promise<Hold> {
  return ctx.queue.run(serviceName, async () => {
    const h = ctx.holds.get(serviceName);
    if (!h) throw new HoldError(`${serviceName} has no hold or freeze`, 404);
    ctx.holds.delete(serviceName);
    await ctx.holdRepo.release(h.id, ctx.now()).catch((err) => ctx.log.error({ err }, 'could not record a release'));
    const watch = ctx.state.get(serviceName)?.watch;
    if (watch && h.kind === 'freeze') watch.freezeReleased = true;
    ctx.log.warn({ service: serviceName, deployment: h.deployment_id, hold: h.kind }, 'released: automatic reverts resume');
    return { ...h, released_at: ctx.now() };
  });
}
