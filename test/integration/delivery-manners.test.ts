/**
 * Delivery manners end to end: rollguard's own notification path (announcer, write queue, outbox on
 * PostgreSQL, dispatcher, the real HTTP channel clients) against loopback receivers standing in
 * for Slack, PagerDuty's Events API v2 and a webhook checked with the standardwebhooks package.
 * Each receiver turns the first request away — 429 with `Retry-After: 2`, or 503 with an HTTP-date
 * — and accepts every later one. No Docker: only a fresh database of its own.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino, { type Logger } from 'pino';
import { Webhook } from 'standardwebhooks';
import { createMetrics } from '../../src/api/metrics.js';
import type { Channel, Policy } from '../../src/config/policy.js';
import { Announcer } from '../../src/daemon/announcer.js';
import type { NotificationEvent } from '../../src/model/notification.js';
import { Dispatcher } from '../../src/notify/dispatcher.js';
import { createNotifiers } from '../../src/notify/registry.js';
import { migrate } from '../../src/store/migrations.js';
import { Outbox } from '../../src/store/outbox.js';
import { postgresSql, type Sql } from '../../src/store/sql.js';
import { Store, type Deployment } from '../../src/store/store.js';
import { WriteBehind } from '../../src/store/write-behind.js';
import { freshDatabase, testSecret, waitFor } from './harness.js';

const SECRETS = {
  pagerDutyKey: testSecret('pagerduty-key'),
  slackToken: testSecret('slack-token'),
  /** The key of a Standard Webhooks secret (whsec_ + 32 random bytes in base64). */
  webhookKey: randomBytes(32).toString('base64'),
};
const WEBHOOK_SECRET = `whsec_${SECRETS.webhookKey}`;
const SLACK_PATH = `/services/T0RGMANNERS/B0RGMANNERS/${SECRETS.slackToken}`;
const HOOK_PATH = '/rollguard/events';

/** One request as the receiver saw it: when it arrived, its identity, and how it was answered. */
interface Seen { at: number; key: string; status: number; retryAt?: number }

/**
 * A loopback receiver that answers the first request with `refusal` and judges every later one
 * (a problem found is answered 400 and kept in `problems`, which a test expects empty).
 */
class Receiver {
  readonly seen: Seen[] = [];
  readonly problems: string[] = [];
  port = 0;
  private server?: http.Server;

  constructor(
    readonly name: string,
    /** The first answer: its status and Retry-After value, and from when a retry is welcome. */
    private readonly refusal: () => { status: number; retryAfter: string; retryAt: number },
    /** What identifies a message (a retry of it has the same), or a problem with the request. */
    private readonly judge: (req: { path: string; headers: http.IncomingHttpHeaders; raw: string }) => { key: string; status: number; reply: string } | { problem: string },
  ) {}

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const at = Date.now();
        const verdict = this.judge({ path: req.url ?? '', headers: req.headers, raw: Buffer.concat(chunks).toString('utf8') });
        if ('problem' in verdict) {
          this.problems.push(verdict.problem);
          res.writeHead(400).end(verdict.problem);
          return;
        }
        if (this.seen.length === 0) {
          const r = this.refusal();
          this.seen.push({ at, key: verdict.key, status: r.status, retryAt: r.retryAt });
          res.writeHead(r.status, { 'retry-after': r.retryAfter, 'content-type': 'text/plain' }).end('slow down');
          return;
        }
        this.seen.push({ at, key: verdict.key, status: verdict.status });
        res.writeHead(verdict.status, { 'content-type': 'application/json' }).end(verdict.reply);
      });
    });
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** Keys of the messages accepted, one entry per accepting answer. */
  get delivered(): string[] {
    return this.seen.filter((s) => s.status < 300).map((s) => s.key);
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

const json = (raw: string): Record<string, unknown> | undefined => {
  try {
    const v: unknown = JSON.parse(raw);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
};

/** Slack: 429 with delay-seconds, as its rate limiter answers. */
const slack = new Receiver('slack', () => ({ status: 429, retryAfter: '2', retryAt: Date.now() + 2_000 }), (req) => {
  if (req.path !== SLACK_PATH) return { problem: `POST to ${req.path}` };
  const body = json(req.raw);
  if (typeof body?.text !== 'string' || !Array.isArray(body.blocks)) return { problem: 'no text and blocks' };
  return { key: body.text, status: 200, reply: 'ok' };
});

/** PagerDuty Events API v2: 503 with an HTTP-date 3 s ahead (whole seconds, so 2–3 s from now). */
const pagerDuty = new Receiver('pagerduty', () => {
  const date = new Date(Date.now() + 3_000).toUTCString();
  return { status: 503, retryAfter: date, retryAt: Date.parse(date) };
}, (req) => {
  if (req.path !== '/v2/enqueue') return { problem: `POST to ${req.path}` };
  const e = json(req.raw);
  if (e?.routing_key !== SECRETS.pagerDutyKey) return { problem: 'wrong routing_key' };
  if (e.event_action !== 'trigger' && e.event_action !== 'resolve') return { problem: `event_action ${String(e.event_action)}` };
  if (typeof e.dedup_key !== 'string' || !e.dedup_key) return { problem: 'no dedup_key' };
  const p = e.payload as Record<string, unknown> | undefined;
  if (e.event_action === 'trigger' && (typeof p?.summary !== 'string' || typeof p.source !== 'string' || typeof p.severity !== 'string')) return { problem: 'trigger without summary, source and severity' };
  return { key: `${e.event_action} ${e.dedup_key}`, status: 202, reply: JSON.stringify({ status: 'success', message: 'Event processed', dedup_key: e.dedup_key }) };
});

/** A webhook receiver verifying every request (the refused one too) with the standardwebhooks package. */
const hook = new Receiver('webhook', () => ({ status: 429, retryAfter: '2', retryAt: Date.now() + 2_000 }), (req) => {
  if (req.path !== HOOK_PATH) return { problem: `POST to ${req.path}` };
  try {
    new Webhook(WEBHOOK_SECRET).verify(req.raw, req.headers as Record<string, string>);
  } catch (err) {
    return { problem: `standardwebhooks: ${(err as Error).message}` };
  }
  return { key: `${String(req.headers['webhook-id'])} ${String(req.headers['webhook-timestamp'])}`, status: 204, reply: '' };
});

const receivers = [slack, pagerDuty, hook];

function capturedLog(): { log: Logger; text: () => string; lines: () => { msg: string; [k: string]: unknown }[] } {
  const out: string[] = [];
  const stream = new Writable({ write(chunk, _enc, cb) { out.push(String(chunk)); cb(); } });
  const text = (): string => out.join('');
  return { log: pino({ level: 'debug' }, stream), text, lines: () => text().split('\n').filter(Boolean).map((l) => JSON.parse(l)) };
}

function rollbackEvent(kind: 'rollback_started' | 'rollback_succeeded', d: Deployment): NotificationEvent {
  return {
    kind, severity: 'P0', at: new Date().toISOString(), service: d.service,
    title: `${d.service}: ${kind === 'rollback_started' ? 'rolling back' : 'rolled back'} ${d.to_ref} → ${d.from_ref}`,
    summary: kind === 'rollback_started' ? 'error rate above 5%' : 'recovered',
    deployment: {
      id: d.id, fromRef: d.from_ref, fromImage: d.from_image, toRef: d.to_ref, toImage: d.to_image, container: d.container_name,
      startedAt: d.started_at.toISOString(), state: kind === 'rollback_started' ? 'rolling_back' : 'rolled_back', attempts: 1,
    },
  };
}

describe('delivery manners: Retry-After and Standard Webhooks against real receivers (PostgreSQL)', { timeout: 60_000 }, () => {
  let db: { url: string; drop(): Promise<void> };
  let sql: Sql;

  before(async () => {
    for (const r of receivers) await r.start();
    db = await freshDatabase();
    sql = postgresSql(db.url, pino({ level: 'silent' }));
    await migrate(sql);
  });

  after(async () => {
    await sql?.close();
    await db?.drop();
    for (const r of receivers) await r.close();
  });

  it('no channel is tried again before its Retry-After; then each message is delivered exactly once, the webhook verified', async () => {
    const channels: Record<string, Channel> = {
      chat: { kind: 'slack', name: 'chat', webhookUrl: `http://127.0.0.1:${slack.port}${SLACK_PATH}` },
      pager: { kind: 'pagerduty', name: 'pager', routingKey: SECRETS.pagerDutyKey, url: `http://127.0.0.1:${pagerDuty.port}/v2/enqueue` },
      hook: { kind: 'webhook', name: 'hook', url: `http://127.0.0.1:${hook.port}${HOOK_PATH}`, secret: WEBHOOK_SECRET, signature: 'standard' },
    };
    const policy: Policy = { version: 1, source: '/delivery-manners/policy.yaml', services: {}, notifications: channels, routes: { P0: ['chat', 'pager', 'hook'] }, escalation: [] };
    const { log, text, lines } = capturedLog();
    const store = new Store(sql);
    const outbox = new Outbox(sql);
    const writes = new WriteBehind(store, { log, retryMs: 200 });
    const notifiers = createNotifiers();
    const dispatcher = new Dispatcher({ outbox, notifiers, policy: () => policy, log, metrics: createMetrics(), pollMs: 100, beforeDrain: () => writes.flush() });
    const announcer = new Announcer(store, outbox, writes, () => policy, () => dispatcher.kick(), log);
    const deployed = (service: string, toRef: string): Promise<Deployment> => {
      const now = Date.now();
      return store.insertDeployment({
        service, target: 'docker-container', container_id: `c-${service}-${now}`, container_name: service, from_image: 'sha256:good', from_ref: 'app:v1',
        to_image: 'sha256:bad', to_ref: toRef, dry_run: false, started_at: new Date(now), detected_at: new Date(now), window_ends_at: new Date(now + 30_000),
      });
    };
    const first = await deployed('manners', 'app:v2');
    const second = await deployed('manners-too', 'app:v3');

    dispatcher.start();
    try {
      // Three messages per channel, two queued after the first was turned away. The one about
      // another deployment could go at once as far as message order goes: it waits because the
      // receiver asked the channel, not one message, to wait.
      await announcer.announce(rollbackEvent('rollback_started', first), { deploymentId: first.id });
      await waitFor('every receiver to turn the first request away', () => receivers.every((r) => r.seen.length >= 1), 10_000, 20);
      await announcer.announce(rollbackEvent('rollback_started', second), { deploymentId: second.id });
      await announcer.announce(rollbackEvent('rollback_succeeded', first), { deploymentId: first.id });
      await waitFor('every message sent', async () => {
        const rows = await sql.query<{ status: string }>('SELECT status FROM outbox');
        return rows.length === 9 && rows.every((r) => r.status === 'sent');
      }, 20_000, 100);
    } finally {
      await dispatcher.stop();
      await writes.flush();
      writes.close();
      notifiers.close();
    }

    for (const r of receivers) {
      assert.deepEqual(r.problems, [], `${r.name}: every request was well-formed (the webhook's signature verified)`);
      const [refused, ...later] = r.seen;
      assert.ok(refused?.retryAt, `${r.name}: the first request was turned away`);
      for (const s of later) {
        assert.ok(s.at >= refused.retryAt, `${r.name}: a request ${refused.retryAt - s.at} ms before its Retry-After had passed`);
      }
      assert.equal(r.delivered.length, 3, `${r.name}: three messages accepted, no more: ${JSON.stringify(r.seen)}`);
      assert.equal(new Set(r.delivered).size, 3, `${r.name}: each message once`);
      assert.equal(later.length, 3, `${r.name}: no attempt was wasted while it asked to wait`);
    }
    const [triggerA, triggerB, resolveA] = pagerDuty.delivered.map((k) => k.split(' '));
    assert.deepEqual([triggerA?.[0], triggerB?.[0], resolveA?.[0]], ['trigger', 'trigger', 'resolve']);
    assert.equal(resolveA?.[1], triggerA?.[1], 'the first deployment\'s incident resolved after it was opened');
    assert.notEqual(triggerB?.[1], triggerA?.[1]);
    const [firstHook, retriedHook] = hook.seen.map((s) => s.key.split(' '));
    assert.equal(retriedHook?.[0], firstHook?.[0], 'the webhook\'s retry has the same webhook-id');
    assert.ok(Number(retriedHook?.[1]) >= Number(firstHook?.[1]) + 2, 'and a timestamp of its own');

    const rows = await sql.query<{ channel: string; event: string; status: string; attempts: number; last_error: string | null }>(
      'SELECT channel, event, status, attempts, last_error FROM outbox ORDER BY channel, id');
    const each = (channel: string) => [[channel, 'rollback_started', 'sent', 2, null], [channel, 'rollback_started', 'sent', 1, null], [channel, 'rollback_succeeded', 'sent', 1, null]];
    assert.deepEqual(rows.map((r) => [r.channel, r.event, r.status, r.attempts, r.last_error]), [...each('chat'), ...each('hook'), ...each('pager')]);
    const retries = lines().filter((l) => l.msg === 'notification failed; will retry');
    assert.deepEqual(retries.map((l) => l.channel).sort(), ['chat', 'hook', 'pager']);
    for (const l of retries) {
      // The HTTP-date is whole seconds 3 s ahead: 2–3 s when it was written, a little less when read.
      const [want, least] = l.channel === 'pager' ? [/^HTTP 503 \(Retry-After [123](\.\d)? s\): slow down$/, 1_500] : [/^HTTP 429 \(Retry-After 2 s\): slow down$/, 2_000];
      assert.match(String(l.error), want, 'the log says what the receiver asked');
      assert.ok(Number(l.retryInMs) >= Number(l.retryAfterMs) && Number(l.retryAfterMs) >= least, JSON.stringify(l));
    }
    for (const secret of [SECRETS.pagerDutyKey, SECRETS.slackToken, SECRETS.webhookKey]) assert.ok(!text().includes(secret), 'no secret in the log');
  });
});
