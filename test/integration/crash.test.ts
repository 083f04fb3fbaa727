/**
 * kill -9 of the daemon in each phase of a watch and a revert, on the real Docker engine,
 * Prometheus and PostgreSQL. ROLLGUARD_FAILPOINTS stops the daemon dead at a named step so the
 * kill lands in exactly that state; the restart runs without it. After each restart: exactly
 * one running container for the service, on the known-good image, the deployment rolled_back,
 * one rollback decision, and one page. Containers `rg-crash*`, fixture port 18094.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import {
  buildFixtures, dbQuery, deploy, docker, fixturePolicy, freshDatabase, inspect, pagerChannel, pagerReceiver,
  removeContainers, startPrometheus, startRollguard, waitFor, type FixtureImages, type HistoryRow, type Prometheus,
  type Rollguard,
} from './harness.js';

const NAME = 'rg-crash';
const PORT = 18094;
const SERVICE = 'crash';
const FINAL = ['passed', 'rolled_back', 'rollback_failed', 'inconclusive', 'superseded'];
const PD_KEY = 'rg-test-secret-crash-pager-key';

/** Names of containers created for the service (any name starting with NAME) since `since`. */
async function createsSince(since: number): Promise<string[]> {
  const out = await docker('events', '--since', new Date(since).toISOString(), '--until', new Date(Date.now() + 1_000).toISOString(),
    '--filter', 'event=create', '--filter', 'type=container', '--format', '{{.Actor.Attributes.name}}');
  return out.split('\n').filter((n) => n.startsWith(NAME));
}

/** Every container (running or not) whose name starts with NAME, with its state. */
async function serviceContainers(): Promise<{ name: string; image: string; running: boolean }[]> {
  const ids = (await docker('ps', '-aq', '--filter', `name=^/${NAME}`)).split('\n').filter(Boolean);
  const out: { name: string; image: string; running: boolean }[] = [];
  for (const id of ids) {
    const c = await inspect(id);
    if (c) out.push({ name: c.Name.replace(/^\//, ''), image: c.Image, running: c.State.Running });
  }
  return out;
}

describe('kill -9 of rollguard in each phase of a revert', { timeout: 600_000 }, () => {
  let images: FixtureImages;
  let prom: Prometheus;
  let pager: Awaited<ReturnType<typeof pagerReceiver>>;
  let db: { url: string; drop(): Promise<void> };
  let rg: Rollguard | undefined;

  const policy = (): string => `${fixturePolicy(prom.url, { port: PORT, service: SERVICE, container: NAME, window: '30s' })}${pagerChannel(pager.port)}`;
  /** Starts a daemon; a restart after a kill uses the killed one's state directory, as systemd would. */
  const start = (failpoint?: string, killed?: Rollguard, text = policy()): Promise<Rollguard> =>
    startRollguard(text, { databaseUrl: db.url, stateDir: killed?.stateDir, env: { PD_KEY, ...(failpoint ? { ROLLGUARD_FAILPOINTS: failpoint } : {}) } });

  const query = <T>(text: string, params: unknown[] = []): Promise<T[]> => dbQuery<T>(db.url, text, params);

  const finalState = (id?: number): Promise<HistoryRow> => waitFor('the deployment to reach a final state', async () => {
    const rows = await rg?.history(SERVICE);
    const d = id === undefined ? rows?.[0] : rows?.find((r) => r.id === id);
    return d && FINAL.includes(d.state) ? d : undefined;
  }, 90_000);

  before(async () => {
    images = await buildFixtures();
    pager = await pagerReceiver();
    prom = await startPrometheus([{ port: PORT, service: SERVICE }]);
  });

  beforeEach(async () => {
    await rg?.stop('SIGKILL');
    rg = undefined;
    await removeContainers(NAME);
    await db?.drop();
    db = await freshDatabase();
    pager.events.length = 0;
    await deploy(NAME, 'rollguard-fixture:v1', [], PORT);
    await prom.waitForData();
  });

  after(async () => {
    await rg?.stop('SIGKILL');
    await prom?.stop();
    await pager?.close();
    await removeContainers(NAME);
    await db?.drop();
  });

  /**
   * Deploys the readiness-503 image under a daemon armed with `failpoint`, kills it -9 there,
   * checks Docker shows the expected half-way state, restarts it unarmed, and checks the end.
   */
  async function killAtAndRestart(failpoint: string, halfway: (cs: { name: string; image: string; running: boolean }[]) => void): Promise<{ d: HistoryRow; creates: string[] }> {
    rg = await start(failpoint);
    await waitFor('adoption', async () => (await rg?.status())?.services[SERVICE]?.image === images.good);
    const deployedAt = Date.now();
    await deploy(NAME, 'rollguard-fixture:v2-unready', [], PORT);
    await waitFor(`the daemon to stop at ${failpoint}`, async () => (await rg?.logs())?.includes(`"failpoint":"${failpoint}"`), 60_000);
    // Killed once the page is out, so this checks that the restart does not page again (a kill
    // in the middle of a send is the next test's case).
    await waitFor('the page to be sent', async () => (await query('SELECT 1 FROM outbox WHERE event = $1 AND status = $2', ['rollback_started', 'sent'])).length > 0, 30_000);
    assert.notEqual(await rg.stop('SIGKILL'), 0, 'killed, not exited');
    halfway(await serviceContainers());

    rg = await start(undefined, rg);
    const d = await finalState();
    const creates = await createsSince(deployedAt);
    return { d, creates };
  }

  async function assertRecovered(d: HistoryRow): Promise<void> {
    assert.equal(d.state, 'rolled_back', `reason: ${d.reason}`);
    assert.equal(d.to_image, images.unready);
    const cs = await serviceContainers();
    assert.deepEqual(cs.map((c) => ({ name: c.name, image: c.image, running: c.running })), [{ name: NAME, image: images.good, running: true }],
      'exactly one container for the service, running the known-good image; the bad one removed');
    const decisions = await query<{ kind: string }>('SELECT kind FROM decisions WHERE deployment_id = $1 ORDER BY id', [d.id]);
    assert.equal(decisions.filter((x) => x.kind === 'rollback').length, 1, 'one rollback decision');
    assert.equal(decisions.filter((x) => x.kind === 'resume').length, 1, 'the restart finished the revert it found');
    assert.equal((await rg?.history(SERVICE))?.length, 1, 'no second deployment');
    const triggers = await waitFor('the page and its resolve', () => {
      const t = pager.events.filter((e) => e.event_action === 'trigger');
      return t.length && pager.events.some((e) => e.event_action === 'resolve') ? t : undefined;
    }, 60_000);
    assert.equal(new Set(pager.events.map((e) => e.dedup_key)).size, 1, 'one incident');
    assert.equal(triggers.length, 1, 'paged once: the restart did not page again');
  }

  it('fault: kill -9 after the revert was decided, before anything changed → the restart reverts once', async () => {
    const { d, creates } = await killAtAndRestart('revert.decided', (cs) => {
      assert.deepEqual(cs.map((c) => [c.name, c.image, c.running]), [[NAME, images.unready, true]], 'killed before the bad container was touched');
    });
    await assertRecovered(d);
    assert.deepEqual(creates, [NAME, NAME], 'the bad deploy and one known-good container');
  });

  it('fault: kill -9 after the bad container was stopped, before the good one started → one known-good container, rolled_back', async () => {
    const { d, creates } = await killAtAndRestart('revert.after-park', (cs) => {
      assert.equal(cs.length, 1);
      assert.equal(cs[0]?.running, false, 'the bad container is stopped');
      assert.match(cs[0]?.name ?? '', /\.rollguard-bad\.\d+$/, 'and set aside');
    });
    await assertRecovered(d);
    assert.deepEqual(creates, [NAME, NAME], 'the bad deploy and one known-good container');
  });

  it('fault: kill -9 after the good container started, before recovery was verified → verified, not started twice', async () => {
    const { d, creates } = await killAtAndRestart('revert.after-start', (cs) => {
      const byName = new Map(cs.map((c) => [c.name, c]));
      assert.equal(byName.get(NAME)?.image, images.good, 'the known-good container runs');
      assert.equal(byName.get(NAME)?.running, true);
      assert.equal(cs.length, 2, 'beside the parked bad one');
    });
    await assertRecovered(d);
    assert.deepEqual(creates, [NAME, NAME], 'no second known-good container after the restart');
    const actions = await query<{ kind: string }>('SELECT kind FROM actions WHERE deployment_id = $1 ORDER BY id', [d.id]);
    assert.ok(actions.some((a) => a.kind === 'adopt-good'), `the restart verified the running one: ${actions.map((a) => a.kind).join(', ')}`);
  });

  it('fault: kill -9 while a page is being sent → one incident, the revert not repeated', async () => {
    rg = await start('notify.after-send');
    await waitFor('adoption', async () => (await rg?.status())?.services[SERVICE]?.image === images.good);
    const deployedAt = Date.now();
    await deploy(NAME, 'rollguard-fixture:v2-unready', [], PORT);
    await waitFor('the daemon to stop after sending a page', async () => (await rg?.logs())?.includes('"failpoint":"notify.after-send"'), 60_000);
    // The revert goes on while the sender is stuck; kill once it has finished.
    const done = await waitFor('the revert to finish', async () => {
      const rows = await query<{ id: string; state: string }>('SELECT id, state FROM deployments ORDER BY id DESC LIMIT 1');
      return rows[0] && FINAL.includes(rows[0].state) ? rows[0] : undefined;
    }, 60_000);
    assert.equal(done.state, 'rolled_back');
    await rg.stop('SIGKILL');
    const sentBeforeKill = pager.events.length;
    assert.ok(sentBeforeKill >= 1, 'the page went out before the kill');

    rg = await start(undefined, rg);
    const resolved = await waitFor('the resolve after the restart', () => pager.events.some((e) => e.event_action === 'resolve') || undefined, 60_000);
    assert.ok(resolved);
    assert.equal(new Set(pager.events.map((e) => e.dedup_key)).size, 1, 'every event is about one incident, so a resent trigger cannot page twice');
    assert.deepEqual(await createsSince(deployedAt), [NAME, NAME], 'the revert was not repeated');
    const cs = await serviceContainers();
    assert.deepEqual(cs.map((c) => [c.name, c.image, c.running]), [[NAME, images.good, true]]);
    const decisions = await query<{ kind: string }>('SELECT kind FROM decisions WHERE deployment_id = $1', [Number(done.id)]);
    assert.equal(decisions.filter((x) => x.kind === 'rollback').length, 1);
    assert.equal(decisions.filter((x) => x.kind === 'resume').length, 0, 'nothing to resume: the revert had finished');
  });

  it('fault: kill -9 while watching → the same deployment is resumed from its samples and passes', async () => {
    rg = await start();
    await waitFor('adoption', async () => (await rg?.status())?.services[SERVICE]?.image === images.good);
    await rg.stop('SIGKILL');
    rg = await start(undefined, rg, policy().replace('window: 30s', 'window: 12s'));
    await deploy(NAME, 'rollguard-fixture:v1.1', [], PORT);
    const watching = await waitFor('a few samples of the new deployment', async () => {
      const w = (await rg?.status())?.services[SERVICE]?.watch as { deployment: number; samples: number } | null | undefined;
      return w && w.samples >= 3 ? w : undefined;
    });
    await rg.stop('SIGKILL');
    rg = await start(undefined, rg, policy().replace('window: 30s', 'window: 12s'));
    const d = await finalState(watching.deployment);
    assert.equal(d.state, 'passed', `reason: ${d.reason}`);
    assert.equal((await rg.history(SERVICE)).length, 1, 'the same deployment, not a new one');
    const samples = await query<{ n: string }>('SELECT count(*) AS n FROM samples WHERE deployment_id = $1', [d.id]);
    assert.ok(Number(samples[0]?.n) >= 3);
    assert.deepEqual((await serviceContainers()).map((c) => [c.name, c.image, c.running]), [[NAME, images.good2, true]]);
  });

  it('fault: kill -9, then a bad deploy while rollguard is down → caught up from the engine at start and reverted', async () => {
    rg = await start();
    await waitFor('adoption', async () => (await rg?.status())?.services[SERVICE]?.image === images.good);
    await rg.stop('SIGKILL');
    await deploy(NAME, 'rollguard-fixture:v2-errors', [], PORT);
    rg = await start(undefined, rg);
    const d = await finalState();
    assert.equal(d.state, 'rolled_back', `reason: ${d.reason}`);
    assert.equal(d.to_image, images.errors);
    assert.equal((await inspect(NAME))?.Image, images.good);
  });

  it('fault: SIGTERM during a revert → the revert finishes before rollguard exits', async () => {
    // A 4 s grace: the fixture (PID 1, no SIGTERM handler) takes that long to stop, so the signal lands mid-revert.
    rg = await start(undefined, undefined, policy().replace('stop_timeout: 1s', 'stop_timeout: 4s'));
    await waitFor('adoption', async () => (await rg?.status())?.services[SERVICE]?.image === images.good);
    await deploy(NAME, 'rollguard-fixture:v2-unready', [], PORT);
    await waitFor('the revert to begin', async () => (await rg?.logs())?.includes('"msg":"rolling back"'), 60_000);
    const signalled = Date.now();
    const code = await rg.stop('SIGTERM');
    assert.equal(code, 0, 'a graceful exit');
    assert.ok(Date.now() - signalled < 35_000, 'within the shutdown grace');
    const rows = await query<{ state: string; reason: string | null }>('SELECT state, reason FROM deployments ORDER BY id DESC LIMIT 1');
    assert.equal(rows[0]?.state, 'rolled_back', `finished before exiting: ${rows[0]?.reason}`);
    assert.deepEqual((await serviceContainers()).map((c) => [c.name, c.image, c.running]), [[NAME, images.good, true]]);
  });
});
