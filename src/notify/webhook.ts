import { standardWebhookSecretProblem } from '../config/notify-schema.js';
import { createHmac } from 'node:crypto';
import type { AxiosInstance } from 'axios';
import type { Channel } from '../config/policy.js';
import { requestError } from './http-client.js';
import { DeliveryError, httpFailure, scrub, scrubbed, type Delivery, type Notifier } from './notifier.js';
import { renderWebhook } from './render.js';

type WebhookChannel = Extract<Channel, { kind: 'webhook' }>;

/**
 * The signature a receiver checks: `sha256=` + hex HMAC-SHA256 over `<timestamp>.<raw body>`
 * with the shared secret; the timestamp (Unix seconds) is sent in X-Rollguard-Timestamp so a
 * receiver can refuse old replays.
 */
export function signWebhook(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** The prefix of a Standard Webhooks secret: `whsec_` + the key in base64. */
const STANDARD_SECRET_PREFIX = 'whsec_';

/**
 * The HMAC key of a Standard Webhooks signature: the base64 part of a `whsec_…` secret, as the
 * spec serializes keys; any other secret's own bytes (UTF-8), so a secret shared with today's
 * scheme can sign both. Throws (a permanent failure: retrying cannot mend it) when the part after
 * `whsec_` is not base64, without echoing the secret.
 */
export function standardWebhookKey(secret: string): Buffer {
  const problem = standardWebhookSecretProblem(secret);
  if (problem) throw new DeliveryError(`webhook signature: ${problem}`, true);
  return secret.startsWith(STANDARD_SECRET_PREFIX) ? Buffer.from(secret.slice(STANDARD_SECRET_PREFIX.length), 'base64') : Buffer.from(secret, 'utf8');
}

/**
 * The Standard Webhooks signature (https://www.standardwebhooks.com/): `v1,` + base64
 * HMAC-SHA256 over `<id>.<timestamp>.<raw body>`, keyed as `standardWebhookKey` says.
 */
export function signStandardWebhook(secret: string, id: string, timestamp: string, body: string): string {
  return `v1,${createHmac('sha256', standardWebhookKey(secret)).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/** The headers that sign one attempt, by the channel's scheme; the timestamp is the attempt's (Unix seconds). */
function signatureHeaders(channel: WebhookChannel, deliveryId: string, timestamp: string, body: string): Record<string, string> {
  if (channel.signature === 'standard') {
    return { 'webhook-id': deliveryId, 'webhook-timestamp': timestamp, 'webhook-signature': signStandardWebhook(channel.secret, deliveryId, timestamp, body) };
  }
  return { 'x-rollguard-delivery': deliveryId, 'x-rollguard-timestamp': timestamp, 'x-rollguard-signature': signWebhook(channel.secret, timestamp, body) };
}

/** Generic JSON webhook, signed by rollguard's own scheme or by Standard Webhooks. */
export class WebhookNotifier implements Notifier<WebhookChannel> {
  readonly kind = 'webhook';
  constructor(private readonly http: AxiosInstance, private readonly now: () => Date = () => new Date()) {}

  async send(channel: WebhookChannel, d: Delivery, signal: AbortSignal): Promise<void> {
    const body = JSON.stringify(renderWebhook(d.event));
    const timestamp = String(Math.floor(this.now().getTime() / 1000));
    // Signed before the request: a secret that cannot sign is a permanent failure, not a request error.
    const signature = signatureHeaders(channel, d.deliveryId, timestamp, body);
    let res;
    try {
      res = await this.http.post(channel.url, body, {
        signal,
        headers: { 'content-type': 'application/json', 'x-rollguard-event': d.event.kind, ...signature },
        transformRequest: [(data: unknown) => data],
      });
    } catch (err) {
      throw new DeliveryError(scrub(requestError(err), channel));
    }
    if (res.status < 200 || res.status >= 300) {
      throw scrubbed(httpFailure(res.status, res.data, res.headers, this.now()), channel);
    }
  }
}
