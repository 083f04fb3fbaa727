import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { openStore } from '../../src/store/open-store.js';
import { buildFixtures, CLI, deploy, freePort, freshDatabase, removeContainers, testSecret, waitFor } from './harness.js';

const run = promisify(execFile);
const NAME = 'rg-sim';
const PORT = 18089;
const SERVICE = 'sim';

/**
 * Backfilled history, 5 s apart, starting three hours ago (older than Prometheus' head block):
 * 100 requests/s throughout; the error share per ten-minute period is below. Each period starts
 * with a "deploy".
 */
const STEP_S = 5;
const MINUTE = 60_000;
const START = Math.floor((Date.now() - 3 * 3_600_000) / MINUTE) * MINUTE;
const PERIODS: { fromMin: number; toMin: number; errorPct: number }[] = [
  { fromMin: 0, toMin: 10, errorPct: 0 },
  { fromMin: 10, toMin: 20, errorPct: 20 }, // the bad deploy
  { fromMin: 20, toMin: 30, errorPct: 0 }, // the fix
  { fromMin: 30, toMin: 40, errorPct: 3 }, // a mild regression: passes at 5 %, not at 2 %
  { fromMin: 40, toMin: 55, errorPct: 0 }, // a service without errors, but for ONE_ERROR_AT
];
const BAD_AT = START + 10 * MINUTE;
const GOOD_AT = START + 21 * MINUTE; // a minute in, so the 30 s rate window holds only the fixed version
const MILD_AT = START + 30 * MINUTE;
/** A deploy after five minutes without a single error (a baseline of exactly 0), and the one 5xx two minutes later. */
const ZERO_AT = START + 47 * MINUTE;
const ONE_ERROR_AT = START + 49 * MINUTE;
const iso = (ms: number): string => new Date(ms).toISOString();

/** OpenMetrics text of the periods above, for `promtool tsdb create-blocks-from openmetrics`. */
function history(): string {
  const ok: string[] = [];
  const errors: string[] = [];
  let total = 100_000;
  let failed = 1_000;
  for (let t = START; t < START + 55 * MINUTE; t += STEP_S * 1000) {
    // The requests counted at t were served in the STEP_S before it.
    const served = t - STEP_S * 1000;
    const pct = PERIODS.find((p) => served >= START + p.fromMin * MINUTE && served < START + p.toMin * MINUTE)?.errorPct ?? 0;
    if (t > START) {
      total += 100 * STEP_S;
      failed += (100 * STEP_S * pct) / 100;
      if (t === ONE_ERROR_AT) failed += 1;
    }
    ok.push(`http_requests_total{service="${SERVICE}",code="200"} ${total - failed} ${t / 1000}`);
    errors.push(`http_requests_total{service="${SERVICE}",code="500"} ${failed} ${t / 1000}`);
  }
  return ['# HELP http_requests Requests served.', '# TYPE http_requests counter', ...ok, ...errors, '# EOF', ''].join('\n');
}

/** Debian's Prometheus on a fresh data directory holding the backfilled blocks, scraping the fixture every second. */
async function startPrometheusWithHistory(dir: string): Promise<{ url: string; child: ChildProcess }> {
  const data = path.join(dir, 'data');
  await writeFile(path.join(dir, 'history.om'), history());
  await run('promtool', ['tsdb', 'create-blocks-from', 'openmetrics', '--quiet', path.join(dir, 'history.om'), data], { timeout: 60_000 });
  await writeFile(path.join(dir, 'prometheus.yml'), [
    'global: {scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s}',
    'scrape_configs:',
    `  - {job_name: ${SERVICE}, metrics_path: /cgi-bin/metrics, static_configs: [{targets: ["127.0.0.1:${PORT}"], labels: {service: ${SERVICE}}}]}`,
  ].join('\n'));
  const port = await freePort();
  const log = openSync(path.join(dir, 'prometheus.log'), 'a');
  const child = spawn('prometheus', [
    `--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${data}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn',
  ], { stdio: ['ignore', log, log] });
  closeSync(log);
  const url = `http://127.0.0.1:${port}`;
  await waitFor('Prometheus ready', async () => {
    if (child.exitCode !== null) throw new Error(`prometheus exited: ${await readFile(path.join(dir, 'prometheus.log'), 'utf8')}`);
    return (await fetch(`${url}/-/ready`).catch(() => undefined))?.ok;
  }, 30_000);
  return { url, child };
}

/** The policy under test: an error-rate rule at `threshold`, a traffic floor, and a readiness check (no history). */
function policy(promUrl: string, opts: { threshold?: number; extraRules?: string; query?: string } = {}): string {
  const threshold = opts.threshold ?? 0.05;
  return `version: 1
prometheus:
  url: ${promUrl}
  timeout: 5s
defaults:
  window: 5m
  interval: 15s
  min_data_ratio: 0.8
services:
  ${SERVICE}:
    match:
      container: ${NAME}
    min_requests: {signal: request_rate, at_least: 1}
    signals:
      error_rate:
        prometheus: |
          ${opts.query ?? `sum(rate(http_requests_total{service="{{service}}",code=~"5.."}[30s]))
            / sum(rate(http_requests_total{service="{{service}}"}[30s]))`}
      request_rate:
        prometheus: sum(rate(http_requests_total{service="{{service}}"}[30s]))
      ready:
        http: {url: "http://127.0.0.1:${PORT}/cgi-bin/ready", timeout: 1s, status: 200, json: {status: ready}}
    rules:
      - name: error rate above ${threshold * 100}%
        signal: error_rate
        above: ${threshold}
        for: 3
        severity: P0
        action: rollback
      - name: readiness failing
        signal: ready
        below: 1
        for: 3
        severity: P0
        action: rollback
${opts.extraRules ?? ''}`;
}

describe('simulate and policy check --live against a real Prometheus with backfilled history', { timeout: 300_000 }, () => {
  let dir: string;
  let prom: { url: string; child: ChildProcess } | undefined;
  let db: { url: string; drop(): Promise<void> } | undefined;
  let files = 0;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'rg-sim-'));
    await buildFixtures();
    await removeContainers(NAME);
    await deploy(NAME, 'rollguard-fixture:v1', [], PORT);
    prom = await startPrometheusWithHistory(dir);
  });

  after(async () => {
    const child = prom?.child;
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
    await removeContainers(NAME);
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  async function policyFile(text: string): Promise<string> {
    const file = path.join(dir, `policy-${++files}.yaml`);
    await writeFile(file, text);
    return file;
  }

  async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ stdout: string; stderr: string; code: number }> {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ROLLGUARD_STATE_DIR: path.join(dir, 'state'), ...env };
    if (!env.DATABASE_URL) delete childEnv.DATABASE_URL;
    try {
      const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env: childEnv, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
      return { stdout, stderr, code: 0 };
    } catch (err) {
      const e = err as { stdout: string; stderr: string; code: number };
      return { stdout: e.stdout, stderr: e.stderr, code: e.code };
    }
  }

  it('a bad period (20 % errors) would roll back three samples after the deploy because "error rate above 5%"', async () => {
    const file = await policyFile(policy(prom?.url ?? ''));
    const r = await cli(['simulate', '--policy', file, '--service', SERVICE, '--deploy-at', iso(BAD_AT)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`verdict: would roll back at ${iso(BAD_AT + 45_000).replace(/\./g, '\\.')} \\(\\+45s\\) because "error rate above 5%": error_rate above 0\\.05 for 3 consecutive samples`));
    assert.match(r.stdout, /not replayed: "readiness failing" \(ready, http\)/);
    assert.match(r.stdout, /TIME\s+AFTER\s+error_rate\s+ready\s+request_rate\s+error rate above 5%\s+readiness failing\s+NOTE/);
    assert.equal((r.stdout.match(/BREACH/g) ?? []).length, 3, r.stdout);
    assert.match(r.stdout, /fires: "error rate above 5%" \(rollback\)/);
  });

  it('a good period would pass; the deploy time may be given in Unix seconds', async () => {
    const file = await policyFile(policy(prom?.url ?? ''));
    const r = await cli(['simulate', '--policy', file, '--service', SERVICE, '--deploy-at', String(GOOD_AT / 1000)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /verdict: would pass: no rollback rule fired by the end of the window at .* \(\+5m\) \(judged on the Prometheus rules; not replayed: "readiness failing"\)/);
    assert.match(r.stdout, /fired:\n {2}none/);
    assert.doesNotMatch(r.stdout, /BREACH/);
  });

  it('a threshold changed in the policy flips the verdict of the same period', async () => {
    const lenient = await cli(['simulate', '--policy', await policyFile(policy(prom?.url ?? '', { threshold: 0.05 })), '--service', SERVICE, '--deploy-at', iso(MILD_AT)]);
    assert.equal(lenient.code, 0, lenient.stderr);
    assert.match(lenient.stdout, /verdict: would pass/);
    const strict = await cli(['simulate', '--policy', await policyFile(policy(prom?.url ?? '', { threshold: 0.02 })), '--service', SERVICE, '--deploy-at', iso(MILD_AT)]);
    assert.equal(strict.code, 0, strict.stderr);
    // The first sample's 30 s rate still straddles the deploy (1.5 %); the next three are at 3 %.
    assert.match(strict.stdout, new RegExp(`verdict: would roll back at ${iso(MILD_AT + 60_000).replace(/\./g, '\\.')} \\(\\+1m\\) because "error rate above 2%"`));
  });

  it('--json prints the sample table, what fired and the verdict', async () => {
    const file = await policyFile(policy(prom?.url ?? ''));
    const r = await cli(['simulate', '--policy', file, '--service', SERVICE, '--deploy-at', iso(BAD_AT), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      service: string; deploy_at: string; window_ms: number; interval_ms: number; placeholders: string[]; template: Record<string, string>;
      not_replayed: { rule: string; signal: string; kind: string }[];
      steps: { at: string; after_ms: number; warmup: boolean; low_traffic: boolean; values: Record<string, number | null>; results: Record<string, string> }[];
      fired: { at: string; rule: string; kind: string; severity: string }[];
      verdict: { kind: string; at: string; rule: string; after_ms: number; text: string };
    };
    assert.equal(out.service, SERVICE);
    assert.equal(out.deploy_at, iso(BAD_AT));
    assert.equal(out.window_ms, 300_000);
    assert.equal(out.interval_ms, 15_000);
    assert.deepEqual(out.template, { service: SERVICE, container: NAME, image: `${SERVICE}:placeholder`, version: 'placeholder' });
    assert.deepEqual(out.placeholders, ['image', 'version']);
    assert.deepEqual(out.not_replayed.map((n) => [n.rule, n.signal, n.kind]), [['readiness failing', 'ready', 'http']]);
    assert.deepEqual(out.steps.map((s) => s.after_ms), [15_000, 30_000, 45_000], 'the replay stops at the decision, like the watch');
    for (const s of out.steps) {
      assert.equal(s.warmup, false);
      assert.equal(s.low_traffic, false);
      assert.ok(Math.abs((s.values.request_rate ?? 0) - 100) < 1, `request_rate ${s.values.request_rate}`);
      assert.ok((s.values.error_rate ?? 0) > 0.05, `error_rate ${s.values.error_rate}`);
      assert.equal(s.values.ready, null);
      assert.deepEqual(s.results, { 'error rate above 5%': 'breach', 'readiness failing': 'not-replayed' });
    }
    assert.ok(Math.abs((out.steps[2]?.values.error_rate ?? 0) - 0.2) < 1e-9);
    assert.deepEqual(out.fired.map((f) => [f.at, f.rule, f.kind, f.severity]), [[iso(BAD_AT + 45_000), 'error rate above 5%', 'rollback', 'P0']]);
    assert.equal(out.verdict.kind, 'rollback');
    assert.equal(out.verdict.rule, 'error rate above 5%');
    assert.equal(out.verdict.at, iso(BAD_AT + 45_000));
    assert.match(out.verdict.text, /^would roll back at /);
  });

  it('a baseline-relative rule takes its baseline from the history before the deploy', async () => {
    const extra = '      - name: errors 2 points above baseline\n        signal: error_rate\n        above_baseline_by: 0.02\n        baseline: 5m\n        for: 3\n        severity: P1\n        action: rollback\n';
    const file = await policyFile(policy(prom?.url ?? '', { threshold: 0.05, extraRules: extra }));
    const r = await cli(['simulate', '--policy', file, '--service', SERVICE, '--deploy-at', iso(MILD_AT), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { baselines: { rule: string; value: number; points: number; threshold: string }[]; verdict: { kind: string; rule: string; at: string } };
    assert.equal(out.baselines.length, 1);
    assert.equal(out.baselines[0]?.value, 0, 'the fixed version ran at 0 % before the mild deploy');
    assert.equal(out.baselines[0]?.threshold, 'above 0.02 (baseline + 0.02)');
    assert.deepEqual([out.verdict.kind, out.verdict.rule, out.verdict.at], ['rollback', 'errors 2 points above baseline', iso(MILD_AT + 60_000)]);
  });

  it('fault: a baseline of 0 (no errors before the deploy) and one 5xx after it → not a breach: min_threshold is the threshold', async () => {
    const extra = '      - name: errors 50% above baseline\n        signal: error_rate\n        above_baseline: 1.5\n        min_threshold: 0.01\n        baseline: 5m\n        for: 1\n        severity: P1\n        action: rollback\n';
    const file = await policyFile(policy(prom?.url ?? '', { extraRules: extra }));
    const r = await cli(['simulate', '--policy', file, '--service', SERVICE, '--deploy-at', iso(ZERO_AT), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      baselines: { rule: string; value: number; threshold: string }[];
      steps: { at: string; values: Record<string, number | null>; results: Record<string, string> }[];
      verdict: { kind: string; text: string };
    };
    assert.equal(out.verdict.kind, 'passed', out.verdict.text);
    assert.deepEqual(out.baselines.map((b) => [b.rule, b.value, b.threshold]), [['errors 50% above baseline', 0, 'above 0.01 (min_threshold, as 1.5× baseline 0 would be 0)']]);
    // The samples whose 30 s rate holds the one 5xx (about 1 in 3,000 requests): above a threshold of 0.
    const seen = out.steps.filter((s) => (s.values.error_rate ?? 0) > 0);
    assert.deepEqual(seen.map((s) => s.at), [iso(ONE_ERROR_AT), iso(ONE_ERROR_AT + 15_000)], JSON.stringify(out.steps.map((s) => [s.at, s.values.error_rate])));
    for (const s of seen) {
      assert.ok((s.values.error_rate ?? 1) < 0.001, `error_rate ${s.values.error_rate}`);
      assert.equal(s.results['errors 50% above baseline'], 'ok', `${s.values.error_rate} is below the 0.01 floor`);
    }
  });

  it('a burn-rate rule is replayed from range queries of each of its windows', async () => {
    const text = policy(prom?.url ?? '', { threshold: 0.5 })
      .replace('      request_rate:\n', '      error_ratio:\n        prometheus: sum(rate(http_requests_total{service="{{service}}",code=~"5.."}[{{range}}])) / sum(rate(http_requests_total{service="{{service}}"}[{{range}}]))\n      request_rate:\n')
      .concat('      - name: burning budget\n        signal: error_ratio\n        burn_rate: {slo: 0.99, windows: [[1m, 5m, 5]]}\n        for: 2\n        severity: P1\n        action: rollback\n');
    const r = await cli(['simulate', '--policy', await policyFile(text), '--service', SERVICE, '--deploy-at', iso(BAD_AT), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { columns: { key: string }[]; steps: { values: Record<string, number | null> }[]; verdict: { kind: string; rule: string; after_ms: number } };
    assert.ok(out.columns.some((c) => c.key === 'burn:burning budget'));
    assert.ok(out.steps.every((s) => typeof s.values['burn:burning budget'] === 'number'), 'every sample has a burn rate');
    assert.deepEqual([out.verdict.kind, out.verdict.rule], ['rollback', 'burning budget']);
    // At 20 % errors the 5m window's ratio passes 5 × the 1 % budget only after 75 s.
    assert.ok(out.verdict.after_ms > 75_000, `fired after ${out.verdict.after_ms} ms`);
  });

  it('--since replays recorded deployments under a new policy and shows which verdicts would change', async () => {
    db = await freshDatabase();
    const store = await openStore({ databaseUrl: db.url, stateDir: dir, log: pino({ level: 'silent' }) });
    try {
      const record = async (startedAt: number, ref: string, state: 'rolled_back' | 'passed', reason: string, decidedAfterMs: number): Promise<number> => {
        const d = await store.insertDeployment({
          service: SERVICE, target: 'docker-container', container_id: `c-${startedAt}`, container_name: NAME, from_image: 'sha256:aaa', from_ref: 'rollguard-fixture:v1',
          to_image: `sha256:${startedAt}`, to_ref: ref, dry_run: false, started_at: new Date(startedAt), detected_at: new Date(startedAt), window_ends_at: new Date(startedAt + 300_000),
        });
        await store.updateDeployment(d.id, { state, reason, decided_at: new Date(startedAt + decidedAfterMs) });
        return d.id;
      };
      const bad = await record(BAD_AT, 'rollguard-fixture:v2-errors', 'rolled_back', 'error rate above 5%: error_rate above 0.05 for 3 consecutive samples (last 0.2)', 46_000);
      const good = await record(GOOD_AT, 'rollguard-fixture:v1.1', 'passed', 'window survived; now known-good', 300_500);
      const mild = await record(MILD_AT, 'rollguard-fixture:v3-mild', 'passed', 'window survived; now known-good', 300_500);
      await store.insertDeployment({
        service: 'gone', target: 'docker-container', container_id: 'c-gone', container_name: 'rg-sim-gone', from_image: null, from_ref: null, to_image: 'sha256:bbb', to_ref: 'gone:v1',
        dry_run: false, started_at: new Date(GOOD_AT), detected_at: new Date(GOOD_AT), window_ends_at: new Date(GOOD_AT + 300_000), state: 'passed',
      });
      const strict = await policyFile(policy(prom?.url ?? '', { threshold: 0.02 }));

      const json = await cli(['simulate', '--policy', strict, '--since', '7d', '--json'], { DATABASE_URL: db.url });
      assert.equal(json.code, 0, json.stderr);
      const out = JSON.parse(json.stdout) as { changed: number; deployments: { id: number; recorded: { state: string; verdict: string | null }; simulated: { kind: string; at: string } | null; changed: boolean; comparable: boolean; skipped: string | null }[] };
      const byId = new Map(out.deployments.map((d) => [d.id, d]));
      assert.deepEqual([byId.get(bad)?.simulated?.kind, byId.get(bad)?.changed], ['rollback', false]);
      assert.deepEqual([byId.get(good)?.simulated?.kind, byId.get(good)?.changed], ['passed', false]);
      assert.deepEqual([byId.get(mild)?.simulated?.kind, byId.get(mild)?.simulated?.at, byId.get(mild)?.changed], ['rollback', iso(MILD_AT + 60_000), true]);
      assert.equal(out.deployments.find((d) => d.skipped)?.skipped, 'service "gone" is not in the policy');
      assert.equal(out.changed, 1);

      const text = await cli(['simulate', '--policy', strict, '--since', '7d'], { DATABASE_URL: db.url });
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /replayed 3 of 4 recorded deployment\(s\)/);
      assert.match(text.stdout, new RegExp(`1 verdict\\(s\\) would change:\\n  #${mild} sim rollguard-fixture:v3-mild .*: recorded passed \\(window survived; now known-good\\) → would roll back at .* because "error rate above 2%"`));
    } finally {
      await store.sql.close();
    }
  });

  it('policy check --live prints each signal\'s current value for a good policy', async () => {
    await waitFor('live fixture data in Prometheus', async () => {
      const res = await fetch(`${prom?.url}/api/v1/query?query=${encodeURIComponent(`sum(rate(http_requests_total{service="${SERVICE}"}[30s]))`)}`);
      const body = (await res.json()) as { data?: { result?: { value: [number, string] }[] } };
      return Number(body.data?.result?.[0]?.value[1] ?? 0) > 0;
    }, 30_000, 250);
    const file = await policyFile(policy(prom?.url ?? ''));
    const r = await cli(['policy', 'check', file, '--live']);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /: ok — 1 service\(s\): sim \(2 rules\)/);
    assert.match(r.stdout, /sim — templates: service="sim" container="rg-sim" image="sim:placeholder"\* version="placeholder"\*/);
    assert.match(r.stdout, /ok\s+error_rate\s+prometheus\s+0\s+\d+ ms/);
    assert.match(r.stdout, /ok\s+request_rate\s+prometheus\s+\d+(\.\d+)?\s+\d+ ms/);
    assert.match(r.stdout, /ok\s+ready\s+http\s+1\s+\d+ ms/);
    assert.match(r.stdout, /live check passed: 3 answered, 0 failed, 0 skipped/);
  });

  it('policy check --live exits 1 and names the error: a broken query, a query without series, a refused HTTP check', async () => {
    const broken = policy(prom?.url ?? '', { query: 'sum(rate(http_requests_total{service="{{service}}"}[30s])' })
      .replace('sum(rate(http_requests_total{service="{{service}}"}[30s]))\n', 'sum(rate(no_such_metric_total{service="{{service}}"}[30s]))\n')
      .replace(`127.0.0.1:${PORT}/cgi-bin/ready`, `127.0.0.1:${await freePort()}/ready`);
    const file = await policyFile(broken);
    const static_ = await cli(['policy', 'check', file]);
    assert.equal(static_.code, 0, 'the static check cannot see these problems');
    const r = await cli(['policy', 'check', file, '--live']);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, /FAILED\s+error_rate\s+prometheus\s+query failed: bad_data: .*parse error/);
    assert.match(r.stdout, /FAILED\s+request_rate\s+prometheus\s+query returned no series/);
    assert.match(r.stdout, /FAILED\s+ready\s+http\s+request failed: .*ECONNREFUSED/);
    assert.match(r.stdout, /error_rate: query sum\(rate\(http_requests_total\{service="sim"\}\[30s\]\)/);
    assert.match(r.stdout, /live check FAILED: 0 answered, 3 failed, 0 skipped/);
  });

  it('simulate and policy check --live show the Prometheus and HTTP check URLs without their credentials', async () => {
    const user = testSecret('prometheus-user');
    const password = testSecret('prometheus-password');
    const probe = testSecret('http-check-password');
    const env = { PROM_URL: (prom?.url ?? '').replace('http://', `http://${user}:${password}@`), READY_URL: `http://probe:${probe}@127.0.0.1:${PORT}/cgi-bin/ready` };
    const text = policy('${PROM_URL}').replace(`"http://127.0.0.1:${PORT}/cgi-bin/ready"`, '"${READY_URL}"');
    assert.match(text, /\$\{READY_URL\}/);
    const file = await policyFile(text);
    const runs = {
      simulate: await cli(['simulate', '--policy', file, '--service', SERVICE, '--deploy-at', iso(BAD_AT)], env),
      'simulate --json': await cli(['simulate', '--policy', file, '--service', SERVICE, '--deploy-at', iso(BAD_AT), '--json'], env),
      'policy check --live': await cli(['policy', 'check', file, '--live'], env),
    };
    assert.equal(runs.simulate.code, 0, runs.simulate.stderr);
    assert.match(runs.simulate.stdout, new RegExp(`history from ${prom?.url}\\n`), 'the history comes from the URL without its credentials');
    assert.equal((JSON.parse(runs['simulate --json'].stdout) as { prometheus: string }).prometheus, prom?.url);
    assert.equal(runs['policy check --live'].code, 0, runs['policy check --live'].stdout);
    assert.match(runs['policy check --live'].stdout, new RegExp(`queried once against ${prom?.url} now`));
    for (const [run, r] of Object.entries(runs)) {
      for (const [what, secret] of Object.entries({ user, password, probe })) {
        assert.equal(`${r.stdout}${r.stderr}`.includes(secret), false, `${run} shows the ${what}`);
      }
    }
  });

  it('refuses a deploy time it cannot read', async () => {
    const file = await policyFile(policy(prom?.url ?? ''));
    const r = await cli(['simulate', '--policy', file, '--service', SERVICE, '--deploy-at', 'yesterday']);
    assert.equal(r.code, 2, 'a usage error');
    assert.match(r.stderr, /--deploy-at: expected RFC 3339 \(2026-11-26T14:05:00Z\) or Unix seconds, got "yesterday"/);
  });
});
