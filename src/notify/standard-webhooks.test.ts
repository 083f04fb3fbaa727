import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { AxiosInstance } from 'axios';
import { Webhook } from 'standardwebhooks';
import { ConfigError } from '../config/errors.js';
import { parsePolicy } from '../config/load-policy.js';
import type { Channel } from '../config/policy.js';
import type { NotificationEvent } from './event.js';
import { DeliveryError, type Delivery } from './notifier.js';
import { PagerDutyNotifier } from './pagerduty.js';
import { SlackNotifier } from './slack.js';
import { signStandardWebhook, standardWebhookKey, WebhookNotifier } from './webhook.js';

// The webhook channel's Standard Webhooks signatures, checked by the standardwebhooks package
// (the verifier receivers use), and the Retry-After every HTTP channel hands to the dispatcher.

type WebhookChannel = Extract<Channel, { kind: 'webhook' }>;

interface Posted { url: string; body: string; headers: Record<string, string> }

/** An axios stand-in that records each POST and answers with `answer`. */
function recordingHttp(answer: { status: number; data?: unknown; headers?: Record<string, string> } = { status: 200 }): { http: AxiosInstance; posted: Posted[] } {
  const posted: Posted[] = [];
  const http = {
    async post(url: string, body: unknown, config: { headers: Record<string, string> }) {
      posted.push({ url, body: typeof body === 'string' ? body : JSON.stringify(body), headers: config.headers });
      return { status: answer.status, data: answer.data ?? '', headers: answer.headers ?? {} };
    },
  };
  return { http: http as unknown as AxiosInstance, posted };
}

const WHSEC = `whsec_${randomBytes(32).toString('base64')}`;
const RAW_SECRET = 'rg-plain-shared-secret-0123456789';

const hook = (secret: string, signature?: WebhookChannel['signature']): WebhookChannel =>
  ({ kind: 'webhook', name: 'hook', url: 'http://127.0.0.1:1/hook', secret, ...(signature ? { signature } : {}) });

function delivery(deliveryId: string, kind: NotificationEvent['kind'] = 'rollback_started'): Delivery {
  return { event: { kind, severity: 'P0', title: 'web: rolling back', summary: 'error rate above 5%', at: new Date().toISOString(), service: 'web' }, deliveryId, incidentKey: 'k' };
}

async function sendOne(channel: WebhookChannel, d: Delivery, at = new Date()): Promise<Posted> {
  const { http, posted } = recordingHttp();
  await new WebhookNotifier(http, () => at).send(channel, d, new AbortController().signal);
  assert.equal(posted.length, 1);
  return posted[0] as Posted;
}

describe('the webhook channel\'s signature option', () => {
  const policy = (webhook: string): string => `version: 1
services:
  web:
    match: {container: web}
    signals: {ready: {http: {url: "http://127.0.0.1:8000/ready"}}}
    rules: [{name: ready, signal: ready, below: 1, for: 3, severity: P0, action: rollback}]
notifications:
  ci: {webhook: ${webhook}}
routes: {P0: [ci]}
`;
  const parse = (webhook: string) => parsePolicy(policy(webhook), 'p.yaml', { HOOK_SECRET: WHSEC }).notifications.ci;

  it('is rollguard\'s own scheme unless `signature: standard` is set', () => {
    assert.equal((parse('{url: "https://ci.example.com/hook", secret: "${HOOK_SECRET}"}') as WebhookChannel).signature, 'rollguard');
    assert.deepEqual(parse('{url: "https://ci.example.com/hook", secret: "${HOOK_SECRET}", signature: standard}'),
      { kind: 'webhook', name: 'ci', url: 'https://ci.example.com/hook', secret: WHSEC, signature: 'standard' });
  });

  it('refuses another scheme, naming the valid ones and not the secret', () => {
    const err = (() => {
      try {
        parse('{url: "https://ci.example.com/hook", secret: "${HOOK_SECRET}", signature: svix}');
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(err.message, /notifications\.ci\.webhook\.signature: .*"rollguard".*"standard"/);
    assert.ok(!err.message.includes(WHSEC));
  });
});

describe('webhook signature: standard', () => {
  it('sends webhook-id, webhook-timestamp and a v1 signature that the standardwebhooks package accepts', async () => {
    const sent = await sendOne(hook(WHSEC, 'standard'), delivery('0b7c6a2e-5d1f-4f0e-9a51-3c2d8e7f6a10'));
    assert.equal(sent.headers['webhook-id'], '0b7c6a2e-5d1f-4f0e-9a51-3c2d8e7f6a10');
    assert.match(sent.headers['webhook-timestamp'] ?? '', /^\d{10}$/);
    assert.match(sent.headers['webhook-signature'] ?? '', /^v1,[A-Za-z0-9+/]{43}=$/);
    const payload = new Webhook(WHSEC).verify(sent.body, sent.headers) as { event: string; title: string };
    assert.equal(payload.event, 'rollback_started');
    assert.equal(payload.title, 'web: rolling back');
  });

  it('the package rejects it after tampering with the body, the id, the timestamp or the secret', async () => {
    const sent = await sendOne(hook(WHSEC, 'standard'), delivery('d-1'));
    const verify = (body: string, headers: Record<string, string>, secret = WHSEC) => () => new Webhook(secret).verify(body, headers);
    assert.throws(verify(sent.body.replace('rolling back', 'rolled back'), sent.headers), /No matching signature/);
    assert.throws(verify(`${sent.body} `, sent.headers), /No matching signature/);
    assert.throws(verify(sent.body, { ...sent.headers, 'webhook-id': 'd-2' }), /No matching signature/);
    assert.throws(verify(sent.body, { ...sent.headers, 'webhook-timestamp': String(Number(sent.headers['webhook-timestamp']) - 1) }), /No matching signature/);
    assert.throws(verify(sent.body, sent.headers, `whsec_${randomBytes(32).toString('base64')}`), /No matching signature/);
  });

  it('a replayed request is too old for the package after 5 minutes', async () => {
    const sent = await sendOne(hook(WHSEC, 'standard'), delivery('d-old'), new Date(Date.now() - 6 * 60_000));
    assert.throws(() => new Webhook(WHSEC).verify(sent.body, sent.headers), /too old/);
  });

  it('a secret not in whsec_ form is the key as it is (the package\'s raw format)', async () => {
    const sent = await sendOne(hook(RAW_SECRET, 'standard'), delivery('d-raw'));
    assert.ok(new Webhook(RAW_SECRET, { format: 'raw' }).verify(sent.body, sent.headers));
    assert.deepEqual(standardWebhookKey(RAW_SECRET), Buffer.from(RAW_SECRET));
    assert.deepEqual(standardWebhookKey(WHSEC), Buffer.from(WHSEC.slice('whsec_'.length), 'base64'));
  });

  it('webhook-id is the same for every attempt at one message and differs between messages; the timestamp is the attempt\'s', async () => {
    const channel = hook(WHSEC, 'standard');
    const first = await sendOne(channel, delivery('msg-a'), new Date('2026-11-30T00:00:00Z'));
    const retry = await sendOne(channel, delivery('msg-a'), new Date('2026-11-30T00:00:02Z'));
    const other = await sendOne(channel, delivery('msg-b'), new Date('2026-11-30T00:00:02Z'));
    assert.equal(first.headers['webhook-id'], retry.headers['webhook-id']);
    assert.notEqual(other.headers['webhook-id'], first.headers['webhook-id']);
    assert.deepEqual([first.headers['webhook-timestamp'], retry.headers['webhook-timestamp']], ['1795996800', '1795996802']);
    assert.equal(retry.headers['webhook-signature'], signStandardWebhook(WHSEC, 'msg-a', '1795996802', retry.body));
  });

  it('a whsec_ secret whose rest is not base64 fails for good, without showing the secret', async () => {
    const bad = 'whsec_not*base64!rg-test-secret';
    const { http, posted } = recordingHttp();
    const err = await new WebhookNotifier(http).send(hook(bad, 'standard'), delivery('d-bad'), new AbortController().signal).catch((e: unknown) => e);
    assert.ok(err instanceof DeliveryError);
    assert.equal(err.permanent, true);
    assert.ok(!err.message.includes('rg-test-secret'), err.message);
    assert.equal(posted.length, 0, 'nothing unsigned was sent');
  });

  it('no header carries the secret', async () => {
    const sent = await sendOne(hook(WHSEC, 'standard'), delivery('d-s'));
    const key = WHSEC.slice('whsec_'.length);
    for (const value of Object.values(sent.headers)) assert.ok(!value.includes(key), value);
  });
});

describe('webhook signature: rollguard (the default)', () => {
  it('is unchanged: X-Rollguard-* headers and no Standard Webhooks ones', async () => {
    for (const channel of [hook(RAW_SECRET), hook(RAW_SECRET, 'rollguard')]) {
      const sent = await sendOne(channel, delivery('d-default'));
      assert.deepEqual(Object.keys(sent.headers).sort(), ['content-type', 'x-rollguard-delivery', 'x-rollguard-event', 'x-rollguard-signature', 'x-rollguard-timestamp']);
      assert.match(sent.headers['x-rollguard-signature'] ?? '', /^sha256=[0-9a-f]{64}$/);
    }
  });
});

describe('Retry-After from the HTTP channels', () => {
  const slow = { status: 429, data: 'rate limited', headers: { 'retry-after': '2' } };
  const cases: [string, (http: AxiosInstance) => Promise<void>][] = [
    ['slack', (http) => new SlackNotifier(http).send({ kind: 'slack', name: 'chat', webhookUrl: 'http://127.0.0.1:1/services/T/B/rg-test-secret' }, delivery('d'), new AbortController().signal)],
    ['pagerduty', (http) => new PagerDutyNotifier(http).send({ kind: 'pagerduty', name: 'pager', routingKey: 'rg-test-secret', url: 'http://127.0.0.1:1/v2/enqueue' }, delivery('d'), new AbortController().signal)],
    ['webhook', (http) => new WebhookNotifier(http).send(hook(WHSEC, 'standard'), delivery('d'), new AbortController().signal)],
  ];
  for (const [kind, send] of cases) {
    it(`${kind}: a 429 with Retry-After: 2 is a retryable failure that asks for 2 s`, async () => {
      const err = await send(recordingHttp(slow).http).catch((e: unknown) => e);
      assert.ok(err instanceof DeliveryError, String(err));
      assert.equal(err.permanent, false);
      assert.equal(err.retryAfterMs, 2_000);
      assert.equal(err.message, 'HTTP 429 (Retry-After 2 s): rate limited');
    });
  }
});
