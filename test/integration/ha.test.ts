/**
 * Several rollguard instances against one PostgreSQL: real daemon processes, each with its own
 * state directory and API port, the same DATABASE_URL. One leads the service (samples, decides,
 * reverts); when it is killed with SIGKILL another takes over within 10 s and carries on from
 * what the first recorded. Containers `rg-ha-*`, fixture port 18093. A leader paused (SIGSTOP)
 * past its lease acts on nothing when it runs again: containers `rg-pause-*`, fixture port 18400.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import pino from 'pino';
import { openStore } from '../../src/store/open-store.js';
import { Leases } from '../../src/store/leases.js';
import {
  buildFixtures, deploy, docker, fixturePolicy, freshDatabase, inspect, parseLogLine, removeContainers, startPrometheus, startRollguard,
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
      return [parseLogLine<LogLine>(l)];
    } catch {
      return [];
    }
  });
}

async function serviceStatus(rg: Rollguard, service = SERVICE): Promise<ServiceStatus | undefined> {
  const res = await fetch(`${rg.apiUrl}/api/v1/status`, { signal: AbortSignal.timeout(5_000) });
  const body = (await res.json()) as { services: Record<string, ServiceStatus> };
  return body.services[service];
}

async function leaderGauge(rg: Rollguard): Promise<number | undefined> {
  const text = await (await fetch(`${rg.apiUrl}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  const m = new RegExp(`^rollguard_leader\\{service="${SERVICE}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Names of containers of the service created since `since` (the test's `docker run` and rollguard's recreates). */
async function createsSince(since: number, prefix = PREFIX): Promise<string[]> {
  return (await containerEventsSince(since, prefix, ['create'])).map((e) => e.name);
}

/** Events of the given kinds of the containers named `prefix…` since `since`, oldest first. */
async function containerEventsSince(since: number, prefix: string, events: readonly string[]): Promise<{ name: string; action: string }[]> {
  const out = await docker('events', '--since', new Date(since).toISOString(), '--until', new Date(Date.now() + 1_000).toISOString(),
    ...events.flatMap((e) => ['--filter', `event=${e}`]), '--filter', 'type=container', '--format', '{{.Actor.Attributes.name}}\t{{.Action}}');
  return out.split('\n').map((l) => l.split('\t')).flatMap(([name, action]) => (name?.startsWith(prefix) ? [{ name, action: action ?? '' }] : []));
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

/** The state of a process from /proc: `T` while it is stopped (SIGSTOP). */
async function processState(pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return /\) (\S)/.exec(stat)?.[1];
}

describe('a leader paused longer than its lease', { timeout: 240_000 }, () => {
  const prefix = 'rg-pause-';
  const name = `${prefix}web`;
  const port = 18400;
  const service = 'pause';
  /** Short, so the pause outlasts it quickly; renewal every third of it. */
  const ttl = { text: '2s', ms: 2_000 };
  let images: FixtureImages;
  let prom: Prometheus;
  let db: { url: string; drop(): Promise<void> };
  let client: pg.Client;
  const running: Rollguard[] = [];
  const query = async <T>(text: string, params: unknown[] = []): Promise<T[]> => (await client.query(text, params)).rows as T[];
  const start = async (id: string, env: NodeJS.ProcessEnv = {}): Promise<Rollguard> => {
    const policy = fixturePolicy(prom.url, { port, service, container: name, window: '30s' });
    const rg = await startRollguard(policy, { databaseUrl: db.url, env: { ROLLGUARD_INSTANCE_ID: id, ROLLGUARD_LEASE_TTL: ttl.text, ...env } });
    running.push(rg);
    return rg;
  };
  /** Everything recorded about the service: any write after the snapshot changes it. */
  const records = async (): Promise<unknown> => (await query<{ records: unknown }>(
    `SELECT json_build_object(
       'deployments', (SELECT json_agg(d ORDER BY d.id) FROM deployments d WHERE d.service = $1),
       'samples', (SELECT json_build_array(count(*), max(s.id)) FROM samples s JOIN deployments d ON d.id = s.deployment_id WHERE d.service = $1),
       'decisions', (SELECT json_agg(x ORDER BY x.id) FROM decisions x JOIN deployments d ON d.id = x.deployment_id WHERE d.service = $1),
       'actions', (SELECT json_agg(a ORDER BY a.id) FROM actions a JOIN deployments d ON d.id = a.deployment_id WHERE d.service = $1),
       'outbox', (SELECT json_agg(o ORDER BY o.id) FROM outbox o JOIN deployments d ON d.id = o.deployment_id WHERE d.service = $1),
       'known_good', (SELECT row_to_json(k) FROM known_good k WHERE k.service = $1),
       'bad_images', (SELECT json_agg(b ORDER BY b.image_id) FROM bad_images b WHERE b.service = $1),
       'holds', (SELECT json_agg(h ORDER BY h.id) FROM holds h WHERE h.service = $1)
     ) AS records`, [service]))[0]?.records;

  before(async () => {
    images = await buildFixtures();
    await removeContainers(prefix);
    prom = await startPrometheus([{ port, service }]);
    db = await freshDatabase();
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await deploy(name, 'rollguard-fixture:v1', [], port);
    await prom.waitForData();
  });

  after(async () => {
    // SIGKILL ends a stopped process too.
    for (const rg of running) if (rg.process.exitCode === null && rg.process.signalCode === null) await rg.stop('SIGKILL').catch(() => {});
    await client?.end().catch(() => {});
    await prom?.stop();
    await removeContainers(prefix);
    await db?.drop();
  });

  it('fault: the leader paused (SIGSTOP) longer than its lease during a bad deploy\'s watch → the other instance reverts once; the paused one, resumed, acts on nothing', async (t) => {
    // A stops itself (SIGSTOP) the moment its watch calls for the revert, before it decides: when
    // it runs again, the very next thing it does is that decision, with no renewal answered yet.
    const a = await start('pause-a', { ROLLGUARD_FAILPOINTS: 'watch.revert-due:sigstop' });
    await waitFor('a to lead and adopt v1', async () => {
      const s = await serviceStatus(a, service);
      return s?.leader && s.image === images.good;
    });
    // Parked containers are found by deployment id alone: start ours far from the ids other tests on
    // this Docker engine use at the same time, so their parked containers are never taken for ours.
    await query(`ALTER TABLE deployments ALTER COLUMN id RESTART WITH ${port}001`);
    const b = await start('pause-b');
    await waitFor('b to follow a', async () => {
      const s = await serviceStatus(b, service);
      return s && !s.leader && s.leader_instance === 'pause-a';
    });

    const t0 = Date.now();
    await deploy(name, 'rollguard-fixture:v2-errors', [], port);
    const pid = a.process.pid as number;
    const stoppedAt = await waitFor('a to stop itself where its watch calls for the revert', async () => ((await processState(pid)) === 'T' ? Date.now() : undefined), 60_000, 50);
    const deployment = (await query<{ id: string }>('SELECT id FROM deployments WHERE service = $1 AND to_image = $2', [service, images.errors]))[0]?.id;
    assert.ok(deployment, 'a recorded the bad deployment before it stopped');
    assert.equal((await query<{ n: string }>("SELECT count(*) AS n FROM decisions WHERE deployment_id = $1 AND kind = 'rollback'", [deployment]))[0]?.n, '0', 'a stopped before it decided');

    // b takes the lease once a's runs out, resumes the watch from a's samples and reverts.
    const acquired = await waitFor('b to take the lease', async () =>
      (await logLines(b)).find((l) => l.msg === 'leadership acquired' && l.service === service && l.holder === 'pause-b'), 20_000);
    assert.equal(acquired.fence, 2);
    await waitFor('b to revert the bad deployment and finish', async () => {
      const d = (await query<{ state: string; phase: string | null }>('SELECT state, phase FROM deployments WHERE id = $1', [deployment]))[0];
      return d?.state === 'rolled_back' && d.phase === 'done';
    }, 60_000);
    await waitFor('the known-good container to run', async () => (await inspect(name))?.Image === images.good);
    assert.equal(await processState(pid), 'T', 'a is still stopped');
    const stoppedMs = Date.now() - stoppedAt;
    assert.ok(stoppedMs > ttl.ms, `a was stopped for ${stoppedMs} ms, longer than its ${ttl.ms} ms lease`);
    const before = await records();

    const resumedAt = Date.now();
    a.process.kill('SIGCONT');
    const aLines = async (): Promise<LogLine[]> => (await logLines(a)).filter((l) => l.time >= resumedAt);
    await waitFor('a to hear from the store that b leads', async () =>
      (await aLines()).some((l) => l.msg === 'leadership lost' && l.service === service && l.holder === 'pause-b'), 20_000);
    // Whatever a was going to do on its old belief it starts at once on resuming; give it the time of a few ticks.
    const settleUntil = Date.now() + 2_000;
    while (Date.now() < settleUntil) {
      assert.deepEqual(await records(), before, 'nothing is recorded for the service after a resumes');
      await new Promise((r) => setTimeout(r, 500));
    }
    t.diagnostic(`a stopped ${stoppedMs} ms; b took over ${acquired.time - stoppedAt} ms after the stop`);

    const lines = await aLines();
    assert.ok(lines.some((l) => l.msg === 'leadership lapsed' && l.service === service), 'a logs that its leadership lapsed');
    assert.equal(lines.filter((l) => /^(rolling back|rolled back|ROLLBACK)/.test(l.msg)).length, 0, `a did not revert: ${lines.map((l) => l.msg).join(' | ')}`);
    const changed = await containerEventsSince(resumedAt, prefix, ['create', 'start', 'stop', 'kill', 'die', 'rename', 'destroy', 'restart', 'update']);
    assert.deepEqual(changed, [], 'no container of the service changed after a resumed');
    assert.equal((await query<{ n: string }>("SELECT count(*) AS n FROM decisions WHERE deployment_id = $1 AND kind = 'rollback'", [deployment]))[0]?.n, '1', 'one rollback decision');
    assert.deepEqual(await createsSince(t0, prefix), [name, name], 'the test\'s docker run and one recreate, by b');
    const sa = await serviceStatus(a, service);
    assert.equal(sa?.leader, false);
    assert.equal(sa?.leader_instance, 'pause-b');
    assert.equal(sa?.watch, null, 'a watches nothing');
    assert.equal((await serviceStatus(b, service))?.leader, true);
    assert.equal((await inspect(name))?.Image, images.good);
  });
});
