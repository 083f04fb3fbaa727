import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  buildFixtures, deploy, docker, fixturePolicy, freshDatabase, inspect, readyStatus, removeContainers,
  startPrometheus, startRollguard, waitFor, type FixtureImages, type HistoryRow, type Prometheus, type Rollguard,
} from './harness.js';

const NAME = 'rg-web';

const FINAL = ['passed', 'rolled_back', 'rollback_failed', 'inconclusive', 'superseded'];

/** Deploys `ref` and waits for the deployment rollguard records for it to reach a final state. */
async function deployAndSettle(rg: Rollguard, ref: string, timeoutMs = 45_000): Promise<HistoryRow> {
  const before = (await rg.history('web'))[0]?.id ?? 0;
  await deploy(NAME, ref);
  return waitFor(`the deployment of ${ref} to settle`, async () => {
    const newest = (await rg.history('web'))[0];
    return newest && newest.id > before && FINAL.includes(newest.state) ? newest : undefined;
  }, timeoutMs);
}

async function parkedContainers(): Promise<string[]> {
  return (await docker('ps', '-a', '--format', '{{.Names}}', '--filter', `name=^/${NAME}.rollguard-bad`)).split('\n').filter(Boolean);
}

describe('watch and revert on a real Docker host (PostgreSQL store)', { timeout: 300_000 }, () => {
  let images: FixtureImages;
  let prom: Prometheus;
  let rg: Rollguard;
  let db: { url: string; drop(): Promise<void> };

  before(async () => {
    images = await buildFixtures();
    await removeContainers(NAME);
    prom = await startPrometheus([{ port: 18080, service: 'web' }]);
    db = await freshDatabase();
    await deploy(NAME, 'rollguard-fixture:v1');
    await prom.waitForData();
    // Later cases redeploy images reverted earlier to test other things (no revert without data, a
    // re-pointed tag), so they are watched as usual; flapping.test.ts covers on_bad_image: revert.
    const policy = fixturePolicy(prom.url).replace('defaults:\n', 'defaults:\n  on_bad_image: warn\n');
    rg = await startRollguard(policy, { databaseUrl: db.url });
  });

  after(async () => {
    await rg?.stop();
    await prom?.stop();
    await removeContainers(NAME);
    await db?.drop();
  });

  it('adopts the running container as known-good at start-up', async () => {
    const status = await waitFor('status showing the adopted image', async () => {
      const s = await rg.status();
      return s.services.web?.image === images.good ? s : undefined;
    });
    assert.equal(status.services.web?.watch, null);
    assert.deepEqual(await rg.history(), [], 'adoption is not a deployment');
  });

  it('a good deploy survives its window and becomes known-good', async () => {
    const d = await deployAndSettle(rg, 'rollguard-fixture:v1.1');
    assert.equal(d.state, 'passed', `reason: ${d.reason}`);
    assert.equal(d.to_image, images.good2);
    assert.equal(d.from_image, images.good);
    assert.equal(d.to_ref, 'rollguard-fixture:v1.1');
    assert.equal((await inspect(NAME))?.Image, images.good2, 'the good deploy keeps running');
  });

  it('a 20 %-error deploy is reverted to the previous image ID', async () => {
    const d = await deployAndSettle(rg, 'rollguard-fixture:v2-errors');
    assert.equal(d.state, 'rolled_back', `reason: ${d.reason}`);
    assert.equal(d.to_image, images.errors);
    assert.match(d.reason ?? '', /error rate above 5%/);
    assert.equal(d.from_image, images.good2);
    assert.ok(d.recovered_at, 'recovery is recorded');
    const running = await inspect(NAME);
    assert.equal(running?.Image, images.good2, 'the known-good image runs again under the same name');
    assert.equal(running?.State.Running, true);
    assert.equal(await readyStatus(), 200);
    assert.deepEqual(await parkedContainers(), [], 'the bad container is removed once the good one recovered');
  });

  it('a deploy whose readiness answers 503 is reverted', async () => {
    const d = await deployAndSettle(rg, 'rollguard-fixture:v2-unready');
    assert.equal(d.state, 'rolled_back', `reason: ${d.reason}`);
    assert.match(d.reason ?? '', /readiness failing/);
    assert.equal((await inspect(NAME))?.Image, images.good2);
    assert.equal(await readyStatus(), 200);
  });

  it('fault: Prometheus killed, then a 20 %-error deploy → not reverted, the deployment ends inconclusive', async () => {
    await prom.stop();
    try {
      const d = await deployAndSettle(rg, 'rollguard-fixture:v2-errors');
      assert.equal(d.state, 'inconclusive', `reason: ${d.reason}`);
      assert.match(d.reason ?? '', /too little data/);
      assert.equal((await inspect(NAME))?.Image, images.errors, 'no revert while Prometheus is down');
    } finally {
      await prom.start();
      await prom.waitForData();
    }
  });

  it('a re-pointed tag is a deployment: the revert goes back by image ID', async () => {
    await docker('tag', 'rollguard-fixture:v1', 'rollguard-fixture:app');
    const good = await deployAndSettle(rg, 'rollguard-fixture:app');
    assert.equal(good.state, 'passed', `reason: ${good.reason}`);
    assert.equal(good.to_image, images.good);

    await docker('tag', 'rollguard-fixture:v2-errors', 'rollguard-fixture:app');
    const bad = await deployAndSettle(rg, 'rollguard-fixture:app');
    assert.equal(bad.state, 'rolled_back', `reason: ${bad.reason}`);
    assert.equal(bad.to_ref, 'rollguard-fixture:app');
    assert.equal(bad.from_image, images.good);
    const running = await inspect(NAME);
    assert.equal(running?.Image, images.good, 'reverted to the image ID, not to what the tag points at now');
  });
});
