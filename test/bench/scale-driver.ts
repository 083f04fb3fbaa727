/**
 * The watch loop of the scale bench, as a process of its own so that its CPU time and RSS are
 * measured alone: N watches, each ticking like the daemon's watch (src/daemon/watch.ts) — the next
 * tick one interval after the previous one sampled (nextTickDelay), the policy's signals sampled with sampleSignals() through the daemon's
 * provider registry (batched with BatchedProviders, or one query per service and rule with
 * BENCH_BATCH=off), then assess(), then the tick's samples recorded through the daemon's write
 * queue (WriteBehind over the Store) into PostgreSQL at BENCH_DATABASE_URL, one deployment per
 * watch. Every statement the store runs is counted, and so are the rows it inserts.
 *
 *   BENCH_PROM=http://… BENCH_DATABASE_URL=postgres://… BENCH_N=1000 BENCH_INTERVAL_MS=5000 BENCH_WARMUP_MS=15000 BENCH_MEASURE_MS=60000 node --import tsx test/bench/scale-driver.ts
 *
 * Prints one line, `result` and JSON, when done (logs go to stderr); "measuring" and "measured" lines mark the measured window.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';
import pino from 'pino';
import { createMetrics } from '../../src/api/metrics.js';
import { parsePolicy } from '../../src/config/load-policy.js';
import type { ServicePolicy } from '../../src/config/policy.js';
import { ruleSignals, sampleSignals, valuesOf } from '../../src/daemon/sampling.js';
import { nextTickDelay, sampleTime } from '../../src/daemon/watch.js';
import { watchSampleRow } from '../../src/daemon/record.js';
import { assess, emptyTally, type WatchTally } from '../../src/policy/assess.js';
import { BatchedProviders, defaultBatchOptions } from '../../src/signals/batch-prometheus.js';
import { openStore } from '../../src/store/open-store.js';
import { WriteBehind } from '../../src/store/write-behind.js';
import { PrometheusProvider } from '../../src/signals/prometheus.js';
import type { ProviderRegistry } from '../../src/signals/registry.js';

const env = process.env;
const N = Number(env.BENCH_N ?? 1000);
const INTERVAL = Number(env.BENCH_INTERVAL_MS ?? 5000);
const WARMUP = Number(env.BENCH_WARMUP_MS ?? 15_000);
const MEASURE = Number(env.BENCH_MEASURE_MS ?? 60_000);
const batch = env.BENCH_BATCH !== 'off';

export function scalePolicy(promUrl: string, n: number, intervalMs: number): string {
  const services = Array.from({ length: n }, (_, i) => `svc-${String(i).padStart(4, '0')}`).map((name) => `  ${name}:
    match: {container: ${name}}
    signals:
      error_rate:
        prometheus: sum(rate(http_requests_total{service="{{service}}",code=~"5.."}[15s])) / sum(rate(http_requests_total{service="{{service}}"}[15s]))
    rules:
      - {name: error rate above 5%, signal: error_rate, above: 0.05, for: 3, severity: P0, action: rollback}`);
  return `version: 1\nprometheus: {url: ${promUrl}, timeout: 4s}\ndefaults: {window: 1h, interval: ${intervalMs}ms}\nservices:\n${services.join('\n')}\n`;
}

interface WatchStats { ticks: number; gaps: number[]; durations: number[]; sampling: number[]; writing: number[]; breaches: number; noData: number }

/** Counts what reaches the store: statements run, and sample rows inserted. */
const storeCount = { statements: 0, sampleRows: 0 };

function rssMb(): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : process.memoryUsage().rss / 2 ** 20;
}

async function main(): Promise<void> {
  const promUrl = env.BENCH_PROM as string;
  const policy = parsePolicy(scalePolicy(promUrl, N, INTERVAL), 'scale.yaml');
  const metrics = createMetrics();
  const registry: ProviderRegistry = { prometheus: new PrometheusProvider(promUrl, policy.prometheus?.timeoutMs ?? 4_000) };
  const log = pino({ level: 'warn' }, pino.destination(2));
  const sampling = new BatchedProviders(registry, { log, registry: metrics.registry, options: { ...defaultBatchOptions, enabled: batch } });
  const services = Object.values(policy.services) as ServicePolicy[];

  const store = await openStore({ databaseUrl: env.BENCH_DATABASE_URL as string, stateDir: '/nonexistent', log });
  const query = store.sql.query.bind(store.sql);
  store.sql.query = (async (text: string, params?: unknown[]) => {
    storeCount.statements++;
    if (text.startsWith('INSERT INTO samples')) storeCount.sampleRows += (params?.[0] as unknown[]).length;
    return query(text, params);
  }) as typeof store.sql.query;
  const deploymentIds = new Map<string, number>();
  for (const svc of services) {
    const at = new Date();
    const d = await store.insertDeployment({ service: svc.name, target: 'docker-container', container_id: svc.name, container_name: svc.name, from_image: 'sha256:v1', from_ref: 'app:v1', to_image: 'sha256:v2', to_ref: 'app:v2', dry_run: false, started_at: at, detected_at: at, window_ends_at: new Date(at.getTime() + 3_600_000) });
    deploymentIds.set(svc.name, d.id);
  }
  const writes = new WriteBehind(store, { log });
  const statementsBefore = storeCount.statements;
  let measuring = false;
  let stopped = false;
  const stats = new Map<string, WatchStats>();
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });

  const watch = (service: ServicePolicy): void => {
    const s: WatchStats = { ticks: 0, gaps: [], durations: [], sampling: [], writing: [], breaches: 0, noData: 0 };
    stats.set(service.name, s);
    let tally: WatchTally = emptyTally(service);
    let due = 0;
    let sampledAt = 0;
    const tick = async (): Promise<void> => {
      const fired = Date.now();
      if (measuring) {
        s.ticks++;
        if (due) s.gaps.push(fired - due);
      }
      const at = new Date();
      const probe = { template: { service: service.name, container: service.name, image: 'app:v2', version: 'v2' }, containerId: service.name, at, dueAt: due || undefined, intervalMs: service.intervalMs };
      const m = await sampleSignals(sampling.get(), metrics, service, ruleSignals(service), probe);
      const sampled = Date.now();
      sampledAt = sampleTime(Object.values(m), at.getTime(), due || undefined);
      const out = assess(service, tally, valuesOf(m), { lowTraffic: false });
      tally = out.tally;
      // The rows recordSamples() makes.
      const rows = Object.entries(m).map(([signal, v]) => watchSampleRow(service, deploymentIds.get(service.name) as number, at, signal, v, out.results));
      const written = Date.now();
      await writes.insertSamples(rows);
      if (measuring) {
        s.sampling.push(sampled - fired);
        s.writing.push(Date.now() - written);
      }
      if (measuring) {
        s.durations.push(Date.now() - fired);
        for (const r of Object.values(out.results)) {
          if (r === 'breach') s.breaches++;
          if (r === 'no-data') s.noData++;
        }
      }
    };
    const schedule = (delayMs: number): void => {
      if (stopped) return;
      due = Date.now() + delayMs;
      setTimeout(() => void tick().finally(() => schedule(nextTickDelay(sampledAt, service.intervalMs, Date.now()))), delayMs);
    };
    // Deployments arrive at random moments: start each watch at a random point of the first interval.
    setTimeout(() => schedule(service.intervalMs), Math.random() * service.intervalMs);
  };
  for (const svc of services) watch(svc);

  await new Promise((r) => setTimeout(r, WARMUP));
  const rss: number[] = [];
  const rssTimer = setInterval(() => rss.push(rssMb()), 1_000);
  const cpu0 = process.cpuUsage();
  const store0 = { ...storeCount };
  const t0 = performance.now();
  loopDelay.enable();
  measuring = true;
  process.stdout.write('measuring\n');
  await new Promise((r) => setTimeout(r, MEASURE));
  measuring = false;
  process.stdout.write('measured\n');
  const cpu = process.cpuUsage(cpu0);
  const elapsed = performance.now() - t0;
  const store1 = { ...storeCount };
  loopDelay.disable();
  clearInterval(rssTimer);
  stopped = true;
  const all = [...stats.values()];
  const gaps = all.flatMap((s) => s.gaps).sort((a, b) => a - b);
  const durations = all.flatMap((s) => s.durations).sort((a, b) => a - b);
  const q = (xs: number[], p: number): number => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? 0;
  const expected = MEASURE / INTERVAL;
  const queries = await metrics.registry.getSingleMetric('rollguard_prometheus_queries_total')?.get();
  const result = {
    n: N, batch, intervalMs: INTERVAL, measuredMs: elapsed,
    cpuSecondsPerMinute: ((cpu.user + cpu.system) / 1e6) * (60_000 / elapsed),
    rssMedianMb: rss.sort((a, b) => a - b)[Math.floor(rss.length / 2)],
    rssMaxMb: Math.max(...rss),
    ticks: all.reduce((a, s) => a + s.ticks, 0),
    expectedTicks: expected * N,
    /** Watches that ticked fewer times than the window holds intervals, minus one for the phase. */
    watchesBehind: all.filter((s) => s.ticks < Math.floor(expected) - 1).length,
    /** Timer fired how long after it was due (event-loop lag). */
    lateMedianMs: q(gaps, 0.5), lateP99Ms: q(gaps, 0.99), lateMaxMs: gaps[gaps.length - 1] ?? 0,
    /** How long a tick took: sampling (batch slot wait included) and assess. */
    tickMedianMs: q(durations, 0.5), tickP99Ms: q(durations, 0.99),
    /** Of which sampling (batch wait and query) and the store write the tick waited for. */
    samplingMedianMs: q(all.flatMap((s) => s.sampling).sort((a, b) => a - b), 0.5),
    writeMedianMs: q(all.flatMap((s) => s.writing).sort((a, b) => a - b), 0.5),
    writeP99Ms: q(all.flatMap((s) => s.writing).sort((a, b) => a - b), 0.99),
    eventLoopDelayP99Ms: loopDelay.percentile(99) / 1e6,
    breaches: all.reduce((a, s) => a + s.breaches, 0),
    noData: all.reduce((a, s) => a + s.noData, 0),
    storeStatements: store1.statements - store0.statements,
    sampleRowsInserted: store1.sampleRows - store0.sampleRows,
    writesWaiting: writes.waiting,
    setAside: writes.setAside,
    queriesByMode: Object.fromEntries((queries?.values ?? []).map((v) => [String(v.labels.mode), v.value])),
  };
  await writes.flush();
  const [stored] = await store.sql.query<{ n: string }>('SELECT count(*) AS n FROM samples');
  process.stdout.write(`result ${JSON.stringify({ ...result, sampleRowsTotal: storeCount.sampleRows, sampleRowsStored: Number(stored?.n), setupStatements: statementsBefore })}\n`);
  await store.sql.close();
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`scale driver failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
