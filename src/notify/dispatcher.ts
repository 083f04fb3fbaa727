import type { Logger } from 'pino';
import type { Metrics } from '../api/metrics.js';
import type { Channel, Policy } from '../config/policy.js';
import type { ClaimedItem, Outbox } from '../store/outbox.js';
import { DeliveryError, type Notifier } from './notifier.js';
import { backoffMs, retryWait } from './retry-timing.js';

export { backoffMs } from './retry-timing.js';

export interface DispatcherOptions {
  outbox: Outbox;
  notifiers: Partial<Record<Channel['kind'], Notifier>>;
  policy: () => Policy;
  log: Logger;
  metrics: Metrics;
  now?: () => Date;
  /** Longest nominal wait between two attempts of one message (each wait is spread ±20 % around its nominal value). */
  maxBackoffMs?: number;
  /** Longest Retry-After honoured (default 1 h): a receiver asking for more is tried again after this long. */
  maxRetryAfterMs?: number;
  /** Source of the backoff's jitter, [0, 1) (default Math.random). */
  random?: () => number;
  /** A message not delivered within this age is given up (status failed) and counted. */
  giveUpAfterMs?: number;
  pollMs?: number;
  sendTimeoutMs?: number;
  /**
   * How long a claim on a message lasts (default: the send timeout + 5 s, so a send that keeps
   * to its timeout ends within the claim even if it cannot be renewed). It is renewed while the
   * send runs; a crashed instance's messages are sent by another one this long after it died.
   */
  claimMs?: number;
  /** Test hook: where a `kill -9` can be placed (see daemon/failpoints.ts); a no-op unless armed. */
  failpoint?: (name: 'notify.after-send', fields?: Record<string, unknown>) => Promise<void>;
  /** Runs before each poll (writes notifications kept in memory during a store outage). */
  beforeDrain?: () => Promise<void>;
}

/**
 * PagerDuty's dedup_key: one incident per deployment, unique forever. The deployment's `uid` is
 * random per deployment row, so neither a new database (IDs from 1 again) nor another rollguard
 * with its own database can reopen or resolve this incident; a deployment recorded before uids
 * existed has its start time (Unix seconds) there, the key its incident was opened with.
 */
export function incidentKey(item: Pick<ClaimedItem, 'deployment_id' | 'deployment_uid' | 'event' | 'delivery_id' | 'payload'>): string {
  if (item.deployment_id === null) return `rollguard-${item.event}-${item.delivery_id}`;
  if (!item.deployment_uid) throw new DeliveryError(`deployment ${item.deployment_id} has no uid to key its incident`, true);
  return `rollguard-${item.payload.service ?? 'service'}-${item.deployment_id}-${item.deployment_uid}`;
}

/** Attempts after which a message failing with an error that is not a delivery failure is given up. */
export const UNEXPECTED_ATTEMPTS = 3;

/**
 * One channel's sender: claims that channel's due messages one at a time and sends them in
 * order. Each channel has its own, so a channel whose sends hang holds up only its own messages.
 */
class Lane {
  private running?: Promise<void>;
  /** Kicked while running: look again once done, so a message queued meanwhile does not wait for the next poll. */
  private again = false;

  constructor(readonly channel: string, private readonly run: (channel: string) => Promise<void>) {}

  get busy(): boolean {
    return this.running !== undefined;
  }

  kick(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.run(this.channel);
      } while (this.again);
    })().finally(() => {
      this.running = undefined;
    });
  }

  /** Resolves when the lane has nothing in flight. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }
}

/**
 * Drains the outbox in the background. Every channel has its own lane that claims one message at
 * a time, so a channel that is down or hangs delays only its own messages, never a revert or
 * another channel; at most one send per channel is in flight. A claim lasts longer than a send
 * may take and is renewed while it runs, so no two instances send one message at once, and a
 * crashed instance's claim ends soon after it died. Failed messages are retried with
 * exponential backoff, jittered; nothing is dropped before `giveUpAfterMs`, and a restart picks up
 * where the last run stopped. A receiver that answers with a Retry-After (a 429 or 503) is left
 * alone until then: neither the failed message nor any other of that channel is sent before.
 */
export class Dispatcher {
  private timer?: NodeJS.Timeout;
  private polling?: Promise<void>;
  private started = false;
  private stopping = false;
  private readonly lanes = new Map<string, Lane>();
  /** Per channel whose receiver asked to wait (Retry-After), until when (epoch ms): messages queued meanwhile wait too. */
  private readonly heldUntil = new Map<string, number>();
  /** When the outbox became unreachable, while it is. */
  private unavailableSince?: number;
  private readonly now: () => Date;
  private readonly sendTimeoutMs: number;
  private readonly claimMs: number;

  constructor(private readonly o: DispatcherOptions) {
    this.now = o.now ?? (() => new Date());
    this.sendTimeoutMs = o.sendTimeoutMs ?? 15_000;
    this.claimMs = o.claimMs ?? this.sendTimeoutMs + 5_000;
  }

  start(): void {
    this.started = true;
    this.schedule(0);
  }

  /** Delivers soon: called after new messages are queued. */
  kick(): void {
    if (!this.started || this.stopping) return;
    for (const channel of Object.keys(this.o.policy().notifications)) this.lane(channel).kick();
  }

  /** Stops polling and waits for the sends in flight (each bounded by its timeout). */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    await this.polling;
    await Promise.all([...this.lanes.values()].map((l) => l.idle()));
  }

  /** Sends every due message, each channel on its own, and resolves when every lane is idle. */
  async drain(): Promise<void> {
    const lanes = (await this.poll()).map((c) => this.lane(c));
    for (const lane of lanes) lane.kick();
    await Promise.all(lanes.map((l) => l.idle()));
  }

  private schedule(ms: number): void {
    if (this.stopping) return;
    this.timer = setTimeout(() => {
      this.polling = this.poll()
        .then((channels) => {
          if (this.stopping) return;
          for (const channel of channels) this.lane(channel).kick();
        })
        .finally(() => {
          this.polling = undefined;
          this.schedule(this.o.pollMs ?? 1_000);
        });
    }, ms);
  }

  /**
   * The part of a poll no channel does for itself: writes kept during a store outage, the pending
   * gauge, messages for channels no longer in the policy. Returns the policy's channels with
   * messages pending (none when the outbox is unreachable), whose lanes the caller kicks; it
   * never waits for a lane.
   */
  private async poll(): Promise<string[]> {
    try {
      await this.o.beforeDrain?.();
      const waiting = await this.o.outbox.pendingWithAgeByChannel();
      const known = Object.keys(this.o.policy().notifications);
      const { outboxPending, outboxOldestPending } = this.o.metrics;
      outboxPending.reset();
      outboxOldestPending.reset();
      for (const channel of known) {
        const w = waiting[channel];
        outboxPending.set({ channel }, w?.pending ?? 0);
        outboxOldestPending.set({ channel }, w ? Math.max(0, this.now().getTime() - w.oldest.getTime()) / 1000 : 0);
      }
      if (Object.keys(waiting).some((c) => !known.includes(c))) await this.giveUpRemovedChannels(known);
      this.available();
      return known.filter((c) => waiting[c]);
    } catch (err) {
      this.unavailable(err);
      return [];
    }
  }

  private lane(channel: string): Lane {
    let lane = this.lanes.get(channel);
    if (!lane) {
      lane = new Lane(channel, (c) => this.drainChannel(c));
      this.lanes.set(channel, lane);
    }
    return lane;
  }

  /** Sends the channel's due messages, one claim at a time, until none is due or the dispatcher stops. */
  private async drainChannel(channel: string): Promise<void> {
    try {
      while (!this.stopping) {
        if ((this.heldUntil.get(channel) ?? 0) > this.now().getTime()) return;
        const item = await this.o.outbox.claimNext(channel, this.claimMs);
        if (!item) return;
        await this.deliver(item);
      }
    } catch (err) {
      this.unavailable(err);
    }
  }

  private async giveUpRemovedChannels(known: readonly string[]): Promise<void> {
    for (let item = await this.o.outbox.claimOutside(known, this.claimMs); item; item = await this.o.outbox.claimOutside(known, this.claimMs)) {
      await this.o.outbox.markFailed(item, `channel "${item.channel}" is no longer in the policy`, null);
      this.o.metrics.notifications.inc({ channel: item.channel, event: item.event, result: 'failed' });
      this.o.log.error({ channel: item.channel, event: item.event, delivery: item.id }, 'notification dropped: its channel was removed from the policy');
    }
  }

  private async deliver(item: ClaimedItem): Promise<void> {
    const { log, metrics } = this.o;
    const labels = { channel: item.channel, event: item.event };
    const fields = { channel: item.channel, event: item.event, delivery: item.id, attempt: item.attempts + 1 };
    let failure: unknown;
    try {
      await this.send(item);
    } catch (err) {
      failure = err;
    }
    if (failure === undefined) {
      await this.o.failpoint?.('notify.after-send', { channel: item.channel, event: item.event, delivery: item.id });
      await this.o.outbox.markSent(item.id, this.now());
      metrics.notifications.inc({ ...labels, result: 'sent' });
      log.info(fields, 'notification sent');
      return;
    }
    const message = failure instanceof DeliveryError ? failure.message : `unexpected: ${String(failure)}`;
    const age = this.now().getTime() - new Date(item.created_at).getTime();
    // An error that is not a delivery failure (a message that cannot be rendered) will not mend
    // itself: given up after a few attempts, so it does not hold back later messages of its
    // deployment to this channel (they wait for earlier ones) for the whole give-up period.
    const broken = !(failure instanceof DeliveryError) && item.attempts + 1 >= UNEXPECTED_ATTEMPTS;
    const giveUp = (failure instanceof DeliveryError && failure.permanent) || broken || age > (this.o.giveUpAfterMs ?? 24 * 3_600_000);
    const asked = failure instanceof DeliveryError ? failure.retryAfterMs : undefined;
    const wait = retryWait(backoffMs(item.attempts + 1, this.o.maxBackoffMs ?? 300_000), asked, { maxRetryAfterMs: this.o.maxRetryAfterMs, random: this.o.random });
    const retryInMs = giveUp ? null : wait.waitMs;
    await this.o.outbox.markFailed(item, message + wait.note, retryInMs);
    if (!giveUp && wait.retryAfterMs) {
      // The receiver (not this message) asked for the pause: the channel's other messages, here
      // and on other instances, and those queued meanwhile wait for it too.
      this.heldUntil.set(item.channel, this.now().getTime() + wait.retryAfterMs);
      await this.o.outbox.holdChannel(item.channel, wait.retryAfterMs);
    }
    metrics.notifications.inc({ ...labels, result: giveUp ? 'failed' : 'retry' });
    log.warn({ ...fields, error: message + wait.note, retryInMs, retryAfterMs: wait.retryAfterMs }, giveUp ? 'notification failed; giving up' : 'notification failed; will retry');
  }

  /** One attempt, holding the claim while it runs; throws why it failed. */
  private async send(item: ClaimedItem): Promise<void> {
    const channel = this.o.policy().notifications[item.channel];
    if (!channel) throw new DeliveryError(`channel "${item.channel}" is no longer in the policy`, true);
    const notifier = this.o.notifiers[channel.kind];
    if (!notifier) throw new DeliveryError(`no ${channel.kind} notifier`, true);
    // One controller for both reasons to abort a send, its timeout and a lost claim (not
    // AbortSignal.any: on Node 20 a timeout signal combined that way can be garbage-collected
    // and never fire).
    const abort = new AbortController();
    const timeout = setTimeout(() => abort.abort(new DeliveryError(`timed out after ${this.sendTimeoutMs} ms`)), this.sendTimeoutMs);
    const claim = this.holdClaim(item, abort);
    try {
      await notifier.send(channel, { event: item.payload, deliveryId: item.delivery_id, incidentKey: incidentKey(item) }, abort.signal);
    } finally {
      clearTimeout(timeout);
      claim.stop();
    }
  }

  /**
   * Renews the claim on `item` while its send runs (a channel client that overruns its timeout
   * keeps it). When the claim turns out to be another instance's (it ended, as only a stalled
   * instance lets it), the send is aborted: the other instance sends the message.
   */
  private holdClaim(item: ClaimedItem, lost: AbortController): { stop(): void } {
    const everyMs = Math.max(100, Math.floor(this.claimMs / 3));
    let renewing: Promise<void> | undefined;
    let stopped = false;
    const timer = setInterval(() => {
      if (renewing) return;
      renewing = this.o.outbox.renew(item, this.claimMs)
        .then((mine) => {
          if (mine || stopped) return;
          this.o.log.error({ channel: item.channel, event: item.event, delivery: item.id, claimMs: this.claimMs }, 'claim on a notification ended while sending it; the send is aborted');
          lost.abort(new DeliveryError('the claim on this message ended while sending it'));
        })
        .catch((err: unknown) => {
          if (!stopped) this.o.log.warn({ err, channel: item.channel, delivery: item.id }, 'could not renew the claim on a notification being sent');
        })
        .finally(() => {
          renewing = undefined;
        });
    }, everyMs);
    timer.unref();
    return {
      stop: () => {
        stopped = true;
        clearInterval(timer);
      },
    };
  }

  private available(): void {
    if (this.unavailableSince) this.o.log.info({ forMs: this.now().getTime() - this.unavailableSince }, 'outbox available again');
    this.unavailableSince = undefined;
  }

  private unavailable(err: unknown): void {
    // Once per outage at warn; every retry after that at debug, so an outage does not flood the log.
    this.o.log[this.unavailableSince ? 'debug' : 'warn']({ err }, 'outbox unavailable; will retry');
    this.unavailableSince ??= this.now().getTime();
  }
}
