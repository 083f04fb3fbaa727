import type { NotificationEvent } from '../model/notification.js';
import type { Sql } from './sql.js';

/** One message to one channel, as stored until it is delivered. */
export interface OutboxItem {
  id: number;
  deployment_id: number | null;
  event: string;
  channel: string;
  dedup_key: string;
  payload: NotificationEvent;
  status: 'pending' | 'sent' | 'failed';
  attempts: number;
  created_at: Date;
  next_attempt_at: Date;
  sent_at: Date | null;
  last_error: string | null;
}

export type NewOutboxItem = Pick<OutboxItem, 'deployment_id' | 'event' | 'channel' | 'dedup_key' | 'payload' | 'created_at'>;

const COLUMNS = 'id, deployment_id, event, channel, dedup_key, payload, status, attempts, created_at, next_attempt_at, sent_at, last_error';

function toItem(row: Record<string, unknown>): OutboxItem {
  return { ...(row as unknown as OutboxItem), id: Number(row.id), deployment_id: row.deployment_id === null ? null : Number(row.deployment_id), attempts: Number(row.attempts) };
}

/** Delivery status per channel, for `status` and /metrics. */
export interface ChannelDelivery { channel: string; pending: number; failed: number; sent: number; last_error: string | null }

/** The transactional outbox: written with the decision that caused it, drained by the dispatcher. */
export class Outbox {
  constructor(private readonly sql: Sql) {}

  /** Adds items; an item whose dedup key exists already is skipped (one message per event, deployment and channel). */
  async add(items: readonly NewOutboxItem[], tx: Sql = this.sql): Promise<number> {
    let added = 0;
    for (const i of items) {
      const rows = await tx.query(
        `INSERT INTO outbox (deployment_id, event, channel, dedup_key, payload, created_at, next_attempt_at) VALUES ($1,$2,$3,$4,$5,$6,$6)
         ON CONFLICT (dedup_key) DO NOTHING RETURNING id`,
        [i.deployment_id, i.event, i.channel, i.dedup_key, JSON.stringify(i.payload), i.created_at],
      );
      added += rows.length;
    }
    return added;
  }

  /**
   * Claims up to `limit` due items by pushing their next attempt `leaseMs` ahead, in one short
   * statement, so that sending happens outside any transaction. An instance that dies while
   * sending leaves its items due again when the lease ends (at-least-once delivery); SKIP LOCKED
   * keeps two instances from claiming the same item.
   */
  async claim(now: Date, limit: number, leaseMs: number): Promise<OutboxItem[]> {
    const rows = await this.sql.query(
      `UPDATE outbox SET next_attempt_at = $3 WHERE id IN (
         SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED
       ) RETURNING ${COLUMNS}`,
      [now, limit, new Date(now.getTime() + leaseMs)],
    );
    return rows.map(toItem).sort((a, b) => a.id - b.id);
  }

  async markSent(id: number, at: Date): Promise<void> {
    await this.sql.query(`UPDATE outbox SET status = 'sent', sent_at = $2, attempts = attempts + 1, last_error = NULL WHERE id = $1`, [id, at]);
  }

  async markFailed(id: number, error: string, retryAt: Date | null): Promise<void> {
    await this.sql.query(
      `UPDATE outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at = COALESCE($3, next_attempt_at), status = CASE WHEN $3::timestamptz IS NULL THEN 'failed' ELSE 'pending' END WHERE id = $1`,
      [id, error, retryAt],
    );
  }

  /** Whether a PagerDuty trigger was queued for this deployment and channel (a resolve needs one). */
  async hasEvent(deploymentId: number, channel: string, events: readonly string[]): Promise<boolean> {
    const rows = await this.sql.query('SELECT 1 FROM outbox WHERE deployment_id = $1 AND channel = $2 AND event = ANY($3::text[]) LIMIT 1', [deploymentId, channel, events]);
    return rows.length > 0;
  }

  async list(opts: { deploymentId?: number; limit?: number } = {}): Promise<OutboxItem[]> {
    const rows = await this.sql.query(
      `SELECT ${COLUMNS} FROM outbox WHERE ($1::bigint IS NULL OR deployment_id = $1) ORDER BY id DESC LIMIT $2`,
      [opts.deploymentId ?? null, opts.limit ?? 100],
    );
    return rows.map(toItem);
  }

  /** Pending messages per channel (cheap: uses the partial index on pending rows). */
  async pendingByChannel(): Promise<Record<string, number>> {
    const rows = await this.sql.query<{ channel: string; n: string }>(`SELECT channel, count(*) AS n FROM outbox WHERE status = 'pending' GROUP BY channel`);
    return Object.fromEntries(rows.map((r) => [r.channel, Number(r.n)]));
  }

  async deliveryByChannel(): Promise<ChannelDelivery[]> {
    const rows = await this.sql.query<{ channel: string; pending: string; failed: string; sent: string; last_error: string | null }>(
      `SELECT channel,
              count(*) FILTER (WHERE status = 'pending') AS pending,
              count(*) FILTER (WHERE status = 'failed') AS failed,
              count(*) FILTER (WHERE status = 'sent') AS sent,
              (array_agg(last_error ORDER BY id DESC) FILTER (WHERE last_error IS NOT NULL))[1] AS last_error
       FROM outbox GROUP BY channel ORDER BY channel`,
    );
    return rows.map((r) => ({ channel: r.channel, pending: Number(r.pending), failed: Number(r.failed), sent: Number(r.sent), last_error: r.last_error }));
  }
}
