/**
 * Several rollguard instances against one PostgreSQL: real daemon processes, each with its own
 * state directory and API port, the same DATABASE_URL. One leads the service (samples, decides,
 * reverts); when it is killed with SIGKILL another takes over within 10 s and carries on from
 * what the first recorded. Containers `rg-ha-*`, fixture port 18093.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import pino from 'pino';
import { openStore } from '../../src/store/open-store.js';
import { Leases } from '../../src/store/leases.js';
import {
  buildFixtures, deploy, docker, fixturePolicy, freshDatabase, inspect, removeContainers, startPrometheus, startRollguard,
  waitFor, type FixtureImages, type Prometheus, type Rollguard,
} from './harness.js';

const PREFIX = 'rg-ha-';
const NAME = `${PREFIX}web`;
const PORT = 18093;
const SERVICE = 'ha';
const FINAL = ['passed', 'rolled_back', 'rollback_failed', 'inconclusive', 'superseded'];

interface LogLine { time: number; msg: string; service?: string; holder?: string; fence?: number; deployment?: number }
interface ServiceStatus { leader: boolean; leader_instance: string | null; fence: number | null; image: string | null; watch: { deployment: number; samples: number } | null }

async function logLines(rg: Rollguard): Promise<LogLine[]> {
  return (await rg.logs()).split('\n').flatMap((l) => {
    if (!l.startsWith('{')) return [];
    try {
      return [JSON.parse(l) as LogLine];
    } catch {
      return [];
    }
  });
}

async function serviceStatus(rg: Rollguard): Promise<ServiceStatus | undefined> {
  const res = await fetch(`${rg.apiUrl}/api/v1/status`, { signal: AbortSignal.timeout(5_000) });
  const body = (await res.json()) as { services: Record<string, ServiceStatus> };
  return body.services[SERVICE];
}

async function leaderGauge(rg: Rollguard): Promise<number | undefined> {
  const text = await (await fetch(`${rg.apiUrl}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  const m = new RegExp(`^rollguard_leader\\{service="${SERVICE}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Names of containers of the service created since `since` (the test's `docker run` and rollguard's recreates). */
async function createsSince(since: number): Promise<string[]> {
  const out = await docker('events', '--since', new Date(since).toISOString(), '--until', new Date(Date.now() + 1_000).toISOString(),
    '--filter', 'event=create', '--filter', 'type=container', '--format', '{{.Actor.Attributes.name}}');
  return out.split('\n').filter((n) => n.startsWith(PREFIX));
}

async function kill9(rg: Rollguard): Promise<number> {
  const exited = new Promise<void>((r) => rg.process.once('exit', () => r()));
  const at = Date.now();
  rg.process.kill('SIGKILL');
  await exited;
  return at;
}

describe('several instances sharing one PostgreSQL', { timeout: 420_000 }, () => {
  let images: FixtureImages;
  let prom: Prometheus;
  let db: { url: string; drop(): Promise<void> };
  let client: pg.Client;
  const running: Rollguard[] = [];
  const policy = (): string => fixturePolicy(prom.url, { port: PORT, service: SERVICE, container: NAME, window: '30s' });
  const start = async (id: string): Promise<Rollguard> => {
    const rg = await startRollguard(policy(), { databaseUrl: db.url, env: { ROLLGUARD_INSTANCE_ID: id } });
    running.push(rg);
    return rg;
  };
  const query = async <T>(text: string, params: unknown[] = []): Promise<T[]> => (await client.query(text, params)).rows as T[];
  const deployments = (): Promise<{ id: string; to_image: string; state: string; reason: string | null }[]> =>
    query('SELECT id, to_image, state, reason FROM deployments WHERE service = $1 ORDER BY id', [SERVICE]);
  const rollbackDecisions = async (deployment: string): Promise<number> =>
    Number((await query<{ n: string }>("SELECT count(*) AS n FROM decisions WHERE deployment_id = $1 AND kind = 'rollback'", [deployment]))[0]?.n);
  const lease = async (): Promise<{ holder: string; fence: string } | undefined> => (await query<{ holder: string; fence: string }>('SELECT holder, fence FROM leases WHERE service = $1', [SERVICE]))[0];

  let a: Rollguard;
  let b: Rollguard;
  let c: Rollguard;

  before(async () => {
    images = await buildFixtures();
    await removeContainers(PREFIX);
    prom = await startPrometheus([{ port: PORT, service: SERVICE }]);
    db = await freshDatabase();
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await deploy(NAME, 'rollguard-fixture:v1', [], PORT);
    await prom.waitForData();
  });

  after(async () => {
    // A process already killed has exited: waiting for its exit again would never end.
    for (const rg of running) if (rg.process.exitCode === null && rg.process.signalCode === null) await rg.stop('SIGKILL').catch(() => {});
    await client?.end().catch(() => {});
    await prom?.stop();
    await removeContainers(PREFIX);
    await db?.drop();
  });

  it('leases: one statement grants a service to exactly one of several racing instances, and a new holder increments the fence', async () => {
    const store = await openStore({ databaseUrl: db.url, stateDir: '/nonexistent', log: pino({ level: 'silent' }) });
    try {
      const leases = new Leases(store.sql);
      let holder = '';
      for (let i = 0; i < 10; i++) {
        const claims = await Promise.all(['w', 'x', 'y', 'z'].map((h) => leases.claim(`race-${i}`, h, null, 60_000)));
        const winners = claims.filter((c) => c.mine);
        assert.equal(winners.length, 1, 'exactly one holder');
        assert.ok(claims.every((c) => c.holder === winners[0]?.holder && c.fence === 1), 'the losers are told who holds it');
        if (i === 0) holder = winners[0]?.holder as string;
      }
      assert.equal((await leases.claim('race-0', holder, 1, 60_000)).fence, 1, 'a renewal keeps the fence');
      await leases.release('race-0', holder, 1);
      const next = await leases.claim('race-0', holder === 'w' ? 'x' : 'w', null, 60_000);
      assert.ok(next.mine, 'a released lease is taken at once');
      assert.equal(next.fence, 2);
      assert.equal((await leases.claim('race-0', holder, 1, 60_000)).mine, false, 'the old holder cannot renew over the new one');
      await store.sql.query("DELETE FROM leases WHERE service LIKE 'race-%'");
    } finally {
      await store.sql.close();
    }
  });

  it('two instances: exactly one leads the service, and a bad deploy is reverted exactly once', async () => {
    a = await start('ha-a');
    b = await start('ha-b');
    await waitFor('instance a to lead and adopt v1', async () => {
      const s = await serviceStatus(a);
      return s?.leader && s.image === images.good;
    });
    const sb = await waitFor('instance b to see a as the leader', async () => {
      const s = await serviceStatus(b);
      return s && !s.leader && s.leader_instance === 'ha-a' ? s : undefined;
    });
    assert.equal(sb.watch, null);
    assert.equal(await leaderGauge(a), 1);
    assert.equal(await leaderGauge(b), 0);
    assert.equal((await lease())?.holder, 'ha-a');

    const t0 = Date.now();
    await deploy(NAME, 'rollguard-fixture:v2-errors', [], PORT);
    const reverted = await waitFor('the bad deployment to be concluded', async () => {
      const rows = (await deployments()).filter((d) => d.to_image === images.errors);
      return rows[0] && FINAL.includes(rows[0].state) ? rows : undefined;
    }, 60_000);
    assert.equal(reverted.length, 1, 'one deployment row for the bad deploy');
    assert.equal(reverted[0]?.state, 'rolled_back', `reason: ${reverted[0]?.reason}`);
    assert.equal(await rollbackDecisions(reverted[0]?.id as string), 1, 'one rollback decision');
    await waitFor('the known-good container to run', async () => (await inspect(NAME))?.Image === images.good);
    const creates = await createsSince(t0);
    assert.deepEqual(creates, [NAME, NAME], `the test's docker run and one recreate by rollguard; got ${creates.join(', ')}`);
    const starts = Number((await query<{ n: string }>("SELECT count(*) AS n FROM actions WHERE deployment_id = $1 AND kind = 'start-good'", [reverted[0]?.id]))[0]?.n);
    assert.equal(starts, 1, 'one known-good container started');
    const bLines = await logLines(b);
    assert.equal(bLines.filter((l) => l.msg === 'deployment detected').length, 0, 'the follower detected nothing');
    assert.equal(bLines.filter((l) => /^(rollback|revert)/.test(l.msg)).length, 0, 'the follower did not act');
    assert.ok((await logLines(a)).some((l) => l.msg === 'leadership acquired' && l.service === SERVICE && l.holder === 'ha-a' && l.fence === 1));
  });

  it('fault: kill -9 the leader during a watch window → another instance takes over within 10 s, resumes the same deployment and passes it', async (t) => {
    const before = (await deployments()).length;
    await deploy(NAME, 'rollguard-fixture:v1.1', [], PORT);
    const watching = await waitFor('the leader to record a few samples of the new deployment', async () => {
      const s = await serviceStatus(a);
      if (!s?.watch || s.watch.samples < 3) return undefined;
      const n = Number((await query<{ n: string }>('SELECT count(DISTINCT taken_at) AS n FROM samples WHERE deployment_id = $1', [s.watch.deployment]))[0]?.n);
      return n >= 3 ? { ...s.watch, recorded: n } : undefined;
    }, 30_000);

    const killedAt = await kill9(a);
    const acquired = await waitFor('instance b to acquire the lease', async () =>
      (await logLines(b)).find((l) => l.msg === 'leadership acquired' && l.service === SERVICE && l.holder === 'ha-b'), 20_000);
    const takeoverMs = acquired.time - killedAt;
    t.diagnostic(`takeover ${takeoverMs} ms after the kill`);
    assert.ok(takeoverMs < 10_000, `takeover took ${takeoverMs} ms`);
    assert.equal(acquired.fence, 2, 'a new holder, a new fence');

    const resumed = await waitFor('b to resume the watch', async () => {
      const s = await serviceStatus(b);
      return s?.leader && s.watch ? s.watch : undefined;
    }, 15_000);
    assert.equal(resumed.deployment, watching.deployment, 'the same deployment, not a new one');
    assert.ok(resumed.samples >= watching.recorded, `resumed from the recorded samples (${resumed.samples} >= ${watching.recorded})`);
    assert.ok((await logLines(b)).some((l) => l.msg === 'resuming the watch of a deployment' && l.deployment === watching.deployment));
    assert.equal(await leaderGauge(b), 1);

    const rows = await waitFor('the deployment to be concluded', async () => {
      const all = await deployments();
      const d = all.find((x) => Number(x.id) === watching.deployment);
      return d && FINAL.includes(d.state) ? all : undefined;
    }, 60_000);
    assert.equal(rows.length, before + 1, 'no duplicate deployment rows');
    const d = rows.find((x) => Number(x.id) === watching.deployment);
    assert.equal(d?.state, 'passed', `reason: ${d?.reason}`);
    assert.equal(d?.to_image, images.good2);
    assert.deepEqual(await lease(), { holder: 'ha-b', fence: '2' });
  });

  it('fault: kill -9 the leader, then deploy a bad version → the surviving instance reverts it', async (t) => {
    c = await start('ha-c');
    await waitFor('c to follow b', async () => {
      const s = await serviceStatus(c);
      return s && !s.leader && s.leader_instance === 'ha-b';
    });
    const before = (await deployments()).length;
    const killedAt = await kill9(b);
    await deploy(NAME, 'rollguard-fixture:v2-errors', [], PORT);
    const acquired = await waitFor('instance c to acquire the lease', async () =>
      (await logLines(c)).find((l) => l.msg === 'leadership acquired' && l.service === SERVICE && l.holder === 'ha-c'), 20_000);
    t.diagnostic(`takeover ${acquired.time - killedAt} ms after the kill`);
    assert.ok(acquired.time - killedAt < 10_000, `takeover took ${acquired.time - killedAt} ms`);
    const rows = await waitFor('the bad deployment to be concluded', async () => {
      const all = (await deployments()).slice(before);
      return all[0] && FINAL.includes(all[0].state) ? all : undefined;
    }, 60_000);
    assert.equal(rows.length, 1, 'one deployment row for the bad deploy');
    assert.equal(rows[0]?.to_image, images.errors);
    assert.equal(rows[0]?.state, 'rolled_back', `reason: ${rows[0]?.reason}`);
    assert.equal(await rollbackDecisions(rows[0]?.id as string), 1, 'one rollback decision');
    await waitFor('the version that passed to run again', async () => (await inspect(NAME))?.Image === images.good2);
  });

  it('fault: kill -9 of the only instance, then a restart in the same state directory → it leads again at once, without waiting out the dead lease', async () => {
    await kill9(c);
    // The dead lease would last an hour: only ending it can let the restart lead now.
    await query("UPDATE leases SET expires_at = now() + interval '1 hour' WHERE service = $1 AND holder = 'ha-c'", [SERVICE]);
    // A new process in c's state directory, with a generated instance id.
    const restarted = await startRollguard(policy(), { databaseUrl: db.url, stateDir: c.stateDir });
    running.push(restarted);
    const started = await waitFor('the restarted daemon to start', async () => (await logLines(restarted)).find((l) => l.msg === 'rollguard started') as (LogLine & { leading?: string[]; instance?: string }) | undefined);
    assert.deepEqual(started.leading, [SERVICE], 'the service is led from the start');
    const lines = await logLines(restarted);
    assert.ok(lines.some((l) => l.msg === 'leases of the previous run in this state directory ended'));
    assert.ok(lines.some((l) => l.msg === 'leadership acquired' && l.service === SERVICE && l.holder === started.instance && l.fence === 4));
    assert.deepEqual(await lease(), { holder: started.instance, fence: '4' });
  });
});
