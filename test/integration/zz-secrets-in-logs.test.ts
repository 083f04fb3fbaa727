/**
 * Secrets never reach a log. Runs last (file order is alphabetical): the harness keeps the output
 * of every rollguard process of this run of the suite in KEPT_LOGS, and every secret a test gives
 * rollguard contains SECRET_MARKER, so one search over the kept logs finds any leak. First a
 * daemon is given every kind of secret at debug level and driven through a revert that notifies
 * (with one channel failing first, so error paths log too) and a policy reload. Containers are
 * named `rg-out-secrets`; fixture port 18091. The Prometheus URL and the HTTP check carry basic-auth
 * credentials in their userinfo: they must reach no message, outbox row, status or history either.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
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

  it('a daemon given every kind of secret, URL credentials included, at debug level, through a revert that notifies and a reload, shows none of them in logs, messages, outbox, status or history', async () => {
    const secrets = {
      apiToken: testSecret('api-token'),
      smtpPassword: testSecret('smtp-password'),
      routingKey: testSecret('pagerduty-routing-key'),
      webhookSecret: testSecret('webhook-secret'),
      slackToken: testSecret('slack-token'),
      databasePassword: testSecret('database-password'),
      prometheusUser: testSecret('prometheus-user'),
      prometheusPassword: testSecret('prometheus-password'),
      readyPassword: testSecret('http-check-password'),
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
      // Prometheus and busybox httpd ignore the basic-auth header; rollguard must still send it and never show it.
      PROM_URL: prom.url.replace('http://', `http://${secrets.prometheusUser}:${secrets.prometheusPassword}@`),
      READY_PASSWORD: secrets.readyPassword,
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
    const readyUrl = `url: http://127.0.0.1:${PORT}/cgi-bin/ready`;
    const policy = (from: string): string => {
      const text = fixturePolicy('${PROM_URL}', { port: PORT, service: SERVICE, container: NAME, window: '30s' });
      assert.ok(text.includes(readyUrl), 'the fixture policy has the HTTP check this test gives credentials');
      return text.replace(readyUrl, `url: http://probe:\${READY_PASSWORD}@127.0.0.1:${PORT}/cgi-bin/ready`) + channels(from);
    };

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
    const historyText = await daemon.cli('history');
    const historyJson = await daemon.cli('history', '--json');
    assert.equal(historyJson.code, 0, historyJson.stderr);
    const apiRead = async (p: string): Promise<string> => {
      const res = await fetch(`${daemon.apiUrl}${p}`, { headers: { authorization: `Bearer ${secrets.apiToken}` } });
      assert.equal(res.status, 200, `GET ${p}`);
      return res.text();
    };
    const apiStatus = await apiRead('/api/v1/status');
    const apiHistory = await apiRead('/api/v1/deployments');
    assert.equal(await daemon.stop(), 0);
    rg = undefined;
    const stored = await everyRow(fresh.url);

    const log = await daemon.logs();
    assert.match(log, /"notification sent"/);
    assert.match(log, /"notification failed; will retry"/);
    assert.match(log, /"deployment detected"/);
    for (const [what, value] of Object.entries(secrets)) {
      assert.equal(log.includes(value), false, `the log contains the ${what}`);
      assert.equal(log.includes(encodeURIComponent(value)), false, `the log contains the ${what} (URL-encoded)`);
      assert.equal(status.stdout.includes(value) || status.stderr.includes(value), false, `status --json shows the ${what}`);
    }

    const shown: [where: string, text: string][] = [
      ...received.map((r): [string, string] => [`the message to ${r.path.startsWith('/services/') ? 'Slack' : r.path}`, r.body]),
      ...mails.flatMap((m) => mailTexts(m).map((t): [string, string] => ['an email', t])),
      ['the outbox and the other tables', stored],
      ['rollguard history', historyText.stdout + historyText.stderr],
      ['rollguard history --json', historyJson.stdout],
      ['/api/v1/status', apiStatus],
      ['/api/v1/deployments', apiHistory],
    ];
    const urlSecrets = { prometheusUser: secrets.prometheusUser, prometheusPassword: secrets.prometheusPassword, readyPassword: secrets.readyPassword };
    for (const [where, text] of shown) {
      for (const [what, value] of Object.entries(urlSecrets)) {
        assert.equal(text.includes(value) || text.includes(encodeURIComponent(value)), false, `${where} shows the ${what}`);
      }
    }
    // The messages do link the Prometheus graph: from the URL without its credentials.
    const graphLink = `${prom.url}/graph?`;
    assert.ok(received.some((r) => r.path === '/hook' && r.body.includes(`"graph_url":"${graphLink}`)), `a webhook message links ${graphLink}`);
    assert.ok(mails.some((m) => mailTexts(m).some((t) => t.includes(graphLink))), `an email links ${graphLink}`);
    assert.equal(log.includes(SECRET_MARKER), false, 'no test secret of any kind in the log');
  });

  /** Every row of every table of the daemon's database, as JSON text: the outbox, history, decisions, samples. */
  async function everyRow(databaseUrl: string): Promise<string> {
    const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5_000, statement_timeout: 10_000 });
    await client.connect();
    try {
      const tables = await client.query<{ name: string }>("SELECT quote_ident(table_name) AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'");
      assert.ok(tables.rows.some((t) => t.name === 'outbox'), 'the outbox is among the tables');
      const rows: string[] = [];
      for (const { name } of tables.rows) {
        const res = await client.query<{ row: string }>(`SELECT row_to_json(t)::text AS row FROM ${name} t`);
        rows.push(...res.rows.map((r) => `${name}: ${r.row}`));
      }
      return rows.join('\n');
    } finally {
      await client.end();
    }
  }

  /** A raw email as readable text: with quoted-printable soft line breaks joined and base64 parts decoded. */
  function mailTexts(raw: string): string[] {
    const joined = raw.replace(/=\r?\n/g, '');
    const decoded = [...raw.matchAll(/(?:^[A-Za-z0-9+/=]{16,}\r?\n)+/gm)].map((m) => Buffer.from(m[0].replace(/\s+/g, ''), 'base64').toString('utf8'));
    return [joined, joined.replace(/=([0-9A-F]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16))), ...decoded];
  }

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
