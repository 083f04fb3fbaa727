import type { AxiosInstance } from 'axios';
import type { Channel } from '../config/policy.js';
import type { EventKind } from './event.js';
import { requestError } from './http-client.js';
import { DeliveryError, httpFailure, scrub, scrubbed, type Delivery, type Notifier } from './notifier.js';
import { renderPagerDuty } from './render.js';

type PagerDutyChannel = Extract<Channel, { kind: 'pagerduty' }>;

/** Events that open (or update) the deployment's incident, and events that close it. */
export const PAGER_TRIGGERS: readonly EventKind[] = ['rule_breached', 'rollback_started', 'rollback_failed', 'test'];
export const PAGER_RESOLVES: readonly EventKind[] = ['rollback_succeeded', 'deployment_passed'];

/** PagerDuty Events API v2: trigger with one dedup_key per deployment, resolve when the revert is verified. */
export class PagerDutyNotifier implements Notifier<PagerDutyChannel> {
  readonly kind = 'pagerduty';
  constructor(private readonly http: AxiosInstance) {}

  async send(channel: PagerDutyChannel, d: Delivery, signal: AbortSignal): Promise<void> {
    const action = PAGER_RESOLVES.includes(d.event.kind) ? 'resolve' : 'trigger';
    const body = renderPagerDuty(d.event, channel.routingKey, d.incidentKey, action);
    let res;
    try {
      res = await this.http.post(channel.url, body, { signal, headers: { 'content-type': 'application/json' } });
    } catch (err) {
      throw new DeliveryError(scrub(requestError(err), channel));
    }
    if (res.status !== 202 && res.status !== 200) throw scrubbed(httpFailure(res.status, res.data, res.headers), channel);
  }
}
