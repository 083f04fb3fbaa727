import type { Policy, ServicePolicy } from '../config/policy.js';
import { WatchContext, type DaemonDeps } from './context.js';
import { onReplicaStarted, reconcile } from './reconcile.js';
import { activeHold, hold, markMigrations, release } from './holds.js';
import { manualRollback, type ManualRollback } from './manual-rollback.js';
import { announceDeployment } from './announce-deployment.js';
import { revertView, ruleInfo, ruleStates } from './status-view.js';
import { withServingRule } from '../policy/serving.js';
import type { RuleInfo } from '../model/rule-view.js';

export { MIGRATIONS_LABEL, type DaemonDeps } from './context.js';
export { HoldError } from './holds.js';

/**
 * The watch loop: detects deployments, samples, decides, reverts, records. It composes the
 * concerns that share one WatchContext: reconcile.ts (catching up, detecting), watch.ts
 * (sampling and judging a window), outcomes.ts (reverts, escalation), holds.ts (holds and
 * freezes) and record.ts (samples and announcements).
 */
export class Daemon {
  private readonly ctx: WatchContext;

  constructor(policy: Policy, deps: DaemonDeps) {
    this.ctx = new WatchContext(policy, deps);
  }

  get dockerConnected(): boolean {
    return this.ctx.deps.targets.every((t) => t.connected);
  }

  /** Reconciles with what runs now (adopting, resuming, catching up), then follows Docker events. */
  async start(): Promise<void> {
    for (const h of await this.ctx.holdRepo.active(this.ctx.now())) this.ctx.holds.set(h.service, h);
    for (const target of this.ctx.deps.targets) target.follow((id) => onReplicaStarted(this.ctx, target, id));
    this.ctx.started = true;
    const led = Object.values(this.ctx.policy.services).filter((svc) => this.ctx.leads(svc.name));
    const caught = await Promise.allSettled(led.map((svc) => this.ctx.queue.run(svc.name, () => (this.ctx.leads(svc.name) ? reconcile(this.ctx, svc) : Promise.resolve()))));
    // One service that cannot be read (a Swarm manager without a leader, say) leaves the others guarded; it is tried again.
    caught.forEach((c, i) => {
      const svc = led[i] as ServicePolicy;
      if (c.status === 'fulfilled') return;
      this.ctx.log.error({ err: c.reason, service: svc.name }, 'catching up with a service at start-up failed; retrying');
      setTimeout(() => this.leadershipGained(svc.name), 2_000).unref();
    });
    this.ctx.log.info({ services: Object.keys(this.ctx.policy.services), dryRun: !!this.ctx.deps.dryRun, store: this.ctx.deps.store.sql.kind }, 'rollguard watching');
  }

  /** Stops scheduling, lets in-flight work finish (bounded), and leaves open watches to be resumed at the next start. */
  async stop(graceMs = 30_000): Promise<void> {
    this.ctx.stopping = true;
    await Promise.all(this.ctx.deps.targets.map((t) => t.unfollow()));
    for (const s of this.ctx.state.values()) if (s.watch) clearTimeout(s.watch.timer);
    const inflight = Promise.all([...this.ctx.state.values()].map((s) => s.watch?.ticking)).then(() => this.ctx.queue.idle());
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([inflight.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs)))]);
    clearTimeout(timer);
    if (timedOut) this.ctx.log.warn({ graceMs }, 'stopping with work still in flight');
  }

  /** Applies a new policy: new deployments use it; running watches finish under the policy they started with. */
  async reload(next: Policy): Promise<void> {
    const before = new Set(Object.keys(this.ctx.policy.services));
    const after = new Set(Object.keys(next.services));
    const added = [...after].filter((s) => !before.has(s));
    const removed = [...before].filter((s) => !after.has(s));
    this.ctx.policy = next;
    this.ctx.log.info({ added, removed, services: [...after] }, 'policy reloaded');
    await Promise.all(added.filter((name) => this.ctx.leads(name)).map((name) => this.ctx.queue.run(name, () => reconcile(this.ctx, next.services[name] as ServicePolicy))));
  }

  /**
   * This instance now leads `service` (at start-up, or taking over from an instance that died or
   * let go): catches up through the service's queue — resuming an open watch from its recorded
   * samples, finishing a revert, or detecting a deployment made meanwhile.
   */
  leadershipGained(service: string): void {
    const svc = this.ctx.policy.services[service];
    if (!svc || !this.ctx.started || this.ctx.stopping) return; // before start(), start() reconciles what is led
    void this.ctx.queue.run(service, async () => {
      const w = this.ctx.state.get(service)?.watch;
      if (!this.ctx.leads(service) || this.ctx.stopping || (w && !w.done)) return;
      const hold = (await this.ctx.holdRepo.active(this.ctx.now())).find((h) => h.service === service);
      if (hold) this.ctx.holds.set(service, hold);
      else this.ctx.holds.delete(service);
      await reconcile(this.ctx, svc);
    }).catch((err) => {
      // Led but not caught up (the store failed under the reconcile): try again shortly.
      this.ctx.log.error({ err, service }, 'catching up with a service taken over failed; retrying');
      setTimeout(() => this.leadershipGained(service), 2_000).unref();
    });
  }

  /** Another instance leads `service` now: its watch ends here without changing what is recorded, for the new leader to resume. */
  leadershipLost(service: string): void {
    const w = this.ctx.state.get(service)?.watch;
    if (!w || w.done) return;
    this.ctx.endWatch(w);
    this.ctx.log.info({ service, deployment: w.deployment.id }, 'watch handed over to the new leader');
  }

  /** Live view for `rollguard status` and the API. */
  status(): { services: Record<string, unknown>; activeWatches: number; dryRun: boolean; dockerConnected: boolean; policy: string } {
    const services: Record<string, unknown> = {};
    for (const name of Object.keys(this.ctx.policy.services)) {
      const s = this.ctx.state.get(name);
      const w = s?.watch;
      const watching = w && !w.done ? w : undefined;
      services[name] = {
        container: s?.containerId?.slice(0, 12) ?? null,
        replicas: s?.replicas.size ?? 0,
        image: s?.image ?? null,
        ref: s?.ref ?? null,
        // Only a hold in force on the deployment watched now pauses anything (an expired one is pruned);
        // one left from a finished deployment is not shown.
        hold: (watching && activeHold(this.ctx, watching)) ?? null,
        revert: revertView(w, this.ctx.reverting.has(name)) ?? null,
        known_good: s?.knownGood ? { ref: s.knownGood.image_ref, image: s.knownGood.image_id, since: s.knownGood.since } : null,
        watch: w && !w.done
          ? {
              deployment: w.deployment.id,
              state: w.deployment.state,
              to_ref: w.deployment.to_ref,
              from_ref: w.deployment.from_ref,
              samples: w.tally.ticks,
              started_at: w.deployment.started_at,
              window_ends_at: w.deployment.window_ends_at,
              window_ms: w.service.windowMs,
              streaks: Object.fromEntries(w.service.rules.map((r) => [r.name, w.tally.rules[r.name]?.streak ?? 0])),
              rules: ruleStates(w),
            }
          : null,
      };
    }
    return { services, activeWatches: this.ctx.activeWatches(), dryRun: !!this.ctx.deps.dryRun, dockerConnected: this.dockerConnected, policy: this.ctx.policy.source };
  }

  /**
   * The rules a deployment is judged by, for its page: the watch's own (baselines resolved) while
   * it is watched here, else the service's rules in the running policy; live says which.
   */
  rulesOf(service: string, deploymentId: number): { rules: RuleInfo[]; live: boolean } {
    const w = this.ctx.state.get(service)?.watch;
    if (w && !w.done && w.deployment.id === deploymentId) return { rules: w.service.rules.map(ruleInfo), live: true };
    const svc = this.ctx.policy.services[service];
    return { rules: svc ? withServingRule(svc).rules.map(ruleInfo) : [], live: false };
  }

  /** Resolves when every Docker event received so far has been handled (for tests and shutdown). */
  async settled(): Promise<void> {
    await Promise.all(this.ctx.deps.targets.map((t) => t.drained()));
    await this.ctx.queue.idle();
  }

  /** The deploy API's migration flag (see holds.ts). */
  markMigrations(serviceName: string, image: string): ReturnType<typeof markMigrations> {
    return markMigrations(this.ctx, serviceName, image);
  }

  /** The deploy API's announcement of a deployment (see announce.ts). */
  announceDeployment(serviceName: string, commit?: string): ReturnType<typeof announceDeployment> {
    return announceDeployment(this.ctx, serviceName, commit);
  }

  /** `rollguard hold`: pauses automatic reverts of the service's current deployment until the deadline. */
  hold(serviceName: string, forMs: number, reason: string): ReturnType<typeof hold> {
    return hold(this.ctx, serviceName, forMs, reason);
  }

  /** `rollguard rollback`: reverts the service's current deployment by hand (see manual-rollback.ts). */
  rollback(serviceName: string, opts: { to?: string; reason: string; deployment?: number }): Promise<ManualRollback> {
    return manualRollback(this.ctx, serviceName, opts);
  }

  /** `rollguard release`: ends a hold or a migration freeze. */
  release(serviceName: string): ReturnType<typeof release> {
    return release(this.ctx, serviceName);
  }
}
