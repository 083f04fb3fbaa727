/**
 * Notifications end to end: the real Docker engine, Prometheus and PostgreSQL, the rollguard CLI as a
 * child process, and real receivers on 127.0.0.1 — an SMTP server (with AUTH), and HTTP servers
 * standing in for PagerDuty's Events API v2, a Slack incoming webhook and a generic signed webhook.
 * Everything here uses containers named `rg-notify*` and fixture port 18085, so it can run beside the
 * other integration tests. The second part drives rollguard's own notification path (announcer,
 * write queue, outbox, dispatcher) as several instances on one database, without Docker.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, afterEach, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { simpleParser, type ParsedMail } from 'mailparser';
import pino, { type Logger } from 'pino';
import { PNG } from 'pngjs';
import { SMTPServer } from 'smtp-server';
import { createMetrics } from '../../src/api/metrics.js';
import type { Channel, Policy } from '../../src/config/policy.js';
import { Announcer } from '../../src/daemon/announcer.js';
import type { NotificationEvent } from '../../src/model/notification.js';
import { Dispatcher, type DispatcherOptions } from '../../src/notify/dispatcher.js';
import { createNotifiers } from '../../src/notify/registry.js';
import { migrate } from '../../src/store/migrations.js';
import { Outbox } from '../../src/store/outbox.js';
import { postgresSql } from '../../src/store/sql.js';
import { Store, type Deployment, type NewDeployment } from '../../src/store/store.js';
import { WriteBehind } from '../../src/store/write-behind.js';
import {
  buildFixtures, CLI, dbQuery, deploy, docker, fixturePolicy, freshDatabase, keepOutput, removeContainers, startPrometheus,
  startRollguard, TcpProxy, testSecret, waitFor, type HistoryRow, type Prometheus, type Rollguard,
} from './harness.js';

const NAME = 'rg-notify';
const SERVICE = 'notify';
const PORT = 18085;
const GOOD_REF = 'rollguard-fixture:v1';
const BAD_REF = 'rollguard-fixture:v2-errors';
const FINAL = ['passed', 'rolled_back', 'rollback_failed', 'inconclusive', 'superseded'];
const CONTACTS = ['DevOps Lead: @devops-oncall', 'CTO: cto@example.com'];
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Every secret the channels use; none of them may ever show in a log, a status or a CLI error. */
const SECRETS = {
  pagerDutyKey: testSecret('pagerduty-key'),
  slackToken: testSecret('slack-token'),
  webhookSecret: testSecret('webhook-secret'),
  smtpPassword: testSecret('smtp-password'),
};
const SMTP_USER = 'rollguard';
const SLACK_PATH = `/services/T0RGNOTIFY/B0RGNOTIFY/${SECRETS.slackToken}`;
const HOOK_PATH = '/rollguard/events';

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

// ---------------------------------------------------------------------------------------------
// Receivers
// ---------------------------------------------------------------------------------------------

interface HttpRequestSeen { method: string; path: string; headers: http.IncomingHttpHeaders; raw: string }
interface Verdict<T> { status: number; reply: string; accepted?: T; problem?: string }

/** A loopback HTTP receiver that judges each request; it can be stopped and started again on the same port. */
class HttpReceiver<T> {
  readonly accepted: T[] = [];
  /** Requests it refused, with why: a test expects none. */
  readonly refused: string[] = [];
  port = 0;
  /** How long each answer takes (a slow receiver). */
  delayMs = 0;
  private server?: http.Server;

  constructor(private readonly judge: (req: HttpRequestSeen) => Verdict<T>) {}

  get up(): boolean {
    return this.server !== undefined;
  }

  async start(): Promise<void> {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const v = this.judge({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, raw: Buffer.concat(chunks).toString('utf8') });
        if (v.accepted !== undefined) this.accepted.push(v.accepted);
        if (v.problem !== undefined) this.refused.push(v.problem);
        const answer = (): void => void res.writeHead(v.status, { 'content-type': v.reply.startsWith('{') ? 'application/json' : 'text/plain' }).end(v.reply);
        if (this.delayMs) setTimeout(answer, this.delayMs);
        else answer();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }

  clear(): void {
    this.accepted.length = 0;
    this.refused.length = 0;
  }
}

interface PagerDutyEvent {
  routing_key: string;
  event_action: 'trigger' | 'acknowledge' | 'resolve';
  dedup_key: string;
  payload?: { summary: string; source: string; severity: string; timestamp?: string; component?: string; group?: string; class?: string; custom_details?: Record<string, unknown> };
  links?: { href: string; text: string }[];
}

/** What PagerDuty's Events API v2 would refuse (developer.pagerduty.com, "Send an Alert Event"). */
function pagerDutyProblems(body: unknown, routingKey: string): string[] {
  if (!isObject(body)) return ['body is not a JSON object'];
  const problems: string[] = [];
  const known = ['routing_key', 'event_action', 'dedup_key', 'payload', 'links', 'images', 'client', 'client_url'];
  for (const k of Object.keys(body)) if (!known.includes(k)) problems.push(`unknown field ${k}`);
  if (body.routing_key !== routingKey) problems.push('routing_key is not the integration key');
  if (!['trigger', 'acknowledge', 'resolve'].includes(body.event_action as string)) problems.push(`event_action ${String(body.event_action)}`);
  if (typeof body.dedup_key !== 'string' || !body.dedup_key || body.dedup_key.length > 255) problems.push('dedup_key missing or longer than 255');
  if (body.event_action !== 'trigger') return problems;
  const p = body.payload;
  if (!isObject(p)) return [...problems, 'trigger without payload'];
  if (typeof p.summary !== 'string' || !p.summary || p.summary.length > 1024) problems.push('payload.summary missing or longer than 1024');
  if (typeof p.source !== 'string' || !p.source) problems.push('payload.source missing');
  if (!['critical', 'error', 'warning', 'info'].includes(p.severity as string)) problems.push(`payload.severity ${String(p.severity)}`);
  if (p.timestamp !== undefined && (typeof p.timestamp !== 'string' || Number.isNaN(Date.parse(p.timestamp)))) problems.push('payload.timestamp is not ISO 8601');
  for (const k of ['component', 'group', 'class'] as const) if (p[k] !== undefined && typeof p[k] !== 'string') problems.push(`payload.${k} is not a string`);
  if (p.custom_details !== undefined && !isObject(p.custom_details)) problems.push('payload.custom_details is not an object');
  if (body.links !== undefined) {
    if (!Array.isArray(body.links)) problems.push('links is not a list');
    else for (const l of body.links) if (!isObject(l) || typeof l.href !== 'string' || !/^https?:\/\//.test(l.href)) problems.push('a link without an http(s) href');
  }
  return problems;
}

interface SlackBlock { type: string; text?: { type: string; text: string }; fields?: { type: string; text: string }[]; elements?: { type: string; text?: unknown; url?: string }[] }
interface SlackMessage { text: string; blocks: SlackBlock[] }

/** What Slack would answer `invalid_blocks` to (docs.slack.dev Block Kit reference), for the blocks rollguard uses. */
function slackProblems(body: unknown): string[] {
  if (!isObject(body)) return ['body is not a JSON object'];
  const problems: string[] = [];
  if (typeof body.text !== 'string' || !body.text) problems.push('no fallback text');
  if (!Array.isArray(body.blocks) || body.blocks.length === 0 || body.blocks.length > 50) return [...problems, 'blocks missing or more than 50'];
  const textObject = (t: unknown, max: number, types = ['plain_text', 'mrkdwn']): boolean =>
    isObject(t) && types.includes(t.type as string) && typeof t.text === 'string' && t.text.length > 0 && t.text.length <= max;
  body.blocks.forEach((b: unknown, i) => {
    if (!isObject(b)) return problems.push(`block ${i} is not an object`);
    switch (b.type) {
      case 'header':
        if (!textObject(b.text, 150, ['plain_text'])) problems.push(`header ${i}: plain_text of 1..150 required`);
        break;
      case 'section': {
        const fields = b.fields;
        const fieldsOk = Array.isArray(fields) && fields.length >= 1 && fields.length <= 10 && fields.every((f) => textObject(f, 2000));
        if (b.text === undefined && fields === undefined) problems.push(`section ${i}: needs text or fields`);
        if (b.text !== undefined && !textObject(b.text, 3000)) problems.push(`section ${i}: text of 1..3000 required`);
        if (fields !== undefined && !fieldsOk) problems.push(`section ${i}: 1..10 fields of 1..2000 required`);
        break;
      }
      case 'context':
        if (!Array.isArray(b.elements) || b.elements.length < 1 || b.elements.length > 10 || !b.elements.every((e) => textObject(e, 3000))) problems.push(`context ${i}: 1..10 text elements required`);
        break;
      case 'actions':
        if (!Array.isArray(b.elements) || b.elements.length < 1 || b.elements.length > 25) problems.push(`actions ${i}: 1..25 elements required`);
        else for (const e of b.elements) {
          if (!isObject(e) || e.type !== 'button' || !textObject(e.text, 75, ['plain_text']) || (e.url !== undefined && (typeof e.url !== 'string' || e.url.length > 3000))) problems.push(`actions ${i}: invalid button`);
        }
        break;
      case 'divider':
        break;
      default:
        problems.push(`block ${i}: unknown type ${String(b.type)}`);
    }
  });
  return problems;
}

interface HookDelivery { headers: http.IncomingHttpHeaders; raw: string; timestamp: string; signature: string; body: WebhookBody }

/** The parts of rollguard's webhook JSON these tests read. */
interface WebhookBody {
  version: number;
  event: string;
  severity: string;
  service: string | null;
  deployment: { id: number; container: string; from_ref: string | null; from_image: string | null; to_ref: string; to_image: string; state: string; attempts: number } | null;
  rule: { name: string; signal: string; threshold: string; for: number; severity: string; action: string } | null;
  samples: { at: string; value: number | null; result: string }[];
  graph_url: string | null;
  actions: { kind: string; attempt: number; started_at: string; duration_ms: number; ok: boolean }[];
  criteria: { signal: string; threshold: string; measured: number | null; holds: boolean }[];
  time_to_recovery_ms: number | null;
  escalation: string[] | null;
}

const sign = (secret: string, timestamp: string, raw: string): string => `sha256=${createHmac('sha256', secret).update(`${timestamp}.${raw}`).digest('hex')}`;

/** Checks `x-rollguard-signature` the way a receiver should: HMAC over `<timestamp>.<raw body>`, constant time, recent timestamp. */
function judgeWebhook(req: HttpRequestSeen): Verdict<HookDelivery> {
  if (req.method !== 'POST' || req.path !== HOOK_PATH) return { status: 404, reply: 'not found', problem: `${req.method} ${req.path}` };
  const timestamp = String(req.headers['x-rollguard-timestamp'] ?? '');
  const signature = String(req.headers['x-rollguard-signature'] ?? '');
  const expected = sign(SECRETS.webhookSecret, timestamp, req.raw);
  const matches = signature.length === expected.length && timingSafeEqual(Buffer.from(signature), Buffer.from(expected));
  if (!matches) return { status: 401, reply: 'bad signature', problem: 'signature does not verify' };
  if (!/^\d+$/.test(timestamp) || Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return { status: 401, reply: 'stale', problem: `timestamp ${timestamp} is not recent` };
  let body: unknown;
  try {
    body = JSON.parse(req.raw);
  } catch {
    return { status: 400, reply: 'not JSON', problem: 'body is not JSON' };
  }
  if (!isObject(body) || body.event !== req.headers['x-rollguard-event'] || !req.headers['x-rollguard-delivery']) {
    return { status: 400, reply: 'bad body', problem: 'event header and body disagree, or no delivery ID' };
  }
  return { status: 200, reply: 'ok', accepted: { headers: req.headers, raw: req.raw, timestamp, signature, body: body as unknown as WebhookBody } };
}

function judgePagerDuty(req: HttpRequestSeen): Verdict<PagerDutyEvent> {
  if (req.method !== 'POST' || req.path !== '/v2/enqueue') return { status: 404, reply: '{"status":"not found"}', problem: `${req.method} ${req.path}` };
  let body: unknown;
  try {
    body = JSON.parse(req.raw);
  } catch {
    return { status: 400, reply: '{"status":"invalid event","message":"Event object is invalid"}', problem: 'body is not JSON' };
  }
  const problems = pagerDutyProblems(body, SECRETS.pagerDutyKey);
  if (problems.length) return { status: 400, reply: JSON.stringify({ status: 'invalid event', message: 'Event object is invalid', errors: problems }), problem: problems.join('; ') };
  const event = body as PagerDutyEvent;
  return { status: 202, reply: JSON.stringify({ status: 'success', message: 'Event processed', dedup_key: event.dedup_key }), accepted: event };
}

function judgeSlack(req: HttpRequestSeen): Verdict<SlackMessage> {
  if (req.method !== 'POST' || req.path !== SLACK_PATH) return { status: 404, reply: 'no_service', problem: `${req.method} to an unknown webhook path` };
  let body: unknown;
  try {
    body = JSON.parse(req.raw);
  } catch {
    return { status: 400, reply: 'invalid_payload', problem: 'body is not JSON' };
  }
  const problems = slackProblems(body);
  if (problems.length) return { status: 400, reply: 'invalid_blocks', problem: problems.join('; ') };
  return { status: 200, reply: 'ok', accepted: body as SlackMessage };
}

interface Mail { parsed: ParsedMail; event: string; envelope: { from: string; to: string[] } }

/** A loopback SMTP server that wants AUTH with the password; it can be stopped and started again on the same port. */
class SmtpReceiver {
  readonly mails: Mail[] = [];
  readonly refused: string[] = [];
  port = 0;
  /** How long the answer to each message's DATA takes (a slow server). */
  dataDelayMs = 0;
  private server?: SMTPServer;

  get up(): boolean {
    return this.server !== undefined;
  }

  async start(): Promise<void> {
    const server = new SMTPServer({
      secure: false,
      disabledCommands: ['STARTTLS'],
      allowInsecureAuth: true,
      authOptional: false,
      disableReverseLookup: true,
      logger: false,
      onAuth: (auth, _session, callback) => {
        if (auth.username === SMTP_USER && auth.password === SECRETS.smtpPassword) return callback(null, { user: SMTP_USER });
        this.refused.push(`AUTH as ${auth.username ?? '?'} with a wrong password`);
        return callback(new Error('Invalid username or password'));
      },
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          simpleParser(Buffer.concat(chunks), { keepCidLinks: true }).then((parsed) => {
            const envelope = { from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address) };
            this.mails.push({ parsed, event: String(parsed.headers.get('x-rollguard-event') ?? ''), envelope });
            setTimeout(() => callback(), this.dataDelayMs);
          }, (err: Error) => {
            this.refused.push(`unparsable message: ${err.message}`);
            callback(err);
          });
        });
      },
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.server.address() as AddressInfo).port;
    this.server = server;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }

  clear(): void {
    this.mails.length = 0;
    this.refused.length = 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Reading messages
// ---------------------------------------------------------------------------------------------

function countBy<T>(items: readonly T[], key: (t: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const i of items) out[key(i)] = (out[key(i)] ?? 0) + 1;
  return out;
}

/** The event kind a Slack message is about, from its context line `<time> · <severity> · <kind>`. */
function slackKind(m: SlackMessage): string {
  const context = m.blocks.find((b) => b.type === 'context');
  const first = context?.elements?.[0]?.text;
  return typeof first === 'string' ? (/ · (\w+)$/.exec(first)?.[1] ?? '?') : '?';
}

const slackText = (m: SlackMessage): string =>
  [m.text, ...m.blocks.flatMap((b) => [b.text?.text ?? '', ...(b.fields ?? []).map((f) => f.text), ...(b.elements ?? []).map((e) => (isObject(e.text) ? String(e.text.text) : String(e.text ?? '')))])].join('\n');

/** `850 ms`, `3.4 s`, `2 min 05 s` → milliseconds. */
function durationMs(text: string): number {
  const m = /^(?:(\d+) ms|(\d+(?:\.\d+)?) s|(\d+) min (\d+) s|(\d+) h (\d+) min)$/.exec(text.trim());
  assert.ok(m, `a duration: ${text}`);
  if (m[1]) return Number(m[1]);
  if (m[2]) return Number(m[2]) * 1_000;
  if (m[3]) return (Number(m[3]) * 60 + Number(m[4])) * 1_000;
  return (Number(m[5]) * 60 + Number(m[6])) * 60_000;
}

/** `2024-05-01 03:00:15 UTC` → epoch ms. */
const utcTime = (text: string): number => Date.parse(`${text.replace(' ', 'T')}Z`);

const html = (mail: Mail): string => (typeof mail.parsed.html === 'string' ? mail.parsed.html : '');

async function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: 60_000 });
    await keepOutput(args, stdout, stderr);
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    await keepOutput(args, e.stdout ?? '', e.stderr ?? '');
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

// ---------------------------------------------------------------------------------------------

describe('notifications reach real receivers (Docker, Prometheus, PostgreSQL)', { timeout: 900_000 }, () => {
  let prom: Prometheus;
  let goodImage: string;
  let badImage: string;
  let tmp: string;
  const smtp = new SmtpReceiver();
  const pagerDuty = new HttpReceiver(judgePagerDuty);
  const slack = new HttpReceiver(judgeSlack);
  const hook = new HttpReceiver(judgeWebhook);
  const receivers = [smtp, pagerDuty, slack, hook];
  /** Every daemon started, for the log checks; `running` are the ones still to stop after a case. */
  const daemons: Rollguard[] = [];
  const running: Rollguard[] = [];
  const databases: { url: string; drop(): Promise<void> }[] = [];
  /** Output of `status --json` and of the CLI, checked for secrets at the end. */
  const outputs: string[] = [];
  /** The database of the first case (one rolled-back deployment), for the digest. */
  let firstCase: { db: { url: string }; deployment: HistoryRow } | undefined;

  const env = (): NodeJS.ProcessEnv => ({
    PD_KEY: SECRETS.pagerDutyKey,
    SMTP_URL: `smtp://${SMTP_USER}:${SECRETS.smtpPassword}@127.0.0.1:${smtp.port}`,
    SLACK_WEBHOOK_URL: `http://127.0.0.1:${slack.port}${SLACK_PATH}`,
    HOOK_SECRET: SECRETS.webhookSecret,
  });

  const channelsYaml = (): string => `notifications:
  pager:
    pagerduty:
      routing_key: \${PD_KEY}
      url: http://127.0.0.1:${pagerDuty.port}/v2/enqueue
  oncall-email:
    email:
      smtp_url: \${SMTP_URL}
      from: rollguard@example.com
      to: [oncall@example.com]
  chat:
    slack:
      webhook_url: \${SLACK_WEBHOOK_URL}
  hook:
    webhook:
      url: http://127.0.0.1:${hook.port}${HOOK_PATH}
      secret: \${HOOK_SECRET}
routes:
  P0: [pager, oncall-email, chat, hook]
`;

  const basePolicy = (over: Parameters<typeof fixturePolicy>[1] = {}): string =>
    fixturePolicy(prom.url, { port: PORT, service: SERVICE, container: NAME, window: '30s', ...over }) + channelsYaml();

  /** Fresh receivers, the known-good version running, and a daemon (on a fresh database unless given) that adopted it. */
  const startCase = async (policyText: string, db?: { url: string }): Promise<{ rg: Rollguard; db: { url: string } }> => {
    await removeContainers(NAME);
    await deploy(NAME, GOOD_REF, [], PORT);
    await prom.waitForData(`sum(rate(http_requests_total{service="${SERVICE}"}[3s]))`);
    let database = db;
    if (!database) {
      const fresh = await freshDatabase();
      databases.push(fresh);
      database = fresh;
    }
    for (const r of receivers) r.clear();
    const rg = await startRollguard(policyText, { databaseUrl: database.url, env: env() });
    daemons.push(rg);
    running.push(rg);
    await waitFor('rollguard to adopt the known-good version', async () => (await rg.status()).services[SERVICE]?.image === goodImage);
    return { rg, db: database };
  };

  const newestId = async (rg: Rollguard): Promise<number> => (await rg.history(SERVICE))[0]?.id ?? 0;

  const settled = (rg: Rollguard, after: number, timeoutMs = 60_000): Promise<HistoryRow> =>
    waitFor('the deployment to reach a final state', async () => {
      const newest = (await rg.history(SERVICE))[0];
      return newest && newest.id > after && FINAL.includes(newest.state) ? newest : undefined;
    }, timeoutMs);

  const deployAndSettle = async (rg: Rollguard, ref: string): Promise<HistoryRow> => {
    const before = await newestId(rg);
    await deploy(NAME, ref, [], PORT);
    return settled(rg, before);
  };

  /** `status --json`, kept for the secret check. */
  const statusJson = async (rg: Rollguard): Promise<{ notifications: { channel: string; pending: number; failed: number; sent: number; last_error: string | null }[] }> => {
    const r = await rg.cli('status', '--json');
    assert.equal(r.code, 0, r.stderr);
    outputs.push(r.stdout, r.stderr);
    return JSON.parse(r.stdout);
  };

  const channelStatus = async (rg: Rollguard, channel: string) => (await statusJson(rg)).notifications.find((c) => c.channel === channel);

  const noRefusals = (): void => {
    for (const r of receivers) assert.deepEqual(r.refused, [], 'every receiver accepted every request it got');
  };

  before(async () => {
    const present = await Promise.all([GOOD_REF, BAD_REF].map((ref) => docker('image', 'inspect', ref).then(() => true, () => false)));
    if (present.includes(false)) await buildFixtures();
    goodImage = await docker('image', 'inspect', '-f', '{{.Id}}', GOOD_REF);
    badImage = await docker('image', 'inspect', '-f', '{{.Id}}', BAD_REF);
    tmp = await mkdtemp(path.join(os.tmpdir(), 'rg-notify-'));
    await removeContainers(NAME);
    for (const r of receivers) await r.start();
    prom = await startPrometheus([{ port: PORT, service: SERVICE }]);
  });

  afterEach(async () => {
    for (const rg of running.splice(0)) await rg.stop();
    for (const r of receivers) if (!r.up) await r.start();
    await removeContainers(NAME);
  });

  after(async () => {
    for (const rg of running.splice(0)) await rg.stop();
    await prom?.stop();
    for (const r of receivers) await r.stop();
    await removeContainers(NAME);
    for (const db of databases) await db.drop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('a rolled-back deploy pages once and resolves, mails the evidence with a chart, posts to Slack and a signed webhook — once each', { timeout: 180_000 }, async () => {
    const { rg, db } = await startCase(basePolicy());
    const d = await deployAndSettle(rg, BAD_REF);
    assert.equal(d.state, 'rolled_back', `reason: ${d.reason}`);
    assert.match(d.reason ?? '', /error rate above 5%/);
    assert.ok(d.recovered_at, 'recovery is recorded');
    firstCase = { db, deployment: d };

    await waitFor('both rollback messages on every channel', () =>
      smtp.mails.length >= 2 && pagerDuty.accepted.length >= 2 && slack.accepted.length >= 2 && hook.accepted.length >= 2, 30_000);
    await pause(4_000); // bounded negative check: a storm would show by now
    noRefusals();
    const once = { rollback_started: 1, rollback_succeeded: 1 };
    assert.deepEqual(countBy(smtp.mails, (m) => m.event), once, 'email: each event once');
    assert.deepEqual(countBy(pagerDuty.accepted, (e) => e.event_action), { trigger: 1, resolve: 1 }, 'PagerDuty: one trigger, one resolve');
    assert.deepEqual(countBy(slack.accepted, slackKind), once, 'Slack: each event once');
    assert.deepEqual(countBy(hook.accepted, (h) => h.body.event), once, 'webhook: each event once');

    // PagerDuty: one incident for the deployment, opened critical and closed by the verified revert.
    const trigger = pagerDuty.accepted.find((e) => e.event_action === 'trigger') as PagerDutyEvent;
    const resolve = pagerDuty.accepted.find((e) => e.event_action === 'resolve') as PagerDutyEvent;
    assert.equal(pagerDuty.accepted.indexOf(trigger), 0, 'the trigger comes before the resolve');
    assert.equal(resolve.dedup_key, trigger.dedup_key, 'the resolve closes the incident the trigger opened');
    assert.ok(trigger.dedup_key.includes(String(d.id)), `the incident is keyed by the deployment: ${trigger.dedup_key}`);
    assert.equal(trigger.payload?.severity, 'critical');
    assert.equal(trigger.payload?.source, SERVICE);
    assert.ok(trigger.payload?.summary.startsWith(`${SERVICE}: rolling back ${BAD_REF} → v1 (error rate above 5%)`), `summary: ${trigger.payload?.summary}`);

    // The webhook: signed, with event, deployment and rule.
    const hookStarted = hook.accepted.find((h) => h.body.event === 'rollback_started') as HookDelivery;
    const hookDone = hook.accepted.find((h) => h.body.event === 'rollback_succeeded') as HookDelivery;
    for (const h of hook.accepted) {
      assert.equal(h.signature, sign(SECRETS.webhookSecret, h.timestamp, h.raw), 'x-rollguard-signature is the HMAC of timestamp.body');
      assert.equal(h.body.deployment?.id, d.id);
      assert.equal(h.body.deployment?.to_image, badImage);
      assert.equal(h.body.deployment?.from_image, goodImage);
      assert.equal(h.body.deployment?.container, NAME);
      assert.deepEqual(h.body.rule && { name: h.body.rule.name, signal: h.body.rule.signal, threshold: h.body.rule.threshold, for: h.body.rule.for },
        { name: 'error rate above 5%', signal: 'error_rate', threshold: 'above 0.05', for: 3 });
    }
    assert.ok(hookStarted, 'rollback_started reached the webhook');
    assert.equal(hookDone.body.time_to_recovery_ms, Date.parse(d.recovered_at) - Date.parse(d.started_at), 'time to recovery is bad start → verified recovery');

    // Slack: blocks with the story, the criteria and the graph button.
    const slackDone = slack.accepted.find((m) => slackKind(m) === 'rollback_succeeded') as SlackMessage;
    assert.equal(slackDone.blocks[0]?.type, 'header');
    assert.match(slackDone.blocks[0]?.text?.text ?? '', new RegExp(`^✅ ${SERVICE}: rolled back rollguard-fixture:v2-errors → v1`));
    assert.match(slackText(slackDone), /Recovery criteria/);
    assert.match(slackText(slackDone), new RegExp(`deployment #${d.id}`));
    const button = slackDone.blocks.find((b) => b.type === 'actions')?.elements?.[0];
    assert.equal(button?.url, hookDone.body.graph_url, 'the button opens the Prometheus graph');

    // The email: subject, text and HTML parts, inline PNG chart, and the evidence.
    const started = smtp.mails.find((m) => m.event === 'rollback_started') as Mail;
    assert.equal(started.parsed.subject, `[rollguard] P0 ${SERVICE}: rolling back ${BAD_REF} → v1 (error rate above 5%)`);
    const mail = smtp.mails.find((m) => m.event === 'rollback_succeeded') as Mail;
    assert.deepEqual(mail.envelope, { from: 'rollguard@example.com', to: ['oncall@example.com'] });
    const text = mail.parsed.text ?? '';
    const body = html(mail);
    assert.ok(text.length > 0, 'a text part');
    assert.ok(body.startsWith('<!doctype html>'), 'an HTML part');

    const ttr = /^Time to recovery: +(.+)$/m.exec(text)?.[1];
    assert.ok(ttr, `the text names the time to recovery:\n${text}`);
    assert.ok(Math.abs(durationMs(ttr) - (Date.parse(d.recovered_at) - Date.parse(d.started_at))) <= 100, `time to recovery ${ttr} matches the record`);
    assert.equal(mail.parsed.subject, `[rollguard] P0 ${SERVICE}: rolled back ${BAD_REF} → v1 (${ttr})`);
    assert.ok(body.includes(ttr), 'the HTML shows the time to recovery');

    const chart = mail.parsed.attachments.find((a) => a.contentType === 'image/png');
    assert.ok(chart, 'a PNG attachment');
    assert.equal(chart.contentDisposition, 'inline');
    assert.ok(chart.cid, 'the chart has a Content-ID');
    assert.ok(body.includes(`src="cid:${chart.cid}"`), `the HTML shows the chart by its cid ${chart.cid}`);
    assert.deepEqual(chart.content.subarray(0, 8), PNG_SIGNATURE, 'the attachment is a PNG');
    const png = PNG.sync.read(chart.content);
    assert.ok(png.width >= 100 && png.height >= 50, `a real image: ${png.width}×${png.height}`);

    const rule = 'error rate above 5%: error_rate above 0.05 for 3 consecutive samples (P0, rollback)';
    assert.match(text, new RegExp(`^Rule: +${rule.replace(/[().%]/g, '\\$&')}$`, 'm'), 'the text names the rule and its threshold');
    assert.ok(body.includes(rule), 'the HTML names the rule and its threshold');

    assert.ok(text.includes('Last samples of error_rate (above 0.05):'));
    const samples = [...text.matchAll(/^ {2}(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC +(.+?) {2}(BREACH|ok|no data)$/gm)];
    assert.equal(samples.length, hookDone.body.samples.length, 'every sample is shown');
    assert.ok(samples.length >= 3, `samples with timestamps:\n${text}`);
    const deployedAt = Math.floor(Date.parse(d.started_at) / 1_000) * 1_000;
    for (const [, at, , result] of samples) {
      const t = utcTime(at as string);
      assert.ok(t >= deployedAt - 1_000 && t <= Date.parse(d.recovered_at), `sample time ${at} lies in the watch`);
      assert.ok(result, 'a result per sample');
    }
    for (const [, at, value, result] of samples.slice(-3)) {
      assert.equal(result, 'BREACH', `the last three samples are the breaching streak (${at})`);
      assert.ok(Number(value) > 0.05, `a breaching value: ${value}`);
    }
    assert.ok((body.match(/>BREACH</g) ?? []).length >= 3, 'the HTML marks the breaching samples');

    const graph = /^Prometheus graph: (\S+)$/m.exec(text)?.[1];
    assert.ok(graph, 'the text links the Prometheus graph');
    assert.equal(graph, hookDone.body.graph_url);
    const graphUrl = new URL(graph);
    assert.equal(graphUrl.origin, prom.url);
    assert.equal(graphUrl.pathname, '/graph');
    const expr = graphUrl.searchParams.get('g0.expr') ?? '';
    assert.match(expr, /http_requests_total\{service="notify",code=~"5.."\}/, 'the graph shows the rule\'s query for this service');
    const query = (await (await fetch(`${prom.url}/api/v1/query?query=${encodeURIComponent(expr)}`)).json()) as { status: string };
    assert.equal(query.status, 'success', 'the graph\'s query is valid PromQL');
    assert.ok(body.includes(`href="${graph.replaceAll('&', '&amp;')}"`), 'the HTML links the graph');

    const actions = [...text.matchAll(/^ {2}(–|#\d+) (\S+) (ok|FAILED) in (.+?) at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC/gm)];
    assert.equal(actions.length, hookDone.body.actions.length, `every action is listed:\n${text}`);
    const kinds = actions.map((a) => a[2]);
    for (const kind of ['check-image', 'stop-bad', 'start-good', 'verify', 'remove-bad']) assert.ok(kinds.includes(kind), `action ${kind} is listed`);
    for (const [, , kind, result, took] of actions) {
      assert.equal(result, 'ok', `${kind} succeeded`);
      assert.ok(durationMs(took as string) >= 0, `${kind} has a timing`);
    }
    assert.ok(durationMs((actions.find((a) => a[2] === 'verify') as RegExpMatchArray)[4] as string) > 0, 'verifying recovery took time');
    assert.ok(body.includes('<h3>Actions</h3>'), 'the HTML lists the actions');

    const criteria = Object.fromEntries([...text.matchAll(/^ {2}([✓✗]) (\S+) ((?:above|below) \S+): measured (.+)$/gm)].map((m) => [`${m[2]} ${m[3]}`, { holds: m[1] === '✓', measured: Number(m[4]) }]));
    assert.deepEqual(Object.keys(criteria).sort(), ['error_rate below 0.01', 'ready above 0'], `the success criteria:\n${text}`);
    assert.ok(criteria['error_rate below 0.01']?.holds && (criteria['error_rate below 0.01']?.measured ?? 1) < 0.01, 'the measured error rate is below the criterion');
    assert.deepEqual(criteria['ready above 0'], { holds: true, measured: 1 });
    assert.ok(body.includes('<h3>Recovery criteria</h3>'), 'the HTML lists the criteria');
  });

  it('fault: SMTP server down during a rollback → the revert completes, the email waits in the outbox and arrives once SMTP is back', { timeout: 180_000 }, async () => {
    const { rg } = await startCase(basePolicy());
    const before = await newestId(rg);
    await deploy(NAME, BAD_REF, [], PORT);
    await waitFor('the rollback to start (told to the webhook)', () => hook.accepted.some((h) => h.body.event === 'rollback_started'), 45_000);
    const smtpStoppedAt = Date.now();
    await smtp.stop();

    const d = await settled(rg, before);
    assert.equal(d.state, 'rolled_back', `reason: ${d.reason}`);
    assert.ok(d.recovered_at, 'recovery is recorded');
    assert.ok(Date.parse(d.recovered_at ?? '') > smtpStoppedAt, 'SMTP went down before the revert was verified');
    assert.equal(smtp.up, false, 'and stayed down until the rollback completed');
    const email = await waitFor('status to show the waiting email with its error', async () => {
      const c = await channelStatus(rg, 'oncall-email');
      return c && c.pending >= 1 && c.last_error ? c : undefined;
    }, 30_000);
    assert.match(email.last_error ?? '', /ECONNREFUSED|ECONNECTION|ESOCKET/, `the last error says why: ${email.last_error}`);
    await waitFor('the other channels to hear of the recovery meanwhile', () =>
      hook.accepted.some((h) => h.body.event === 'rollback_succeeded') && pagerDuty.accepted.some((e) => e.event_action === 'resolve') && slack.accepted.some((m) => slackKind(m) === 'rollback_succeeded'), 30_000);
    assert.equal(smtp.mails.some((m) => m.event === 'rollback_succeeded'), false);

    await smtp.start();
    await waitFor('the waiting email to arrive', () => smtp.mails.some((m) => m.event === 'rollback_succeeded'), 60_000);
    await waitFor('status to show the email channel drained', async () => {
      const c = await channelStatus(rg, 'oncall-email');
      return c && c.pending === 0 && c.failed === 0 && c.last_error === null;
    }, 30_000);
    await pause(3_000); // bounded negative check: no duplicate follows
    noRefusals();
    assert.deepEqual(countBy(smtp.mails, (m) => m.event), { rollback_started: 1, rollback_succeeded: 1 }, 'each email exactly once');
    const mail = smtp.mails.find((m) => m.event === 'rollback_succeeded') as Mail;
    assert.match(mail.parsed.text ?? '', new RegExp(`^Deployment: +#${d.id}, rolled_back,`, 'm'), 'the late email tells what was true when it happened');
  });

  it('fault: kill -9 with emails waiting in the outbox → a new daemon on the same database delivers each exactly once', { timeout: 240_000 }, async () => {
    await smtp.stop();
    const { rg, db } = await startCase(basePolicy());
    const d = await deployAndSettle(rg, BAD_REF);
    assert.equal(d.state, 'rolled_back', `reason: ${d.reason}`);
    await waitFor('both emails waiting with an error, the other channels delivered', async () => {
      const s = (await statusJson(rg)).notifications;
      const email = s.find((c) => c.channel === 'oncall-email');
      const others = s.filter((c) => c.channel !== 'oncall-email');
      return email?.pending === 2 && email.last_error && others.length === 3 && others.every((c) => c.sent === 2 && c.pending === 0);
    }, 30_000);

    await rg.stop('SIGKILL');
    assert.equal(rg.process.signalCode, 'SIGKILL');
    running.splice(running.indexOf(rg), 1);
    const delivered = { pager: pagerDuty.accepted.length, chat: slack.accepted.length, hook: hook.accepted.length };
    assert.deepEqual(delivered, { pager: 2, chat: 2, hook: 2 });

    const next = await startRollguard(basePolicy(), { databaseUrl: db.url, env: env() });
    daemons.push(next);
    running.push(next);
    await smtp.start();
    await waitFor('both emails to arrive from the new daemon', () => smtp.mails.length >= 2, 90_000);
    await pause(4_000); // bounded negative check: no duplicate follows
    noRefusals();
    assert.deepEqual(countBy(smtp.mails, (m) => m.event), { rollback_started: 1, rollback_succeeded: 1 }, 'each email exactly once');
    for (const m of smtp.mails) assert.match(m.parsed.text ?? '', new RegExp(`^Deployment: +#${d.id},`, 'm'), 'about the deployment of the killed daemon');
    assert.deepEqual({ pager: pagerDuty.accepted.length, chat: slack.accepted.length, hook: hook.accepted.length }, delivered, 'what was delivered before the kill is not sent again');
    assert.match(await next.logs(), /"channel":"oncall-email".*"notification sent"/);
  });

  it('a rollback that can never recover sends ROLLBACK FAILED with attempts and contacts to every P0 route, and puts up the maintenance page', { timeout: 180_000 }, async () => {
    const maintenanceFile = path.join(tmp, 'maintenance.html');
    const unmeetable = fixturePolicy(prom.url, { port: PORT, service: SERVICE, container: NAME, window: '30s', maxAttempts: 2, recoveryTimeout: '3s' })
      .replace(/    recovery:\n(      - .*\n)+/, '    recovery:\n      - {signal: ready, above: 5}\n');
    assert.match(unmeetable, /recovery:\n {6}- \{signal: ready, above: 5\}\n$/, 'the policy edit applied');
    const policy = `${unmeetable}${channelsYaml()}escalation: {contacts: ${JSON.stringify(CONTACTS)}}\nmaintenance: {file: {path: ${JSON.stringify(maintenanceFile)}}}\n`;
    const { rg } = await startCase(policy);
    assert.equal(existsSync(maintenanceFile), false);

    const d = await deployAndSettle(rg, BAD_REF);
    assert.equal(d.state, 'rollback_failed', `reason: ${d.reason}`);
    await waitFor('ROLLBACK FAILED on every P0 channel', () =>
      smtp.mails.some((m) => m.event === 'rollback_failed') && pagerDuty.accepted.length >= 2
      && slack.accepted.some((m) => slackKind(m) === 'rollback_failed') && hook.accepted.some((h) => h.body.event === 'rollback_failed'), 30_000);
    await pause(3_000); // bounded negative check: no resolve, no repeat
    noRefusals();

    const contacts = CONTACTS.join(', ');
    const mail = smtp.mails.find((m) => m.event === 'rollback_failed') as Mail;
    assert.equal(mail.parsed.subject, `[rollguard] P0 ROLLBACK FAILED ${SERVICE}: ${BAD_REF} → v1 after 2 attempts`);
    const text = mail.parsed.text ?? '';
    assert.match(text, /^🚨 ROLLBACK FAILED 🚨$/m);
    assert.match(text, /^Attempts: 2$/m);
    assert.ok(text.includes(`Escalation: ${contacts}`), `the text names the contacts:\n${text}`);
    assert.ok(html(mail).includes('Attempts: 2') && html(mail).includes(`Escalation: ${contacts}`), 'so does the HTML');

    assert.deepEqual(pagerDuty.accepted.map((e) => e.event_action), ['trigger', 'trigger'], 'rollback_started and rollback_failed page; nothing resolves');
    const [opened, failed] = pagerDuty.accepted as [PagerDutyEvent, PagerDutyEvent];
    assert.equal(failed.dedup_key, opened.dedup_key, 'the failure updates the same incident');
    assert.equal(failed.payload?.severity, 'critical');
    assert.ok(failed.payload?.summary.startsWith(`ROLLBACK FAILED ${SERVICE}: ${BAD_REF} → v1 after 2 attempts`), `summary: ${failed.payload?.summary}`);
    const escalation = String(failed.payload?.custom_details?.escalation ?? '');
    assert.ok(escalation.includes('Attempts: 2') && escalation.includes(contacts), `PagerDuty details carry attempts and contacts: ${escalation}`);

    const chat = slackText(slack.accepted.find((m) => slackKind(m) === 'rollback_failed') as SlackMessage);
    assert.match(chat, /\*Attempts:\* 2/);
    for (const c of CONTACTS) assert.ok(chat.includes(c), `Slack names ${c}`);

    const failedHook = hook.accepted.find((h) => h.body.event === 'rollback_failed') as HookDelivery;
    assert.equal(failedHook.body.severity, 'P0');
    assert.deepEqual(failedHook.body.escalation, CONTACTS);
    assert.equal(failedHook.body.deployment?.attempts, 2);
    assert.equal(failedHook.body.deployment?.id, d.id);

    assert.equal(await readFile(maintenanceFile, 'utf8'), 'System maintenance in progress.\n', 'the maintenance page is up');
  });

  it('`notify test` delivers to each channel, and against a stopped receiver exits 1 with an error free of secrets', { timeout: 120_000 }, async () => {
    const policyFile = path.join(tmp, 'notify-test.yaml');
    await writeFile(policyFile, basePolicy());
    for (const r of receivers) r.clear();
    const test = async (channel: string): Promise<{ stdout: string; stderr: string; code: number }> => {
      const r = await runCli(['notify', 'test', channel, '--policy', policyFile], env());
      outputs.push(r.stdout, r.stderr);
      return r;
    };
    const kinds = { 'oncall-email': 'email', pager: 'pagerduty', chat: 'slack', hook: 'webhook' } as const;
    for (const [channel, kind] of Object.entries(kinds)) {
      const r = await test(channel);
      assert.equal(r.code, 0, `${channel}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^${channel} \\(${kind}\\): delivered in \\d+ ms\\n$`));
    }
    noRefusals();
    assert.equal(smtp.mails.length, 1);
    assert.equal(smtp.mails[0]?.event, 'test');
    assert.equal(smtp.mails[0]?.parsed.subject, '[rollguard] test: rollguard test message for channel oncall-email');
    assert.deepEqual(pagerDuty.accepted.map((e) => e.event_action), ['trigger', 'resolve'], 'a test page is resolved right away');
    assert.equal(pagerDuty.accepted[0]?.dedup_key, pagerDuty.accepted[1]?.dedup_key);
    assert.equal(slack.accepted.length, 1);
    assert.match(slack.accepted[0]?.blocks[0]?.text?.text ?? '', /^test: rollguard test message for channel chat$/);
    assert.equal(hook.accepted.length, 1);
    assert.equal(hook.accepted[0]?.body.event, 'test');

    for (const r of receivers) await r.stop();
    const secrets = [...Object.values(SECRETS), SLACK_PATH, env().SMTP_URL as string, env().SLACK_WEBHOOK_URL as string];
    for (const [channel, kind] of Object.entries(kinds)) {
      const r = await test(channel);
      assert.equal(r.code, 1, `${channel} against a stopped receiver: ${r.stdout}`);
      assert.match(r.stderr, new RegExp(`^${channel} \\(${kind}\\): not delivered: .*ECONNREFUSED`), `a clear error: ${r.stderr}`);
      for (const s of secrets) assert.ok(!r.stderr.includes(s) && !r.stdout.includes(s), `${channel}: the error does not contain a secret: ${r.stderr}`);
    }
  });

  it('the digest emails the counts to digest.to only', { timeout: 180_000 }, async () => {
    let history = firstCase;
    if (!history) {
      // Run alone: record one rolled-back deployment first.
      const { rg, db } = await startCase(basePolicy());
      const d = await deployAndSettle(rg, BAD_REF);
      assert.equal(d.state, 'rolled_back', `reason: ${d.reason}`);
      await rg.stop();
      running.splice(running.indexOf(rg), 1);
      history = { db, deployment: d };
    }
    // A digest covers whole minutes up to the current one: wait until the recorded deployment's minute is over.
    const countedFrom = Math.floor(Date.parse(history.deployment.detected_at) / 60_000) * 60_000 + 60_000;
    await waitFor('the minute of the recorded deployment to end', () => Date.now() >= countedFrom, 70_000, 500);

    await startCase(`${basePolicy()}digest: {schedule: "*/3 * * * * *", to: [oncall-email]}\n`, history.db);
    const digest = await waitFor('a digest email', () => smtp.mails.find((m) => m.event === 'digest'), 30_000);
    await pause(4_000); // bounded negative check: later runs of the schedule in the same period send nothing
    noRefusals();
    assert.match(digest.parsed.subject ?? '', /^\[rollguard\] digest \d{4}-\d\d-\d\d → \d{4}-\d\d-\d\d: 1 watched, 0 passed, 1 rolled back, 0 rollback failed, 0 inconclusive$/);
    const text = digest.parsed.text ?? '';
    for (const line of ['Deployments watched: 1', 'Passed: 0', 'Rolled back: 1', 'Rollback failed: 0', 'Inconclusive: 0']) assert.match(text, new RegExp(`^${line}$`, 'm'), `${line}:\n${text}`);
    assert.ok(html(digest).includes('<h3>Counts</h3>'));
    assert.deepEqual(digest.envelope.to, ['oncall@example.com']);
    const periods = smtp.mails.filter((m) => m.event === 'digest').map((m) => /^Period: (.+)$/m.exec(m.parsed.text ?? '')?.[1]);
    assert.equal(new Set(periods).size, periods.length, `one digest per period: ${periods.join(' | ')}`);
    assert.deepEqual(smtp.mails.filter((m) => m.event !== 'digest').map((m) => m.event), [], 'a new daemon on the same database sends nothing again');
    assert.deepEqual([pagerDuty.accepted.length, slack.accepted.length, hook.accepted.length], [0, 0, 0], 'the digest goes to digest.to only');
  });

  it('no secret appears in the daemon logs, `status --json` or CLI output', async () => {
    assert.ok(daemons.length > 0, 'the cases above ran daemons');
    const logs = (await Promise.all(daemons.map((rg) => rg.logs()))).join('\n');
    assert.match(logs, /"notification sent"/, 'the logs talk about deliveries');
    assert.match(logs, /"notification failed; will retry"/, 'and about failed ones, with their errors');
    assert.ok(outputs.join('').includes('oncall-email'), 'status output was captured');
    const secrets = { ...SECRETS, slackPath: SLACK_PATH };
    for (const [what, value] of Object.entries(secrets)) {
      assert.equal(logs.includes(value), false, `the logs do not contain the ${what}`);
      assert.equal(outputs.some((o) => o.includes(value)), false, `status and CLI output do not contain the ${what}`);
    }
  });

  it('`policy check` refuses secrets written in the policy, naming the line and the way to give them', async () => {
    const literal = `version: 1
services:
  ${SERVICE}:
    match: {container: ${NAME}}
    signals:
      restarts: {container: restart_count}
    rules:
      - {name: restarting, signal: restarts, above: 2}
notifications:
  pager:
    pagerduty:
      routing_key: rg-test-secret-abc123
  chat:
    slack:
      webhook_url: https://hooks.slack.com/services/T000/B000/rg-test-secret-literalslacktoken
  hook:
    webhook:
      url: http://127.0.0.1:9/hook
      secret: rg-test-secret-literal-hook-secret
  oncall-email:
    email:
      smtp_url: smtp://rollguard:rg-test-secret-literal-smtp-password@127.0.0.1:25
      from: rollguard@example.com
      to: [oncall@example.com]
routes:
  P0: [pager, chat, hook, oncall-email]
`;
    const file = path.join(tmp, 'literal-secrets.yaml');
    await writeFile(file, literal);
    const lines = literal.split('\n');
    const lineOf = (key: string): number => lines.findIndex((l) => l.trimStart().startsWith(`${key}:`)) + 1;
    const r = await runCli(['policy', 'check', file], {});
    assert.equal(r.code, 1, r.stdout);
    const expected = [
      [lineOf('routing_key'), 'notifications.pager.pagerduty.routing_key', 'routing_key'],
      [lineOf('webhook_url'), 'notifications.chat.slack.webhook_url', 'webhook_url'],
      [lineOf('secret'), 'notifications.hook.webhook.secret', 'secret'],
      [lineOf('smtp_url'), 'notifications.oncall-email.email.smtp_url', 'smtp_url'],
    ] as const;
    for (const [line, key, field] of expected) {
      assert.ok(r.stderr.includes(`${file}:${line}: ${key}: a secret must not be written in the policy; use "\${ENV_VAR}" or ${field}_file`), `line ${line} ${key}:\n${r.stderr}`);
    }
    for (const value of ['rg-test-secret-abc123', 'rg-test-secret-literalslacktoken', 'rg-test-secret-literal-hook-secret', 'rg-test-secret-literal-smtp-password']) assert.equal(r.stderr.includes(value), false, `the refusal does not echo ${value}`);

    // The ways the message names are accepted: ${ENV} and a *_file.
    await writeFile(path.join(tmp, 'pd.key'), 'rg-test-secret-abc123\n');
    const fixed = literal
      .replace('routing_key: rg-test-secret-abc123', 'routing_key_file: pd.key')
      .replace(/webhook_url: .*/, 'webhook_url: ${SLACK_WEBHOOK_URL}')
      .replace('secret: rg-test-secret-literal-hook-secret', 'secret: ${HOOK_SECRET}')
      .replace(/smtp_url: .*/, 'smtp_url: ${SMTP_URL}');
    const fixedFile = path.join(tmp, 'env-secrets.yaml');
    await writeFile(fixedFile, fixed);
    const ok = await runCli(['policy', 'check', fixedFile], env());
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /: ok — 1 service\(s\)/);
  });
});

// ---------------------------------------------------------------------------------------------
// The outbox across instances, store outages and slow channels: rollguard's own announcer, write
// queue, outbox and dispatcher (the code `rollguard run` composes), several of them on one real
// PostgreSQL database, sending to the real receivers above. No Docker: these faults are in the
// store and the channels, not in the deploy target.
// ---------------------------------------------------------------------------------------------

/** A server that accepts connections and never says a word: neither an HTTP answer nor an SMTP greeting. */
async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A pino logger whose lines the test can read. */
function capturedLog(): { log: Logger; lines: () => { level: number; msg: string; [k: string]: unknown }[] } {
  const out: string[] = [];
  const stream = new Writable({ write(chunk, _enc, cb) { out.push(String(chunk)); cb(); } });
  return { log: pino({ level: 'debug' }, stream), lines: () => out.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l)) };
}

/** One rollguard instance's notification path (as `rollguard run` composes it) on the database at `url`. */
interface NotifyInstance { store: Store; writes: WriteBehind; announcer: Announcer; outbox: Outbox; stop(): Promise<void> }

function notifyInstance(url: string, policy: Policy, log: Logger, dispatch: Partial<DispatcherOptions> = {}): NotifyInstance {
  const sql = postgresSql(url, log);
  const store = new Store(sql);
  const outbox = new Outbox(sql);
  const writes = new WriteBehind(store, { log, retryMs: 200 });
  const notifiers = createNotifiers();
  const dispatcher = new Dispatcher({ outbox, notifiers, policy: () => policy, log, metrics: createMetrics(), pollMs: 200, beforeDrain: () => writes.flush(), ...dispatch });
  const announcer = new Announcer(store, outbox, writes, () => policy, () => dispatcher.kick(), log);
  dispatcher.start();
  return {
    store, writes, announcer, outbox,
    async stop() {
      await dispatcher.stop();
      await writes.flush();
      writes.close();
      notifiers.close();
      await sql.close();
    },
  };
}

function newDeployment(service: string): NewDeployment {
  const now = Date.now();
  return {
    service, target: 'docker-container', container_id: `c-${service}-${now}`, container_name: service, from_image: 'sha256:good', from_ref: 'app:v1', to_image: 'sha256:bad', to_ref: 'app:v2',
    dry_run: false, started_at: new Date(now), detected_at: new Date(now), window_ends_at: new Date(now + 30_000),
  };
}

/** A rollback event about deployment `d` as the watch loop builds it (without samples). */
function rollbackEvent(kind: 'rollback_started' | 'rollback_succeeded', d: Deployment, severity: 'P0' | 'P1' = 'P0'): NotificationEvent {
  return {
    kind, severity, at: new Date().toISOString(), service: d.service,
    title: `${d.service}: ${kind === 'rollback_started' ? 'rolling back' : 'rolled back'} ${d.to_ref} → v1`,
    summary: kind === 'rollback_started' ? 'error rate above 5%' : 'recovered',
    deployment: {
      id: d.id, fromRef: d.from_ref, fromImage: d.from_image, toRef: d.to_ref, toImage: d.to_image, container: d.container_name,
      startedAt: d.started_at.toISOString(), state: kind === 'rollback_started' ? 'rolling_back' : 'rolled_back', attempts: 1,
    },
  };
}

describe('the outbox across instances, store outages and slow channels (PostgreSQL, real receivers)', { timeout: 120_000 }, () => {
  const smtp = new SmtpReceiver();
  const pagerDuty = new HttpReceiver(judgePagerDuty);
  const slack = new HttpReceiver(judgeSlack);
  const hook = new HttpReceiver(judgeWebhook);
  const receivers = [smtp, pagerDuty, slack, hook];
  const databases: { url: string; drop(): Promise<void> }[] = [];
  const instances: NotifyInstance[] = [];
  let tmp: string;

  const channels = (over: { smtpPort?: number; hookPort?: number } = {}): Record<string, Channel> => ({
    pager: { kind: 'pagerduty', name: 'pager', routingKey: SECRETS.pagerDutyKey, url: `http://127.0.0.1:${pagerDuty.port}/v2/enqueue` },
    'oncall-email': { kind: 'email', name: 'oncall-email', smtpUrl: `smtp://${SMTP_USER}:${SECRETS.smtpPassword}@127.0.0.1:${over.smtpPort ?? smtp.port}`, from: 'rollguard@example.com', to: ['oncall@example.com'] },
    chat: { kind: 'slack', name: 'chat', webhookUrl: `http://127.0.0.1:${slack.port}${SLACK_PATH}` },
    hook: { kind: 'webhook', name: 'hook', url: `http://127.0.0.1:${over.hookPort ?? hook.port}${HOOK_PATH}`, secret: SECRETS.webhookSecret },
  });
  const policyOf = (notifications: Record<string, Channel>, routes: Policy['routes']): Policy => ({ version: 1, source: path.join(tmp, 'policy.yaml'), services: {}, notifications, routes, escalation: [] });

  /** A fresh database, migrated. */
  const database = async (): Promise<string> => {
    const db = await freshDatabase();
    databases.push(db);
    const sql = postgresSql(db.url, pino({ level: 'silent' }));
    await migrate(sql);
    await sql.close();
    return db.url;
  };
  const start = (url: string, policy: Policy, log: Logger, dispatch: Partial<DispatcherOptions> = {}): NotifyInstance => {
    const i = notifyInstance(url, policy, log, dispatch);
    instances.push(i);
    return i;
  };
  const stop = async (i: NotifyInstance): Promise<void> => {
    instances.splice(instances.indexOf(i), 1);
    await i.stop();
  };
  const noRefusals = (): void => {
    for (const r of receivers) assert.deepEqual(r.refused, [], 'every receiver accepted every request it got');
  };

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'rg-nf-'));
    for (const r of receivers) await r.start();
  });

  afterEach(async () => {
    for (const i of instances.splice(0)) await i.stop();
    for (const r of receivers) {
      r.clear();
      if ('delayMs' in r) r.delayMs = 0;
    }
    smtp.dataDelayMs = 0;
  });

  after(async () => {
    for (const r of receivers) await r.stop();
    for (const db of databases) await db.drop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('fault: two instances through a store outage, each queuing pages with provisional IDs → every page is delivered once, none dropped as a duplicate', async () => {
    const url = await database();
    const proxy = new TcpProxy(Number(new URL(url).port || 5432));
    await proxy.start();
    const policy = policyOf(channels(), { P0: ['pager', 'oncall-email'] });
    const { log, lines } = capturedLog();
    /** The store cut off; each instance detects a deployment (provisional ID) and queues its page and its resolve. */
    const outage = async (names: string[]): Promise<void> => {
      const started = names.map(() => start(proxy.via(url), policy, log));
      await waitFor('every instance to reach the store', async () => (await Promise.all(started.map((i) => i.outbox.pendingByChannel().then(() => true, () => false)))).every(Boolean));
      await proxy.cut();
      for (const [n, i] of started.entries()) {
        const d = await i.writes.insertDeployment(newDeployment(names[n] as string));
        assert.equal(d.id, -1, `${names[n]}: a provisional ID, the same in every instance`);
        await i.announcer.announce(rollbackEvent('rollback_started', d), { deploymentId: d.id });
        await i.announcer.announce(rollbackEvent('rollback_succeeded', d), { deploymentId: d.id });
      }
      assert.ok(started.every((i) => i.writes.waiting > 0), 'the writes wait in memory');
      await proxy.start();
    };

    try {
      await outage(['nf-a', 'nf-b']);
      await waitFor('the pages of both instances', () => pagerDuty.accepted.length >= 4 && smtp.mails.length >= 4, 20_000);
      // A restart: the new instance numbers its provisional IDs from -1 again.
      await stop(instances[0] as NotifyInstance);
      await outage(['nf-a-restarted']);
      await waitFor('the pages of the restarted instance', () => pagerDuty.accepted.length >= 6 && smtp.mails.length >= 6, 20_000);
      await pause(1_500); // bounded negative check: no duplicate follows
    } finally {
      for (const i of instances.splice(0)) await i.stop();
      await proxy.cut();
    }

    noRefusals();
    const byIncident = new Map<string, string[]>();
    for (const e of pagerDuty.accepted) byIncident.set(e.dedup_key, [...(byIncident.get(e.dedup_key) ?? []), e.event_action]);
    assert.equal(byIncident.size, 3, `one incident per deployment: ${[...byIncident.keys()].join(', ')}`);
    for (const [key, actions] of byIncident) assert.deepEqual(actions, ['trigger', 'resolve'], `${key}: opened once, resolved once`);
    const deployments = await dbQuery<{ id: string; service: string }>(url, 'SELECT id, service FROM deployments ORDER BY id');
    assert.deepEqual(deployments.map((d) => d.service).sort(), ['nf-a', 'nf-a-restarted', 'nf-b']);
    assert.deepEqual(countBy(smtp.mails, (m) => m.event), { rollback_started: 3, rollback_succeeded: 3 }, 'each email once');
    const mailed = countBy(smtp.mails, (m) => /^Deployment: +#(\d+),/m.exec(m.parsed.text ?? '')?.[1] ?? '?');
    assert.deepEqual(mailed, Object.fromEntries(deployments.map((d) => [d.id, 2])), 'two emails per deployment, each naming its real ID');
    assert.equal(new Set(smtp.mails.map((m) => String(m.parsed.headers.get('x-rollguard-delivery')))).size, 6, 'every message has its own delivery ID');
    assert.deepEqual(lines().filter((l) => l.msg === 'notification already queued; not queued again'), [], 'nothing was dropped as a duplicate');
    assert.deepEqual(lines().filter((l) => l.level >= 50).map((l) => l.msg), [], 'no error was logged');
  });

  it('fault: one channel hangs (accepts, never answers) → the other channels\' messages are delivered on time', async () => {
    const url = await database();
    const silent = await silentServer();
    try {
      const policy = policyOf(channels({ smtpPort: silent.port, hookPort: silent.port }), { P0: ['pager', 'chat', 'hook', 'oncall-email'] });
      const { log } = capturedLog();
      const i = start(url, policy, log, { sendTimeoutMs: 2_000 });
      for (let n = 1; n <= 3; n++) {
        const d = await i.store.insertDeployment(newDeployment(`nf-hang-${n}`));
        const queuedAt = Date.now();
        await i.announcer.announce(rollbackEvent('rollback_started', d), { deploymentId: d.id });
        await waitFor(`deployment ${n}'s page and Slack message while the webhook and SMTP hang`, () => pagerDuty.accepted.length === n && slack.accepted.length === n, 5_000, 50);
        const took = Date.now() - queuedAt;
        assert.ok(took < 1_500, `deployment ${n}: delivered ${took} ms after it was queued`);
        await pause(1_000);
      }
      noRefusals();
      const pending = await i.outbox.pendingByChannel();
      assert.deepEqual({ hook: pending.hook, email: pending['oncall-email'], pager: pending.pager, chat: pending.chat }, { hook: 3, email: 3, pager: undefined, chat: undefined }, 'the hanging channels still hold their messages');
    } finally {
      await silent.close(); // so the sends in flight end now
    }
  });

  it('fault: two instances draining one outbox while a channel\'s sends take longer than the claim → each message is sent once', async () => {
    const url = await database();
    const policy = policyOf(channels(), { P0: ['hook'], P1: ['oncall-email'] });
    const { log, lines } = capturedLog();
    // A claim of 2 s; the webhook answers in 0.7 s (within the send timeout, but ten in a row take
    // longer than any claim), and the SMTP server takes 2.5 s to accept each message — longer than
    // the send timeout and the claim (nodemailer does not stop a send in flight).
    hook.delayMs = 700;
    smtp.dataDelayMs = 2_500;
    const dispatch = { sendTimeoutMs: 1_000, claimMs: 2_000 };
    const queuer = start(url, policy, log, dispatch);
    const other = start(url, policy, log, dispatch);
    for (let n = 1; n <= 10; n++) {
      const d = await queuer.store.insertDeployment(newDeployment(`nf-slow-${n}`));
      await queuer.announcer.announce(rollbackEvent('rollback_started', d, n <= 2 ? 'P1' : 'P0'), { deploymentId: d.id });
      if (n > 2) await queuer.announcer.announce(rollbackEvent('rollback_succeeded', d), { deploymentId: d.id });
    }
    await waitFor('every message delivered', async () => Object.keys(await queuer.outbox.pendingByChannel()).length === 0, 30_000);
    await pause(1_000); // bounded negative check: no duplicate follows
    noRefusals();
    const deliveries = countBy(hook.accepted, (h) => String(h.headers['x-rollguard-delivery']));
    assert.deepEqual(Object.values(deliveries), Array(16).fill(1), `each webhook message once: ${JSON.stringify(deliveries)}`);
    const mails = countBy(smtp.mails, (m) => String(m.parsed.headers.get('x-rollguard-delivery')));
    assert.deepEqual(Object.values(mails), [1, 1], `each email once: ${JSON.stringify(mails)}`);
    const sentBy = lines().filter((l) => l.msg === 'notification sent').length;
    assert.equal(sentBy, 18, 'the two instances sent 18 messages between them');
    const rows = await dbQuery<{ status: string; attempts: number }>(url, 'SELECT status, attempts FROM outbox');
    assert.ok(rows.every((r) => r.status === 'sent' && Number(r.attempts) === 1), `each sent at the first attempt: ${JSON.stringify(rows)}`);
  });
});
