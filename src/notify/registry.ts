import type { Channel } from '../config/policy.js';
import { EmailNotifier } from './email.js';
import { notifyHttpClient } from './http-client.js';
import type { Notifier } from './notifier.js';
import { PagerDutyNotifier } from './pagerduty.js';
import { SlackNotifier } from './slack.js';
import { WebhookNotifier } from './webhook.js';

export type NotifierRegistry = { [K in Channel['kind']]: Notifier<Extract<Channel, { kind: K }>> } & { close(): void };

/** One notifier per channel kind; a policy can only name kinds present here. */
export function createNotifiers(): NotifierRegistry {
  const http = notifyHttpClient();
  const email = new EmailNotifier();
  return {
    email,
    pagerduty: new PagerDutyNotifier(http),
    slack: new SlackNotifier(http),
    webhook: new WebhookNotifier(http),
    close: () => email.close(),
  };
}
