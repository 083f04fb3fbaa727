import { createHmac } from 'node:crypto';
import type { AxiosInstance } from 'axios';
import type { Channel } from '../config/policy.js';
import { requestError } from './http-client.js';
import { DeliveryError, httpFailure, scrub, type Delivery, type Notifier } from './notifier.js';
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

/** Generic JSON webhook, signed. */
export class WebhookNotifier implements Notifier<WebhookChannel> {
  readonly kind = 'webhook';
  constructor(private readonly http: AxiosInstance, private readonly now: () => Date = () => new Date()) {}

  async send(channel: WebhookChannel, d: Delivery, signal: AbortSignal): Promise<void> {
    const body = JSON.stringify(renderWebhook(d.event));
    const timestamp = String(Math.floor(this.now().getTime() / 1000));
    let res;
    try {
      res = await this.http.post(channel.url, body, {
        signal,
        headers: {
          'content-type': 'application/json',
          'x-rollguard-event': d.event.kind,
          'x-rollguard-delivery': d.deliveryId,
          'x-rollguard-timestamp': timestamp,
          'x-rollguard-signature': signWebhook(channel.secret, timestamp, body),
        },
        transformRequest: [(data: unknown) => data],
      });
    } catch (err) {
      throw new DeliveryError(scrub(requestError(err), channel));
    }
    if (res.status < 200 || res.status >= 300) {
      const failure = httpFailure(res.status, res.data);
      throw new DeliveryError(scrub(failure.message, channel), failure.permanent);
    }
  }
}
