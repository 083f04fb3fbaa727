import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  buildFixtures, deploy, fixturePolicy, freshDatabase, inspect, removeContainers, startPrometheus, startRollguard,
  waitFor, type FixtureImages, type HistoryRow, type Prometheus, type Rollguard,
} from './harness.js';

const NAME = 'rg-rbcli';
const PORT = 18230;
const SERVICE = 'rbcli';
const TOKEN = 'rg-test-secret-api-token-77c1';

// `rollguard rollback`: the runbook's manual revert, from the command line, against a real engine.
describe('rollguard rollback on a real Docker host', { timeout: 300_000 }, () => {
  let images: FixtureImages;
  let prom: Prometheus;
  let db: { url: string; drop(): Promise<void> } | undefined;
  let rg: Rollguard | undefined;

  before(async () => {
    images = await buildFixtures();
    await removeContainers(NAME);
    prom = await startPrometheus([{ port: PORT, service: SERVICE }]);
    await deploy(NAME, 'rollguard-fixture:v1', [], PORT);
    await prom.waitForData();
  });

  after(async () => {
    await rg?.stop();
    await prom?.stop();
    await removeContainers(NAME);
    await db?.drop();
  });

  async function fresh(window: string): Promise<Rollguard> {
    await rg?.stop();
    await db?.drop();
    db = await freshDatabase();
    await deploy(NAME, 'rollguard-fixture:v1', [], PORT);
    rg = await startRollguard(fixturePolicy(prom.url, { port: PORT, service: SERVICE, container: NAME, window }), { databaseUrl: db.url, env: { ROLLGUARD_API_TOKEN: TOKEN } });
    const started = rg;
    await waitFor('adoption', async () => (await started.status()).services[SERVICE]?.image === images.good);
    return started;
  }

  const newest = async (daemon: Rollguard): Promise<HistoryRow | undefined> => (await daemon.history(SERVICE))[0];

  it('reverts a watched deployment by hand to the known-good version, following each phase until the recovery is verified', async () => {
    const daemon = await fresh('120s');
    await deploy(NAME, 'rollguard-fixture:v1.1', [], PORT);
    await waitFor('the deploy watched', async () => (await newest(daemon))?.state === 'watching');

    const status = await daemon.cli('status');
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^SERVICE +RUNNING +REPLICAS +STATE +DETAIL$/m, 'status is a table');
    assert.match(status.stdout, /^rbcli +rollguard-fixture:v1\.1 +1 +watching +deployment \d+ \(rollguard-fixture:v1\.1\): \d+ samples, \d+ s of the window left$/m);
    assert.doesNotMatch(status.stdout, /\u001b\[/, 'no colour when the output is not a terminal');

    const unconfirmed = await daemon.cli('rollback', SERVICE);
    assert.equal(unconfirmed.code, 2, 'without a terminal to confirm on, --yes is required (usage)');
    assert.match(unconfirmed.stderr, /pass --yes to roll back rbcli/);
    assert.equal((await inspect(NAME))?.Image, images.good2, 'nothing changed');

    const r = await daemon.cli('rollback', SERVICE, '--yes', '--reason', 'checkout broken for EU customers');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /rbcli: rolling back deployment \d+ rollguard-fixture:v1\.1 → rollguard-fixture:v1/);
    assert.match(r.stdout, /rolling_back \/ (decided|parked|started)/, 'the phases are shown as they pass');
    assert.match(r.stdout, /rbcli: rolled back to rollguard-fixture:v1; recovery verified/);
    assert.equal((await inspect(NAME))?.Image, images.good);
    const d = await newest(daemon);
    assert.equal(d?.state, 'rolled_back');
    assert.match(d?.reason ?? '', /rolled back by hand: checkout broken for EU customers/);

    const history = await daemon.cli('history');
    assert.match(history.stdout, /^ID +SERVICE +STATE +FROM +TO +DETECTED +REASON$/m);
    assert.match(history.stdout, /^\d+ +rbcli +rolled_back +rollguard-fixture:v1 \(\w{12}\) +rollguard-fixture:v1\.1 \(\w{12}\) .* rolled back by hand: checkout broken/m);

    const again = await daemon.cli('rollback', SERVICE, '--yes');
    assert.equal(again.code, 1);
    assert.match(again.stderr, /409: .*rbcli/);
  });

  it('--to IMAGE takes a service that passed its window back to an older image, which becomes known-good', async () => {
    const daemon = await fresh('3s');
    await deploy(NAME, 'rollguard-fixture:v1.1', [], PORT);
    const passed = await waitFor('v1.1 to pass', async () => {
      const d = await newest(daemon);
      return d?.state === 'passed' ? d : undefined;
    }, 60_000);

    const at = await daemon.cli('rollback', SERVICE, '--yes');
    assert.equal(at.code, 1);
    assert.match(at.stderr, /already runs its known-good version rollguard-fixture:v1\.1.*--to IMAGE/);

    const missing = await daemon.cli('rollback', SERVICE, '--yes', '--to', 'rollguard-fixture:no-such-tag');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /image rollguard-fixture:no-such-tag is not on this host/);

    const r = await daemon.cli('rollback', SERVICE, '--yes', '--json', '--to', 'rollguard-fixture:v1');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const outcome = JSON.parse(r.stdout) as { deployment_id: number; to: string; state: string };
    assert.deepEqual([outcome.deployment_id, outcome.to, outcome.state], [passed.id, 'rollguard-fixture:v1', 'rolled_back'], 'with --json, one object and no progress lines');
    assert.equal((await inspect(NAME))?.Image, images.good);
    const d = await newest(daemon);
    assert.equal(d?.id, passed.id);
    assert.equal(d?.state, 'rolled_back');
    await waitFor('v1 known-good in status', async () => (await daemon.status()).services[SERVICE]?.image === images.good);
  });
});
