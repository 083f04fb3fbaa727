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

/** A decision and the notifications it causes, written together. */
interface Batch {
  decision?: DecisionRecord;
  items: NewOutboxItem[];
}

/**
 * Queues notifications in the transactional outbox, in the same transaction as the decision
 * that caused them. The batch goes through the same ordered write queue as every other record,
 * so during a store outage it waits in memory behind the deployment it names and is written as
 * soon as the store is back: nothing is lost while rollguard keeps running.
 */
export class Announcer {
  constructor(
    private readonly store: Store,
    private readonly outbox: Outbox,
    private readonly writes: Writes,
    private readonly policy: () => Policy,
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
    if (!opts.decision && !items.length) return;
    const batch: Batch = { decision: opts.decision, items };
    await this.writes.write(opts.decision ? `decision ${opts.decision.kind} and notifications` : `notifications ${event.kind}`, (resolve) => this.commit(resolved(batch, resolve)));
  }

  /** PagerDuty: triggers open the deployment's incident; a resolve is sent only for an incident that was opened. */
  private async pagerWants(event: NotificationEvent, deploymentId: number | undefined, channel: string): Promise<boolean> {
    if (PAGER_TRIGGERS.includes(event.kind)) return true;
    if (!PAGER_RESOLVES.includes(event.kind) || deploymentId === undefined) return false;
    return this.outbox.hasEvent(deploymentId, channel, PAGER_TRIGGERS).catch(() => true);
  }

  private async commit(batch: Batch): Promise<void> {
    await this.store.sql.transaction(async (tx) => {
      if (batch.decision) await this.store.within(tx).insertDecision(batch.decision);
      await this.outbox.add(batch.items, tx);
    });
    if (batch.items.length) this.onQueued();
  }
}

/** The batch with provisional deployment IDs (given during a store outage) replaced by the real ones. */
function resolved(batch: Batch, resolve: ResolveId): Batch {
  const id = (n: number | null): number | null => (n === null ? null : resolve(n));
  return {
    decision: batch.decision && { ...batch.decision, deployment_id: resolve(batch.decision.deployment_id) },
    items: batch.items.map((i) => {
      const deployment = i.payload.deployment && { ...i.payload.deployment, id: resolve(i.payload.deployment.id) };
      return { ...i, deployment_id: id(i.deployment_id), payload: deployment ? { ...i.payload, deployment } : i.payload };
    }),
  };
}
