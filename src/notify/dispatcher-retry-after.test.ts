import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino, { type Logger } from 'pino';
import { createMetrics } from '../api/metrics.js';
import type { Channel, Policy } from '../config/policy.js';
import { openStore } from '../store/open-store.js';
import { Outbox, type NewOutboxItem } from '../store/outbox.js';
import type { Store } from '../store/store.js';
import { Dispatcher, type DispatcherOptions } from './dispatcher.js';
import type { NotificationEvent } from './event.js';
import { DeliveryError, type Delivery, type Notifier } from './notifier.js';

// How the dispatcher waits after a failure: the receiver's Retry-After for the whole channel, and
// jitter on its own backoff. Over the embedded SQLite store, each test with channels of its own.

const quiet = pino({ level: 'silent' });
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await pause(20);
  }
}

function capturedLog(): { log: Logger; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const stream = new Writable({ write(chunk, _enc, cb) { out.push(String(chunk)); cb(); } });
  return { log: pino({ level: 'debug' }, stream), lines: () => out.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const chat = (name: string): Channel => ({ kind: 'slack', name, webhookUrl: 'http://127.0.0.1:1/services/T/B/X' });
const policyWith = (channels: Channel[]): Policy =>
  ({ version: 1, source: '/p.yaml', services: {}, notifications: Object.fromEntries(channels.map((c) => [c.name, c])), routes: {}, escalation: [] });

let queued = 0;
function message(channel: string): NewOutboxItem {
  const payload: NotificationEvent = { kind: 'rollback_started', severity: 'P0', title: 't', summary: 's', at: new Date().toISOString(), service: 'web' };
  return { deployment_id: null, event: 'rollback_started', channel, dedup_key: `retry-after:${channel}:${++queued}`, payload, created_at: new Date() };
}

/** A notifier that answers each attempt as `answer` says (throwing its error), and records when each attempt was made. */
class ScriptedNotifier implements Notifier {
  readonly attempts: { deliveryId: string; at: number; ok: boolean }[] = [];
  constructor(readonly kind: Channel['kind'], private readonly answer: (attempt: number, deliveryId: string) => DeliveryError | undefined) {}

  async send(_channel: Channel, d: Delivery): Promise<void> {
    const failure = this.answer(this.attempts.filter((a) => a.deliveryId === d.deliveryId).length + 1, d.deliveryId);
    this.attempts.push({ deliveryId: d.deliveryId, at: Date.now(), ok: !failure });
    if (failure) throw failure;
  }
}

const slowDown = (seconds: number): DeliveryError => new DeliveryError(`HTTP 429 (Retry-After ${seconds} s): rate limited`, false, seconds * 1_000);

describe('the dispatcher honours Retry-After and jitters its backoff (embedded SQLite store)', () => {
  let dir: string;
  let store: Store;
  let outbox: Outbox;
  const dispatcher = (channels: Channel[], notifier: Notifier, over: Partial<DispatcherOptions> = {}): Dispatcher =>
    new Dispatcher({ outbox, notifiers: { [notifier.kind]: notifier }, policy: () => policyWith(channels), log: quiet, metrics: createMetrics(), pollMs: 20, ...over });
  const row = async (channel: string) =>
    (await store.sql.query<{ status: string; attempts: number; last_error: string | null }>('SELECT status, attempts, last_error FROM outbox WHERE channel = $1 ORDER BY id', [channel]));

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'rollguard-retry-after-test-'));
    store = await openStore({ stateDir: dir, log: quiet });
    outbox = new Outbox(store.sql);
  });

  after(async () => {
    await store.sql.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a message answered with Retry-After is not tried again before it, then sent once', async () => {
    const notifier = new ScriptedNotifier('slack', (n) => (n === 1 ? slowDown(1) : undefined));
    await outbox.add([message('ra-one')]);
    const d = dispatcher([chat('ra-one')], notifier);
    d.start();
    try {
      await waitFor('the message sent', () => notifier.attempts.some((a) => a.ok));
    } finally {
      await d.stop();
    }
    const [first, second] = notifier.attempts;
    assert.equal(notifier.attempts.length, 2);
    assert.ok((second?.at ?? 0) - (first?.at ?? 0) >= 1_000, `retried ${(second?.at ?? 0) - (first?.at ?? 0)} ms after a Retry-After of 1 s`);
    assert.deepEqual(await row('ra-one'), [{ status: 'sent', attempts: 2, last_error: null }]);
  });

  it('the channel\'s other messages, queued before and during the wait, are not sent before it either', async () => {
    const channel = 'ra-channel';
    let firstAttempt: string | undefined;
    const notifier = new ScriptedNotifier('slack', (n, id) => {
      firstAttempt ??= id;
      return n === 1 && id === firstAttempt ? slowDown(1) : undefined;
    });
    await outbox.add([message(channel), message(channel), message(channel)]);
    const d = dispatcher([chat(channel)], notifier);
    d.start();
    try {
      await waitFor('the first answer', () => notifier.attempts.length === 1);
      await outbox.add([message(channel)]);
      d.kick();
      await waitFor('every message sent', () => notifier.attempts.filter((a) => a.ok).length === 4);
    } finally {
      await d.stop();
    }
    const refusedAt = notifier.attempts[0]?.at ?? 0;
    for (const a of notifier.attempts.slice(1)) assert.ok(a.at - refusedAt >= 1_000, `an attempt ${a.at - refusedAt} ms after the Retry-After of 1 s`);
    assert.equal(notifier.attempts.length, 5, 'four messages, one of them twice');
    assert.deepEqual((await row(channel)).map((r) => [r.status, r.attempts]), [['sent', 2], ['sent', 1], ['sent', 1], ['sent', 1]]);
  });

  it('another channel is not held', async () => {
    const slowNotifier = new ScriptedNotifier('slack', () => slowDown(60));
    const fast = new ScriptedNotifier('webhook', () => undefined);
    const hook: Channel = { kind: 'webhook', name: 'ra-other-hook', url: 'http://127.0.0.1:1/h', secret: 'hook-secret' };
    await outbox.add([message('ra-held'), message('ra-other-hook')]);
    const d = new Dispatcher({
      outbox, notifiers: { slack: slowNotifier, webhook: fast }, policy: () => policyWith([chat('ra-held'), hook]), log: quiet, metrics: createMetrics(), pollMs: 20,
    });
    d.start();
    try {
      await waitFor('the other channel\'s message sent', () => fast.attempts.length === 1);
      await waitFor('the held channel tried once', () => slowNotifier.attempts.length === 1);
    } finally {
      await d.stop();
    }
    assert.equal((await row('ra-held'))[0]?.status, 'pending');
  });

  it('a Retry-After longer than the cap waits the cap, and the stored error and the log say so', async () => {
    const { log, lines } = capturedLog();
    const notifier = new ScriptedNotifier('slack', (n) => (n === 1 ? slowDown(86_400) : undefined));
    await outbox.add([message('ra-capped')]);
    const d = dispatcher([chat('ra-capped')], notifier, { maxRetryAfterMs: 300, log });
    d.start();
    try {
      await waitFor('the first answer stored', async () => (await row('ra-capped'))[0]?.attempts === 1);
      assert.equal((await row('ra-capped'))[0]?.last_error, 'HTTP 429 (Retry-After 86400 s): rate limited; waiting 0.3 s, the longest Retry-After honoured');
      await waitFor('the message sent', () => notifier.attempts.some((a) => a.ok), 3_000);
    } finally {
      await d.stop();
    }
    const warned = lines().find((l) => l.msg === 'notification failed; will retry');
    assert.equal(warned?.retryAfterMs, 300);
    assert.match(String(warned?.error), /waiting 0\.3 s, the longest Retry-After honoured$/);
    const gap = (notifier.attempts[1]?.at ?? 0) - (notifier.attempts[0]?.at ?? 0);
    assert.ok(gap >= 300 && gap < 3_000, `retried after ${gap} ms`);
  });

  it('the backoff of a failure without Retry-After is spread ±20 % by the jitter source', async () => {
    const waits: number[] = [];
    for (const [n, random] of [[1, 0], [2, 0.999_999]] as const) {
      const { log, lines } = capturedLog();
      const channel = `ra-jitter-${n}`;
      const notifier = new ScriptedNotifier('slack', () => new DeliveryError('HTTP 500: oops'));
      await outbox.add([message(channel)]);
      await dispatcher([chat(channel)], notifier, { random: () => random, log }).drain();
      waits.push(Number(lines().find((l) => l.msg === 'notification failed; will retry')?.retryInMs));
    }
    assert.deepEqual(waits, [800, 1_200], 'the first backoff (1 s) at the low and the high end of ±20 %');
  });
});
