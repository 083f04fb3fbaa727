import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  buildFixtures, deploy, freePort, inspect, readyStatus, removeContainers, startRollguard, testSecret, waitFor,
  type FixtureImages, type HistoryRow, type Rollguard,
} from './harness.js';
import { alerts, silences, startAlertingPrometheus, startAlertmanager, type Silence, type Started } from './alertmanager-harness.js';

const PREFIX = 'rg-am-';
const NAME = `${PREFIX}web`;
const ALERT = 'RgAmHighErrorRate';

/** The alert Prometheus evaluates every second on the fixture's own counters: more than 5 % 5xx. */
const RULES = `groups:
  - name: rollguard-alertmanager-test
    interval: 1s
    rules:
      - alert: ${ALERT}
        expr: sum by (service) (rate(http_requests_total{code=~"5.."}[3s])) / sum by (service) (rate(http_requests_total[3s])) > 0.05
        labels: {severity: critical}
        annotations: {summary: "{{ $labels.service }} serves more than 5 % errors"}
`;

function policy(appPort: number, alertmanagerPort: number): string {
  return `version: 1
defaults:
  window: 40s
  interval: 1s
  max_attempts: 1
  stop_timeout: 1s
  recovery_timeout: 20s
  min_data_ratio: 0.5
alertmanager:
  url: "http://127.0.0.1:${alertmanagerPort}"
  silence: {for: 5m}
services:
  web:
    match: {container: ${NAME}}
    signals:
      paged: {alertmanager: {alertname: ${ALERT}, matchers: {severity: critical}}}
      ready: {http: {url: "http://127.0.0.1:${appPort}/cgi-bin/ready", timeout: 1s}}
    rules:
      - {name: paged by Alertmanager, signal: paged, above: 0, for: 1, severity: P0, action: rollback}
    recovery:
      - {signal: ready, above: 0}
      # The alert resolves while rollguard's silence is on, so Alertmanager sends no resolved
      # notification: only its API can tell the alert is over.
      - {signal: paged, below: 1}
`;
}

/** What Alertmanager showed at one moment: rollguard's silences of web, and the silences muting the test's alert. */
interface Seen { at: number; active: Silence[]; mutedBy: string[] }

/** Reads Alertmanager every 50 ms until stopped, so a silence that lives only while a revert runs is seen. */
function watchAlertmanager(url: string): { seen: Seen[]; stop(): Promise<void> } {
  const seen: Seen[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const [all, held] = await Promise.all([silences(url), alerts(url)]).catch(() => [[], []] as const);
      const ours = all.filter((s) => s.createdBy === 'rollguard' && s.matchers.some((m) => m.name === 'service' && m.value === 'web'));
      seen.push({
        at: Date.now(),
        active: ours.filter((s) => s.status.state === 'active'),
        mutedBy: held.filter((a) => a.labels.alertname === ALERT).flatMap((a) => a.status.silencedBy),
      });
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return { seen, stop: async () => { running = false; await loop; } };
}

describe('Alertmanager: a firing alert reverts the deploy, silenced while reverting (real Prometheus and Alertmanager)', { timeout: 300_000 }, () => {
  const token = testSecret('api-token');
  let images: FixtureImages;
  let appPort: number;
  let prom: Started | undefined;
  let am: Started | undefined;
  let rg: Rollguard | undefined;

  before(async () => {
    images = await buildFixtures();
    await removeContainers(PREFIX);
    appPort = await freePort();
    const amPort = await freePort();
    await deploy(NAME, 'rollguard-fixture:v1', [], appPort);
    prom = await startAlertingPrometheus({ appPort, service: 'web', rules: RULES, alertmanagerPort: amPort });
    rg = await startRollguard(policy(appPort, amPort), { env: { ROLLGUARD_API_TOKEN: token } });
    am = await startAlertmanager({ port: amPort, webhookUrl: `${rg.apiUrl}/api/v1/alertmanager`, token });
    await waitFor('rollguard to adopt v1 as known-good', async () => (await rg?.status())?.services.web?.image === images.good);
  });

  after(async () => {
    await rg?.stop();
    await am?.stop();
    await prom?.stop();
    await removeContainers(PREFIX);
  });

  it('a deploy whose alert fires in Alertmanager is reverted by the alertmanager rule; the silence covers the revert and is expired after', async () => {
    const watcher = watchAlertmanager((am as Started).url);
    let reverted: HistoryRow;
    try {
      await deploy(NAME, 'rollguard-fixture:v2-errors', [], appPort);
      reverted = await waitFor('the 20 %-error deploy to be reverted', async () => {
        const d = (await rg?.history('web'))?.[0];
        return d && d.to_image === images.errors && ['rolled_back', 'rollback_failed', 'passed', 'inconclusive'].includes(d.state) ? d : undefined;
      }, 90_000).catch(async (err) => {
        throw new Error(`${(err as Error).message}\nAlertmanager: ${await am?.logs()}\nPrometheus: ${await prom?.logs()}`);
      });
      // The silence is expired once the revert has ended, right after the state is recorded.
      await waitFor('rollguard\'s silence to be expired', async () => {
        const ours = (await silences((am as Started).url)).filter((s) => s.createdBy === 'rollguard');
        return ours.length > 0 && ours.every((s) => s.status.state === 'expired');
      }, 15_000);
    } finally {
      await watcher.stop();
    }

    assert.equal(reverted.state, 'rolled_back', `reason: ${reverted.reason}`);
    assert.match(reverted.reason ?? '', /paged by Alertmanager/);
    const running = await inspect(NAME);
    assert.equal(running?.Image, images.good, 'the known-good version runs again');
    assert.equal(await readyStatus(appPort), 200);

    const activeIds = [...new Set(watcher.seen.flatMap((s) => s.active.map((x) => x.id)))];
    assert.equal(activeIds.length, 1, 'one silence, active while the revert ran');
    const id = activeIds[0] as string;
    assert.ok(watcher.seen.some((s) => s.mutedBy.includes(id)), 'Alertmanager muted the firing alert with it');
    const [silence] = (await silences((am as Started).url)).filter((s) => s.id === id);
    assert.ok(silence);
    assert.deepEqual(silence.matchers.map(({ name, value, isRegex }) => ({ name, value, isRegex })), [{ name: 'service', value: 'web', isRegex: false }]);
    assert.match(silence.comment, /reverting deployment \d+ of web/);
    assert.equal(silence.status.state, 'expired');
    // It began when the revert was decided and lasted through the verification of the recovery.
    const decided = Date.parse(reverted.decided_at as string);
    const recovered = Date.parse(reverted.recovered_at as string);
    assert.ok(Date.parse(silence.startsAt) >= decided - 1_000 && Date.parse(silence.startsAt) <= recovered, `silence from ${silence.startsAt}; decided ${reverted.decided_at}, recovered ${reverted.recovered_at}`);
    assert.ok(Date.parse(silence.endsAt) >= recovered, `silence until ${silence.endsAt}; recovered ${reverted.recovered_at}`);
    assert.ok(Date.parse(silence.endsAt) < decided + 5 * 60_000, 'expired early, not left to run its 5 minutes');

    const logs = await (rg as Rollguard).logs();
    assert.match(logs, /Alertmanager silence created for the revert/);
    assert.match(logs, /Alertmanager silence expired: the revert ended/);
  });

  it('a good version deployed after the silenced revert is watched and passes: the earlier alert, resolved under rollguard\'s silence, does not count', async () => {
    await deploy(NAME, 'rollguard-fixture:v1.1', [], appPort);
    const judged = await waitFor('the good v1.1 to be judged', async () => {
      const d = (await rg?.history('web'))?.[0];
      return d && d.to_image === images.good2 && ['passed', 'passed_early', 'rolled_back', 'rollback_failed', 'inconclusive'].includes(d.state) ? d : undefined;
    }, 120_000);
    assert.ok(judged.state === 'passed' || judged.state === 'passed_early', `${judged.state}: ${judged.reason}`);
    assert.equal((await inspect(NAME))?.Image, images.good2, 'v1.1 still runs');
    const res = await fetch(`${(rg as Rollguard).apiUrl}/api/v1/deployments/${judged.id}`);
    const detail = (await res.json()) as { samples: { signal: string; stage: string; value: number | null; detail: string | null }[] };
    const paged = detail.samples.filter((x) => x.signal === 'paged' && x.stage === 'watch');
    assert.ok(paged.length >= 10, `${paged.length} alertmanager samples`);
    assert.deepEqual(paged.filter((x) => x.value !== 0), [], 'every alertmanager sample of v1.1 is 0 (data, not no data)');
  });

  it('the receiver refuses a notification without the token (401) and a bad body (400, naming the problem)', async () => {
    const url = `${(rg as Rollguard).apiUrl}/api/v1/alertmanager`;
    const body = JSON.stringify({ version: '4', receiver: 'x', status: 'firing', alerts: [], groupLabels: {}, commonLabels: {}, externalURL: 'http://am' });
    assert.equal((await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).status, 401);
    const bad = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ version: '4', status: 'firing', alerts: [{ status: 'firing' }] }) });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /alerts\.0\.fingerprint: /);
    const ok = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body });
    assert.equal(ok.status, 200, 'the same body with the token is taken');
  });

  it('the receiver logs each notification and counts its firing alerts per service in the status, without deciding any sample', async () => {
    const url = `${(rg as Rollguard).apiUrl}/api/v1/alertmanager`;
    const alert = { status: 'firing', labels: { alertname: 'RgAmByHand', service: 'web' }, annotations: {}, startsAt: new Date().toISOString(), endsAt: '0001-01-01T00:00:00Z', fingerprint: 'rg-am-by-hand' };
    const body = JSON.stringify({ version: '4', receiver: 'rollguard', status: 'firing', alerts: [alert], groupLabels: {}, commonLabels: {}, externalURL: 'http://am' });
    assert.equal((await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body })).status, 200);
    const status = (await (await fetch(`${(rg as Rollguard).apiUrl}/api/v1/status`, { headers: { authorization: `Bearer ${token}` } })).json()) as { alertmanager_firing?: Record<string, number> };
    assert.deepEqual(status.alertmanager_firing, { web: 1 });
    await waitFor('the notification in the log', async () => /"alertnames":\["RgAmByHand"\].*"msg":"Alertmanager notification received"/.test(await (rg as Rollguard).logs()), 5_000);
  });
});
