import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import type { Channel, Policy, ServicePolicy } from '../config/policy.js';
import { channelsFor } from '../daemon/announcer.js';
import { backoffMs } from './dispatcher.js';
import { httpFailure, scrub } from './notifier.js';
import { signWebhook } from './webhook.js';

const channels: Record<string, Channel> = {
  pager: { kind: 'pagerduty', name: 'pager', routingKey: 'R0UT1NGKEY', url: 'http://127.0.0.1:1/v2/enqueue' },
  mail: { kind: 'email', name: 'mail', smtpUrl: 'smtp://bot:s3cr%40t@127.0.0.1:25', from: 'a@b.c', to: ['d@e.f'] },
  chat: { kind: 'slack', name: 'chat', webhookUrl: 'http://127.0.0.1:1/services/T000/B000/XXXXSECRET' },
  hook: { kind: 'webhook', name: 'hook', url: 'http://127.0.0.1:1/hook', secret: 'hmac-secret' },
};

function policy(over: Partial<Policy> = {}): Policy {
  return { version: 1, source: '/p.yaml', services: {}, notifications: channels, routes: { P0: ['pager', 'mail', 'chat'], P1: ['mail', 'chat'], P2: ['chat'], detected: ['hook'] }, escalation: [], ...over };
}

const svc = (notify: ServicePolicy['notify']): ServicePolicy => ({ notify } as ServicePolicy);

describe('channelsFor', () => {
  const cases: [string, Parameters<typeof channelsFor>[2], ServicePolicy | undefined, string[]][] = [
    ['routes by severity', { kind: 'rollback_started', severity: 'P1' }, undefined, ['mail', 'chat']],
    ['a service route overrides its severity only', { kind: 'rollback_started', severity: 'P1' }, svc({ P1: ['hook'] }), ['hook']],
    ['a service without that severity falls back to the policy', { kind: 'rule_breached', severity: 'P2' }, svc({ P1: ['hook'] }), ['chat']],
    ['ROLLBACK FAILED goes to every P0 route, service and policy', { kind: 'rollback_failed', severity: 'P0' }, svc({ P0: ['hook', 'pager'] }), ['hook', 'pager', 'mail', 'chat']],
    ['deployment announcements go to the detected route only', { kind: 'deployment_detected', severity: 'P2' }, undefined, ['hook']],
  ];
  for (const [name, event, service, want] of cases) it(name, () => assert.deepEqual(channelsFor(policy(), service, event), want));

  it('digests go to digest.to', () => {
    assert.deepEqual(channelsFor(policy({ digest: { schedule: '0 8 * * *', to: ['mail'] } }), undefined, { kind: 'digest', severity: 'P2' }), ['mail']);
  });
});

describe('backoffMs', () => {
  it('doubles from one second up to the cap', () => {
    assert.deepEqual([1, 2, 3, 4, 10, 20].map((n) => backoffMs(n, 300_000)), [1_000, 2_000, 4_000, 8_000, 300_000, 300_000]);
  });
});

describe('scrub', () => {
  it('removes each channel secret from error texts', () => {
    assert.equal(scrub('POST http://127.0.0.1:1/services/T000/B000/XXXXSECRET failed', channels.chat as Channel), 'POST [redacted] failed');
    assert.equal(scrub('key R0UT1NGKEY refused', channels.pager as Channel), 'key [redacted] refused');
    assert.equal(scrub('auth s3cr@t failed for s3cr%40t', channels.mail as Channel), 'auth [redacted] failed for [redacted]');
    assert.equal(scrub('bad signature hmac-secret', channels.hook as Channel), 'bad signature [redacted]');
  });
});

describe('httpFailure', () => {
  it('retries 429 and 5xx, gives up on other 4xx', () => {
    assert.equal(httpFailure(400, 'bad').permanent, true);
    assert.equal(httpFailure(404, 'no').permanent, true);
    assert.equal(httpFailure(429, 'slow down').permanent, false);
    assert.equal(httpFailure(503, 'down').permanent, false);
  });
});

describe('signWebhook', () => {
  it('signs timestamp.body with HMAC-SHA256', () => {
    const want = createHmac('sha256', 'k').update('1700000000.{"a":1}').digest('hex');
    assert.equal(signWebhook('k', '1700000000', '{"a":1}'), `sha256=${want}`);
  });
});
