import type { Logger } from 'pino';
import type { Policy, Severity, ServicePolicy } from '../config/policy.js';
import type { NotificationEvent } from '../notify/event.js';
import { PAGER_RESOLVES, PAGER_TRIGGERS } from '../notify/pagerduty.js';
import type { NewOutboxItem, Outbox } from '../store/outbox.js';
import type { DecisionRecord, Store } from '../store/store.js';
import type { ResolveId, Writes } from '../store/write-behind.js';

const SEVERITIES: readonly Severity[] = ['P0', 'P1', 'P2'];

/**
 * Which channels hear an event: the service's own route for the severity, else the policy's.
 * ROLLBACK FAILED goes to every P0 route (service and policy); deployment announcements only to
 * `routes.detected`; digests to `digest.to`.
 */
export function channelsFor(policy: Policy, service: ServicePolicy | undefined, e: Pick<NotificationEvent, 'kind' | 'severity'>): string[] {
  if (e.kind === 'deployment_detected') return policy.routes.detected ?? [];
  if (e.kind === 'digest') return policy.digest?.to ?? [];
  if (e.kind === 'rollback_failed') return [...new Set([...(service?.notify.P0 ?? []), ...(policy.routes.P0 ?? [])])];
  const severity = SEVERITIES.includes(e.severity) ? e.severity : 'P2';
  return service?.notify[severity] ?? policy.routes[severity] ?? [];
}

/**
 * The outbox dedup key: one message per deployment, event and channel (and suffix, for events
 * that may repeat, such as a digest per period). Built from the deployment's real ID only — a
 * provisional one (negative, given while the store was not taking writes) is reused by the next
 * outage and by every other instance, so a key built from it would drop their messages as
 * duplicates. A real ID is never reused in one database, so the key is unique forever there,
 * while a retried write or a re-announced event keeps it and is not sent twice.
 */
export function dedupKey(deploymentId: number | null, event: string, channel: string, suffix?: string): string {
  if (deploymentId !== null && (!Number.isSafeInteger(deploymentId) || deploymentId <= 0)) {
    throw new RangeError(`a notification cannot be keyed by deployment ${deploymentId}: it is not a recorded deployment's ID`);
  }
  return `${deploymentId ?? 'none'}:${event}:${channel}${suffix ? `:${suffix}` : ''}`;
}

/** A message as queued before its deployment ID is final; its key is made when it is written. */
interface PendingItem extends Omit<NewOutboxItem, 'dedup_key'> {
  dedupSuffix?: string;
  /** A PagerDuty resolve: queued only if a trigger was queued for its deployment and channel. */
  resolvesIncident: boolean;
}

/** A decision and the notifications it causes, written together. */
interface Batch<I> {
  decision?: DecisionRecord;
  items: I[];
}

/**
 * Queues notifications in the transactional outbox, in the same transaction as the decision
 * that caused them. The batch goes through the same ordered write queue as every other record,
 * so during a store outage it waits in memory behind the deployment it names and is written as
 * soon as the store is back, with the deployment's real ID: nothing is lost while rollguard keeps
 * running. A message already queued (same key) is not queued again, and that is logged.
 */
export class Announcer {
  constructor(
    private readonly store: Store,
    private readonly outbox: Outbox,
    private readonly writes: Writes,
    private readonly policy: () => Policy,
    private readonly onQueued: () => void,
    private readonly log: Logger,
  ) {}

  /** Records `decision` (if any) and queues `event` for its channels; never throws. */
  async announce(event: NotificationEvent, opts: { deploymentId?: number; decision?: DecisionRecord; dedupSuffix?: string } = {}): Promise<void> {
    const policy = this.policy();
    const service = event.service ? policy.services[event.service] : undefined;
    const items: PendingItem[] = [];
    for (const channelName of channelsFor(policy, service, event)) {
      const channel = policy.notifications[channelName];
      if (!channel) continue;
      const resolvesIncident = channel.kind === 'pagerduty' && PAGER_RESOLVES.includes(event.kind);
      if (channel.kind === 'pagerduty' && !PAGER_TRIGGERS.includes(event.kind) && !(resolvesIncident && opts.deploymentId !== undefined)) continue;
      items.push({
        deployment_id: opts.deploymentId ?? null,
        event: event.kind,
        channel: channelName,
        dedupSuffix: opts.dedupSuffix,
        resolvesIncident,
        payload: event,
        created_at: new Date(event.at),
      });
    }
    if (!opts.decision && !items.length) return;
    const batch: Batch<PendingItem> = { decision: opts.decision, items };
    const what = opts.decision ? `decision ${opts.decision.kind} and notifications` : `notifications ${event.kind}`;
    await this.writes.write(what, (resolve) => this.commit(resolved(batch, resolve)), { decision: opts.decision, notifications: items });
  }

  private async commit(batch: Batch<NewOutboxItem & { resolvesIncident: boolean }>): Promise<void> {
    const { added, duplicates, unopened } = await this.store.sql.transaction(async (tx) => {
      if (batch.decision) await this.store.within(tx).insertDecision(batch.decision);
      // Checked here, not when announced: the write queue is ordered, so every trigger queued
      // before this resolve is in the outbox now, even one that waited out a store outage.
      const items: NewOutboxItem[] = [];
      const unopened: NewOutboxItem[] = [];
      for (const { resolvesIncident, ...item } of batch.items) {
        const opened = !resolvesIncident || (item.deployment_id !== null && (await this.outbox.hasEvent(item.deployment_id, item.channel, PAGER_TRIGGERS, tx)));
        (opened ? items : unopened).push(item);
      }
      return { ...(await this.outbox.add(items, tx)), unopened };
    });
    for (const d of duplicates) {
      this.log.info({ dedupKey: d.dedup_key, channel: d.channel, event: d.event, deployment: d.deployment_id }, 'notification already queued; not queued again');
    }
    for (const u of unopened) {
      this.log.debug({ channel: u.channel, event: u.event, deployment: u.deployment_id }, 'no PagerDuty incident was opened for this deployment; nothing to resolve');
    }
    if (added) this.onQueued();
  }
}

/** The batch with provisional deployment IDs (given during a store outage) replaced by the real ones, and keyed by them. */
function resolved(batch: Batch<PendingItem>, resolve: ResolveId): Batch<NewOutboxItem & { resolvesIncident: boolean }> {
  const id = (n: number | null): number | null => (n === null ? null : resolve(n));
  return {
    decision: batch.decision && { ...batch.decision, deployment_id: resolve(batch.decision.deployment_id) },
    items: batch.items.map(({ dedupSuffix, ...i }) => {
      const deploymentId = id(i.deployment_id);
      const deployment = i.payload.deployment && { ...i.payload.deployment, id: resolve(i.payload.deployment.id) };
      return { ...i, deployment_id: deploymentId, dedup_key: dedupKey(deploymentId, i.event, i.channel, dedupSuffix), payload: deployment ? { ...i.payload, deployment } : i.payload };
    }),
  };
}
