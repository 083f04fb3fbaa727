import type { Logger } from 'pino';
import type { Metrics } from '../api/metrics.js';
import type { Policy, Severity, ServicePolicy } from '../config/policy.js';
import type { NotificationEvent } from '../notify/event.js';
import { PAGER_RESOLVES, PAGER_TRIGGERS } from '../notify/pagerduty.js';
import type { NewOutboxItem, Outbox } from '../store/outbox.js';
import type { DecisionRecord, Store } from '../store/store.js';

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
 * Queues notifications in the transactional outbox, in the same transaction as the decision
 * that caused them. When the store is down the batch is kept in memory and written as soon as
 * it is back, so nothing is lost while rollguard keeps running.
 */
export class Announcer {
  private readonly backlog: { decision?: DecisionRecord; items: NewOutboxItem[] }[] = [];

  constructor(
    private readonly store: Store,
    private readonly outbox: Outbox,
    private readonly policy: () => Policy,
    private readonly log: Logger,
    private readonly metrics: Metrics,
    private readonly onQueued: () => void,
  ) {}

  /** Records `decision` (if any) and queues `event` for its channels; never throws. */
  async announce(event: NotificationEvent, opts: { deploymentId?: number; decision?: DecisionRecord; dedupSuffix?: string } = {}): Promise<void> {
    const policy = this.policy();
    const service = event.service ? policy.services[event.service] : undefined;
    const items: NewOutboxItem[] = [];
    for (const channelName of channelsFor(policy, service, event)) {
      const channel = policy.notifications[channelName];
      if (!channel) continue;
      if (channel.kind === 'pagerduty' && !(await this.pagerWants(event, opts.deploymentId, channelName))) continue;
      items.push({
        deployment_id: opts.deploymentId ?? null,
        event: event.kind,
        channel: channelName,
        dedup_key: `${opts.deploymentId ?? 'none'}:${event.kind}:${channelName}${opts.dedupSuffix ? `:${opts.dedupSuffix}` : ''}`,
        payload: event,
        created_at: new Date(event.at),
      });
    }
    await this.write({ decision: opts.decision, items });
  }

  /** PagerDuty: triggers open the deployment's incident; a resolve is sent only for an incident that was opened. */
  private async pagerWants(event: NotificationEvent, deploymentId: number | undefined, channel: string): Promise<boolean> {
    if (PAGER_TRIGGERS.includes(event.kind)) return true;
    if (!PAGER_RESOLVES.includes(event.kind) || deploymentId === undefined) return false;
    return this.outbox.hasEvent(deploymentId, channel, PAGER_TRIGGERS).catch(() => true);
  }

  private async write(batch: { decision?: DecisionRecord; items: NewOutboxItem[] }): Promise<void> {
    if (!batch.decision && !batch.items.length) return;
    try {
      await this.flushBacklog();
      await this.commit(batch);
    } catch (err) {
      this.backlog.push(batch);
      this.metrics.storeErrors.inc();
      this.log.error({ err, kept: this.backlog.length }, 'could not record a decision and its notifications; kept in memory until the store is back');
    }
  }

  private async commit(batch: { decision?: DecisionRecord; items: NewOutboxItem[] }): Promise<void> {
    await this.store.sql.transaction(async (tx) => {
      if (batch.decision) await this.store.within(tx).insertDecision(batch.decision);
      await this.outbox.add(batch.items, tx);
    });
    if (batch.items.length) this.onQueued();
  }

  /** Writes what was kept in memory during a store outage, oldest first. */
  async flushBacklog(): Promise<void> {
    while (this.backlog.length) {
      await this.commit(this.backlog[0] as { decision?: DecisionRecord; items: NewOutboxItem[] });
      this.backlog.shift();
    }
  }
}
