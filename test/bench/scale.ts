/**
 * Scale bench: N concurrent watches (N = 1,000 and 10,000) at a 5 s interval against one real
 * Prometheus (1 s scrape) holding synthetic services' series, with every tick's samples recorded
 * in the real PostgreSQL (a fresh database per run); batched, and at N ≤ 1,000 also naive (one
 * query per service per rule). For each: CPU seconds per minute and RSS of the watch loop (its
 * own process, scale-driver.ts), instant queries Prometheus received per tick (its own
 * prometheus_http_requests_total), store statements per tick and sample rows inserted per
 * second, Prometheus' CPU, and how late ticks ran.
 *
 *   node --import tsx test/bench/scale.ts           BENCH_SCALE_N=1000,10000 BENCH_MEASURE_MS=60000
 *   BENCH_SCALE_MODES=batched                       only the batched runs (default: naive,batched)
 *   BENCH_NAIVE_MAX=1000                            largest N run naive (10,000 naive queries per tick would swamp Prometheus)
 *   BENCH_CPU_PROF=/tmp/prof                        write a V8 CPU profile of each watch loop there
 *   BENCH_PG=postgres://postgres@127.0.0.1:5432/postgres   where to create the runs' databases
 *
 * Uses port 18090 (the exporter) and a free loopback port for Prometheus; no containers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import pg from 'pg';
import { freePort, waitFor } from '../integration/harness.js';

const EXPORTER_PORT = 18090;
const INTERVAL_MS = Number(process.env.BENCH_INTERVAL_MS ?? 5_000);
const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 60_000);
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 20_000);
const SIZES = (process.env.BENCH_SCALE_N ?? '1000,10000').split(',').map(Number);
const NAIVE_MAX = Number(process.env.BENCH_NAIVE_MAX ?? 1000);
const PG_ADMIN = process.env.BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const MODES = (process.env.BENCH_SCALE_MODES ?? 'naive,batched').split(',').map((m) => m.trim() === 'batched');
const PROFILE = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
const HERE = path.dirname(new URL(import.meta.url).pathname);
const say = (line = ''): void => void process.stdout.write(`${line}\n`);

const children: ChildProcess[] = [];
function child(args: string[], env: NodeJS.ProcessEnv = {}, log?: string): ChildProcess {
  const out = log ? openSync(log, 'a') : 'ignore';
  const c = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', out === 'ignore' ? 'inherit' : out] });
  if (typeof out === 'number') closeSync(out);
  children.push(c);
  return c;
}
async function stopAll(): Promise<void> {
  await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode ? undefined : new Promise((r) => { c.once('exit', r); c.kill('SIGKILL'); }))));
}

/** Sums a counter of Prometheus' own /metrics, by a label filter. */
async function promCounter(url: string, name: string, filter: (labels: string) => boolean = () => true): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^(\w+)(\{[^}]*\})? ([\d.e+-]+)$/.exec(line);
    if (m && m[1] === name && filter(m[2] ?? '')) sum += Number(m[3]);
  }
  return sum;
}

interface DriverResult {
  n: number; batch: boolean; cpuSecondsPerMinute: number; rssMedianMb: number; rssMaxMb: number; ticks: number; expectedTicks: number;
  watchesBehind: number; lateMedianMs: number; lateP99Ms: number; lateMaxMs: number; tickMedianMs: number; tickP99Ms: number;
  eventLoopDelayP99Ms: number; breaches: number; noData: number; queriesByMode: Record<string, number>;
  samplingMedianMs: number; writeMedianMs: number; writeP99Ms: number; storeStatements: number; sampleRowsInserted: number; sampleRowsTotal: number; sampleRowsStored: number; writesWaiting: number; setAside: number;
}

/** Runs `fn` with a fresh PostgreSQL database, dropped afterwards. */
async function withDatabase<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const name = `rollguard_bench_scale_${process.pid}`;
  const admin = new pg.Client(PG_ADMIN);
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name}`);
    await admin.query(`CREATE DATABASE ${name}`);
    const url = new URL(PG_ADMIN);
    url.pathname = `/${name}`;
    try {
      return await fn(url.toString());
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
  } finally {
    await admin.end();
  }
}
interface Row extends DriverResult { promQueries: number; promCpuPerMinute: number }

async function runDriver(promUrl: string, databaseUrl: string, n: number, batch: boolean): Promise<Row> {
  const c = child(['--optimize-for-size', ...PROFILE, '--import', 'tsx', path.join(HERE, 'scale-driver.ts')], {
    BENCH_PROM: promUrl, BENCH_DATABASE_URL: databaseUrl, BENCH_N: String(n), BENCH_INTERVAL_MS: String(INTERVAL_MS), BENCH_WARMUP_MS: String(WARMUP_MS),
    BENCH_MEASURE_MS: String(MEASURE_MS), BENCH_BATCH: batch ? 'on' : 'off',
  });
  const lines = createInterface({ input: c.stdout as NodeJS.ReadableStream });
  const isQuery = (l: string): boolean => l.includes('handler="/api/v1/query"');
  let q0 = 0; let q1 = 0; let cpu0 = 0; let cpu1 = 0;
  let result: DriverResult | undefined;
  for await (const line of lines) {
    if (line === 'measuring') {
      [q0, cpu0] = await Promise.all([promCounter(promUrl, 'prometheus_http_requests_total', isQuery), promCounter(promUrl, 'process_cpu_seconds_total')]);
    } else if (line === 'measured') {
      [q1, cpu1] = await Promise.all([promCounter(promUrl, 'prometheus_http_requests_total', isQuery), promCounter(promUrl, 'process_cpu_seconds_total')]);
    } else if (line.startsWith('result ')) {
      result = JSON.parse(line.slice('result '.length)) as DriverResult;
    }
  }
  if (!result) throw new Error(`scale driver (n=${n}, batch=${batch}) ended without a result`);
  return { ...result, promQueries: q1 - q0, promCpuPerMinute: (cpu1 - cpu0) * (60_000 / MEASURE_MS) };
}

async function main(): Promise<void> {
  say(`rollguard scale bench — ${new Date().toISOString()}; nproc ${os.cpus().length}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, ${os.cpus()[0]?.model ?? '?'}, node ${process.version}`);
  const max = Math.max(...SIZES);
  const exporter = child(['--import', 'tsx', path.join(HERE, 'scale-exporter.ts'), String(EXPORTER_PORT), String(max)]);
  await new Promise((r) => exporter.stdout?.once('data', r));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rg-perf-prom-'));
  try {
    const port = await freePort();
    await writeFile(path.join(dir, 'prometheus.yml'), [
      'global: {scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s}',
      'scrape_configs:',
      `  - {job_name: synthetic, honor_labels: true, static_configs: [{targets: ["127.0.0.1:${EXPORTER_PORT}"]}]}`,
    ].join('\n'));
    const log = openSync(path.join(dir, 'prometheus.log'), 'a');
    const prom = spawn('prometheus', [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: ['ignore', log, log] });
    closeSync(log);
    children.push(prom);
    const url = `http://127.0.0.1:${port}`;
    await waitFor('Prometheus ready', async () => (await fetch(`${url}/-/ready`).catch(() => undefined))?.ok, 30_000);
    await waitFor('16 s of synthetic series', async () => {
      const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent('count(rate(http_requests_total[15s]))')}`);
      const body = (await res.json()) as { data?: { result?: { value: [number, string] }[] } };
      return Number(body.data?.result?.[0]?.value[1] ?? 0) >= 2 * max;
    }, 60_000, 1_000);
    await new Promise((r) => setTimeout(r, 16_000));

    const rows: Row[] = [];
    for (const n of SIZES) {
      for (const batch of MODES) {
        if (!batch && n > NAIVE_MAX) continue;
        process.stderr.write(`scale bench: N=${n} ${batch ? 'batched' : 'naive'}…\n`);
        rows.push(await withDatabase((db) => runDriver(url, db, n, batch)));
      }
    }
    const ticksPerWatch = MEASURE_MS / INTERVAL_MS;
    say();
    say(`== Scale: N watches, interval ${INTERVAL_MS / 1000} s, one Prometheus rule each (sum by service of a 5xx ratio), samples recorded in PostgreSQL, ${MEASURE_MS / 1000} s measured after ${WARMUP_MS / 1000} s`);
    const head = ['N', 'mode', 'CPU s/min (watch loop)', '% of one core', 'RSS median', 'RSS max', 'Prometheus queries/tick', 'store statements/tick', 'inserts/s', 'Prometheus CPU s/min', 'ticks done/due', 'tick lag median/p99/max', 'tick duration median/p99', 'of which sampling / store write (median; write p99)', 'breaches', 'no-data', 'rows stored/sent'];
    const body = rows.map((r) => [
      String(r.n), r.batch ? 'batched' : 'naive (1 query/service/rule)',
      r.cpuSecondsPerMinute.toFixed(2), `${((r.cpuSecondsPerMinute / 60) * 100).toFixed(1)} %`,
      `${r.rssMedianMb.toFixed(1)} MB`, `${r.rssMaxMb.toFixed(1)} MB`,
      (r.promQueries / ticksPerWatch).toFixed(1), (r.storeStatements / ticksPerWatch).toFixed(1), (r.sampleRowsInserted / (MEASURE_MS / 1000)).toFixed(0),
      r.promCpuPerMinute.toFixed(2),
      `${r.ticks}/${r.expectedTicks}`, `${r.lateMedianMs}/${r.lateP99Ms}/${r.lateMaxMs} ms`, `${r.tickMedianMs}/${r.tickP99Ms} ms`, `${r.samplingMedianMs} / ${r.writeMedianMs} ms; ${r.writeP99Ms} ms`,
      String(r.breaches), String(r.noData), `${r.sampleRowsStored}/${r.sampleRowsTotal}`,
    ]);
    const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
    const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
    say(line(head));
    say(widths.map((w) => '-'.repeat(w)).join('  '));
    for (const b of body) say(line(b));
    say();
    const verdict = (ok: boolean): string => (ok ? 'ok' : 'MISSED');
    const perTick = (r: Row): { queries: number; statements: number } => ({ queries: r.promQueries / ticksPerWatch, statements: r.storeStatements / ticksPerWatch });
    say('Targets at N = 1,000, 5 s interval: < 10 % of one core, RSS ≤ 150 MB, zero ticks skipped.');
    for (const r of rows.filter((x) => x.n === 1000)) {
      const core = (r.cpuSecondsPerMinute / 60) * 100;
      say(`  ${r.batch ? 'batched' : 'naive  '}: CPU ${core.toFixed(1)} % ${verdict(core < 10)}; RSS ${r.rssMaxMb.toFixed(0)} MB ${verdict(r.rssMaxMb <= 150)}; watches behind schedule ${r.watchesBehind} ${verdict(r.watchesBehind === 0)}; queries by mode ${JSON.stringify(r.queriesByMode)}`);
    }
    const small = rows.find((x) => x.n === 1000 && x.batch);
    const big = rows.find((x) => x.n === 10_000 && x.batch);
    if (big) {
      say('Targets at N = 10,000, 5 s interval, store writes included: < 50 % of one core, RSS ≤ 300 MB, zero ticks skipped,');
      say('Prometheus queries and store statements per tick O(templates) — not growing with N (compared with N = 1,000).');
      const core = (big.cpuSecondsPerMinute / 60) * 100;
      say(`  CPU ${core.toFixed(1)} % ${verdict(core < 50)}; RSS ${big.rssMaxMb.toFixed(0)} MB ${verdict(big.rssMaxMb <= 300)}; ticks ${big.ticks}/${big.expectedTicks}, watches behind schedule ${big.watchesBehind} ${verdict(big.watchesBehind === 0)}`);
      const b = perTick(big);
      if (small) {
        const s1 = perTick(small);
        // Ten times the services: a per-service cost would be ten times as many; allow for the phase of the batches.
        say(`  Prometheus queries/tick ${s1.queries.toFixed(1)} → ${b.queries.toFixed(1)} ${verdict(b.queries <= 2 * s1.queries + 1)}; store statements/tick ${s1.statements.toFixed(1)} → ${b.statements.toFixed(1)} ${verdict(b.statements <= 2 * s1.statements + 2)}`);
      }
      say(`  every sample stored: ${big.sampleRowsStored}/${big.sampleRowsTotal} ${verdict(big.sampleRowsStored === big.sampleRowsTotal && big.setAside === 0)}`);
    }
  } finally {
    await stopAll();
    await rm(dir, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), async (err: unknown) => {
  process.stderr.write(`scale bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  await stopAll();
  process.exit(1);
});
