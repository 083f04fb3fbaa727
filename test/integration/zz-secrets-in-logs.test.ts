/**
 * Secrets never reach a log. Runs last (file order is alphabetical): the harness keeps the output
 * of every rollguard process of this run of the suite in KEPT_LOGS, and every secret a test gives
 * rollguard contains SECRET_MARKER, so one search over the kept logs finds any leak. First a
 * daemon is given every kind of secret at debug level and driven through a revert that notifies
 * (with one channel failing first, so error paths log too) and a policy reload. Containers are
 * named `rg-out-secrets`; fixture port 18091.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SMTPServer } from 'smtp-server';
import {
  buildFixtures, deploy, fixturePolicy, freePort, freshDatabase, KEPT_LOGS, removeContainers, SECRET_MARKER, startPrometheus,
  startRollguard, testSecret, waitFor, type HistoryRow, type Prometheus, type Rollguard,
} from './harness.js';

const PORT = 18091;
const NAME = 'rg-out-secrets';
const SERVICE = 'outsecret';
const FINAL = ['passed', 'rolled_back', 'rollback_failed', 'inconclusive', 'superseded'];

describe('secrets never reach a log', { timeout: 300_000 }, () => {
  let prom: Prometheus;
  let db: { url: string; drop(): Promise<void> } | undefined;
  let rg: Rollguard | undefined;
  let httpServer: http.Server | undefined;
  let smtp: SMTPServer | undefined;

  before(async () => {
    await buildFixtures();
    await removeContainers(NAME);
    prom = await startPrometheus([{ port: PORT, service: SERVICE }]);
  });

  after(async () => {
    await rg?.stop();
    await prom?.stop();
    await removeContainers(NAME);
    await db?.drop();
    httpServer?.closeAllConnections();
    await new Promise((r) => (httpServer ? httpServer.close(r) : r(undefined)));
    await new Promise((r) => (smtp ? smtp.close(() => r(undefined)) : r(undefined)));
  });

  it('a daemon given every kind of secret, at debug level, through a revert that notifies and a reload, logs none of them', async () => {
    const secrets = {
      apiToken: testSecret('api-token'),
      smtpPassword: testSecret('smtp-password'),
      routingKey: testSecret('pagerduty-routing-key'),
      webhookSecret: testSecret('webhook-secret'),
      slackToken: testSecret('slack-token'),
      databasePassword: testSecret('database-password'),
    };
    const received: { path: string; body: string }[] = [];
    const mails: string[] = [];
    const httpPort = await freePort();
    const smtpPort = await freePort();
    httpServer = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ path: req.url ?? '', body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(req.url === '/v2/enqueue' ? 202 : 200, { 'content-type': 'application/json' }).end('{"status":"success"}');
      });
    });
    await new Promise<void>((r) => httpServer?.listen(httpPort, '127.0.0.1', () => r()));
    const startSmtp = async (): Promise<void> => {
      smtp = new SMTPServer({
        secure: false, disabledCommands: ['STARTTLS'], allowInsecureAuth: true, authOptional: false, disableReverseLookup: true, logger: false,
        onAuth: (auth, _s, cb) => (auth.password === secrets.smtpPassword ? cb(null, { user: 'rollguard' }) : cb(new Error('Invalid username or password'))),
        onData: (stream, _s, cb) => {
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', () => { mails.push(Buffer.concat(chunks).toString('utf8')); cb(); });
        },
      });
      await new Promise<void>((r) => smtp?.listen(smtpPort, '127.0.0.1', () => r()));
    };

    const fresh = await freshDatabase();
    db = fresh;
    const databaseUrl = new URL(fresh.url);
    databaseUrl.username = 'postgres';
    databaseUrl.password = secrets.databasePassword; // trust authentication: accepted and unused, as a real password must stay unseen
    const env = {
      ROLLGUARD_API_TOKEN: secrets.apiToken,
      PD_KEY: secrets.routingKey,
      HOOK_SECRET: secrets.webhookSecret,
      SLACK_WEBHOOK_URL: `http://127.0.0.1:${httpPort}/services/T0RG/B0RG/${secrets.slackToken}`,
      SMTP_URL: `smtp://rollguard:${secrets.smtpPassword}@127.0.0.1:${smtpPort}`,
    };
    const channels = (from: string): string => `notifications:
  pager:
    pagerduty:
      routing_key: \${PD_KEY}
      url: http://127.0.0.1:${httpPort}/v2/enqueue
  mail:
    email:
      smtp_url: \${SMTP_URL}
      from: ${from}
      to: [oncall@example.com]
  chat:
    slack:
      webhook_url: \${SLACK_WEBHOOK_URL}
  hook:
    webhook:
      url: http://127.0.0.1:${httpPort}/hook
      secret: \${HOOK_SECRET}
routes:
  P0: [pager, mail, chat, hook]
  P1: [mail, chat, hook]
  P2: [chat, hook]
  detected: [chat, hook]
`;
    const policy = (from: string): string => fixturePolicy(prom.url, { port: PORT, service: SERVICE, container: NAME, window: '30s' }) + channels(from);

    await deploy(NAME, 'rollguard-fixture:v1', [], PORT);
    await prom.waitForData(`sum(rate(http_requests_total{service="${SERVICE}"}[3s]))`);
    rg = await startRollguard(policy('rollguard@example.com'), { databaseUrl: databaseUrl.toString(), env });
    const daemon = rg;
    assert.equal(daemon.env.ROLLGUARD_LOG_LEVEL, 'debug', 'the daemon logs at debug level');
    await waitFor('adoption', async () => (await daemon.status()).services[SERVICE]?.image);

    // The API with the token, and with a wrong one.
    const api = (token: string): Promise<Response> => fetch(`${daemon.apiUrl}/api/v1/migrations`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ service: SERVICE, image: 'rollguard-fixture:never-deployed' }),
    });
    assert.equal((await api(secrets.apiToken)).status, 200);
    assert.equal((await api(`${secrets.apiToken}x`)).status, 401);

    // A reload that changes a channel.
    await writeFile(path.join(daemon.stateDir, 'policy.yaml'), policy('rollguard-2@example.com'));
    daemon.process.kill('SIGHUP');
    await waitFor('the reload to be applied', async () => (await daemon.logs()).includes('"applying policy changes"'), 30_000);

    // A bad deploy, with SMTP down at first: sends fail and are retried, then delivered.
    const before = (await daemon.history(SERVICE))[0]?.id ?? 0;
    await deploy(NAME, 'rollguard-fixture:v2-errors', [], PORT);
    const d = await waitFor('the bad deploy to be reverted', async () => {
      const newest = (await daemon.history(SERVICE))[0];
      return newest && newest.id > before && FINAL.includes(newest.state) ? newest : undefined;
    }, 60_000) as HistoryRow;
    assert.equal(d.state, 'rolled_back', `reason: ${d.reason}`);
    await waitFor('an email send to fail', async () => (await daemon.logs()).includes('"notification failed; will retry"'), 60_000);
    await startSmtp();
    await waitFor('every channel to get the rollback messages', () =>
      mails.length >= 2 && received.filter((r) => r.path === '/v2/enqueue').length >= 2
      && received.filter((r) => r.path === '/hook').length >= 3 && received.filter((r) => r.path.startsWith('/services/')).length >= 3, 90_000, 500);
    assert.ok(received.some((r) => r.body.includes(secrets.routingKey)), 'the routing key was used');
    assert.ok(received.some((r) => r.path.includes(secrets.slackToken)), 'the Slack URL was used');
    const status = await daemon.cli('status', '--json');
    assert.equal(status.code, 0, status.stderr);
    assert.equal(await daemon.stop(), 0);
    rg = undefined;

    const log = await daemon.logs();
    assert.match(log, /"notification sent"/);
    assert.match(log, /"notification failed; will retry"/);
    assert.match(log, /"deployment detected"/);
    for (const [what, value] of Object.entries(secrets)) {
      assert.equal(log.includes(value), false, `the log contains the ${what}`);
      assert.equal(log.includes(encodeURIComponent(value)), false, `the log contains the ${what} (URL-encoded)`);
      assert.equal(status.stdout.includes(value) || status.stderr.includes(value), false, `status --json shows the ${what}`);
    }
    assert.equal(log.includes(SECRET_MARKER), false, 'no test secret of any kind in the log');
  });

  it('no kept log of this run of the suite contains a test secret', async () => {
    const files = (await readdir(KEPT_LOGS)).filter((f) => f.endsWith('.log')).sort();
    assert.ok(files.length > 0, `logs are kept in ${KEPT_LOGS}`);
    const leaks: string[] = [];
    for (const f of files) {
      const lines = (await readFile(path.join(KEPT_LOGS, f), 'utf8')).split('\n');
      lines.forEach((line, i) => {
        const at = line.indexOf(SECRET_MARKER);
        if (at >= 0) leaks.push(`${f}:${i + 1}: …${line.slice(Math.max(0, at - 120), at + 80)}…`);
      });
    }
    assert.deepEqual(leaks, [], `test secrets in the kept logs of ${KEPT_LOGS} (${files.length} files):\n${leaks.slice(0, 20).join('\n')}`);
  });
});
