import type { Logger } from 'pino';
import type { Metrics } from '../api/metrics.js';
import type { Channel, Policy } from '../config/policy.js';
import type { Outbox, OutboxItem } from '../store/outbox.js';
import { DeliveryError, type Notifier } from './notifier.js';

export interface DispatcherOptions {
  outbox: Outbox;
  notifiers: Partial<Record<Channel['kind'], Notifier>>;
  policy: () => Policy;
  log: Logger;
  metrics: Metrics;
  now?: () => Date;
  /** Longest wait between two attempts of one message. */
  maxBackoffMs?: number;
  /** A message not delivered within this age is given up (status failed) and counted. */
  giveUpAfterMs?: number;
  pollMs?: number;
  sendTimeoutMs?: number;
  /** Test hook: where a `kill -9` can be placed (see daemon/failpoints.ts); a no-op unless armed. */
  failpoint?: (name: 'notify.after-send', fields?: Record<string, unknown>) => Promise<void>;
  /** Runs before each drain (writes notifications kept in memory during a store outage). */
  beforeDrain?: () => Promise<void>;
}

/**
 * PagerDuty's dedup_key: one incident per deployment. The deployment's start time is part of it so
 * that a new database (IDs from 1 again) cannot reopen or resolve an old incident.
 */
export function incidentKey(item: Pick<OutboxItem, 'deployment_id' | 'event' | 'id' | 'payload'>): string {
  if (item.deployment_id === null) return `rollguard-${item.event}-${item.id}`;
  const started = Date.parse(item.payload.deployment?.startedAt ?? '');
  return `rollguard-${item.payload.service ?? 'service'}-${item.deployment_id}${Number.isFinite(started) ? `-${Math.floor(started / 1000)}` : ''}`;
}

/** 1 s, 2 s, 4 s … capped. */
export function backoffMs(attempts: number, maxMs: number): number {
  return Math.min(maxMs, 1_000 * 2 ** Math.max(0, attempts - 1));
}

/**
 * Drains the outbox in the background. Channels are sent to concurrently and each send has a
 * timeout, so a channel that is down delays only its own messages, never a revert or another
 * channel. Failed messages are retried with exponential backoff; nothing is dropped before
 * `giveUpAfterMs`, and a restart picks up where the last run stopped.
 */
export class Dispatcher {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = true;
  /** When the outbox became unreachable, while it is. */
  private unavailableSince?: number;
  private readonly now: () => Date;

  constructor(private readonly o: DispatcherOptions) {
    this.now = o.now ?? (() => new Date());
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  /** Delivers soon: called after new messages are queued. */
  kick(): void {
    if (this.stopped || this.running) return;
    clearTimeout(this.timer);
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.drain()
        .then(() => {
          if (this.unavailableSince) this.o.log.info({ forMs: this.now().getTime() - this.unavailableSince }, 'outbox available again');
          this.unavailableSince = undefined;
        })
        .catch((err) => {
          // Once per outage at warn; every retry after that at debug, so an outage does not flood the log.
          this.o.log[this.unavailableSince ? 'debug' : 'warn']({ err }, 'outbox unavailable; will retry');
          this.unavailableSince ??= this.now().getTime();
        })
        .finally(() => {
          this.running = undefined;
          this.schedule(this.o.pollMs ?? 1_000);
        });
    }, ms);
  }

  /** Sends every due message once. */
  async drain(): Promise<void> {
    await this.o.beforeDrain?.();
    for (;;) {
      // The lease outlasts a send (bounded by its timeout) so two instances never send one item
      // at once, and is short enough that a crashed instance's claims are sent soon after.
      const items = await this.o.outbox.claim(this.now(), 50, (this.o.sendTimeoutMs ?? 15_000) + 5_000);
      if (!items.length) break;
      const byChannel = new Map<string, OutboxItem[]>();
      for (const item of items) byChannel.set(item.channel, [...(byChannel.get(item.channel) ?? []), item]);
      await Promise.all([...byChannel.values()].map(async (list) => {
        for (const item of list) await this.deliver(item);
      }));
      if (this.stopped) break;
    }
    const pending = await this.o.outbox.pendingByChannel();
    this.o.metrics.outboxPending.reset();
    for (const channel of Object.keys(this.o.policy().notifications)) this.o.metrics.outboxPending.set({ channel }, pending[channel] ?? 0);
  }

  private async deliver(item: OutboxItem): Promise<void> {
    const { log, metrics } = this.o;
    const channel = this.o.policy().notifications[item.channel];
    const labels = { channel: item.channel, event: item.event };
    if (!channel) {
      await this.o.outbox.markFailed(item.id, `channel "${item.channel}" is no longer in the policy`, null);
      metrics.notifications.inc({ ...labels, result: 'failed' });
      log.error({ channel: item.channel, event: item.event, delivery: item.id }, 'notification dropped: its channel was removed from the policy');
      return;
    }
    const notifier = this.o.notifiers[channel.kind];
    try {
      if (!notifier) throw new DeliveryError(`no ${channel.kind} notifier`, true);
      await notifier.send(channel, {
        event: item.payload,
        deliveryId: String(item.id),
        incidentKey: incidentKey(item),
      }, AbortSignal.timeout(this.o.sendTimeoutMs ?? 15_000));
      await this.o.failpoint?.('notify.after-send', { channel: item.channel, event: item.event, delivery: item.id });
      await this.o.outbox.markSent(item.id, this.now());
      metrics.notifications.inc({ ...labels, result: 'sent' });
      log.info({ channel: item.channel, event: item.event, delivery: item.id, attempt: item.attempts + 1 }, 'notification sent');
    } catch (err) {
      const message = err instanceof DeliveryError ? err.message : `unexpected: ${String(err)}`;
      const age = this.now().getTime() - new Date(item.created_at).getTime();
      const giveUp = (err instanceof DeliveryError && err.permanent) || age > (this.o.giveUpAfterMs ?? 24 * 3_600_000);
      const retryAt = giveUp ? null : new Date(this.now().getTime() + backoffMs(item.attempts + 1, this.o.maxBackoffMs ?? 300_000));
      await this.o.outbox.markFailed(item.id, message, retryAt);
      metrics.notifications.inc({ ...labels, result: giveUp ? 'failed' : 'retry' });
      log.warn({ channel: item.channel, event: item.event, delivery: item.id, attempt: item.attempts + 1, error: message, retryAt }, giveUp ? 'notification failed; giving up' : 'notification failed; will retry');
    }
  }
}
