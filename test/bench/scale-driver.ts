/**
 * The watch loop of the scale bench, as a process of its own so that its CPU time and RSS are
 * measured alone: N watches, each ticking like Daemon.tick() — the interval counted from the end
 * of the previous tick, the policy's signals sampled with sampleSignals() through the daemon's
 * provider registry (batched with BatchedProviders, or one query per service and rule with
 * BENCH_BATCH=off), then assess(). Records go nowhere (the store is not part of this bench).
 *
 *   BENCH_PROM=http://… BENCH_N=1000 BENCH_INTERVAL_MS=5000 BENCH_WARMUP_MS=15000 BENCH_MEASURE_MS=60000 node --import tsx test/bench/scale-driver.ts
 *
 * Prints one JSON line when done; "measuring" and "measured" lines mark the measured window.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';
import pino from 'pino';
import { createMetrics } from '../../src/api/metrics.js';
import { parsePolicy } from '../../src/config/load-policy.js';
import type { ServicePolicy } from '../../src/config/policy.js';
import { ruleSignals, sampleSignals, valuesOf } from '../../src/daemon/sampling.js';
import { assess, emptyTally, type WatchTally } from '../../src/policy/assess.js';
import { BatchedProviders, defaultBatchOptions } from '../../src/signals/batch-prometheus.js';
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

interface WatchStats { ticks: number; gaps: number[]; durations: number[]; breaches: number; noData: number }

function rssMb(): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : process.memoryUsage().rss / 2 ** 20;
}

async function main(): Promise<void> {
  const promUrl = env.BENCH_PROM as string;
  const policy = parsePolicy(scalePolicy(promUrl, N, INTERVAL), 'scale.yaml');
  const metrics = createMetrics();
  const registry: ProviderRegistry = { prometheus: new PrometheusProvider(promUrl, policy.prometheus?.timeoutMs ?? 4_000) };
  const log = pino({ level: 'warn' });
  const sampling = new BatchedProviders(registry, { log, registry: metrics.registry, options: { ...defaultBatchOptions, enabled: batch } });
  const services = Object.values(policy.services) as ServicePolicy[];
  let measuring = false;
  let stopped = false;
  const stats = new Map<string, WatchStats>();
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });

  const watch = (service: ServicePolicy): void => {
    const s: WatchStats = { ticks: 0, gaps: [], durations: [], breaches: 0, noData: 0 };
    stats.set(service.name, s);
    let tally: WatchTally = emptyTally(service);
    let due = 0;
    const tick = async (): Promise<void> => {
      const fired = Date.now();
      if (measuring) {
        s.ticks++;
        if (due) s.gaps.push(fired - due);
      }
      const at = new Date();
      const probe = { template: { service: service.name, container: service.name, image: 'app:v2', version: 'v2' }, containerId: service.name, at, intervalMs: service.intervalMs };
      const m = await sampleSignals(sampling.get(), metrics, service, ruleSignals(service), probe);
      const out = assess(service, tally, valuesOf(m), { lowTraffic: false });
      tally = out.tally;
      if (measuring) {
        s.durations.push(Date.now() - fired);
        for (const r of Object.values(out.results)) {
          if (r === 'breach') s.breaches++;
          if (r === 'no-data') s.noData++;
        }
      }
    };
    const schedule = (): void => {
      if (stopped) return;
      due = Date.now() + service.intervalMs;
      setTimeout(() => void tick().finally(schedule), service.intervalMs);
    };
    // Deployments arrive at random moments: start each watch at a random point of the first interval.
    setTimeout(schedule, Math.random() * service.intervalMs);
  };
  for (const svc of services) watch(svc);

  await new Promise((r) => setTimeout(r, WARMUP));
  const rss: number[] = [];
  const rssTimer = setInterval(() => rss.push(rssMb()), 1_000);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  loopDelay.enable();
  measuring = true;
  process.stdout.write('measuring\n');
  await new Promise((r) => setTimeout(r, MEASURE));
  measuring = false;
  process.stdout.write('measured\n');
  const cpu = process.cpuUsage(cpu0);
  const elapsed = performance.now() - t0;
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
    eventLoopDelayP99Ms: loopDelay.percentile(99) / 1e6,
    breaches: all.reduce((a, s) => a + s.breaches, 0),
    noData: all.reduce((a, s) => a + s.noData, 0),
    queriesByMode: Object.fromEntries((queries?.values ?? []).map((v) => [String(v.labels.mode), v.value])),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`scale driver failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
