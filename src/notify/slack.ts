import type { AxiosInstance } from 'axios';
import type { Channel } from '../config/policy.js';
import { requestError } from './http-client.js';
import { DeliveryError, httpFailure, scrub, scrubbed, type Delivery, type Notifier } from './notifier.js';
import { renderSlack } from './render.js';

type SlackChannel = Extract<Channel, { kind: 'slack' }>;

/** Slack incoming webhook with blocks. */
export class SlackNotifier implements Notifier<SlackChannel> {
  readonly kind = 'slack';
  constructor(private readonly http: AxiosInstance) {}

  async send(channel: SlackChannel, d: Delivery, signal: AbortSignal): Promise<void> {
    let res;
    try {
      res = await this.http.post(channel.webhookUrl, renderSlack(d.event), { signal, headers: { 'content-type': 'application/json' } });
    } catch (err) {
      throw new DeliveryError(scrub(requestError(err), channel));
    }
    if (res.status !== 200) {
      throw scrubbed(httpFailure(res.status, res.data, res.headers), channel);
    }
  }
}
