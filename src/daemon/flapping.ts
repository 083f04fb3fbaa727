/**
 * Anti-flapping: rollguard must never make an outage worse. An image it reverted away from is
 * bad (its redeploy is reverted at once, or only warned about); reverts per service are limited
 * (`max_rollbacks`), beyond which it pages instead; and it never reverts a revert (see revert.ts:
 * a restored version that fails its recovery escalates, it is never reverted in turn).
 *
 * The decisions are pure functions over plain data, in policy/flapping.ts; FlapGuard keeps what
 * they need in memory, so they hold while the store is down. They are seeded from the store the
 * first time a service needs them and refreshed from it now and then (another instance may have
 * led the service meanwhile).
 */
import type { Logger } from 'pino';
import type { BadImage } from '../model/bad-image.js';
import { shortId } from '../model/image-ref.js';
import type { KnownGood } from '../model/known-good.js';
import { badImageMark, revertBudget, type RevertBudget, type RollbackLimit } from '../policy/flapping.js';
import type { BadImages, RevertRecord } from '../store/bad-images.js';
import type { Deployment } from '../store/store.js';
import type { ResolveId } from '../store/write-behind.js';

/** Queues a store write behind the others (see WriteBehind.write): kept in memory while the store is down. */
/** `record`: what the write holds, kept in the set-aside file if the store rejects it. */
export type RecordWrite = (what: string, run: (resolve: ResolveId) => Promise<void>, record?: unknown) => Promise<void>;

export interface FlapGuardDeps {
  repo: Pick<BadImages, 'mark' | 'unmark' | 'forService' | 'revertsSince'>;
  record: RecordWrite;
  log: Logger;
  /** How long a first look at the store may hold up a decision; past it the decision uses memory (default 2 s). */
  seedWaitMs?: number;
}

interface ServiceFlaps {
  bad: Map<string, BadImage>;
  /** Marks cleared here, by image, up to when: a store read that has not seen the clearing yet does not bring them back. */
  cleared: Map<string, Date>;
  /** When each revert was decided, by the deployed container (stable while the store gives IDs late). */
  reverts: Map<string, Date>;
  /** When the store was last read (the decision's clock); undefined until it has been. */
  seededAt?: number;
  /** When the last read failed, so an outage does not hold up every decision. */
  failedAt?: number;
  seeding?: Promise<void>;
}

/** Reverts older than this are forgotten, unless the limit's window is longer. */
const KEEP_MS = 24 * 3_600_000;
/** What the store says is read again after this long (what this instance did is in memory anyway). */
const REFRESH_MS = 60_000;
/** After a failed read, decisions go on from memory without waiting for this long. */
const RETRY_MS = 30_000;

/** Bad images and the revert history, per service, in memory; the store only seeds and persists them. */
export class FlapGuard {
  private readonly services = new Map<string, ServiceFlaps>();

  constructor(private readonly deps: FlapGuardDeps) {}

  /**
   * The mark of the image when a redeploy of it must be reverted or warned about. A marked image
   * that has become known-good since (a redeploy of it survived its window) is cleared for good.
   */
  async badImage(service: string, imageId: string, knownGood: KnownGood | undefined, now: Date): Promise<BadImage | undefined> {
    const s = await this.seeded(service, now, KEEP_MS);
    const stale = knownGood && s.bad.get(knownGood.image_id);
    if (knownGood && stale && !badImageMark([stale], knownGood.image_id, knownGood)) {
      s.bad.delete(knownGood.image_id);
      s.cleared.set(knownGood.image_id, knownGood.since);
      this.deps.log.info({ service, image: shortId(knownGood.image_id) }, 'an image reverted away from has become known-good since; no longer marked bad');
      await this.deps.record(`bad image ${shortId(knownGood.image_id)} cleared`, () => this.deps.repo.unmark(service, knownGood.image_id, knownGood.since));
    }
    return badImageMark(s.bad.values(), imageId, knownGood);
  }

  /** Whether a revert of the service may be made now under `limit`. */
  async budget(service: string, limit: RollbackLimit, now: Date): Promise<RevertBudget> {
    const s = await this.seeded(service, now, Math.max(limit.perMs, KEEP_MS));
    for (const [k, t] of s.reverts) if (now.getTime() - t.getTime() > Math.max(limit.perMs, KEEP_MS)) s.reverts.delete(k);
    return revertBudget(s.reverts.values(), limit, now);
  }

  /**
   * A revert of `deployment` was decided: it counts against the limit, and its image is bad from
   * now on — whatever the revert's outcome, rollguard reverted away from it. Not with `markBad`
   * false: a deployment that changed only settings runs the known-good image, which is not bad.
   */
  async reverted(service: string, deployment: Pick<Deployment, 'id' | 'container_id' | 'to_image' | 'to_ref'>, at: Date, reason: string, markBad = true): Promise<void> {
    const s = this.state(service);
    s.reverts.set(deployment.container_id, at);
    if (!markBad) return;
    const mark: BadImage = { service, image_id: deployment.to_image, image_ref: deployment.to_ref, deployment_id: deployment.id, marked_at: at, reason };
    s.bad.set(mark.image_id, mark);
    await this.deps.record(`bad image ${shortId(mark.image_id)}`, (resolve) =>
      this.deps.repo.mark({ ...mark, deployment_id: mark.deployment_id === null ? null : resolve(mark.deployment_id) }), mark);
  }

  private state(service: string): ServiceFlaps {
    let s = this.services.get(service);
    if (!s) this.services.set(service, (s = { bad: new Map(), cleared: new Map(), reverts: new Map() }));
    return s;
  }

  /**
   * Merges in what the store knows, when not read lately (merging is idempotent: a revert is
   * counted once, by its container). Never waits long and never throws: while the store is down,
   * decisions are made from memory.
   */
  private async seeded(service: string, now: Date, lookBackMs: number): Promise<ServiceFlaps> {
    const s = this.state(service);
    const t = now.getTime();
    if (s.seededAt !== undefined && t - s.seededAt < REFRESH_MS) return s;
    if (!s.seeding && s.failedAt !== undefined && t - s.failedAt < RETRY_MS) return s;
    s.seeding ??= this.seed(s, service, new Date(t - lookBackMs), t).finally(() => {
      s.seeding = undefined;
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([s.seeding, new Promise<void>((r) => (timer = setTimeout(r, this.deps.seedWaitMs ?? 2_000)))]);
    clearTimeout(timer);
    return s;
  }

  private async seed(s: ServiceFlaps, service: string, since: Date, at: number): Promise<void> {
    let marks: BadImage[];
    let reverts: RevertRecord[];
    try {
      [marks, reverts] = await Promise.all([this.deps.repo.forService(service), this.deps.repo.revertsSince(service, since)]);
    } catch (err) {
      this.deps.log.warn({ err, service }, 'cannot read bad images and recent reverts; deciding from memory');
      s.failedAt = at;
      return;
    }
    for (const m of marks) {
      const cleared = s.cleared.get(m.image_id);
      if (cleared && m.marked_at <= cleared) continue;
      const known = s.bad.get(m.image_id);
      if (!known || known.marked_at < m.marked_at) s.bad.set(m.image_id, m);
    }
    for (const r of reverts) if (!s.reverts.has(r.container_id)) s.reverts.set(r.container_id, r.decided_at);
    s.seededAt = at;
    s.failedAt = undefined;
  }
}
