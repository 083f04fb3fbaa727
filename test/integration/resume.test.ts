import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  buildFixtures, deploy, fixturePolicy, freshDatabase, inspect, removeContainers, startPrometheus, startRollguard,
  waitFor, type FixtureImages, type Prometheus, type Rollguard,
} from './harness.js';

const NAME = 'rg-resume';
const PORT = 18084;
const SERVICE = 'resume';

describe('a watch interrupted by a restart of rollguard', { timeout: 180_000 }, () => {
  let images: FixtureImages;
  let prom: Prometheus;
  let db: { url: string; drop(): Promise<void> };
  let rg: Rollguard | undefined;
  const policy = (url: string): string => fixturePolicy(url, { port: PORT, service: SERVICE, container: NAME, window: '12s' });

  before(async () => {
    images = await buildFixtures();
    await removeContainers(NAME);
    prom = await startPrometheus([{ port: PORT, service: SERVICE }]);
    db = await freshDatabase();
    await deploy(NAME, 'rollguard-fixture:v1', [], PORT);
    await prom.waitForData();
  });

  after(async () => {
    await rg?.stop();
    await prom?.stop();
    await removeContainers(NAME);
    await db?.drop();
  });

  it('fault: SIGTERM of rollguard mid-window → the watch stays open; the next start resumes the same deployment and finishes it', async () => {
    rg = await startRollguard(policy(prom.url), { databaseUrl: db.url });
    await waitFor('adoption', async () => (await rg?.status())?.services[SERVICE]?.image === images.good);
    await deploy(NAME, 'rollguard-fixture:v1.1', [], PORT);
    const watching = await waitFor('the deployment to be watched with a few samples', async () => {
      const s = await rg?.status();
      const w = s?.services[SERVICE]?.watch as { deployment: number; samples: number } | null | undefined;
      return w && w.samples >= 2 ? w : undefined;
    });
    assert.equal(await rg.stop('SIGTERM'), 0, 'a graceful stop exits 0');

    rg = await startRollguard(policy(prom.url), { databaseUrl: db.url });
    const rows = await waitFor('the same deployment to pass after the restart', async () => {
      const h = await rg?.history(SERVICE);
      return h?.[0]?.state === 'passed' ? h : undefined;
    }, 40_000);
    assert.equal(rows.length, 1, 'the restart did not create a second deployment');
    assert.equal(rows[0]?.id, watching.deployment);
    assert.equal(rows[0]?.to_image, images.good2);
    assert.match(await rg.logs(), /resuming the watch of a deployment/);
    assert.equal((await inspect(NAME))?.Image, images.good2);
  });

  it('fault: SIGTERM of rollguard while a bad deploy is watched → the bad deploy is reverted after the restart', async () => {
    await rg?.stop('SIGTERM');
    rg = undefined;
    rg = await startRollguard(policy(prom.url), { databaseUrl: db.url });
    await deploy(NAME, 'rollguard-fixture:v2-errors', [], PORT);
    await waitFor('the bad deployment to be watched', async () => (await rg?.history(SERVICE))?.[0]?.state === 'watching');
    assert.equal(await rg.stop('SIGTERM'), 0);
    rg = await startRollguard(policy(prom.url), { databaseUrl: db.url });
    const d = await waitFor('the resumed bad deployment to be reverted', async () => {
      const newest = (await rg?.history(SERVICE))?.[0];
      return newest && ['rolled_back', 'rollback_failed', 'passed', 'inconclusive'].includes(newest.state) ? newest : undefined;
    }, 40_000);
    assert.equal(d.state, 'rolled_back', `reason: ${d.reason}`);
    assert.equal(d.to_image, images.errors);
    assert.equal((await inspect(NAME))?.Image, images.good2, 'back on the version that passed before the restart');
  });
});
