import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino, { type Logger } from 'pino';
import { createMetrics } from '../api/metrics.js';
import type { Channel, Policy } from '../config/policy.js';
import { Announcer, dedupKey } from '../daemon/announcer.js';
import { dialectOf } from '../store/dialect.js';
import { openStore } from '../store/open-store.js';
import { Outbox, type NewOutboxItem } from '../store/outbox.js';
import type { Sql } from '../store/sql.js';
import { Store, type NewDeployment } from '../store/store.js';
import { WriteBehind } from '../store/write-behind.js';
import { Dispatcher, incidentKey } from './dispatcher.js';
import type { NotificationEvent } from './event.js';
import type { Delivery, Notifier } from './notifier.js';

// The outbox's keys and the dispatcher's claims over the embedded SQLite store, which the file
// shares; each test uses channels of its own, which keeps their messages apart.

/** A pino logger whose lines the test can read. */
function capturedLog(): { log: Logger; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const stream = new Writable({ write(chunk, _enc, cb) { out.push(String(chunk)); cb(); } });
  return { log: pino({ level: 'debug' }, stream), lines: () => out.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const quiet = pino({ level: 'silent' });
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 5_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await pause(20);
  }
}

function policyWith(channels: Channel[], routes: Policy['routes'] = {}): Policy {
  return { version: 1, source: '/p.yaml', services: {}, notifications: Object.fromEntries(channels.map((c) => [c.name, c])), routes, escalation: [] };
}
const webhook = (name: string): Channel => ({ kind: 'webhook', name, url: 'http://127.0.0.1:1/hook', secret: 'hook-secret' });
const slack = (name: string): Channel => ({ kind: 'slack', name, webhookUrl: 'http://127.0.0.1:1/services/T/B/X' });
const pager = (name: string): Channel => ({ kind: 'pagerduty', name, routingKey: 'routing-key', url: 'http://127.0.0.1:1/v2/enqueue' });

function event(kind: NotificationEvent['kind'], at = new Date()): NotificationEvent {
  return { kind, severity: 'P0', title: kind, summary: kind, at: at.toISOString(), service: 'web' };
}

let queued = 0;
/** A message for `channel` with no deployment and a key of its own. */
function message(channel: string, kind: NotificationEvent['kind'] = 'rollback_started'): NewOutboxItem {
  return { deployment_id: null, event: kind, channel, dedup_key: `test:${channel}:${++queued}`, payload: event(kind), created_at: new Date() };
}

/** A notifier that records what it was given, each send taking `sendMs` (ignoring the abort signal when `deaf`). */
class FakeNotifier implements Notifier {
  readonly sent: { channel: string; delivery: Delivery; at: number }[] = [];
  constructor(readonly kind: Channel['kind'], private readonly behave: (channel: string) => { sendMs: number; deaf?: boolean } = () => ({ sendMs: 0 })) {}

  async send(channel: Channel, delivery: Delivery, signal: AbortSignal): Promise<void> {
    const { sendMs, deaf } = this.behave(channel.name);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, sendMs);
      if (!deaf) signal.addEventListener('abort', () => { clearTimeout(timer); reject(new Error('aborted')); }, { once: true });
    });
    this.sent.push({ channel: channel.name, delivery, at: Date.now() });
  }
}

const newDeployment = (service: string): NewDeployment => ({
  service, target: 'docker-container', container_id: `c-${service}`, container_name: service, from_image: 'sha256:a', from_ref: 'app:v1', to_image: 'sha256:b', to_ref: 'app:v2',
  dry_run: false, started_at: new Date(), detected_at: new Date(), window_ends_at: new Date(Date.now() + 60_000),
});

/** The store's SQL, made unreachable (connection refused) while `down`. */
function switchable(sql: Sql): { sql: Sql; state: { down: boolean } } {
  const state = { down: false };
  const refused = (): Error => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
  return {
    state,
    sql: {
      kind: sql.kind,
      query: async (text, params) => { if (state.down) throw refused(); return sql.query(text, params); },
      transaction: async (fn) => { if (state.down) throw refused(); return sql.transaction(fn); },
      close: async () => {},
    },
  };
}

describe('outbox keys and the dispatcher (embedded SQLite store)', () => {
  let dir: string;
  let store: Store;
  let outbox: Outbox;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'rollguard-dispatcher-test-'));
    store = await openStore({ stateDir: dir, log: quiet });
    outbox = new Outbox(store.sql);
  });

  after(async () => {
    await store.sql.close();
    await rm(dir, { recursive: true, force: true });
  });

  describe('keys', () => {
    it('dedupKey keys a message by the real deployment ID, event, channel and suffix', () => {
      assert.equal(dedupKey(42, 'rollback_started', 'pager'), '42:rollback_started:pager');
      assert.equal(dedupKey(null, 'digest', 'mail', '2024-05-01T08:00:00.000Z'), 'none:digest:mail:2024-05-01T08:00:00.000Z');
    });

    it('dedupKey refuses a provisional deployment ID: the next outage and every other instance reuse it', () => {
      assert.throws(() => dedupKey(-1, 'rollback_started', 'pager'), RangeError);
      assert.throws(() => dedupKey(0, 'rollback_started', 'pager'), RangeError);
    });

    it('incidentKey is the deployment plus its random uid; one recorded before uids keeps its start-time key', () => {
      const payload = event('rollback_started');
      assert.equal(incidentKey({ deployment_id: 7, deployment_uid: '9f3c2a1b7d4e5f60', event: 'rollback_started', delivery_id: 'd', payload }), 'rollguard-web-7-9f3c2a1b7d4e5f60');
      assert.equal(incidentKey({ deployment_id: 7, deployment_uid: '1700000000', event: 'rollback_started', delivery_id: 'd', payload }), 'rollguard-web-7-1700000000');
      assert.equal(incidentKey({ deployment_id: null, deployment_uid: null, event: 'digest', delivery_id: 'a1b2', payload }), 'rollguard-digest-a1b2');
    });

    it('each deployment row gets its own uid, so the same ID in two databases cannot share an incident', async () => {
      const a = await store.insertDeployment(newDeployment('uid-a'));
      const b = await store.insertDeployment(newDeployment('uid-b'));
      const rows = await store.sql.query<{ uid: string }>('SELECT uid FROM deployments WHERE id IN ($1, $2)', [a.id, b.id]);
      assert.equal(rows.length, 2);
      assert.ok(rows.every((r) => /^[0-9a-f]{16}$/.test(r.uid)), JSON.stringify(rows));
      assert.notEqual(rows[0]?.uid, rows[1]?.uid);
    });

    it('each message gets a random delivery ID', async () => {
      await outbox.add([message('ids'), message('ids')]);
      const ids = (await store.sql.query<{ delivery_id: string }>("SELECT delivery_id FROM outbox WHERE channel = 'ids'")).map((r) => r.delivery_id);
      assert.equal(ids.length, 2);
      assert.notEqual(ids[0], ids[1]);
      assert.ok(ids.every((id) => /^[0-9a-f-]{36}$/.test(id)), ids.join(' '));
    });
  });

  describe('Announcer through a store outage', () => {
    /** One rollguard instance's write queue and announcer over the shared store, as seen through `sql`. */
    const instance = (sql: Sql, policy: Policy, log: Logger) => {
      const s = new Store(sql);
      const writes = new WriteBehind(s, { log, retryMs: 60_000 });
      return { writes, announcer: new Announcer(s, new Outbox(sql), writes, () => policy, () => {}, log) };
    };
    const rowsFor = (channels: string[]) =>
      store.sql.query<{ deployment_id: string; event: string; channel: string; dedup_key: string }>(
        `SELECT deployment_id, event, channel, dedup_key FROM outbox WHERE ${dialectOf(store.sql).inTextArray('channel', '$1')} ORDER BY id`, [channels]);

    it('two instances and a restarted one, each with provisional deployment -1 → every message is queued, keyed by its real ID', async () => {
      const policy = policyWith([pager('o-pager'), webhook('o-hook')], { P0: ['o-pager', 'o-hook'] });
      const { log, lines } = capturedLog();
      const link = switchable(store.sql);
      const outage = async (...names: string[]): Promise<void> => {
        const instances = names.map(() => instance(link.sql, policy, log));
        link.state.down = true;
        for (const [n, { writes, announcer }] of instances.entries()) {
          const d = await writes.insertDeployment(newDeployment(names[n] as string));
          assert.equal(d.id, -1, 'each instance numbers its provisional deployments from -1');
          await announcer.announce({ ...event('rollback_started'), service: names[n] }, { deploymentId: d.id });
          await announcer.announce({ ...event('rollback_succeeded'), service: names[n] }, { deploymentId: d.id });
        }
        link.state.down = false;
        for (const { writes } of instances) await writes.flush();
        for (const { writes } of instances) assert.equal(writes.waiting, 0);
      };
      await outage('out-a', 'out-b');
      await outage('out-a-restarted');

      const rows = await rowsFor(['o-pager', 'o-hook']);
      const deployments = [...new Set(rows.map((r) => r.deployment_id))];
      assert.equal(deployments.length, 3, 'three deployments');
      assert.ok(deployments.every((id) => Number(id) > 0), 'with real IDs');
      for (const id of deployments) {
        assert.deepEqual(rows.filter((r) => r.deployment_id === id).map((r) => `${r.event} ${r.channel}`).sort(),
          ['rollback_started o-hook', 'rollback_started o-pager', 'rollback_succeeded o-hook', 'rollback_succeeded o-pager'], `deployment ${id}: each message, the resolve too`);
      }
      for (const r of rows) assert.equal(r.dedup_key, `${r.deployment_id}:${r.event}:${r.channel}`);
      assert.deepEqual(lines().filter((l) => l.msg === 'notification already queued; not queued again'), [], 'nothing was dropped as a duplicate');
    });

    it('a genuine repeat (a restart re-announcing the event) is not queued twice, and that is logged with its key', async () => {
      const policy = policyWith([webhook('r-hook')], { P0: ['r-hook'] });
      const { log, lines } = capturedLog();
      const d = await store.insertDeployment(newDeployment('repeat'));
      await instance(store.sql, policy, log).announcer.announce(event('rollback_started'), { deploymentId: d.id });
      await instance(store.sql, policy, log).announcer.announce(event('rollback_started'), { deploymentId: d.id });
      assert.equal((await rowsFor(['r-hook'])).length, 1);
      const dropped = lines().filter((l) => l.msg === 'notification already queued; not queued again');
      assert.equal(dropped.length, 1);
      assert.equal(dropped[0]?.dedupKey, `${d.id}:rollback_started:r-hook`);
      assert.equal(dropped[0]?.level, 30, 'at info');
    });

    it('a resolve announced while its trigger still waits in memory is queued once the trigger is written', async () => {
      const policy = policyWith([pager('w-pager')], { P0: ['w-pager'] });
      const link = switchable(store.sql);
      const { writes, announcer } = instance(link.sql, policy, quiet);
      link.state.down = true;
      const d = await writes.insertDeployment(newDeployment('waiting'));
      await announcer.announce(event('rollback_started'), { deploymentId: d.id });
      link.state.down = false; // answering again, before the kept writes are made
      await announcer.announce(event('rollback_succeeded'), { deploymentId: d.id });
      await writes.flush();
      assert.deepEqual((await rowsFor(['w-pager'])).map((r) => r.event), ['rollback_started', 'rollback_succeeded']);
    });

    it('a resolve for a deployment whose incident was never opened is not queued', async () => {
      const policy = policyWith([pager('n-pager')], { P0: ['n-pager'] });
      const d = await store.insertDeployment(newDeployment('never-opened'));
      await instance(store.sql, policy, quiet).announcer.announce(event('deployment_passed'), { deploymentId: d.id });
      assert.deepEqual(await rowsFor(['n-pager']), []);
    });
  });

  describe('Dispatcher', () => {
    const dispatcher = (policy: Policy, notifiers: Notifier[], over: Partial<ConstructorParameters<typeof Dispatcher>[0]> = {}, log: Logger = quiet): Dispatcher =>
      new Dispatcher({ outbox, notifiers: Object.fromEntries(notifiers.map((n) => [n.kind, n])), policy: () => policy, log, metrics: createMetrics(), pollMs: 50, ...over });
    const countBy = (xs: string[]): Record<string, number> => xs.reduce<Record<string, number>>((m, x) => ({ ...m, [x]: (m[x] ?? 0) + 1 }), {});

    it('a channel whose sends hang does not delay the other channels', async () => {
      const hung = new FakeNotifier('webhook', () => ({ sendMs: 60_000 }));
      const fast = new FakeNotifier('slack');
      const policy = policyWith([webhook('hang-hook'), slack('hang-chat')]);
      const d = dispatcher(policy, [hung, fast], { sendTimeoutMs: 1_500 });
      await outbox.add([message('hang-hook'), message('hang-hook'), message('hang-hook'), message('hang-chat')]);
      d.start();
      try {
        await waitFor('the first chat message', () => fast.sent.length === 1, 2_000);
        await pause(200); // the webhook's first send is hanging now
        for (let n = 2; n <= 4; n++) {
          const queuedAt = Date.now();
          await outbox.add([message('hang-chat')]);
          d.kick();
          await waitFor(`chat message ${n} while the webhook hangs`, () => fast.sent.length === n, 2_000);
          assert.ok(Date.now() - queuedAt < 500, `chat message ${n} took ${Date.now() - queuedAt} ms`);
        }
        assert.equal(hung.sent.length, 0, 'the webhook is still hanging');
      } finally {
        await d.stop();
      }
    });

    it('two dispatchers, each send outlasting the claim → every message is sent once', async () => {
      const channel = 'slow-hook';
      // Sends that overrun their timeout (as nodemailer's can) and the claim, 8 of them taking
      // longer in a row than even a claim of the send timeout + 5 s.
      const notifierA = new FakeNotifier('webhook', () => ({ sendMs: 700, deaf: true }));
      const notifierB = new FakeNotifier('webhook', () => ({ sendMs: 700, deaf: true }));
      const policy = policyWith([webhook(channel)]);
      const opts = { sendTimeoutMs: 100, claimMs: 200 };
      const a = dispatcher(policy, [notifierA], opts);
      const b = dispatcher(policy, [notifierB], opts);
      await outbox.add(Array.from({ length: 8 }, () => message(channel)));
      a.start();
      b.start();
      try {
        await waitFor('every message sent', async () => (await outbox.pendingByChannel())[channel] === undefined, 10_000);
      } finally {
        await Promise.all([a.stop(), b.stop()]);
      }
      const sent = [...notifierA.sent, ...notifierB.sent].map((s) => s.delivery.deliveryId);
      assert.equal(sent.length, 8, `each once: ${JSON.stringify(countBy(sent))}`);
      assert.equal(new Set(sent).size, 8);
      assert.ok(notifierA.sent.length > 0 && notifierB.sent.length > 0, 'both dispatchers sent');
    });

    it('a claim left by a crashed instance ends after claimMs, and another instance sends the message', async () => {
      const channel = 'crash-hook';
      await outbox.add([message(channel)]);
      const claimedAt = Date.now();
      assert.ok(await outbox.claimNext(channel, 400), 'the crashed instance had claimed it');
      const notifier = new FakeNotifier('webhook');
      const d = dispatcher(policyWith([webhook(channel)]), [notifier], { claimMs: 400 });
      d.start();
      try {
        await waitFor('the message sent by the other instance', () => notifier.sent.length === 1, 3_000);
      } finally {
        await d.stop();
      }
      const after = (notifier.sent[0]?.at ?? 0) - claimedAt;
      assert.ok(after >= 380 && after < 1_500, `sent ${after} ms after the crashed claim`);
    });

    it('a message whose send fails with an error that is not a delivery failure is given up after 3 attempts, and its deployment\'s later page goes', async () => {
      const channel = 'broken-hook';
      const dep = await store.insertDeployment(newDeployment('broken'));
      const sent: string[] = [];
      const broken: Notifier = {
        kind: 'webhook',
        async send(_channel: Channel, delivery: Delivery): Promise<void> {
          if (delivery.event.kind === 'rollback_started') throw new TypeError("Cannot read properties of undefined (reading 'rule')");
          sent.push(delivery.event.kind);
        },
      };
      await outbox.add(['rollback_started', 'rollback_failed'].map((kind) => ({ ...message(channel, kind as NotificationEvent['kind']), deployment_id: dep.id })));
      const d = dispatcher(policyWith([webhook(channel)]), [broken], { maxBackoffMs: 50 });
      d.start();
      try {
        await waitFor('the later page sent', () => sent.includes('rollback_failed'), 5_000);
      } finally {
        await d.stop();
      }
      const rows = await store.sql.query<{ event: string; status: string; attempts: number; last_error: string | null }>('SELECT event, status, attempts, last_error FROM outbox WHERE channel = $1 ORDER BY id', [channel]);
      assert.deepEqual(rows.map((r) => [r.event, r.status, r.attempts]), [['rollback_started', 'failed', 3], ['rollback_failed', 'sent', 1]]);
      assert.match(rows[0]?.last_error ?? '', /^unexpected: TypeError/);
    });

    it('a later message about a deployment waits while an earlier one to the same channel is claimed elsewhere', async () => {
      const channel = 'order-pager';
      const dep = await store.insertDeployment(newDeployment('order'));
      await outbox.add(['rollback_started', 'rollback_succeeded'].map((kind) => ({ ...message(channel, kind as NotificationEvent['kind']), deployment_id: dep.id })));
      const trigger = await outbox.claimNext(channel, 60_000);
      assert.equal(trigger?.event, 'rollback_started');
      assert.equal(await outbox.claimNext(channel, 60_000), undefined, 'the resolve waits for its trigger');
      await outbox.markSent(trigger.id, new Date());
      assert.equal((await outbox.claimNext(channel, 60_000))?.event, 'rollback_succeeded');
    });

    it('a claim that ended cannot be renewed or reschedule the message', async () => {
      const channel = 'lost-hook';
      await outbox.add([message(channel)]);
      const first = await outbox.claimNext(channel, 1);
      assert.ok(first);
      await pause(20);
      const second = await outbox.claimNext(channel, 60_000);
      assert.equal(second?.id, first.id, 'taken over once the first claim ended');
      assert.equal(await outbox.renew(first, 60_000), false);
      await outbox.markFailed(first, 'late failure', 0);
      assert.equal(await outbox.claimNext(channel, 60_000), undefined, 'the late failure did not make it due again');
      assert.equal(await outbox.renew(second, 60_000), true);
    });

    it('sends the delivery ID and the incident key, and gives up messages of a channel removed from the policy', async () => {
      const notifier = new FakeNotifier('pagerduty');
      const dep = await store.insertDeployment(newDeployment('keys'));
      await outbox.add([{ ...message('keys-pager'), deployment_id: dep.id }, message('removed-hook')]);
      const { log, lines } = capturedLog();
      await dispatcher(policyWith([pager('keys-pager')]), [notifier], {}, log).drain();
      const uid = (await store.sql.query<{ uid: string }>('SELECT uid FROM deployments WHERE id = $1', [dep.id]))[0]?.uid;
      const row = (await outbox.list({ deploymentId: dep.id }))[0];
      assert.equal(notifier.sent[0]?.delivery.incidentKey, `rollguard-web-${dep.id}-${uid}`);
      assert.equal(notifier.sent[0]?.delivery.deliveryId, row?.delivery_id);
      assert.equal(row?.status, 'sent');
      const removed = (await outbox.list()).find((i) => i.channel === 'removed-hook');
      assert.equal(removed?.status, 'failed');
      assert.ok(lines().some((l) => l.msg === 'notification dropped: its channel was removed from the policy'));
    });
  });
});
