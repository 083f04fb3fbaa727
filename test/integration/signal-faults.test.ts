/**
 * Faults in what the signal probes read, done for real against the probes themselves: Debian's
 * Prometheus scraping an exporter on 127.0.0.1 and answering +Inf and -Inf, the host clock moved
 * 10 minutes either way under libfaketime (the built provider in a child process), servers on
 * 127.0.0.1 that trickle their body a byte a second, answer too much, or end header lines in a
 * bare LF, and PostgreSQL keeping a +Inf sample. No Docker.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import pino from 'pino';
import { Registry } from 'prom-client';
import { createMetrics } from '../../src/api/metrics.js';
import { parsePolicy } from '../../src/config/load-policy.js';
import type { HttpSignal, PrometheusSignal } from '../../src/config/policy.js';
import { ruleSignals, sampleBurnRates, sampleSignals, valuesOf } from '../../src/daemon/sampling.js';
import type { NotificationEvent } from '../../src/model/notification.js';
import { renderChart } from '../../src/notify/chart.js';
import { renderEmail, renderWebhook } from '../../src/notify/render.js';
import { assess, emptyTally } from '../../src/policy/assess.js';
import { BatchingPrometheusProvider, defaultBatchOptions } from '../../src/signals/batch-prometheus.js';
import { HttpHealthProvider } from '../../src/signals/http-health.js';
import { queryRange } from '../../src/signals/prometheus-history.js';
import { PrometheusProvider } from '../../src/signals/prometheus.js';
import { openStore } from '../../src/store/open-store.js';
import { Outbox } from '../../src/store/outbox.js';
import type { Store } from '../../src/store/store.js';
import { CLI, freshDatabase, ROOT, startPrometheus, type Prometheus } from './harness.js';

const run = promisify(execFile);
const quiet = pino({ level: 'silent' });
const template = (service: string) => ({ service, container: service, image: 'app:v2', version: 'v2' });
const probe = (service: string, at = new Date()) => ({ template: template(service), containerId: service, at });

/**
 * An exporter whose counters follow the wall clock: requests and errors grow 10 a second, successes
 * stay put (every request fails: errors / successes is +Inf). Tenant a fails, tenant b does not.
 */
async function startExporter(): Promise<{ port: number; close(): Promise<void> }> {
  const started = Date.now();
  const server = http.createServer((_req, res) => {
    const n = Math.round((Date.now() - started) / 100);
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    res.end([
      '# TYPE app_requests_total counter', `app_requests_total ${n}`,
      '# TYPE app_errors_total counter', `app_errors_total ${n}`,
      '# TYPE app_successes_total counter', 'app_successes_total 5',
      '# TYPE tenant_errors_total counter', `tenant_errors_total{tenant="a"} ${n}`, 'tenant_errors_total{tenant="b"} 0',
      '# TYPE tenant_successes_total counter', 'tenant_successes_total{tenant="a"} 5', `tenant_successes_total{tenant="b"} ${n}`,
      '',
    ].join('\n'));
  });
  return listen(server);
}

async function listen(server: http.Server | net.Server): Promise<{ port: number; close(): Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

/**
 * A server that sends its headers at once, then its body one byte a second: never idle for as
 * long as a 1.5 s timeout, which is all axios's `timeout` (an idle timeout of the socket) watches.
 */
async function trickler(contentType: string, body: string): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
    res.flushHeaders();
    let sent = 0;
    const timer = setInterval(() => {
      if (sent >= body.length) return void (clearInterval(timer), res.end());
      res.write(body[sent++]);
    }, 1_000);
    req.socket.on('close', () => clearInterval(timer));
  });
  return listen(server);
}

/** A server answering every request with `body` (of any size) at once. */
async function answering(contentType: string, body: string): Promise<{ port: number; close(): Promise<void> }> {
  return listen(http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': contentType });
    res.end(body);
  }));
}

/** A TCP server that answers each request with `raw` bytes and closes. */
async function rawServer(raw: string): Promise<{ port: number; close(): Promise<void> }> {
  return listen(net.createServer((socket) => {
    socket.once('data', () => socket.end(raw));
    socket.on('error', () => {});
  }));
}

const httpSignal = (port: number, over: Partial<HttpSignal> = {}): HttpSignal => ({
  kind: 'http', name: 'ready', url: `http://127.0.0.1:${port}/ready`, status: 200, json: { status: 'ok' }, timeoutMs: 1_500, ...over,
} as HttpSignal);

describe('signal faults', () => {
  let exporter: { port: number; close(): Promise<void> };
  let prom: Prometheus;

  before(async () => {
    exporter = await startExporter();
    prom = await startPrometheus([{ port: exporter.port, service: 'a' }, { port: exporter.port, service: 'b' }]);
    // Rates over 5 s, 3 s back: what the replays and baselines below read.
    await prom.waitForData('sum(rate(app_errors_total[5s] offset 3s))');
  });

  after(async () => {
    await prom?.stop();
    await exporter?.close();
  });

  it('fault: Prometheus returns +Inf for the error rate → the rule breaches', async () => {
    const policy = parsePolicy(`version: 1
prometheus: {url: ${prom.url}, timeout: 2s}
services:
  a:
    match: {container: rg-sf-a}
    signals:
      error_rate:
        prometheus: sum(rate(app_errors_total{service="{{service}}"}[5s])) / sum(rate(app_successes_total{service="{{service}}"}[5s]))
      headroom:
        prometheus: -sum(rate(app_errors_total{service="{{service}}"}[5s])) / sum(rate(app_successes_total{service="{{service}}"}[5s]))
      error_rate_by_tenant:
        prometheus: sum by (tenant) (rate(tenant_errors_total{service="{{service}}"}[5s])) / sum by (tenant) (rate(tenant_successes_total{service="{{service}}"}[5s]))
    rules:
      - {name: error rate above 5%, signal: error_rate, above: 0.05, for: 2, severity: P0, action: rollback}
      - {name: headroom gone, signal: headroom, below: 0, for: 2, severity: P1, action: notify}
      - {name: errors for a tenant, signal: error_rate_by_tenant, above: 0.05, min_series: 1, for: 2, severity: P1, action: notify}
`, 'policy.yaml', {});
    const service = policy.services.a;
    assert.ok(service);
    const providers = { prometheus: new PrometheusProvider(prom.url, 2_000, { log: quiet }) };
    const metrics = createMetrics();
    let tally = emptyTally(service);
    let verdict;
    let values: Record<string, number | null> = {};
    for (let tick = 0; tick < 2; tick++) {
      const ctx = probe('a');
      const measured = { ...await sampleSignals(providers, metrics, service, ruleSignals(service), ctx), ...await sampleBurnRates(providers, service, ctx) };
      values = valuesOf(measured);
      ({ tally, verdict } = assess(service, tally, values));
    }
    assert.equal(values.error_rate, Number.POSITIVE_INFINITY, 'errors over zero successes is +Inf, not no data');
    assert.equal(values.headroom, Number.NEGATIVE_INFINITY);
    assert.equal(values['scope:errors for a tenant'], 1, 'the +Inf tenant is counted; the other is 0');
    assert.equal(verdict?.kind, 'rollback');
    assert.equal(verdict.kind === 'rollback' ? verdict.rule.name : '', 'error rate above 5%');
    assert.deepEqual(verdict.notify.map((r) => r.name), ['headroom gone', 'errors for a tenant']);

    // The same +Inf through a batched query (services sharing the template) and a replay's range query.
    const signal = service.signals.error_rate as PrometheusSignal;
    const batching = new BatchingPrometheusProvider(providers.prometheus, defaultBatchOptions, quiet, new Registry());
    let batched: (number | null)[] = [];
    for (let round = 0; round < 2; round++) {
      const at = new Date();
      batched = (await Promise.all(['a', 'b'].map((s) => batching.measure(signal, { ...probe(s, at), intervalMs: 1_000 })))).map((m) => m.value);
    }
    assert.deepEqual(batched, [Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY]);
    const endMs = Math.floor(Date.now() / 1000) * 1000;
    const replay = await queryRange(providers.prometheus, signal.query.replaceAll('{{service}}', 'a'), { startMs: endMs - 2_000, endMs, stepMs: 1_000 });
    assert.ok(replay.ok);
    assert.deepEqual([...replay.points.values()].map((p) => p.value), [Infinity, Infinity, Infinity]);
  });

  /**
   * Runs the built Prometheus provider in a child process whose clock libfaketime moves by
   * `shift` (e.g. `+10m`): an instant query, a batched one, a baseline and a replay, all at host
   * time as the daemon passes it. Returns what it measured and what it logged.
   */
  async function underFakeTime(shift: string): Promise<{ hostNow: number; single: { value: number | null; detail?: string }; batched: (number | null)[]; batches: number; baseline: { value: number | null; detail?: string }; replay: (number | null)[]; logs: { level: number; msg: string; [k: string]: unknown }[] }> {
    const dist = path.dirname(path.dirname(CLI));
    const script = `
      const dist = process.env.RG_DIST;
      const { default: pino } = await import('pino');
      const { Registry } = await import('prom-client');
      const { PrometheusProvider, rangeAverage } = await import(dist + '/signals/prometheus.js');
      const { BatchingPrometheusProvider, defaultBatchOptions } = await import(dist + '/signals/batch-prometheus.js');
      const { queryRange } = await import(dist + '/signals/prometheus-history.js');
      const log = pino({ level: 'debug' }, pino.destination({ dest: 2, sync: true }));
      const provider = new PrometheusProvider(process.env.RG_PROM, 2000, { log });
      const signal = { kind: 'prometheus', name: 'rate', query: 'sum(rate(app_requests_total{service="{{service}}"}[5s]))' };
      const ctx = (service, at) => ({ template: { service, container: service, image: 'app:v2', version: 'v2' }, containerId: service, at, intervalMs: 1000 });
      const single = await provider.measure(signal, ctx('a', new Date()));
      const registry = new Registry();
      const batching = new BatchingPrometheusProvider(provider, defaultBatchOptions, log, registry);
      let batched = [];
      for (let round = 0; round < 2; round++) {
        const at = new Date();
        batched = (await Promise.all(['a', 'b'].map((s) => batching.measure(signal, ctx(s, at))))).map((m) => m.value);
      }
      const batches = (await registry.getSingleMetric('rollguard_prometheus_queries_total').get()).values.filter((v) => v.labels.mode === 'batch').reduce((n, v) => n + v.value, 0);
      const query = 'sum(rate(app_requests_total{service="a"}[5s]))';
      const baseline = await rangeAverage(provider, query, new Date(), 4000, 1000);
      const endMs = Math.floor(Date.now() / 1000) * 1000;
      const replay = await queryRange(provider, query, { startMs: endMs - 2000, endMs, stepMs: 1000 });
      process.stdout.write(JSON.stringify({ hostNow: Date.now(), single, batched, batches, baseline, replay: replay.ok ? [...replay.points.values()].map((p) => p.value) : replay.detail }));
    `;
    const env = { ...process.env, RG_DIST: dist, RG_PROM: prom.url, FAKETIME_DONT_FAKE_MONOTONIC: '1' };
    const child = await run('faketime', ['-f', shift, process.execPath, '--input-type=module', '-e', script], { cwd: ROOT, env, timeout: 30_000 }).catch((err: NodeJS.ErrnoException & { stderr?: string }) => {
      if (err.code === 'ENOENT') throw new Error('faketime is not installed (Debian package faketime; scripts/test.sh installs it)');
      throw new Error(`the provider under faketime ${shift} failed: ${err.message}\n${err.stderr ?? ''}`);
    });
    const logs = child.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number; msg: string });
    return { ...JSON.parse(child.stdout), logs };
  }

  /** The provider run under libfaketime with the host clock shifted by `shift`; `word` is how the warning reads Prometheus's clock. */
  const clockCase = (shift: '+10m' | '-10m', offsetMs: number, word: string) => async (): Promise<void> => {
    const out = await underFakeTime(shift);
    assert.ok(Math.abs(out.hostNow - Date.now() - -offsetMs) < 60_000, `the child's clock is shifted ${shift} (${new Date(out.hostNow).toISOString()})`);
    assert.ok(out.single.value !== null && out.single.value > 0, `the instant query has data: ${JSON.stringify(out.single)}`);
    assert.ok(out.batched.every((v) => v !== null && v > 0), `the batched query has data: ${JSON.stringify(out.batched)}`);
    assert.ok(out.batches >= 1, 'a batch was asked for');
    assert.ok(out.baseline.value !== null && out.baseline.value > 0, `the baseline has history: ${JSON.stringify(out.baseline)}`);
    assert.ok(Array.isArray(out.replay) && out.replay.every((v) => v !== null && v > 0), `the replay has data: ${JSON.stringify(out.replay)}`);
    const warnings = out.logs.filter((l) => l.level === 40);
    assert.equal(warnings.length, 1, `one warning, not one per query: ${JSON.stringify(warnings)}`);
    const warning = warnings[0] as unknown as { msg: string; hostTime: string; prometheusTime: string; offsetMs: number };
    assert.match(warning.msg, new RegExp(`Prometheus's clock is 10 min ${word} this host's`));
    assert.ok(Math.abs(warning.offsetMs - offsetMs) < 2_000, `offset ${warning.offsetMs} ms`);
    assert.ok(Math.abs(Date.parse(warning.prometheusTime) - Date.parse(warning.hostTime) - offsetMs) < 2_000, `${warning.hostTime} vs ${warning.prometheusTime}`);
  };

  it("fault: the rollguard host's clock runs 10 min ahead of Prometheus's → queries are evaluated at Prometheus's time", clockCase('+10m', -600_000, 'behind'));
  it("fault: the rollguard host's clock runs 10 min behind Prometheus's → queries are evaluated at Prometheus's time", clockCase('-10m', 600_000, 'ahead of'));


  it('fault: Prometheus sends its headers, then one byte a second → the query is no data within its timeout', { timeout: 15_000 }, async () => {
    const server = await trickler('application/json', JSON.stringify({ status: 'success', data: { resultType: 'scalar', result: [1, '1'] } }));
    try {
      const provider = new PrometheusProvider(`http://127.0.0.1:${server.port}`, 1_500, { log: quiet });
      const started = performance.now();
      const m = await provider.measure({ kind: 'prometheus', name: 'q', query: 'up' }, probe('a'));
      const took = performance.now() - started;
      assert.equal(m.value, null);
      assert.equal(m.detail, 'Prometheus: no complete response within 1500 ms');
      // Waiting for the first clock measurement (which trickles too) comes out of the same budget.
      assert.ok(took < 1_500 + 500, `returned after ${Math.round(took)} ms`);
      const again = performance.now();
      const m2 = await provider.measure({ kind: 'prometheus', name: 'q', query: 'up' }, probe('a'));
      assert.equal(m2.detail, 'Prometheus: no complete response within 1500 ms');
      assert.ok(performance.now() - again < 1_500 + 500, `a later query returns within its timeout (${Math.round(performance.now() - again)} ms)`);
    } finally {
      await server.close();
    }
  });

  it('fault: a readiness endpoint sends its headers, then one byte a second → the check fails within its timeout', { timeout: 15_000 }, async () => {
    const server = await trickler('application/json', JSON.stringify({ status: 'ok', detail: 'a body long enough to take a minute at a byte a second' }));
    try {
      const started = performance.now();
      const m = await new HttpHealthProvider().measure(httpSignal(server.port));
      const took = performance.now() - started;
      assert.equal(m.value, 0);
      assert.equal(m.detail, 'no complete response within 1500 ms');
      assert.ok(took < 1_500 + 500, `returned after ${Math.round(took)} ms`);
    } finally {
      await server.close();
    }
  });

  it('fault: Prometheus answers with 11 MiB → no data naming the size limit', async () => {
    const series = Array.from({ length: 11 * 1024 }, (_, i) => ({ metric: { pad: `${i}`.padEnd(1_000, 'x') }, value: [1, '1'] }));
    const server = await answering('application/json', JSON.stringify({ status: 'success', data: { resultType: 'vector', result: series } }));
    try {
      const m = await new PrometheusProvider(`http://127.0.0.1:${server.port}`, 5_000, { log: quiet }).measure({ kind: 'prometheus', name: 'q', query: 'up' }, probe('a'));
      assert.equal(m.value, null);
      assert.equal(m.detail, 'Prometheus: response body larger than 10 MiB; aggregate the query to fewer series');
    } finally {
      await server.close();
    }
  });

  it('fault: a readiness endpoint answers with 2 MiB → the check fails naming the size limit', async () => {
    const server = await answering('application/json', JSON.stringify({ status: 'ok', pad: 'x'.repeat(2 * 1024 * 1024) }));
    try {
      const m = await new HttpHealthProvider().measure(httpSignal(server.port));
      assert.deepEqual([m.value, m.detail], [0, 'response body larger than 1 MiB']);
    } finally {
      await server.close();
    }
  });

  it('fault: a healthy endpoint ends its header lines in a bare LF → the check passes', async () => {
    const server = await rawServer('HTTP/1.1 200 OK\nContent-Type: application/json\nContent-Length: 15\nConnection: close\n\n{"status":"ok"}');
    try {
      const m = await new HttpHealthProvider().measure(httpSignal(server.port));
      assert.deepEqual([m.value, m.detail], [1, undefined]);
    } finally {
      await server.close();
    }
  });

  it('fault: an endpoint answers with something that is not HTTP → the check fails with the reason', async () => {
    const cases: [string, string, RegExp][] = [
      ['an SSH banner', 'SSH-2.0-OpenSSH_9.2\r\n', /^request failed: HPE_INVALID_CONSTANT: Parse Error: Expected HTTP\//],
      ['a Content-Length that is not a number', 'HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n{"status":"ok"}', /^request failed: HPE_INVALID_CONTENT_LENGTH/],
      ['a body cut short', 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"status":"ok"}', /^request failed: .*aborted/],
    ];
    for (const [what, raw, reason] of cases) {
      const server = await rawServer(raw);
      try {
        const m = await new HttpHealthProvider().measure(httpSignal(server.port));
        assert.equal(m.value, 0, what);
        assert.match(m.detail ?? '', reason, what);
      } finally {
        await server.close();
      }
    }
  });

  // Last: the embedded database starts in this process and can hold up the exporter's scrapes.
  it('fault: a +Inf sample is stored and notified → it reads back and is shown as +Inf, not as no data', async () => {
    const db = await freshDatabase();
    const stateDir = await mkdtemp(path.join(os.tmpdir(), 'rg-sf-'));
    const stores: Store[] = [];
    try {
      stores.push(await openStore({ databaseUrl: db.url, stateDir, log: quiet }));
      stores.push(await openStore({ stateDir, log: quiet }));
      for (const store of stores) {
        const now = new Date();
        const d = await store.insertDeployment({
          service: 'a', target: 'docker-container', container_id: 'c1', container_name: 'rg-sf-a', from_image: 'sha256:1', from_ref: 'app:v1',
          to_image: 'sha256:2', to_ref: 'app:v2', dry_run: false, started_at: now, detected_at: now, window_ends_at: new Date(now.getTime() + 60_000),
        });
        const sample = { deployment_id: d.id, stage: 'watch' as const, taken_at: now, result: 'breach' as const, rules: {}, detail: null, latency_ms: 3 };
        await store.insertSamples([{ ...sample, signal: 'error_rate', value: Infinity }, { ...sample, signal: 'headroom', value: -Infinity }]);
        const kept = await store.listSamples(d.id);
        assert.deepEqual(kept.map((s) => [s.signal, s.value]), [['error_rate', Infinity], ['headroom', -Infinity]], `samples in ${store.sql.kind}`);

        const event: NotificationEvent = {
          kind: 'rollback_started', severity: 'P0', title: 'a: rolling back app:v2 → app:v1', summary: 'error rate above 5% breached', at: now.toISOString(), service: 'a',
          rule: { name: 'error rate above 5%', signal: 'error_rate', threshold: 'above 0.05', for: 2, severity: 'P0', action: 'rollback' },
          samples: [{ at: now.toISOString(), value: 0.01, result: 'ok' }, { at: now.toISOString(), value: Infinity, result: 'breach' }],
          criteria: [{ signal: 'error_rate', threshold: 'below 0.01', measured: Infinity, holds: false }],
          chart: { signal: 'error_rate', threshold: 0.05, direction: 'above', points: [{ t: 0, v: 0.01 }, { t: 1_000, v: Infinity }], deployAt: 500 },
        };
        const outbox = new Outbox(store.sql);
        await outbox.add([{ deployment_id: d.id, event: event.kind, channel: 'hook', dedup_key: `sf-${store.sql.kind}-${d.id}`, payload: event, created_at: now }]);
        const [item] = await outbox.list({ deploymentId: d.id });
        const back = item?.payload;
        assert.deepEqual(back?.samples?.map((s) => s.value), [0.01, Infinity], `the outbox in ${store.sql.kind} keeps +Inf`);
        assert.equal(back?.criteria?.[0]?.measured, Infinity);
        assert.deepEqual(back?.chart?.points.map((p) => p.v), [0.01, Infinity]);
        const email = renderEmail(back as NotificationEvent).text;
        assert.match(email, /Infinity\s+BREACH/, 'the email shows the value');
        assert.doesNotMatch(email, /no data/);
        const hook = JSON.parse(JSON.stringify(renderWebhook(back as NotificationEvent))) as { samples: { value: unknown }[]; criteria: { measured: unknown }[] };
        assert.deepEqual(hook.samples.map((s) => s.value), [0.01, '+Inf'], 'the webhook body says +Inf, as Prometheus writes it');
        assert.equal(hook.criteria[0]?.measured, '+Inf');
        assert.ok(renderChart(back?.chart as NonNullable<NotificationEvent['chart']>).length > 0);
      }
    } finally {
      for (const store of stores) await store.sql.close();
      await db.drop();
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});
