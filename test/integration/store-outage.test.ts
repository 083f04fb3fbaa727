/**
 * PostgreSQL stopped and restarted under a running daemon, for real (pg_ctlcluster): rollguard
 * keeps detecting, deciding and reverting from memory, and writes everything that happened once
 * the database is back. Containers `rg-pgdown*`, fixture port 18095.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import {
  buildFixtures, dbQuery, deploy, fixturePolicy, freshDatabase, inspect, pagerChannel, pagerReceiver, removeContainers,
  startPrometheus, startRollguard, waitFor, type FixtureImages, type Prometheus, type Rollguard,
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
