/**
 * PostgreSQL stopped and restarted under a running daemon, for real (pg_ctlcluster), and a
 * database that answers but refuses writes (set read-only): rollguard keeps detecting, deciding
 * and reverting from memory, and writes everything that happened once the database takes writes
 * again. Containers `rg-pgdown*` on fixture port 18095, and `rg-ro-*` on fixture port 18300.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import pino from 'pino';
import { postgresSql } from '../../src/store/sql.js';
import {
  buildFixtures, dbQuery, deploy, fixturePolicy, freshDatabase, inspect, pagerChannel, pagerReceiver, removeContainers,
  startPrometheus, startRollguard, TcpProxy, waitFor, type FixtureImages, type Prometheus, type Rollguard,
} from './harness.js';

const run = promisify(execFile);
const NAME = 'rg-pgdown';
const PORT = 18095;
const SERVICE = 'pgdown';
const PD_KEY = 'rg-test-secret-pgdown-pager-key';

async function cluster(action: 'stop' | 'start'): Promise<void> {
  for (const version of await readdir('/etc/postgresql')) {
    await run('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', action, ...(action === 'stop' ? ['-m', 'fast'] : [])]);
  }
  if (action === 'start') {
    await waitFor('PostgreSQL to accept connections', async () => {
      const c = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
      try {
        await c.connect();
        return true;
      } catch {
        return false;
      } finally {
        await c.end().catch(() => {});
      }
    }, 60_000);
  }
}

describe('PostgreSQL outages under a running daemon', { timeout: 300_000 }, () => {
  let images: FixtureImages;
  let prom: Prometheus;
  let db: { url: string; drop(): Promise<void> };
  let rg: Rollguard | undefined;
  let pager: Awaited<ReturnType<typeof pagerReceiver>>;

  const query = <T>(text: string, params: unknown[] = []): Promise<T[]> => dbQuery<T>(db.url, text, params);
  const policy = (window: string): string => `${fixturePolicy(prom.url, { port: PORT, service: SERVICE, container: NAME, window })}${pagerChannel(pager.port)}`;

  before(async () => {
    images = await buildFixtures();
    await removeContainers(NAME);
    pager = await pagerReceiver();
    prom = await startPrometheus([{ port: PORT, service: SERVICE }]);
    await deploy(NAME, 'rollguard-fixture:v1', [], PORT);
    await prom.waitForData();
  });

  after(async () => {
    await cluster('start').catch(() => {});
    await rg?.stop('SIGKILL');
    await prom?.stop();
    await pager?.close();
    await removeContainers(NAME);
    await db?.drop();
  });

  it('fault: PostgreSQL stopped before a bad deploy → reverted while it is down; every record is written once it is back', async () => {
    db = await freshDatabase();
    rg = await startRollguard(policy('30s'), { databaseUrl: db.url, env: { PD_KEY } });
    await waitFor('adoption', async () => (await rg?.status())?.services[SERVICE]?.image === images.good);

    await cluster('stop');
    let restarted = false;
    try {
      await deploy(NAME, 'rollguard-fixture:v2-errors', [], PORT);
      await waitFor('the revert to the known-good image while PostgreSQL is down', async () => {
        const c = await inspect(NAME);
        return c?.Image === images.good && c.State.Running;
      }, 60_000);
      await waitFor('recovery verified while PostgreSQL is down', async () => (await rg?.logs())?.includes('rolled back and recovered'), 60_000);
      assert.match(await rg.logs(), /store unreachable; keeping writes in memory and protecting on/);
      assert.equal(rg.process.exitCode, null, 'still running');
      await cluster('start');
      restarted = true;
    } finally {
      if (!restarted) await cluster('start');
    }

    const d = await waitFor('the deployment to be recorded as rolled back', async () => {
      const rows = await query<{ id: string; state: string; to_image: string; phase: string }>('SELECT id, state, to_image, phase FROM deployments ORDER BY id');
      return rows.length === 1 && rows[0]?.state === 'rolled_back' ? rows[0] : undefined;
    }, 60_000);
    assert.equal(d.to_image, images.errors);
    assert.equal(d.phase, 'done');
    const id = Number(d.id);
    const samples = await query<{ n: string }>("SELECT count(DISTINCT taken_at) AS n FROM samples WHERE deployment_id = $1 AND stage = 'watch'", [id]);
    assert.ok(Number(samples[0]?.n) >= 3, `the samples that led to the decision are recorded (${samples[0]?.n})`);
    const decisions = await query<{ kind: string }>('SELECT kind FROM decisions WHERE deployment_id = $1 ORDER BY id', [id]);
    assert.deepEqual(decisions.map((x) => x.kind).filter((k) => k === 'rollback'), ['rollback']);
    const actions = (await query<{ kind: string; ok: boolean }>('SELECT kind, ok FROM actions WHERE deployment_id = $1 ORDER BY id', [id])).map((a) => a.kind);
    for (const step of ['check-image', 'stop-bad', 'start-good', 'verify', 'remove-bad']) assert.ok(actions.includes(step), `action ${step} recorded: ${actions.join(', ')}`);
    const known = await query<{ image_id: string }>('SELECT image_id FROM known_good WHERE service = $1', [SERVICE]);
    assert.equal(known[0]?.image_id, images.good);
    await waitFor('the page and its resolve, sent once the outbox was written', () =>
      pager.events.some((p) => p.event_action === 'trigger') && pager.events.some((p) => p.event_action === 'resolve'), 60_000);
    assert.equal(new Set(pager.events.map((p) => p.dedup_key)).size, 1);
    assert.match(await rg.logs(), /store is back; every write kept during the outage is recorded/);
  });

  it('fault: PostgreSQL restarted during a watch → the watch goes on, passes, and no sample is lost', async () => {
    await rg?.stop('SIGKILL');
    await db?.drop();
    db = await freshDatabase();
    await deploy(NAME, 'rollguard-fixture:v1', [], PORT);
    rg = await startRollguard(policy('14s'), { databaseUrl: db.url, env: { PD_KEY } });
    await waitFor('adoption', async () => (await rg?.status())?.services[SERVICE]?.image === images.good);
    await deploy(NAME, 'rollguard-fixture:v1.1', [], PORT);
    await waitFor('a few samples', async () => {
      const w = (await rg?.status())?.services[SERVICE]?.watch as { samples: number } | null | undefined;
      return w && w.samples >= 2;
    });
    await cluster('stop');
    try {
      await waitFor('samples taken while PostgreSQL is down', async () => {
        const w = (await rg?.status())?.services[SERVICE]?.watch as { samples: number } | null | undefined;
        return w && w.samples >= 5;
      }, 20_000);
    } finally {
      await cluster('start');
    }
    const d = await waitFor('the deployment to pass', async () => {
      const rows = await query<{ id: string; state: string }>("SELECT id, state FROM deployments WHERE to_image = $1", [images.good2]).catch(() => []);
      return rows[0] && rows[0].state !== 'watching' ? rows[0] : undefined;
    }, 60_000);
    assert.equal(d.state, 'passed');
    const times = (await query<{ t: Date }>("SELECT DISTINCT taken_at AS t FROM samples WHERE deployment_id = $1 AND stage = 'watch' ORDER BY taken_at", [Number(d.id)]))
      .map((r) => new Date(r.t).getTime());
    assert.ok(times.length >= 10, `one sample per second over the 14 s window (${times.length})`);
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    assert.ok(Math.max(...gaps) < 3_000, `no gap in the samples across the restart (largest ${Math.max(...gaps)} ms)`);
    assert.equal((await inspect(NAME))?.Image, images.good2);
  });
});

const ADMIN_URL = process.env.ROLLGUARD_TEST_PG_ADMIN ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const RO_NAME = 'rg-ro-web';
const RO_PORT = 18300;
const RO_SERVICE = 'readonly';
const RO_PD_KEY = 'rg-test-secret-readonly-pager-key';
/** rollguard's tables a revert writes to (all but the leases). */
const RECORD_TABLES = 'deployments, samples, decisions, actions, outbox, bad_images, known_good';

/**
 * Sets the test database read-only the way an operator (or a failover to a standby) makes it:
 * every new session refuses writes. Turning it on also ends the sessions open now, so rollguard's
 * pool reconnects into read-only sessions; turning it off leaves them, as an operator would, so
 * rollguard must leave its read-only sessions by itself.
 */
async function setReadOnly(dbUrl: string, on: boolean): Promise<void> {
  const name = new URL(dbUrl).pathname.slice(1);
  await dbQuery(ADMIN_URL, `ALTER DATABASE "${name}" SET default_transaction_read_only = ${on ? 'on' : 'off'}`);
  if (on) await dbQuery(ADMIN_URL, 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
}

describe('a database that refuses writes under a running daemon', { timeout: 240_000 }, () => {
  let images: FixtureImages;
  let prom: Prometheus;
  let db: { url: string; drop(): Promise<void> } | undefined;
  let rg: Rollguard | undefined;
  let pager: Awaited<ReturnType<typeof pagerReceiver>>;

  const query = <T>(text: string, params: unknown[] = []): Promise<T[]> => dbQuery<T>((db as { url: string }).url, text, params);

  /** A fresh database and daemon watching the known-good version. */
  async function begin(): Promise<Rollguard> {
    await rg?.stop('SIGKILL');
    await db?.drop();
    await deploy(RO_NAME, 'rollguard-fixture:v1', [], RO_PORT);
    pager.events.length = 0;
    db = await freshDatabase();
    rg = await startRollguard(`${fixturePolicy(prom.url, { port: RO_PORT, service: RO_SERVICE, container: RO_NAME, window: '20s' })}${pagerChannel(pager.port)}`, {
      databaseUrl: db.url, env: { PD_KEY: RO_PD_KEY },
    });
    await waitFor('adoption', async () => (await rg?.status())?.services[RO_SERVICE]?.image === images.good);
    await waitFor('the known-good version recorded', async () => (await query('SELECT 1 FROM known_good')).length === 1);
    return rg;
  }

  /** Deploys the 50 %-error version and waits for the revert and its recovery, returning how long the revert took. */
  async function badDeploy(what: string): Promise<number> {
    const started = Date.now();
    await deploy(RO_NAME, 'rollguard-fixture:v2-errors', [], RO_PORT);
    await waitFor(`the revert to the known-good image while ${what}`, async () => {
      const c = await inspect(RO_NAME);
      return c?.Image === images.good && c.State.Running;
    }, 60_000);
    const took = Date.now() - started;
    await waitFor(`recovery verified while ${what}`, async () => (await rg?.logs())?.includes('rolled back and recovered'), 60_000);
    return took;
  }

  /** Every record of the revert is in the database exactly once, under the real deployment ID, and each message was delivered once. */
  async function recordedOnce(): Promise<void> {
    const d = await waitFor('the deployment to be recorded as rolled back', async () => {
      const rows = await query<{ id: string; state: string; to_image: string; phase: string }>('SELECT id, state, to_image, phase FROM deployments ORDER BY id');
      return rows.length && rows.every((r) => r.state !== 'watching' && r.state !== 'rolling_back') ? rows : undefined;
    }, 60_000);
    assert.equal(d.length, 1, 'the deployment is written once');
    assert.equal(d[0]?.to_image, images.errors);
    assert.equal(d[0]?.state, 'rolled_back');
    assert.equal(d[0]?.phase, 'done');
    const id = Number(d[0]?.id);
    const [samples] = await query<{ n: string; distinct: string; watch: string }>(
      "SELECT count(*) AS n, count(DISTINCT (stage, signal, taken_at)) AS distinct, count(DISTINCT taken_at) FILTER (WHERE stage = 'watch') AS watch FROM samples WHERE deployment_id = $1", [id]);
    assert.ok(Number(samples?.watch) >= 3, `the samples that led to the decision are recorded (${samples?.watch})`);
    assert.equal(samples?.n, samples?.distinct, 'each sample written once');
    const decisions = await query<{ kind: string; n: string }>('SELECT kind, count(*) AS n FROM decisions WHERE deployment_id = $1 GROUP BY kind, decided_at, rule', [id]);
    assert.deepEqual(decisions.filter((x) => x.kind === 'rollback').map((x) => x.n), ['1'], 'one rollback decision, written once');
    assert.ok(decisions.every((x) => x.n === '1'), 'each decision written once');
    const actions = await query<{ kind: string; n: string }>('SELECT kind, count(*) AS n FROM actions WHERE deployment_id = $1 GROUP BY kind, attempt, started_at', [id]);
    for (const step of ['check-image', 'stop-bad', 'start-good', 'verify', 'remove-bad']) assert.ok(actions.some((a) => a.kind === step), `action ${step} recorded: ${actions.map((a) => a.kind).join(', ')}`);
    assert.ok(actions.every((a) => a.n === '1'), 'each action written once');
    const bad = await query<{ deployment_id: string }>('SELECT deployment_id FROM bad_images WHERE image_id = $1', [images.errors]);
    assert.deepEqual(bad.map((b) => Number(b.deployment_id)), [id], 'the bad image is marked, under the real ID');
    assert.equal((await query<{ image_id: string }>('SELECT image_id FROM known_good WHERE service = $1', [RO_SERVICE]))[0]?.image_id, images.good);
    const outbox = await waitFor('every message sent', async () => {
      const rows = await query<{ event: string; status: string; deployment_id: string | null }>("SELECT event, status, deployment_id FROM outbox WHERE channel = 'pager' ORDER BY id");
      return rows.length && rows.every((r) => r.status === 'sent') ? rows : undefined;
    }, 60_000);
    assert.ok(outbox.every((r) => Number(r.deployment_id) === id), 'the messages name the real deployment ID');
    assert.ok(outbox.some((r) => r.event === 'rollback_started') && outbox.some((r) => r.event === 'rollback_succeeded'), outbox.map((r) => r.event).join(', '));
    assert.equal(pager.events.length, outbox.length, 'each message delivered once');
    assert.equal(new Set(pager.events.map((p) => p.dedup_key)).size, 1, 'one incident');
    assert.match(await (rg as Rollguard).logs(), /store is back; every write kept during the outage is recorded/);
  }

  before(async () => {
    images = await buildFixtures();
    await removeContainers('rg-ro-');
    pager = await pagerReceiver();
    prom = await startPrometheus([{ port: RO_PORT, service: RO_SERVICE }]);
    await deploy(RO_NAME, 'rollguard-fixture:v1', [], RO_PORT);
    await prom.waitForData();
  });

  after(async () => {
    await rg?.stop('SIGKILL');
    await prom?.stop();
    await pager?.close();
    await removeContainers('rg-ro-');
    await db?.drop();
  });

  it('fault: the database set read-only before a bad deploy → reverted while it refuses writes; every record is written once it accepts them', async () => {
    const daemon = await begin();
    const url = (db as { url: string }).url;
    await setReadOnly(url, true);
    let writable = false;
    try {
      assert.deepEqual(await query('SHOW default_transaction_read_only'), [{ default_transaction_read_only: 'on' }]);
      await badDeploy('the database refuses writes');
      assert.match(await daemon.logs(), /the store refuses writes; keeping them in memory and protecting on/);
      assert.equal(daemon.process.exitCode, null, 'still running');
      // `history` opens the store as the daemon's start does (schema check included), and reads it.
      assert.deepEqual(await daemon.history(RO_SERVICE), [], 'history reads a database that refuses writes; nothing of the deploy is written yet');
      assert.equal(pager.events.length, 0, 'no page before its outbox message is written');
      await setReadOnly(url, false);
      writable = true;
    } finally {
      if (!writable) await setReadOnly(url, false);
    }
    await recordedOnce();
    assert.match(await daemon.logs(), /deployment recorded late; its real ID replaces the provisional one/);
  });

  it('fault: rollguard\'s tables locked during a bad deploy, so its statements time out → reverted without waiting on them; every record is written once the lock is gone', async (t) => {
    const daemon = await begin();
    // What a long migration or VACUUM FULL does: every statement on these tables waits for the
    // lock until rollguard's statement timeout (10 s) cancels it.
    const locker = new pg.Client({ connectionString: (db as { url: string }).url });
    await locker.connect();
    let tookMs: number;
    try {
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE ${RECORD_TABLES} IN ACCESS EXCLUSIVE MODE`);
      tookMs = await badDeploy('its tables are locked');
      assert.equal(daemon.process.exitCode, null, 'still running');
      assert.match(await daemon.logs(), /the store refuses writes; keeping them in memory and protecting on/);
      assert.match(await daemon.logs(), /"code":"57014"/, 'statements were cancelled by the statement timeout');
    } finally {
      await locker.query('COMMIT').catch(() => {});
      await locker.end();
    }
    // Three breaches a second apart, then the revert: a revert that waited on the 10 s statement
    // timeout of its first write would take longer.
    t.diagnostic(`reverted ${tookMs} ms after the deploy`);
    assert.ok(tookMs < 12_000, `reverted ${tookMs} ms after the deploy`);
    await recordedOnce();
  });
});

describe('a PostgreSQL connection cut inside a transaction', () => {
  it('fault: the connection to PostgreSQL cut between two statements of a transaction → the transaction fails, the process stays up', { timeout: 30_000 }, async () => {
    const db = await freshDatabase();
    const proxy = new TcpProxy(Number(new URL(db.url).port || 5432));
    await proxy.start();
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown): void => void uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    const lines: string[] = [];
    const sql = postgresSql(proxy.via(db.url), pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) }));
    try {
      const outcome = await sql.transaction(async (tx) => {
        await tx.query('SELECT 1');
        await proxy.cut();
        await new Promise((r) => setTimeout(r, 300)); // the cut reaches the client between statements
        return tx.query('SELECT 2');
      }).then(() => 'committed', (err: Error) => `failed: ${err.message}`);
      assert.match(outcome, /^failed: /);
      assert.deepEqual(uncaught, [], 'no uncaught error');
      assert.ok(lines.some((l) => l.includes('PostgreSQL connection failed inside a transaction')), `logged: ${lines.join('')}`);
      await proxy.start();
      assert.deepEqual(await sql.query('SELECT 3 AS n'), [{ n: 3 }], 'the next statement gets a new connection');
    } finally {
      process.off('uncaughtException', onUncaught);
      await sql.close().catch(() => {});
      await proxy.cut();
      await db.drop();
    }
  });
});
