/**
 * Outages around rollguard must not be made worse by it: Prometheus down for a whole window, the
 * notification receivers hanging during a revert, and the Docker engine restarted under a watch.
 * Real parts only: the Docker engine, Prometheus, PostgreSQL, an SMTP server and HTTP receivers on
 * 127.0.0.1, and the rollguard CLI as a child process. Containers are named `rg-out-*`; fixture
 * ports 18091 (main engine) and 18191 (an engine of this test's own, restarted for real).
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import { SMTPServer } from 'smtp-server';
import { PrometheusProvider } from '../../src/signals/prometheus.js';
import {
  buildFixtures, CLI, deploy, docker, fixturePolicy, freePort, freshDatabase, inspect, keptLogFile, parseLogLine, readyStatus, removeContainers,
  startPrometheus, startRollguard, testSecret, waitFor, type FixtureImages, type HistoryRow, type Prometheus, type Rollguard,
} from './harness.js';

const run = promisify(execFile);
const PORT = 18091;
const NAME = 'rg-out-web';
const SERVICE = 'out';
const FINAL = ['passed', 'rolled_back', 'rollback_failed', 'inconclusive', 'superseded'];
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Receivers: each can be up (answering), hanging (accepts connections, never answers) or down.
// ---------------------------------------------------------------------------------------------

/** A TCP port that accepts connections and never says a word: an SMTP or HTTP peer that hangs. */
class Tarpit {
  readonly sockets = new Set<net.Socket>();
  connections = 0;
  private server?: net.Server;

  async start(port: number): Promise<void> {
    const server = net.createServer((s) => {
      this.connections += 1;
      this.sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}

interface Received { path: string; body: Record<string, unknown> }

/** A loopback HTTP receiver (PagerDuty's Events API v2 or a webhook) that records JSON bodies. */
class HttpReceiver {
  readonly received: Received[] = [];
  private server?: http.Server;

  async start(port: number): Promise<void> {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        try {
          this.received.push({ path: req.url ?? '', body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> });
          res.writeHead(202, { 'content-type': 'application/json' }).end('{"status":"success"}');
        } catch {
          res.writeHead(400).end('not JSON');
        }
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
}

interface Mail { event: string; deployment: string; text: string }

/** A loopback SMTP server that wants AUTH with `password`. */
class SmtpReceiver {
  readonly mails: Mail[] = [];
  private server?: SMTPServer;

  constructor(private readonly password: string) {}

  async start(port: number): Promise<void> {
    const server = new SMTPServer({
      secure: false, disabledCommands: ['STARTTLS'], allowInsecureAuth: true, authOptional: false, disableReverseLookup: true, logger: false,
      onAuth: (auth, _session, callback) => (auth.password === this.password ? callback(null, { user: auth.username ?? '' }) : callback(new Error('Invalid username or password'))),
      onData: (stream, _session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const event = /^x-rollguard-event: *(\S+)/im.exec(text)?.[1] ?? '?';
          const deployment = /Deployment: +#(\d+)/.exec(text)?.[1] ?? '?';
          this.mails.push({ event, deployment, text });
          callback();
        });
      },
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}

function countBy<T>(items: readonly T[], key: (t: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const i of items) out[key(i)] = (out[key(i)] ?? 0) + 1;
  return out;
}

/** rollguard's JSON log lines. */
async function logLines(rg: Rollguard): Promise<{ time: number; msg: string; [k: string]: unknown }[]> {
  return (await rg.logs()).split('\n').filter((l) => l.startsWith('{')).map((l) => parseLogLine<{ time: number; msg: string }>(l));
}

/** Names of containers `docker events` saw get `action` between `since` (epoch ms) and now. */
async function containerEvents(dockerCli: (...args: string[]) => Promise<string>, action: string, sinceMs: number): Promise<string[]> {
  const out = await dockerCli('events', '--since', String(Math.floor(sinceMs / 1000)), '--until', String(Math.ceil(Date.now() / 1000) + 1),
    '--filter', 'type=container', '--filter', `event=${action}`, '--format', '{{.Actor.Attributes.name}}');
  return out.split('\n').filter(Boolean);
}

const settled = (rg: Rollguard, service: string, after: number, timeoutMs = 60_000): Promise<HistoryRow> =>
  waitFor(`the deployment of ${service} to reach a final state`, async () => {
    const newest = (await rg.history(service))[0];
    return newest && newest.id > after && FINAL.includes(newest.state) ? newest : undefined;
  }, timeoutMs);

const newestId = async (rg: Rollguard, service: string): Promise<number> => (await rg.history(service))[0]?.id ?? 0;

describe('outages around rollguard are not made worse (Docker, Prometheus, PostgreSQL, receivers)', { timeout: 600_000 }, () => {
  let images: FixtureImages;
  let prom: Prometheus;
  const databases: { url: string; drop(): Promise<void> }[] = [];
  const daemons: Rollguard[] = [];

  const database = async (): Promise<string> => {
    const db = await freshDatabase();
    databases.push(db);
    return db.url;
  };

  /** The known-good version running and a daemon that adopted it; the previous case's daemon is stopped first (one daemon per container). */
  const startCase = async (policy: string, env: NodeJS.ProcessEnv = {}): Promise<Rollguard> => {
    for (const earlier of daemons) await earlier.stop();
    await removeContainers(NAME);
    await deploy(NAME, 'rollguard-fixture:v1', [], PORT);
    await prom.waitForData(`sum(rate(http_requests_total{service="${SERVICE}"}[3s]))`);
    const rg = await startRollguard(policy, { databaseUrl: await database(), env });
    daemons.push(rg);
    await waitFor('rollguard to adopt the known-good version', async () => (await rg.status()).services[SERVICE]?.image === images.good);
    return rg;
  };

  before(async () => {
    images = await buildFixtures();
    await removeContainers(NAME);
    prom = await startPrometheus([{ port: PORT, service: SERVICE }]);
  });

  after(async () => {
    for (const rg of daemons) await rg.stop();
    await prom?.stop();
    await removeContainers(NAME);
    for (const db of databases) await db.drop();
  });

  it('fault: Prometheus stopped before the deploy and for the whole window → no revert, the deployment ends inconclusive, operators are told', { timeout: 150_000 }, async () => {
    const hook = new HttpReceiver();
    const hookPort = await freePort();
    await hook.start(hookPort);
    const policy = `${fixturePolicy(prom.url, { port: PORT, service: SERVICE, container: NAME, window: '10s' })}notifications:
  hook:
    webhook:
      url: http://127.0.0.1:${hookPort}/rollguard
      secret: \${HOOK_SECRET}
routes:
  P0: [hook]
  P1: [hook]
`;
    try {
      const rg = await startCase(policy, { HOOK_SECRET: testSecret('webhook-secret') });
      const before = await newestId(rg, SERVICE);
      await prom.stop();
      let d: HistoryRow;
      const deployedAt = Date.now();
      try {
        await deploy(NAME, 'rollguard-fixture:v2-errors', [], PORT);
        d = await settled(rg, SERVICE, before);
      } finally {
        await prom.start();
      }
      assert.equal(d.state, 'inconclusive', `reason: ${d.reason}`);
      assert.match(d.reason ?? '', /too little data/);
      assert.equal(d.to_image, images.errors);
      const running = await inspect(NAME);
      assert.equal(running?.Image, images.errors, 'the deployed version keeps running: no revert without data');
      assert.equal(running?.State.Running, true);
      const created = (await containerEvents(docker, 'create', deployedAt - 1_000)).filter((n) => n.startsWith(NAME));
      assert.deepEqual(created, [NAME], 'the only container created is the deploy itself: rollguard created none');
      assert.deepEqual((await containerEvents(docker, 'rename', deployedAt - 1_000)).filter((n) => n.startsWith(NAME)), [], 'nothing was set aside');
      assert.doesNotMatch(await rg.logs(), /"msg":"rolling back"/);

      const told = await waitFor('the webhook to be told the watch was inconclusive', () =>
        hook.received.find((r) => r.body.event === 'watch_inconclusive' && (r.body.deployment as { id?: number } | null)?.id === d.id), 30_000);
      assert.match(`${String(told.body.title)}\n${String(told.body.summary)}`, /too little data/, 'the message says why');
      await pause(3_000); // bounded negative check: told once, and no rollback message
      assert.deepEqual(countBy(hook.received, (r) => String(r.body.event)), { watch_inconclusive: 1 }, 'one message, and it is not a rollback');
    } finally {
      await hook.stop();
    }
  });

  it('fault: PagerDuty and SMTP hanging during a bad deploy → the revert takes no longer than with them up, and each message arrives once when they are back', { timeout: 300_000 }, async () => {
    const smtpPassword = testSecret('smtp-password');
    const routingKey = testSecret('pagerduty-routing-key');
    const smtpPort = await freePort();
    const pagerPort = await freePort();
    const smtp = new SmtpReceiver(smtpPassword);
    const pager = new HttpReceiver();
    const smtpTarpit = new Tarpit();
    const pagerTarpit = new Tarpit();
    const policy = `${fixturePolicy(prom.url, { port: PORT, service: SERVICE, container: NAME, window: '30s' })}notifications:
  pager:
    pagerduty:
      routing_key: \${PD_KEY}
      url: http://127.0.0.1:${pagerPort}/v2/enqueue
  mail:
    email:
      smtp_url: \${SMTP_URL}
      from: rollguard@example.com
      to: [oncall@example.com]
routes:
  P0: [pager, mail]
`;
    const revertMs = (d: HistoryRow): number => Date.parse(d.recovered_at ?? '') - Date.parse(d.decided_at ?? '');
    try {
      await smtp.start(smtpPort);
      await pager.start(pagerPort);
      const rg = await startCase(policy, { PD_KEY: routingKey, SMTP_URL: `smtp://rollguard:${smtpPassword}@127.0.0.1:${smtpPort}` });

      // With the receivers up: how long a revert takes here, now.
      let before = await newestId(rg, SERVICE);
      await deploy(NAME, 'rollguard-fixture:v2-errors', [], PORT);
      const control = await settled(rg, SERVICE, before);
      assert.equal(control.state, 'rolled_back', `reason: ${control.reason}`);
      await waitFor('the control revert\'s messages', () => smtp.mails.length >= 2 && pager.received.length >= 2, 30_000);
      await prom.waitForData(`sum(rate(http_requests_total{service="${SERVICE}"}[3s]))`);

      // Receivers hanging: they accept the connection and never answer.
      await smtp.stop();
      await pager.stop();
      await smtpTarpit.start(smtpPort);
      await pagerTarpit.start(pagerPort);
      smtp.mails.length = 0;
      pager.received.length = 0;
      before = await newestId(rg, SERVICE);
      const deployedAt = Date.now();
      await deploy(NAME, 'rollguard-fixture:v2-errors', [], PORT);
      const d = await settled(rg, SERVICE, before);
      assert.equal(d.state, 'rolled_back', `reason: ${d.reason}`);
      assert.ok(d.decided_at && d.recovered_at, 'decision and recovery are recorded');
      assert.equal((await inspect(NAME))?.Image, images.good, 'the known-good version runs again');
      assert.equal(await readyStatus(PORT), 200);
      assert.ok(smtpTarpit.connections > 0 && pagerTarpit.connections > 0, `the sends were attempted against the hanging receivers (smtp ${smtpTarpit.connections}, pager ${pagerTarpit.connections})`);

      const failures = await waitFor('the hanging sends to time out and be retried', async () => {
        const lines = (await logLines(rg)).filter((l) => l.msg === 'notification failed; will retry' && l.time >= deployedAt);
        return new Set(lines.map((l) => l.channel)).size === 2 ? lines : undefined;
      }, 60_000);
      const recoveredAt = Date.parse(d.recovered_at ?? '');
      const firstFailure = Math.min(...failures.map((l) => l.time));
      assert.ok(recoveredAt < firstFailure, `recovery was verified (${d.recovered_at}) before the first send gave up (${new Date(firstFailure).toISOString()}): the revert did not wait for a notification`);
      const took = revertMs(d);
      const normal = revertMs(control);
      assert.ok(took < 10_000, `decision → recovered took ${took} ms with the receivers hanging (${normal} ms with them up)`);
      assert.ok(took < normal + 5_000, `decision → recovered took ${took} ms with the receivers hanging, ${normal} ms with them up`);

      // Receivers back: the waiting messages arrive, once each.
      await smtpTarpit.stop();
      await pagerTarpit.stop();
      await smtp.start(smtpPort);
      await pager.start(pagerPort);
      await waitFor('the waiting messages to arrive', () => smtp.mails.length >= 2 && pager.received.length >= 2, 120_000, 500);
      await pause(5_000); // bounded negative check: no duplicate follows
      assert.deepEqual(countBy(smtp.mails, (m) => `${m.event} #${m.deployment}`), { [`rollback_started #${d.id}`]: 1, [`rollback_succeeded #${d.id}`]: 1 }, 'each email exactly once, and none of the earlier revert again');
      assert.deepEqual(countBy(pager.received, (r) => `${String(r.body.event_action)} ${String(r.body.dedup_key)}`),
        { [`trigger ${String(pager.received[0]?.body.dedup_key)}`]: 1, [`resolve ${String(pager.received[0]?.body.dedup_key)}`]: 1 }, 'one trigger and one resolve, for one incident');
      assert.ok(String(pager.received[0]?.body.dedup_key).includes(`-${d.id}-`), `the incident is this deployment's: ${String(pager.received[0]?.body.dedup_key)}`);
    } finally {
      await smtpTarpit.stop();
      await pagerTarpit.stop();
      await smtp.stop();
      await pager.stop();
    }
  });

  it('a hostile label value in a query template stays a string on the real Prometheus: no data, not vector(1)', async () => {
    const hostile = 'web"} or vector(1) #';
    const query = 'up{service="{{container}}"}';
    const naive = await (await fetch(`${prom.url}/api/v1/query?query=${encodeURIComponent(query.replace('{{container}}', hostile))}`)).json() as { data: { result: { value: [number, string] }[] } };
    assert.deepEqual(naive.data.result.map((r) => r.value[1]), ['1'], 'pasted in unescaped, the value would have changed the query');
    const provider = new PrometheusProvider(prom.url, 2_000);
    const m = await provider.measure({ kind: 'prometheus', name: 'up', query }, { template: { service: SERVICE, container: hostile, image: 'x', version: 'x' }, containerId: 'x', at: new Date() });
    assert.equal(m.value, null, `rendered by rollguard it matches no series: ${m.detail}`);
    assert.doesNotMatch(m.detail ?? '', /parse error|bad_data/i, 'and it is valid PromQL');
  });

  it('the HTTP API listens on 127.0.0.1:9817 by default; each state-changing endpoint needs the bearer token, /healthz and /metrics do not', async () => {
    const token = testSecret('api-token');
    const stateDir = await mkdtemp(path.join(os.tmpdir(), 'rg-out-api-'));
    const policyFile = path.join(stateDir, 'policy.yaml');
    await writeFile(policyFile, fixturePolicy(prom.url, { port: PORT, service: 'outapi', container: 'rg-out-api-none' }));
    const env: NodeJS.ProcessEnv = { ...process.env, ROLLGUARD_STATE_DIR: stateDir, ROLLGUARD_API_TOKEN: token, DATABASE_URL: await database() };
    delete env.ROLLGUARD_LISTEN;
    const log = openSync(keptLogFile('rollguard-default-listen'), 'a');
    const child = spawn(process.execPath, [CLI, 'run', '--policy', policyFile], { env, stdio: ['ignore', log, log] });
    closeSync(log);
    const base = 'http://127.0.0.1:9817';
    try {
      await waitFor('rollguard on 127.0.0.1:9817', async () => {
        if (child.exitCode !== null) throw new Error(`rollguard exited with ${child.exitCode}`);
        return (await fetch(`${base}/healthz`).catch(() => undefined))?.ok;
      }, 60_000);
      // Every listening socket on port 9817 is bound to loopback (0x2659 = 9817; 0100007F = 127.0.0.1).
      const listening = ['/proc/net/tcp', '/proc/net/tcp6'].flatMap((f) => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').slice(1) : []))
        .map((l) => l.trim().split(/\s+/)).filter((c) => c[1]?.endsWith(':2659') && c[3] === '0A').map((c) => c[1]?.split(':')[0]);
      assert.deepEqual(listening, ['0100007F'], 'one listening socket, on 127.0.0.1 only');
      for (const addr of Object.values(os.networkInterfaces()).flat().filter((a) => a && !a.internal)) {
        const reached = await new Promise<boolean>((resolve) => {
          const s = net.connect({ host: addr?.address, port: 9817, timeout: 2_000 }, () => { s.destroy(); resolve(true); });
          s.on('error', () => resolve(false)).on('timeout', () => { s.destroy(); resolve(false); });
        });
        assert.equal(reached, false, `not reachable on ${addr?.address}`);
      }

      const changing: [string, string, string?][] = [
        ['POST', '/api/v1/holds', JSON.stringify({ service: 'outapi', for: '1m', reason: 'x' })],
        ['DELETE', '/api/v1/holds/outapi'],
        ['POST', '/api/v1/migrations', JSON.stringify({ service: 'outapi', image: 'rollguard-fixture:v1' })],
      ];
      for (const [method, url, body] of changing) {
        const call = (headers: Record<string, string>): Promise<Response> => fetch(`${base}${url}`, { method, headers: { 'content-type': 'application/json', ...headers }, body });
        assert.equal((await call({})).status, 401, `${method} ${url} without a token`);
        assert.equal((await call({ authorization: `Bearer ${token}x` })).status, 401, `${method} ${url} with a wrong token`);
        assert.equal((await call({ authorization: token })).status, 401, `${method} ${url} with the token but not as a bearer`);
        const ok = await call({ authorization: `Bearer ${token}` });
        assert.ok(ok.status !== 401 && ok.status !== 403 && ok.status < 500, `${method} ${url} with the token is let through (${ok.status})`);
      }
      for (const url of ['/healthz', '/metrics']) assert.equal((await fetch(`${base}${url}`)).status, 200, `${url} is open`);
    } finally {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The Docker engine restarted under a watch. A Docker engine of this test's own (its own socket,
// data and exec roots), started the way the suite starts the main one, so restarting it for real
// does not disturb tests running on the main engine at the same time.
// ---------------------------------------------------------------------------------------------

const ENGINE_DIR = '/tmp/rollguard-test/rg-out-engine';
const ENGINE_HOST = `unix://${ENGINE_DIR}/docker.sock`;
const ENGINE_PIDFILE = `${ENGINE_DIR}/docker.pid`;
const ENGINE_ARGS = [
  '--bridge=none', '--iptables=false', '-H', ENGINE_HOST, '--data-root', `${ENGINE_DIR}/data`, '--exec-root', `${ENGINE_DIR}/exec`,
  '--pidfile', ENGINE_PIDFILE, '--cgroup-parent', 'rg-out-engine',
];
const DOCK_PORT = 18191;
const DOCK_NAME = 'rg-out-dock';
const DOCK_SERVICE = 'outdock';

async function engine(...args: string[]): Promise<string> {
  const { stdout } = await run('docker', ['-H', ENGINE_HOST, ...args], { maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}

const engineUp = (): Promise<boolean> => engine('info', '--format', '{{.ServerVersion}}').then(() => true, () => false);

async function enginePid(): Promise<number | undefined> {
  if (!existsSync(ENGINE_PIDFILE)) return undefined;
  const pid = Number((await readFile(ENGINE_PIDFILE, 'utf8')).trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Starts the test's engine (detached, logging to its directory) and waits until it answers. */
async function startEngine(): Promise<void> {
  if (await engineUp()) return;
  await mkdir(ENGINE_DIR, { recursive: true });
  const log = openSync(`${ENGINE_DIR}/dockerd.log`, 'a');
  const child = spawn('dockerd', ENGINE_ARGS, { detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  child.unref();
  await waitFor('the test\'s Docker engine to answer', engineUp, 90_000, 250);
}

/** Stops the test's engine (SIGTERM, as a service manager does) and waits until the process is gone. */
async function stopEngine(): Promise<void> {
  const pid = await enginePid();
  if (pid === undefined || !alive(pid)) return;
  process.kill(pid, 'SIGTERM');
  await waitFor('the test\'s Docker engine to exit', () => !alive(pid), 90_000, 250);
}

describe('the Docker engine restarted under rollguard', { timeout: 500_000 }, () => {
  let images: FixtureImages;
  let prom: Prometheus;
  const databases: { url: string; drop(): Promise<void> }[] = [];
  let rg: Rollguard | undefined;

  const runOnEngine = async (ref: string): Promise<void> => {
    await engine('rm', '-f', DOCK_NAME).catch(() => '');
    await engine('run', '-d', '--name', DOCK_NAME, '--network', 'host', '--restart', 'always', '-e', `PORT=${DOCK_PORT}`, ref);
  };

  const removeOnEngine = async (): Promise<void> => {
    const ids = (await engine('ps', '-aq', '--filter', `name=^/${DOCK_NAME}`).catch(() => '')).split('\n').filter(Boolean);
    if (ids.length) await engine('rm', '-f', ...ids);
  };

  const watchOf = async (daemon: Rollguard): Promise<{ deployment: number; samples: number } | undefined> =>
    ((await daemon.status()).services[DOCK_SERVICE]?.watch as { deployment: number; samples: number } | null | undefined) ?? undefined;

  /** v1 running on the test's engine, and a daemon on a fresh database that adopted it; `exits` records the daemon's exit. */
  const startCase = async (policy: string): Promise<{ daemon: Rollguard; exits: (number | null)[] }> => {
    await rg?.stop();
    await runOnEngine('rollguard-fixture:v1');
    await prom.waitForData(`sum(rate(http_requests_total{service="${DOCK_SERVICE}"}[3s]))`);
    const db = await freshDatabase();
    databases.push(db);
    const daemon = await startRollguard(policy, { databaseUrl: db.url, env: { DOCKER_HOST: ENGINE_HOST } });
    rg = daemon;
    const exits: (number | null)[] = [];
    daemon.process.once('exit', (code) => exits.push(code));
    await waitFor('adoption on the test\'s engine', async () => (await daemon.status()).services[DOCK_SERVICE]?.image === images.good);
    return { daemon, exits };
  };

  /** Deploys the good v1.1 and waits until its watch has taken a few samples. */
  const goodDeployWatched = async (daemon: Rollguard): Promise<{ deployment: number; samples: number }> => {
    await runOnEngine('rollguard-fixture:v1.1');
    return waitFor('the good deploy to be watched', async () => {
      const w = await watchOf(daemon);
      return w && w.samples >= 2 ? w : undefined;
    });
  };

  const healthDocker = async (daemon: Rollguard): Promise<string | undefined> =>
    ((await (await fetch(`${daemon.apiUrl}/healthz`)).json()) as { docker?: string }).docker;

  before(async () => {
    images = await buildFixtures();
    await startEngine();
    const refs = ['rollguard-fixture:v1', 'rollguard-fixture:v1.1', 'rollguard-fixture:v2-errors'];
    const missing = [];
    for (const ref of refs) if ((await engine('image', 'inspect', '-f', '{{.Id}}', ref).catch(() => '')) !== (await docker('image', 'inspect', '-f', '{{.Id}}', ref))) missing.push(ref);
    if (missing.length) await run('sh', ['-c', `docker save ${missing.join(' ')} | docker -H ${ENGINE_HOST} load -q`]);
    await removeOnEngine();
    prom = await startPrometheus([{ port: DOCK_PORT, service: DOCK_SERVICE }]);
  });

  after(async () => {
    await rg?.stop();
    await prom?.stop();
    await startEngine().catch(() => {});
    await removeOnEngine().catch(() => {});
    await stopEngine().catch(() => {});
    for (const db of databases) await db.drop();
  });

  it('fault: Docker engine restarted during a watch → rollguard stays up, the event stream reconnects, the watch concludes and a bad deploy after it is reverted', async () => {
    // Readiness is left out here: what an engine outage does to an HTTP check is the next test's subject.
    const policy = fixturePolicy(prom.url, { port: DOCK_PORT, service: DOCK_SERVICE, container: DOCK_NAME, window: '30s' })
      .replace(/ {6}- name: readiness failing\n( {8}.*\n)+/, '');
    assert.doesNotMatch(policy, /readiness failing/, 'the policy edit applied');
    const { daemon, exits } = await startCase(policy);
    const watching = await goodDeployWatched(daemon);

    const restartedAt = Date.now();
    await stopEngine();
    await startEngine();
    await waitFor('the deployed container to come back with the engine', async () => (await readyStatus(DOCK_PORT)) === 200, 60_000);
    await waitFor('rollguard to log the reconnect', async () =>
      (await logLines(daemon)).some((l) => l.msg === 'Docker event stream reconnected' && l.time >= restartedAt), 60_000);
    assert.deepEqual(exits, [], 'rollguard stayed up');

    const good = await settled(daemon, DOCK_SERVICE, watching.deployment - 1, 90_000);
    assert.equal(good.id, watching.deployment, 'the watch in progress is the one that concluded; the restart made no new deployment');
    assert.equal(good.state, 'passed', `reason: ${good.reason}`);
    assert.equal(good.to_image, images.good2);
    assert.equal((await daemon.status()).services[DOCK_SERVICE]?.image, images.good2);

    // A bad deploy after the restart: detected from the reconnected stream and reverted.
    const before = await newestId(daemon, DOCK_SERVICE);
    await runOnEngine('rollguard-fixture:v2-errors');
    const bad = await settled(daemon, DOCK_SERVICE, before, 90_000);
    assert.equal(bad.state, 'rolled_back', `reason: ${bad.reason}`);
    assert.equal(bad.to_image, images.errors);
    assert.equal(bad.from_image, images.good2);
    const running = JSON.parse(await engine('inspect', DOCK_NAME))[0] as { Image: string; State: { Running: boolean } };
    assert.equal(running.Image, images.good2, 'reverted to the version that passed across the restart');
    assert.equal(running.State.Running, true);
    assert.equal(await readyStatus(DOCK_PORT), 200);
    assert.deepEqual(exits, [], 'rollguard stayed up throughout');
    assert.equal(await healthDocker(daemon), 'connected');
  });

  it('fault: Docker engine down for longer than a rule\'s `for` during the watch of a good deploy → no revert is attempted because of it; the deploy passes', async () => {
    const policy = fixturePolicy(prom.url, { port: DOCK_PORT, service: DOCK_SERVICE, container: DOCK_NAME, window: '30s' });
    const { daemon, exits } = await startCase(policy);
    const watching = await goodDeployWatched(daemon);

    const stoppedAt = Date.now();
    await stopEngine();
    try {
      await waitFor('/healthz to show Docker reconnecting', async () => (await healthDocker(daemon)) === 'reconnecting', 30_000);
      // Down for more than `for: 3` samples at 1 s, as a restart with containers to stop is.
      await waitFor('5 s of engine outage', () => Date.now() - stoppedAt >= 5_000, 10_000);
    } finally {
      await startEngine();
    }
    await waitFor('the deployed container to come back with the engine', async () => (await readyStatus(DOCK_PORT)) === 200, 60_000);
    assert.deepEqual(exits, [], 'rollguard stayed up');

    const d = await settled(daemon, DOCK_SERVICE, watching.deployment - 1, 90_000);
    const told = (await logLines(daemon)).filter((l) => ['rolling back', 'ROLLBACK FAILED — escalate to a human'].includes(l.msg)).map((l) => `${l.msg}: ${String(l.reason ?? l.rule ?? '')}`);
    assert.deepEqual(told, [], 'no revert was decided or escalated because the engine was down');
    assert.equal(d.id, watching.deployment);
    assert.equal(d.state, 'passed', `reason: ${d.reason}`);
    const running = JSON.parse(await engine('inspect', DOCK_NAME))[0] as { Image: string; State: { Running: boolean } };
    assert.equal(running.Image, images.good2, 'the good deploy keeps running');

    // The outage spanned more than `for` readiness samples, each recorded as no data with its reason.
    const client = new pg.Client({ connectionString: databases.at(-1)?.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ n: string }>(
        "SELECT count(*) AS n FROM samples WHERE deployment_id = $1 AND signal = 'ready' AND result = 'no-data' AND detail LIKE 'Docker engine not answering%'", [d.id]);
      assert.ok(Number(rows[0]?.n) >= 4, `readiness samples taken while the engine was down: ${rows[0]?.n}`);
    } finally {
      await client.end();
    }
  });
});
