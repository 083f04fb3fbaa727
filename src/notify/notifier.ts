import type { Channel } from '../config/policy.js';
import type { NotificationEvent } from './event.js';
import { parseRetryAfter, seconds } from './retry-timing.js';

/**
 * A delivery that did not happen. `permanent` failures (a 400 from the receiver) are not retried;
 * `retryAfterMs` is how long the receiver asked to be left alone (its Retry-After), when it did.
 */
export class DeliveryError extends Error {
  constructor(message: string, readonly permanent = false, readonly retryAfterMs?: number) {
    super(message);
    this.name = 'DeliveryError';
  }
}

/** One message for one channel. */
export interface Delivery {
  event: NotificationEvent;
  /**
   * Sent as the delivery ID so receivers can drop duplicates: the same for every attempt at one
   * message, and random per message, so it is never reused by another message — after a restart,
   * by another instance, or by another rollguard with a database of its own.
   */
  deliveryId: string;
  /** PagerDuty incident key: one per deployment, unique forever (see dispatcher.ts incidentKey). */
  incidentKey: string;
}

/** Sends to one kind of channel. Throws DeliveryError; its message never contains the channel's secrets. */
export interface Notifier<C extends Channel = Channel> {
  readonly kind: C['kind'];
  send(channel: C, delivery: Delivery, signal: AbortSignal): Promise<void>;
}

/** Removes every secret of the channel from a text (error messages can echo URLs and keys). */
export function scrub(text: string, channel: Channel): string {
  const secrets: string[] = [];
  switch (channel.kind) {
    case 'email': {
      secrets.push(channel.smtpUrl);
      try {
        const u = new URL(channel.smtpUrl);
        if (u.password) secrets.push(u.password, decodeURIComponent(u.password));
      } catch {
        // not a URL: the whole string is already listed
      }
      break;
    }
    case 'pagerduty': secrets.push(channel.routingKey); break;
    case 'slack': secrets.push(channel.webhookUrl, new URL(channel.webhookUrl).pathname); break;
    case 'webhook': secrets.push(channel.secret); break;
  }
  let out = text;
  for (const s of secrets.filter((x) => x && x.length >= 4).sort((a, b) => b.length - a.length)) out = out.split(s).join('[redacted]');
  return out;
}

/**
 * Turns an HTTP answer into a delivery error: 429 and 5xx are retried, other 4xx are permanent.
 * A 429 or 503 with a Retry-After header carries it, so the message is not tried again before.
 */
export function httpFailure(status: number, body: unknown, headers: object = {}, now: Date = new Date()): DeliveryError {
  const text = typeof body === 'string' ? body : JSON.stringify(body ?? '');
  const retryAfter = Object.entries(headers).find(([name]) => name.toLowerCase() === 'retry-after')?.[1];
  const retryAfterMs = status === 429 || status === 503 ? parseRetryAfter(retryAfter, now) : undefined;
  const asked = retryAfterMs === undefined ? '' : ` (Retry-After ${seconds(retryAfterMs)})`;
  return new DeliveryError(`HTTP ${status}${asked}: ${text.slice(0, 300)}`, status >= 400 && status < 500 && status !== 429 && status !== 408, retryAfterMs);
}

/** `failure` with the channel's secrets removed from its message (see `scrub`), otherwise the same. */
export function scrubbed(failure: DeliveryError, channel: Channel): DeliveryError {
  return new DeliveryError(scrub(failure.message, channel), failure.permanent, failure.retryAfterMs);
}
