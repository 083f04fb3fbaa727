import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  buildFixtures, deploy, docker, fixturePolicy, freshDatabase, inspect, removeContainers, startPrometheus, startRollguard,
  waitFor, type FixtureImages, type HistoryRow, type Prometheus, type Rollguard,
} from './harness.js';

const NAME = 'rg-rules';
const PORT = 18087;
const SERVICE = 'rules';
const FINAL = ['passed', 'rolled_back', 'rollback_failed', 'inconclusive', 'superseded'];

/** The fixture policy with extra keys under `defaults:` and at the service level. */
function policy(promUrl: string, defaults: string, serviceKeys = '', window = '8s'): string {
  let text = fixturePolicy(promUrl, { port: PORT, service: SERVICE, container: NAME, window });
  text = text.replace('  min_data_ratio:', `${defaults.split('\n').filter(Boolean).map((l) => `  ${l}`).join('\n')}\n  min_data_ratio:`);
  if (serviceKeys) {
    text = text.replace('    signals:\n', `${serviceKeys.split('\n').filter(Boolean).map((l) => `    ${l}`).join('\n')}\n    signals:\n      request_rate:\n        prometheus: sum(rate(http_requests_total{service="{{service}}"}[3s]))\n`);
  }
  return text;
}

async function deployAndSettle(rg: Rollguard, ref: string, timeoutMs = 60_000): Promise<HistoryRow> {
  const before = (await rg.history(SERVICE))[0]?.id ?? 0;
  await deploy(NAME, ref, [], PORT);
  return waitFor(`the deployment of ${ref} to settle`, async () => {
    const newest = (await rg.history(SERVICE))[0];
    return newest && newest.id > before && FINAL.includes(newest.state) ? newest : undefined;
  }, timeoutMs);
}

describe('policy rule kinds on the real Prometheus and Docker engine', { timeout: 300_000 }, () => {
  let images: FixtureImages;
  let prom: Prometheus;
  let db: { url: string; drop(): Promise<void> };
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

  async function fresh(text: string): Promise<Rollguard> {
    await rg?.stop();
    await db?.drop();
    db = await freshDatabase();
    await deploy(NAME, 'rollguard-fixture:v1', [], PORT);
    rg = await startRollguard(text, { databaseUrl: db.url });
    const started = rg;
    await waitFor('adoption', async () => (await started.status()).services[SERVICE]?.image === images.good);
    return started;
  }

  it('below the traffic floor an error-rate breach is no data: no revert, the window ends inconclusive', async () => {
    const daemon = await fresh(policy(prom.url, '', 'min_requests: {signal: request_rate, at_least: 100000}'));
    const d = await deployAndSettle(daemon, 'rollguard-fixture:v2-errors');
    assert.equal(d.state, 'inconclusive', `reason: ${d.reason}`);
    assert.match(d.reason ?? '', /error rate above 5%/);
    assert.equal((await inspect(NAME))?.Image, images.errors, 'not reverted on too little traffic');
  });

  it('at or above the traffic floor the same deploy is reverted', async () => {
    const daemon = await fresh(policy(prom.url, '', 'min_requests: {signal: request_rate, at_least: 1}'));
    const d = await deployAndSettle(daemon, 'rollguard-fixture:v2-errors');
    assert.equal(d.state, 'rolled_back', `reason: ${d.reason}`);
  });

  it('warm-up: no sample counts before it ends, so the decision comes after warm-up plus `for` samples', async () => {
    const daemon = await fresh(policy(prom.url, 'warmup: 6s'));
    const d = await deployAndSettle(daemon, 'rollguard-fixture:v2-unready');
    assert.equal(d.state, 'rolled_back', `reason: ${d.reason}`);
    const decidedAfterMs = Date.parse(d.decided_at ?? '') - Date.parse(d.started_at);
    assert.ok(decidedAfterMs >= 6_000 + 2_000, `decided ${decidedAfterMs} ms after start; warm-up is 6 s and for: 3 at 1 s`);
  });

  it('on_no_data then inconclusive: Prometheus down ends the watch early as inconclusive, never a revert', async () => {
    const daemon = await fresh(policy(prom.url, 'on_no_data: {after: 3, then: inconclusive}', '', '60s'));
    await prom.stop();
    try {
      const d = await deployAndSettle(daemon, 'rollguard-fixture:v2-errors', 40_000);
      assert.equal(d.state, 'inconclusive', `reason: ${d.reason}`);
      assert.match(d.reason ?? '', /no data for 3 consecutive samples of "error rate above 5%"/);
      assert.ok(Date.parse(d.decided_at ?? '') - Date.parse(d.detected_at) < 30_000, 'ended long before the 60 s window');
      assert.equal((await inspect(NAME))?.Image, images.errors);
    } finally {
      await prom.start();
      await prom.waitForData();
    }
  });

  it('on_no_data then notify: tells once per streak and keeps watching', async () => {
    const daemon = await fresh(policy(prom.url, 'on_no_data: {after: 3, then: notify}'));
    await prom.stop();
    try {
      const d = await deployAndSettle(daemon, 'rollguard-fixture:v1.1', 40_000);
      assert.equal(d.state, 'inconclusive', `reason: ${d.reason}`);
      const told = (await daemon.logs()).split('\n').filter((l) => l.includes('"rule without data"'));
      assert.ok(told.length >= 1 && told.length <= 3, `told ${told.length} times over an 8 s window at after: 3`);
      assert.equal((await inspect(NAME))?.Image, images.good2);
    } finally {
      await prom.start();
      await prom.waitForData();
    }
  });

  /** A fixture version with its own image ID and error percentage. */
  async function variant(tag: string, errorPct: number): Promise<string> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rg-variant-'));
    try {
      await writeFile(path.join(dir, 'Dockerfile'), `FROM rollguard-fixture:v1\nENV ERROR_PCT=${errorPct}\nLABEL rollguard.test.variant=${tag}\n`);
      await docker('build', '-q', '-t', `rollguard-fixture:${tag}`, dir);
      return docker('image', 'inspect', '-f', '{{.Id}}', `rollguard-fixture:${tag}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  it('above_baseline catches a regression an absolute 5 % threshold misses, and passes a version as good as before', async () => {
    const base = await variant('rules-base-2pct', 2);
    const same = await variant('rules-same-2pct', 2);
    const worse = await variant('rules-worse-4pct', 4);
    const text = policy(prom.url, '').replace(
      '      - name: readiness failing\n',
      '      - name: errors 50% above baseline\n        signal: error_rate\n        above_baseline: 1.5\n        min_threshold: 0.01\n        baseline: 15s\n        for: 3\n        severity: P1\n        action: rollback\n      - name: readiness failing\n',
    ).replace('{signal: error_rate, below: 0.01}', '{signal: error_rate, below: 0.03}'); // the known-good version runs at 2 %
    assert.match(text, /above_baseline: 1.5/);
    assert.match(text, /below: 0.03/);
    await rg?.stop();
    await db?.drop();
    db = await freshDatabase();
    await deploy(NAME, 'rollguard-fixture:rules-base-2pct', [], PORT);
    rg = await startRollguard(text, { databaseUrl: db.url });
    const daemon = rg;
    await waitFor('adoption of the 2 % version', async () => (await daemon.status()).services[SERVICE]?.image === base);
    await new Promise((r) => setTimeout(r, 16_000)); // a baseline range of history at 2 %
    const ok = await deployAndSettle(daemon, 'rollguard-fixture:rules-same-2pct');
    assert.equal(ok.state, 'passed', `as good as before: ${ok.reason}`);
    assert.equal((await inspect(NAME))?.Image, same);
    await new Promise((r) => setTimeout(r, 16_000));
    const bad = await deployAndSettle(daemon, 'rollguard-fixture:rules-worse-4pct');
    assert.equal(bad.state, 'rolled_back', `4 % against a 2 % baseline: ${bad.reason}`);
    assert.match(bad.reason ?? '', /errors 50% above baseline/);
    assert.match(await daemon.logs(), /"baseline measured"/);
    assert.notEqual((await inspect(NAME))?.Image, worse);
  });

  it('an SLO burn-rate rule reverts a deploy that burns the budget in both windows and passes one that does not', async () => {
    const text = policy(prom.url, '')
      .replace('    signals:\n', `    signals:\n      error_ratio:\n        prometheus: sum(rate(http_requests_total{service="{{service}}",code=~"5.."}[{{range}}])) / sum(rate(http_requests_total{service="{{service}}"}[{{range}}]))\n`)
      .replace('      - name: error rate above 5%\n        signal: error_rate\n        above: 0.05', '      - name: error budget burning\n        signal: error_ratio\n        burn_rate: {slo: 0.99, windows: [[3s, 6s, 2]]}');
    assert.match(text, /burn_rate: \{slo: 0.99/);
    const daemon = await fresh(text);
    const good = await deployAndSettle(daemon, 'rollguard-fixture:v1.1');
    assert.equal(good.state, 'passed', `no budget burnt: ${good.reason}`);
    const bad = await deployAndSettle(daemon, 'rollguard-fixture:v2-errors');
    assert.equal(bad.state, 'rolled_back', `20 % errors burn a 1 % budget 20× in both windows: ${bad.reason}`);
    assert.match(bad.reason ?? '', /error budget burning/);
    assert.equal((await inspect(NAME))?.Image, images.good2);
  });

  it('a scope rule (min_series) reverts only when several series are affected, not one', async () => {
    // One series per status code: the good version has traffic on 200 only, the bad one on 200 and 500.
    const text = policy(prom.url, '')
      .replace('    signals:\n', '    signals:\n      rate_by_code:\n        prometheus: sum by (code) (rate(http_requests_total{service="{{service}}"}[3s]))\n')
      .replace('      - name: error rate above 5%\n        signal: error_rate\n        above: 0.05', '      - name: several codes busy\n        signal: rate_by_code\n        above: 1\n        min_series: 2');
    assert.match(text, /min_series: 2/);
    const daemon = await fresh(text);
    const good = await deployAndSettle(daemon, 'rollguard-fixture:v1.1');
    assert.equal(good.state, 'passed', `one series busy is not enough: ${good.reason}`);
    const bad = await deployAndSettle(daemon, 'rollguard-fixture:v2-errors');
    assert.equal(bad.state, 'rolled_back', `two series busy: ${bad.reason}`);
    assert.match(bad.reason ?? '', /several codes busy/);
  });

  it('inconclusive_is_good: an inconclusive version becomes the revert target', async () => {
    const daemon = await fresh(policy(prom.url, 'inconclusive_is_good: true'));
    await prom.stop();
    let d: HistoryRow;
    try {
      d = await deployAndSettle(daemon, 'rollguard-fixture:v1.1', 40_000);
    } finally {
      await prom.start();
      await prom.waitForData();
    }
    assert.equal(d.state, 'inconclusive', `reason: ${d.reason}`);
    assert.match(d.reason ?? '', /now known-good \(inconclusive_is_good\)/);
    const bad = await deployAndSettle(daemon, 'rollguard-fixture:v2-errors');
    assert.equal(bad.state, 'rolled_back', `reason: ${bad.reason}`);
    assert.equal((await inspect(NAME))?.Image, images.good2, 'reverted to the inconclusive-but-good version');
  });
});
