import type { Policy } from '../config/policy.js';
import type { NotificationEvent } from '../notify/event.js';
import { createNotifiers } from '../notify/registry.js';
import type { Notifier } from '../notify/notifier.js';

/** Sends one test message straight to the channel (not through the outbox); throws with the channel's error. */
export async function sendTestMessage(policy: Policy, channelName: string): Promise<string> {
  const channel = policy.notifications[channelName];
  if (!channel) {
    throw new Error(`unknown channel "${channelName}"; defined: ${Object.keys(policy.notifications).join(', ') || 'none'}`);
  }
  const at = new Date();
  const event: NotificationEvent = {
    kind: 'test',
    severity: 'P2',
    title: `rollguard test message for channel ${channelName}`,
    summary: `This is a test of the ${channel.kind} channel "${channelName}" from ${policy.source}. No deployment is affected.`,
    at: at.toISOString(),
  };
  const notifiers = createNotifiers();
  const started = performance.now();
  try {
    const delivery = { event, deliveryId: `test-${at.getTime()}`, incidentKey: `rollguard-test-${at.getTime()}` };
    const notifier = notifiers[channel.kind] as Notifier;
    await notifier.send(channel, delivery, AbortSignal.timeout(20_000));
    // A test page must not stay open: resolve the incident it just triggered.
    if (channel.kind === 'pagerduty') await notifier.send(channel, { ...delivery, event: { ...event, kind: 'deployment_passed' } }, AbortSignal.timeout(20_000));
  } catch (err) {
    throw new Error(`${channelName} (${channel.kind}): not delivered: ${(err as Error).message}`);
  } finally {
    notifiers.close();
  }
  return `${channelName} (${channel.kind}): delivered in ${Math.round(performance.now() - started)} ms`;
}
