/**
 * Anti-flapping decisions, as pure functions over plain data: whether an image is bad for a service,
 * whether the rollback limit allows another revert, what rollguard says when it does not revert,
 * and the rule a revert of a bad image is made under. daemon/flapping.ts (FlapGuard) keeps the
 * marks and the revert history they read, seeded from the store.
 */
import { formatDuration } from '../config/duration.js';
import type { Rule, ServicePolicy, Severity } from '../config/policy.js';
import type { BadImage } from '../model/bad-image.js';
import { shortId } from '../model/image-ref.js';
import type { KnownGood } from '../model/known-good.js';

/** At most `count` reverts of a service within `perMs`. */
export interface RollbackLimit { count: number; perMs: number }

/** Applies where a (hand-built) policy sets no limit; the loader always sets one. */
export const DEFAULT_MAX_ROLLBACKS: RollbackLimit = { count: 3, perMs: 3_600_000 };

/** Whether another revert is allowed now; when not, when the oldest counted revert leaves the window. */
export type RevertBudget =
  | { allowed: true; used: number; limit: RollbackLimit }
  | { allowed: false; used: number; limit: RollbackLimit; freesAt: Date };

/**
 * The mark of `imageId` when it is bad for the service: rollguard reverted away from it, and it has
 * not become known-good since (a redeploy that survived its window, e.g. under on_bad_image: warn).
 */
export function badImageMark(marks: Iterable<BadImage>, imageId: string, knownGood?: Pick<KnownGood, 'image_id' | 'since'>): BadImage | undefined {
  let mark: BadImage | undefined;
  for (const m of marks) if (m.image_id === imageId && (!mark || m.marked_at > mark.marked_at)) mark = m;
  if (!mark) return undefined;
  if (knownGood?.image_id === imageId && knownGood.since.getTime() >= mark.marked_at.getTime()) return undefined;
  return mark;
}

/** Counts the reverts decided within the limit's window before `now`; allowed while fewer than `count`. */
export function revertBudget(decidedAt: Iterable<Date>, limit: RollbackLimit, now: Date): RevertBudget {
  const from = now.getTime() - limit.perMs;
  const inWindow = [...decidedAt].map((d) => d.getTime()).filter((t) => t > from && t <= now.getTime()).sort((a, b) => a - b);
  if (inWindow.length < limit.count) return { allowed: true, used: inWindow.length, limit };
  // The window slides: one more revert is allowed once enough of the counted ones have left it.
  const oldestToLeave = inWindow[inWindow.length - limit.count] as number;
  return { allowed: false, used: inWindow.length, limit, freesAt: new Date(oldestToLeave + limit.perMs) };
}

/** `2026-05-01 03:00:15 UTC` */
const utc = (t: Date): string => `${t.toISOString().slice(0, 19).replace('T', ' ')} UTC`;

/** What rollguard says about a redeploy of a bad image, by what it does about it. */
export function badImageMessage(mark: BadImage, then: 'revert' | 'warn'): string {
  const what = `image ${mark.image_ref} (${shortId(mark.image_id)}) was reverted away from at ${utc(mark.marked_at)}${mark.deployment_id === null ? '' : ` (deployment #${mark.deployment_id})`}`;
  return then === 'revert'
    ? `${what}; redeployed, reverted immediately`
    : `${what}; redeployed, watched like any other deployment (on_bad_image: warn)`;
}

/** Why a revert the rules call for is not made. */
export function rollbackLimitMessage(service: string, budget: Extract<RevertBudget, { allowed: false }>): string {
  const { count, perMs } = budget.limit;
  return `rollback limit of ${count} per ${formatDuration(perMs)} reached for ${service}; not reverting; a human must decide (${budget.used} revert(s) in the last ${formatDuration(perMs)}; the next is allowed from ${utc(budget.freesAt)})`;
}

const SEVERITY_ORDER: readonly Severity[] = ['P0', 'P1', 'P2'];

/** The rule a revert of a bad image is made under: as severe as the service's most severe rollback rule. */
export function badImageRule(service: Pick<ServicePolicy, 'rules'>): Rule {
  const severities = service.rules.filter((r) => r.action === 'rollback').map((r) => r.severity);
  const severity = SEVERITY_ORDER.find((s) => severities.includes(s)) ?? 'P1';
  return { name: 'bad image redeployed', signal: 'image', above: 0, for: 1, severity, action: 'rollback' };
}
