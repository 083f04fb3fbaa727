/**
 * Batched Prometheus queries with the real parts: six fixture services sharing one query template.
 * Prometheus itself counts the instant queries it received (prometheus_http_requests_total for
 * /api/v1/query): one per tick for the six, not six; the batched query's series equal each
 * service's own query at the same time; and a bad service among them is still reverted while the
 * good ones pass. Ports 18200-18205, containers rg-perf-*.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { planBatch, type BatchPlan } from '../../src/signals/batch-promql.js';
import { renderTemplate } from '../../src/config/template.js';
import {
  buildFixtures, deploy, freshDatabase, removeContainers, startPrometheus, startRollguard, waitFor,
  type FixtureImages, type HistoryRow, type Prometheus, type Rollguard,
} from './harness.js';

const PREFIX = 'rg-perf-';
const N = 6;
const SERVICES = Array.from({ length: N }, (_, i) => ({ service: `perf${i}`, container: `${PREFIX}${i}`, port: 18200 + i }));
const ERROR_RATE = 'sum(rate(http_requests_total{service="{{service}}",code=~"5.."}[3s])) / sum(rate(http_requests_total{service="{{service}}"}[3s]))';
const FINAL = ['passed', 'rolled_back', 'rollback_failed', 'inconclusive', 'superseded'];

function policy(promUrl: string): string {
  return `version: 1
prometheus: {url: ${promUrl}, timeout: 2s}
defaults: {window: 14s, interval: 1s, max_attempts: 2, stop_timeout: 1s, recovery_timeout: 20s, min_data_ratio: 0.5}
services:
${SERVICES.map((s) => `  ${s.service}:
    match: {container: ${s.container}}
    signals:
      error_rate:
        prometheus: '${ERROR_RATE}'
    rules:
      - {name: error rate above 5%, signal: error_rate, above: 0.05, for: 3, severity: P0, action: rollback}
    recovery:
      - {signal: error_rate, below: 0.01}`).join('\n')}
`;
}

/** Instant queries Prometheus has answered so far, from its own /metrics. */
async function queriesReceived(prom: Prometheus): Promise<number> {
  const text = await (await fetch(`${prom.url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('prometheus_http_requests_total{') && line.includes('handler="/api/v1/query"')) sum += Number(line.split(' ').pop());
  }
  return sum;
}

async function query(prom: Prometheus, q: string, time: number): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const res = await fetch(`${prom.url}/api/v1/query`, { method: 'POST', body: new URLSearchParams({ query: q, time: String(time) }) });
  const body = (await res.json()) as { status: string; data: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] } };
  assert.equal(body.status, 'success', q);
  assert.equal(body.data.resultType, 'vector', q);
  return body.data.result;
}

async function newest(rg: Rollguard, service: string, after: number): Promise<HistoryRow | undefined> {
  const d = (await rg.history(service))[0];
  return d && d.id > after ? d : undefined;
}

describe('batched Prometheus queries (six services sharing a template)', { timeout: 300_000 }, () => {
  let images: FixtureImages;
  let prom: Prometheus;
  let rg: Rollguard;
  let db: { url: string; drop(): Promise<void> };

  before(async () => {
    images = await buildFixtures();
    await removeContainers(PREFIX);
    prom = await startPrometheus(SERVICES.map((s) => ({ port: s.port, service: s.service })));
    db = await freshDatabase();
    await Promise.all(SERVICES.map((s) => deploy(s.container, 'rollguard-fixture:v1', [], s.port)));
    for (const s of SERVICES) await prom.waitForData(`sum(rate(http_requests_total{service="${s.service}"}[3s]))`);
    rg = await startRollguard(policy(prom.url), { databaseUrl: db.url });
    await waitFor('every service adopted', async () => {
      const st = await rg.status();
      return SERVICES.every((s) => st.services[s.service]?.image === images.good);
    }, 30_000);
  });

  after(async () => {
    await rg?.stop();
    await prom?.stop();
    await removeContainers(PREFIX);
    await db?.drop();
  });

  it('the batched query gives each service exactly the series of its own query at the same time', async () => {
    const templates = [
      ERROR_RATE,
      'sum by (code) (rate(http_requests_total{service="{{service}}"}[5s]))',
      'max_over_time(sum(rate(http_requests_total{service="{{service}}"}[3s]))[10s:1s]) * 2',
      'sum(rate(http_requests_total{service="{{service}}",code="200"}[5s])) / on() sum(rate(http_requests_total{service="{{service}}"}[5s]))',
    ];
    // Every template has data for every service before the comparison (a loaded machine scrapes late).
    for (const template of templates) {
      for (const s of SERVICES) {
        const own = renderTemplate(template, { service: s.service, container: s.container, image: '', version: '' });
        await waitFor(`${template} for ${s.service} to have data`, async () => (await query(prom, own, Date.now() / 1000 - 1)).length > 0, 30_000, 500);
      }
    }
    const time = Date.now() / 1000 - 1;
    for (const template of templates) {
      const plan = planBatch(template);
      assert.equal(plan.kind, 'batch', template);
      const batched = await query(prom, (plan as BatchPlan).render(SERVICES.map((s) => s.service)), time);
      for (const s of SERVICES) {
        const own = await query(prom, renderTemplate(template, { service: s.service, container: s.container, image: '', version: '' }), time);
        const mine = batched.filter((r) => r.metric.service === s.service).map((r) => {
          const { service: _, ...rest } = r.metric;
          return { metric: rest, value: r.value[1] };
        });
        const want = own.map((r) => {
          const { service: _, ...rest } = r.metric;
          return { metric: rest, value: r.value[1] };
        });
        const key = (x: { metric: Record<string, string> }): string => JSON.stringify(Object.entries(x.metric).sort());
        assert.deepEqual(mine.sort((a, b) => key(a).localeCompare(key(b))), want.sort((a, b) => key(a).localeCompare(key(b))), `${template} for ${s.service}`);
        assert.ok(want.length > 0, `${template} for ${s.service} has data`);
      }
    }
  });

  it('six watches sharing a template cost Prometheus about one query per tick, not six', async (t) => {
    const before = await Promise.all(SERVICES.map(async (s) => (await rg.history(s.service))[0]?.id ?? 0));
    await Promise.all(SERVICES.map((s) => deploy(s.container, 'rollguard-fixture:v1.1', [], s.port)));
    await waitFor('six watches', async () => {
      const st = await rg.status();
      return SERVICES.every((s) => st.services[s.service]?.watch !== null);
    }, 30_000, 250);
    // New watches join one rhythm at their second tick at the latest; count over the next 8 s.
    await new Promise((r) => setTimeout(r, 3_000));
    const q0 = await queriesReceived(prom);
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 8_000));
    const q1 = await queriesReceived(prom);
    const seconds = (Date.now() - t0) / 1000;
    const received = q1 - q0 - 1; // the second read of /metrics is not a query; the first one is not counted either
    const perTick = received / seconds;
    t.diagnostic(`Prometheus received ${received} instant queries in ${seconds.toFixed(1)} s: ${perTick.toFixed(2)} per 1 s tick for six services`);
    // Unbatched: 6 queries per 1 s tick. One rule shared by six: 1 per tick, plus a second batch
    // now and then when a tick runs late.
    assert.ok(perTick <= 1.5, `Prometheus received ${received + 1} instant queries in ${seconds.toFixed(1)} s (${perTick.toFixed(2)} per tick); six services unbatched would be ${6 * seconds}`);
    assert.ok(perTick >= 0.5, `the watches query Prometheus (${perTick.toFixed(2)} per tick)`);
    const metrics = await (await fetch(`${rg.apiUrl}/metrics`)).text();
    assert.match(metrics, /rollguard_prometheus_queries_total\{mode="batch"\} [1-9]/);
    assert.match(metrics, /rollguard_prometheus_batch_fallbacks_total\{reason="unbatchable"\} 0$/m, 'the series exists from the start');
    assert.doesNotMatch(metrics, /rollguard_prometheus_batch_fallbacks_total\{[^}]*\} [1-9]/, 'nothing fell back');
    const settled = await waitFor('the six good deployments to pass', async () => {
      const rows = await Promise.all(SERVICES.map((s, i) => newest(rg, s.service, before[i] ?? 0)));
      return rows.every((d) => d && FINAL.includes(d.state)) ? rows : undefined;
    }, 60_000, 500);
    assert.deepEqual(settled.map((d) => d?.state), SERVICES.map(() => 'passed'));
  });

  it('a bad service among six batched ones is reverted, and the five good ones pass', async () => {
    const before = await Promise.all(SERVICES.map(async (s) => (await rg.history(s.service))[0]?.id ?? 0));
    await Promise.all(SERVICES.map((s, i) => deploy(s.container, i === 2 ? 'rollguard-fixture:v2-errors' : 'rollguard-fixture:v1', [], s.port)));
    const settled = await waitFor('the six deployments to settle', async () => {
      const rows = await Promise.all(SERVICES.map((s, i) => newest(rg, s.service, before[i] ?? 0)));
      return rows.every((d) => d && FINAL.includes(d.state)) ? rows : undefined;
    }, 90_000, 500);
    assert.deepEqual(settled.map((d) => d?.state), SERVICES.map((_, i) => (i === 2 ? 'rolled_back' : 'passed')), JSON.stringify(settled.map((d) => d?.reason)));
    assert.match(settled[2]?.reason ?? '', /error rate above 5%/);
    await waitFor('perf2 runs the known-good image again', async () => (await rg.status()).services.perf2?.image === images.good2, 30_000);
  });
});
