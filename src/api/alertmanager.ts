import type { Logger } from 'pino';
import { z } from 'zod';
import type { AlertBook } from '../signals/alertmanager/book.js';

/**
 * Alertmanager's webhook receiver (`POST /api/v1/alertmanager`): the payload is parsed here, at
 * the edge, and its alerts are logged and kept in the book shown in the status. They decide no
 * sample: the `alertmanager` signals ask Alertmanager's API, which a swallowed notification or a
 * restart cannot mislead.
 */

/** The largest notification read: a group of a few hundred alerts with their annotations. */
export const ALERTMANAGER_MAX_BODY = 1024 * 1024;

const labels = z.record(z.string(), z.string());
const time = z.iso.datetime({ offset: true, error: 'expected an RFC 3339 time' });

/**
 * One notification as Alertmanager's webhook sends it (payload version 4). Keys Alertmanager may
 * add in later versions are ignored rather than refused: a refused notification (4xx) is not sent
 * again, and its alerts would be lost.
 */
export const alertmanagerPayload = z.object({
  version: z.literal('4', { error: 'expected "4" (Alertmanager\'s webhook payload version)' }),
  receiver: z.string(),
  status: z.enum(['firing', 'resolved']),
  alerts: z.array(z.object({
    status: z.enum(['firing', 'resolved']),
    labels,
    annotations: labels.default({}),
    startsAt: time,
    endsAt: time,
    generatorURL: z.string().optional(),
    fingerprint: z.string().min(1),
  })),
  groupLabels: labels,
  commonLabels: labels,
  commonAnnotations: labels.default({}),
  externalURL: z.string(),
  groupKey: z.string().optional(),
  truncatedAlerts: z.number().int().min(0).default(0),
});

export type AlertmanagerPayload = z.output<typeof alertmanagerPayload>;

/** Logs a notification and records its alerts in the book; the answer says what was taken in. */
export function receiveAlerts(book: AlertBook, payload: AlertmanagerPayload, log: Logger, now = new Date()): { firing: number; resolved: number; held: number } {
  const counts = book.record(payload.alerts, now);
  const alertnames = [...new Set(payload.alerts.map((a) => a.labels.alertname).filter((n): n is string => n !== undefined))];
  log.info({ receiver: payload.receiver, groupKey: payload.groupKey, status: payload.status, alertnames, ...counts }, 'Alertmanager notification received');
  if (payload.truncatedAlerts > 0) {
    // Alertmanager cut the group (the receiver's max_alerts): those alerts are never seen here.
    log.warn({ receiver: payload.receiver, groupKey: payload.groupKey, truncated: payload.truncatedAlerts }, 'Alertmanager left alerts out of a notification (max_alerts): they are missing from the status');
  }
  return { ...counts, held: book.size };
}
