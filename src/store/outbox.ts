import { randomUUID } from 'node:crypto';
import { eventFromJson, eventToJson, type NotificationEvent } from '../model/notification.js';
import { dialectOf, type Dialect } from './dialect.js';
import type { Sql } from './sql.js';

/** One message to one channel, as stored until it is delivered. */
export interface OutboxItem {
  id: number;
  deployment_id: number | null;
  event: string;
  channel: string;
  /** One message per key: queuing the same key again (a retried write, a re-announced event) adds nothing. */
  dedup_key: string;
  /** Random, given when the row is written: sent as the delivery ID, unique across databases and restarts. */
  delivery_id: string;
  payload: NotificationEvent;
  status: 'pending' | 'sent' | 'failed';
  attempts: number;
  created_at: Date;
  next_attempt_at: Date;
  sent_at: Date | null;
  last_error: string | null;
}

/** An item this instance has claimed: until its claim ends, no other instance sends it. */
export interface ClaimedItem extends OutboxItem {
  /** This claim's token: renewing and marking need it, so a claim that was lost cannot be acted on. */
  claim: string;
  /** The deployment's key unique across databases (deployments.uid), for the PagerDuty incident. */
  deployment_uid: string | null;
}

export type NewOutboxItem = Pick<OutboxItem, 'deployment_id' | 'event' | 'channel' | 'dedup_key' | 'payload' | 'created_at'>;

/** What `add` did: how many were queued, and the items whose key was queued already. */
export interface AddResult { added: number; duplicates: NewOutboxItem[] }

const COLUMNS = 'id, deployment_id, event, channel, dedup_key, delivery_id, payload, status, attempts, created_at, next_attempt_at, sent_at, last_error';
const CLAIMED_COLUMNS = `${COLUMNS}, claim, (SELECT d.uid FROM deployments d WHERE d.id = outbox.deployment_id) AS deployment_uid`;

function toItem(row: Record<string, unknown>): OutboxItem {
  return { ...(row as unknown as OutboxItem), payload: eventFromJson(row.payload), id: Number(row.id), deployment_id: row.deployment_id === null ? null : Number(row.deployment_id), attempts: Number(row.attempts) };
}

/** Delivery status per channel, for `status` and /metrics. */
export interface ChannelDelivery { channel: string; pending: number; failed: number; sent: number; last_error: string | null }

/**
 * The transactional outbox: written with the decision that caused it, drained by the dispatcher.
 * Claims, their leases and retry times use the database's clock (`now()`), so the hosts' clocks
 * never decide whether a message is due or still being sent by another instance.
 */
export class Outbox {
  private readonly dialect: Dialect;

  constructor(private readonly sql: Sql) {
    this.dialect = dialectOf(sql);
  }

  /** Adds items; an item whose dedup key exists already is not added, and is returned among `duplicates`. */
  async add(items: readonly NewOutboxItem[], tx: Sql = this.sql): Promise<AddResult> {
    const result: AddResult = { added: 0, duplicates: [] };
    for (const i of items) {
      const rows = await tx.query(
        `INSERT INTO outbox (deployment_id, event, channel, dedup_key, payload, created_at, next_attempt_at) VALUES ($1,$2,$3,$4,$5,$6,now())
         ON CONFLICT (dedup_key) DO NOTHING RETURNING id`,
        [i.deployment_id, i.event, i.channel, i.dedup_key, eventToJson(i.payload), i.created_at],
      );
      if (rows.length) result.added++;
      else result.duplicates.push(i);
    }
    return result;
  }

  /**
   * Claims the oldest due message of `channel` for `leaseMs`, in one short statement, so that
   * sending happens outside any transaction. SKIP LOCKED keeps two instances from claiming the
   * same message; the claim pushes its next attempt past the lease, so nobody else claims it until
   * the lease ends — renewed while the send runs, it ends only when its holder stopped (crashed).
   * A message waits while an earlier one about the same deployment to the same channel is
   * pending (being sent elsewhere, or backing off), so a PagerDuty resolve never overtakes its trigger.
   */
  async claimNext(channel: string, leaseMs: number): Promise<ClaimedItem | undefined> {
    return this.claimWhere(
      `o.channel = $3 AND NOT EXISTS (
         SELECT 1 FROM outbox e WHERE e.status = 'pending' AND e.channel = o.channel AND e.deployment_id = o.deployment_id AND e.id < o.id)`,
      [channel],
      leaseMs,
    );
  }

  /** Claims a due message of a channel not in `channels` (one removed from the policy), to be given up. */
  async claimOutside(channels: readonly string[], leaseMs: number): Promise<ClaimedItem | undefined> {
    return this.claimWhere(`NOT (${this.dialect.inTextArray('o.channel', '$3')})`, [channels], leaseMs);
  }

  private async claimWhere(condition: string, params: unknown[], leaseMs: number): Promise<ClaimedItem | undefined> {
    const rows = await this.sql.query(
      `UPDATE outbox SET next_attempt_at = ${this.dialect.nowPlusMs('$1')}, claim = $2 WHERE id = (
         SELECT o.id FROM outbox o WHERE o.status = 'pending' AND o.next_attempt_at <= now() AND ${condition}
         ORDER BY o.id LIMIT 1 ${this.dialect.skipLocked}
       ) RETURNING ${CLAIMED_COLUMNS}`,
      [leaseMs, randomUUID(), ...params],
    );
    const row = rows[0];
    return row ? { ...toItem(row), claim: String(row.claim), deployment_uid: row.deployment_uid === null ? null : String(row.deployment_uid) } : undefined;
  }

  /** Extends a claim by `leaseMs` from now; false when it is no longer this claim (it ended and another instance took the message, or it was settled). */
  async renew(item: Pick<ClaimedItem, 'id' | 'claim'>, leaseMs: number): Promise<boolean> {
    const rows = await this.sql.query(
      `UPDATE outbox SET next_attempt_at = ${this.dialect.nowPlusMs('$3')} WHERE id = $1 AND claim = $2 AND status = 'pending' RETURNING id`,
      [item.id, item.claim, leaseMs],
    );
    return rows.length > 0;
  }

  /** Delivered: whoever sent it, the message is done. */
  async markSent(id: number, at: Date): Promise<void> {
    await this.sql.query(`UPDATE outbox SET status = 'sent', sent_at = $2, attempts = attempts + 1, last_error = NULL, claim = NULL WHERE id = $1`, [id, at]);
  }

  /**
   * Not delivered: retried `retryInMs` from now, or given up (status failed) when null. Only while
   * `item`'s claim holds, so a claim that ended cannot reschedule a message another instance is sending.
   */
  async markFailed(item: Pick<ClaimedItem, 'id' | 'claim'>, error: string, retryInMs: number | null): Promise<void> {
    await this.sql.query(
      `UPDATE outbox SET attempts = attempts + 1, last_error = $3, claim = NULL,
         next_attempt_at = CASE WHEN CAST($4 AS double precision) IS NULL THEN next_attempt_at ELSE ${this.dialect.nowPlusMs('$4')} END,
         status = CASE WHEN CAST($4 AS double precision) IS NULL THEN 'failed' ELSE 'pending' END
       WHERE id = $1 AND claim = $2 AND status = 'pending'`,
      [item.id, item.claim, error, retryInMs],
    );
  }

  /**
   * Holds every pending message of `channel` for at least `ms` from now (its receiver asked to be
   * left alone that long); a message due later keeps its time.
   */
  async holdChannel(channel: string, ms: number): Promise<void> {
    await this.sql.query(
      `UPDATE outbox SET next_attempt_at = ${this.dialect.later('next_attempt_at', this.dialect.nowPlusMs('$2'))} WHERE channel = $1 AND status = 'pending'`,
      [channel, ms],
    );
  }

  /** Whether one of `events` was queued for this deployment and channel (a PagerDuty resolve needs a trigger). */
  async hasEvent(deploymentId: number, channel: string, events: readonly string[], tx: Sql = this.sql): Promise<boolean> {
    const rows = await tx.query(`SELECT 1 FROM outbox WHERE deployment_id = $1 AND channel = $2 AND ${this.dialect.inTextArray('event', '$3')} LIMIT 1`, [deploymentId, channel, events]);
    return rows.length > 0;
  }

  async list(opts: { deploymentId?: number; limit?: number } = {}): Promise<OutboxItem[]> {
    const rows = await this.sql.query(
      `SELECT ${COLUMNS} FROM outbox WHERE (CAST($1 AS bigint) IS NULL OR deployment_id = $1) ORDER BY id DESC LIMIT $2`,
      [opts.deploymentId ?? null, opts.limit ?? 100],
    );
    return rows.map(toItem);
  }

  /** Pending messages per channel (cheap: uses the partial index on pending rows). */
  async pendingByChannel(): Promise<Record<string, number>> {
    return Object.fromEntries(Object.entries(await this.pendingWithAgeByChannel()).map(([channel, p]) => [channel, p.pending]));
  }

  /** Per channel with messages waiting: how many, and when the oldest of them was queued. */
  async pendingWithAgeByChannel(): Promise<Record<string, { pending: number; oldest: Date }>> {
    const rows = await this.sql.query<{ channel: string; n: string; oldest: Date | string | number }>(
      `SELECT channel, count(*) AS n, min(created_at) AS oldest FROM outbox WHERE status = 'pending' GROUP BY channel`,
    );
    return Object.fromEntries(rows.map((r) => [r.channel, { pending: Number(r.n), oldest: new Date(r.oldest) }]));
  }

  async deliveryByChannel(): Promise<ChannelDelivery[]> {
    const rows = await this.sql.query<{ channel: string; pending: string; failed: string; sent: string; last_error: string | null }>(
      `SELECT channel,
              count(*) FILTER (WHERE status = 'pending') AS pending,
              count(*) FILTER (WHERE status = 'failed') AS failed,
              count(*) FILTER (WHERE status = 'sent') AS sent,
              (SELECT e.last_error FROM outbox e WHERE e.channel = outbox.channel AND e.last_error IS NOT NULL ORDER BY e.id DESC LIMIT 1) AS last_error
       FROM outbox GROUP BY channel ORDER BY channel`,
    );
    return rows.map((r) => ({ channel: r.channel, pending: Number(r.pending), failed: Number(r.failed), sent: Number(r.sent), last_error: r.last_error }));
  }
}
