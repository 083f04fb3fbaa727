/**
 * The status page in a real browser (Debian's chromium driven by playwright-core) while a real
 * daemon watches a real deployment that breaches and is reverted.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import {
  buildFixtures, deploy, fixturePolicy, freshDatabase, inspect, KEPT_LOGS, removeContainers, startPrometheus, startRollguard, waitFor,
  type FixtureImages, type Prometheus, type Rollguard,
} from './harness.js';

const NAME = 'rg-sp-web';
const PORT = 18701;
const ERROR_RULE = 'error rate above 5%';
const READY_RULE = 'readiness failing';
/** Long enough that the breach shows on the page for several of its 2 s updates before the revert. */
const ERROR_FOR = 8;
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

describe('status page in a real browser during a watch and a revert', { timeout: 240_000 }, () => {
  let images: FixtureImages;
  let prom: Prometheus;
  let rg: Rollguard;
  let browser: BrowserContext;
  let page: Page;
  let profile: string;
  let db: { url: string; drop(): Promise<void> };
  const requested: string[] = [];

  before(async () => {
    images = await buildFixtures();
    await removeContainers(NAME);
    prom = await startPrometheus([{ port: PORT, service: 'web' }]);
    await deploy(NAME, 'rollguard-fixture:v1', [], PORT);
    await prom.waitForData();
    const policy = fixturePolicy(prom.url, { container: NAME, port: PORT, window: '60s' })
      .replace('above: 0.05\n        for: 3', `above: 0.05\n        for: ${ERROR_FOR}`);
    assert.ok(policy.includes(`for: ${ERROR_FOR}`), 'the error rule waits longer than usual');
    db = await freshDatabase();
    rg = await startRollguard(policy, { databaseUrl: db.url });
    profile = await mkdtemp(path.join(os.tmpdir(), 'rg-sp-chromium-'));
    browser = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS, viewport: { width: 1200, height: 900 } });
    page = browser.pages()[0] ?? (await browser.newPage());
    page.on('request', (req) => requested.push(req.url()));
  });

  after(async () => {
    await browser?.close();
    await rg?.stop();
    await prom?.stop();
    await removeContainers(NAME);
    await db?.drop();
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  const service = (): ReturnType<Page['locator']> => page.locator('article[data-service="web"]');
  const ruleRow = (name: string): ReturnType<Page['locator']> => service().locator(`tr[data-rule="${name}"]`);

  it('shows the service at rest: current and known-good version, this instance leading, no watch', async () => {
    await waitFor('the running container adopted as known-good', async () => (await rg.status()).services.web?.image === images.good);
    await page.goto(`${rg.apiUrl}/`);
    await service().waitFor();
    assert.match(await service().locator('dd.current').innerText(), /rollguard-fixture:v1 \([0-9a-f]{12}\)/);
    assert.match(await service().locator('dd.known-good').innerText(), /rollguard-fixture:v1 \([0-9a-f]{12}\) since \d{4}-\d\d-\d\d/);
    assert.match(await service().locator('dd.leadership').innerText(), /leader\s+this instance/);
    assert.equal(await service().locator('.no-watch').innerText(), 'No deployment being watched.');
  });

  let deploymentId = 0;
  it('during the watch the page updates by itself: progress through the window and each rule against its threshold', async () => {
    await deploy(NAME, 'rollguard-fixture:v2-errors', [], PORT);
    // No reload: the page's own polling brings the watch in.
    const watch = service().locator('section.watch');
    await watch.waitFor({ timeout: 20_000 });
    deploymentId = Number(await watch.getAttribute('data-deployment'));
    assert.ok(deploymentId > 0);
    assert.match(await watch.locator('h3').innerText(), /rollguard-fixture:v1 → rollguard-fixture:v2-errors/);

    const breaching = ruleRow(ERROR_RULE).and(page.locator('[data-result="breach"]'));
    await breaching.waitFor({ timeout: 20_000 });
    const cells = await breaching.locator('td').allInnerTexts();
    assert.equal(cells[3], 'above 0.05');
    assert.equal(cells[4], 'breach');
    assert.ok(Number(cells[2]) > 0.05, `the last error rate shown (${cells[2]}) is above the threshold`);
    assert.match(cells[5] ?? '', new RegExp(`^[1-9]\\d* / ${ERROR_FOR}$`));

    const ready = await ruleRow(READY_RULE).locator('td').allInnerTexts();
    assert.deepEqual([ready[2], ready[3], ready[4]], ['1', 'below 1', 'ok'], 'readiness answers, so its rule holds');

    const percent = async (): Promise<number> => Number(await watch.locator('.progress-text').getAttribute('data-percent'));
    assert.match(await watch.locator('.progress-text').innerText(), /^\d+% of the window: \d+ s of 60 s, \d+ samples; ends \d{4}-/);
    const first = await percent();
    await waitFor('the progress to move on', async () => (await percent()) > first, 15_000);
    assert.equal(await watch.locator('[role="progressbar"]').getAttribute('aria-valuenow'), String(await percent()));
    mkdirSync(KEPT_LOGS, { recursive: true });
    const shot = path.join(KEPT_LOGS, 'status-page-watch.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`status page screenshot: ${shot}`);
  });

  it('the deployment page follows the watch through the revert: outcome, timeline and the chart with its threshold', async () => {
    await page.goto(`${rg.apiUrl}/deployments/${deploymentId}`);
    await page.locator('h1').waitFor();
    assert.match(await page.locator('h1').innerText(), new RegExp(`web deployment #${deploymentId}`));
    // Updated in place until the deployment is final; then the page says it no longer updates.
    const outcome = page.locator('.summary .outcome [data-state="rolled_back"]');
    await outcome.waitFor({ timeout: 60_000 });
    await page.locator('main#live[data-live="false"]').waitFor({ timeout: 10_000 });
    assert.equal(await outcome.innerText(), 'rolled back');
    assert.match(await page.locator('#reason').innerText(), /error rate above 5%/);
    assert.match(await page.locator('#live-note').innerText(), /no longer updating/);

    const kinds = await page.locator('ol.timeline li').evaluateAll((lis) => lis.map((li) => li.getAttribute('data-kind')));
    assert.equal(kinds[0], 'deployed');
    assert.ok(kinds.includes('decision: rollback'), `timeline: ${kinds.join(', ')}`);
    assert.ok(kinds.some((k) => k?.startsWith('action: ')), `timeline has revert actions: ${kinds.join(', ')}`);
    assert.ok(kinds.includes('outcome: rolled back'), `timeline: ${kinds.join(', ')}`);
    assert.ok(kinds.includes('recovered'), `timeline: ${kinds.join(', ')}`);
    assert.equal(kinds.at(-1), 'outcome: rolled back', `the outcome closes the timeline: ${kinds.join(', ')}`);
    assert.ok(kinds.indexOf('decision: rollback') < kinds.indexOf('recovered'));

    const chart = page.locator(`figure.chart[data-rule="${ERROR_RULE}"]`);
    assert.ok(Number(await chart.getAttribute('data-points')) >= ERROR_FOR, 'the chart draws every error-rate sample of the window');
    assert.equal(await chart.locator('svg').first().isVisible(), true);
    const labels = (await chart.locator('svg text').allTextContents()).join(' | ');
    assert.match(labels, /threshold > 0\.05/);
    assert.match(labels, /(^| )revert \d\d:\d\d:\d\d/, `the revert is marked when its first step started: ${labels}`);
    assert.doesNotMatch(labels, /would revert|revert \(failed\)/);
    assert.match(await chart.locator('figcaption').innerText(), new RegExp(`[1-9]\\d* breach`));
    assert.ok(await page.locator('table.samples tr[data-result="breach"]').count() >= ERROR_FOR);

    mkdirSync(KEPT_LOGS, { recursive: true });
    const shot = path.join(KEPT_LOGS, `status-page-deployment-${deploymentId}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`status page screenshot: ${shot}`);
  });

  it('/ afterwards: the known-good version runs again, no watch, the deployment listed as rolled back', async () => {
    assert.equal((await inspect(NAME))?.Image, images.good);
    await page.goto(`${rg.apiUrl}/`);
    await service().locator('.no-watch').waitFor();
    assert.match(await service().locator('dd.current').innerText(), /rollguard-fixture:v1 /);
    const row = page.locator(`table.deployments tr[data-deployment="${deploymentId}"]`);
    assert.match(await row.innerText(), /web\s+rollguard-fixture:v1 → rollguard-fixture:v2-errors\s+rolled back\s+.*error rate above 5%/);
    mkdirSync(KEPT_LOGS, { recursive: true });
    const shot = path.join(KEPT_LOGS, 'status-page-home.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`status page screenshot: ${shot}`);
  });

  it('an update that fails or hangs leaves the data and a stale banner with the time of the last update; the next one clears it', async () => {
    await page.goto(`${rg.apiUrl}/`);
    await service().waitFor();
    const banner = page.locator('#stale-banner');
    await page.route(`${rg.apiUrl}/`, (route) => route.fulfill({ status: 503, contentType: 'text/plain', body: 'down' }));
    await banner.waitFor({ timeout: 10_000 });
    assert.match(await banner.innerText(), /^stale — not updated since \d\d:\d\d:\d\d UTC: rollguard answered HTTP 503/);
    assert.match((await page.locator('body').getAttribute('class')) ?? '', /\bstale\b/);
    assert.equal(await service().count(), 1, 'the data last shown stay');

    // A request that never answers is given up after 8 s rather than freezing the updates.
    await page.unrouteAll({ behavior: 'ignoreErrors' });
    await page.route(`${rg.apiUrl}/`, () => {});
    await waitFor('the hung request given up', async () => /did not answer within 8 s/.test(await banner.innerText()), 20_000);

    await page.unrouteAll({ behavior: 'ignoreErrors' });
    await banner.waitFor({ state: 'detached', timeout: 20_000 });
    assert.doesNotMatch((await page.locator('body').getAttribute('class')) ?? '', /\bstale\b/);
  });

  it('loaded nothing from outside the daemon', () => {
    const origin = new URL(rg.apiUrl).origin;
    assert.ok(requested.length > 5, `requests seen: ${requested.length}`);
    const elsewhere = requested.filter((u) => !u.startsWith('data:') && new URL(u).origin !== origin);
    assert.deepEqual(elsewhere, []);
    assert.ok(requested.includes(`${origin}/status-page.js`), 'the live-update script came from the daemon');
  });
});
