/**
 * rollguard's own observability by the ecosystem's conventions, checked with Prometheus's own
 * tool: the example alert rules load (`promtool check rules`) and fire when they should
 * (`promtool test rules`), the dashboard's queries are valid PromQL, a running daemon's /metrics
 * passes `promtool check metrics` with every series of its policy there at 0, and its log lines
 * carry string levels and ISO times. promtool comes with Debian's prometheus package.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT, fixturePolicy, startRollguard, testSecret, waitFor, type Rollguard } from './harness.js';

/** Runs promtool with `args` (and `stdin`), resolving with its exit code and output whatever it is. */
function promtool(args: string[], stdin?: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile('promtool', args, { cwd: ROOT, timeout: 30_000 }, (err, stdout, stderr) => {
      if ((err as NodeJS.ErrnoException | null)?.code === 'ENOENT') {
        reject(new Error('promtool is not installed (Debian package prometheus; scripts/test.sh installs it)'));
        return;
      }
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, output: `${stdout}${stderr}` });
    });
    child.stdin?.end(stdin ?? '');
  });
}

/** The rollguard_ series a scrape has with exactly these labels, as "name{labels} value" lines. */
const line = (text: string, name: string, labels: string): string | undefined =>
  text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `) || l.startsWith(`${name}{${labels},`));

describe('alert rules and dashboard for rollguard itself', () => {
  it('promtool check rules accepts config/prometheus-alerts.yml', async () => {
    const r = await promtool(['check', 'rules', 'config/prometheus-alerts.yml']);
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /SUCCESS: 4 rules found/);
  });

  it('promtool test rules: a failed rollback, a service nobody leads, a stuck outbox and a down instance each fire, and only then', async () => {
    const r = await promtool(['test', 'rules', 'test/fixtures/prometheus-alerts.test.yml']);
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /SUCCESS/);
  });

  it("every query of config/grafana-dashboard.json is valid PromQL (promtool parses them as recording rules)", async (t) => {
    const dashboard = JSON.parse(await readFile(path.join(ROOT, 'config/grafana-dashboard.json'), 'utf8')) as { panels: { targets?: { expr: string }[] }[] };
    // Grafana's variables, as Grafana would put them in.
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((q) => q.expr.replaceAll('$__rate_interval', '1m').replace(/\$(service|instance)\b/g, '.*')));
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rg-obs-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'dashboard-queries.yml');
    await writeFile(file, JSON.stringify({ groups: [{ name: 'dashboard', rules: exprs.map((expr, i) => ({ record: `dashboard:query_${i}`, expr })) }] }));
    const r = await promtool(['check', 'rules', file]);
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, new RegExp(`SUCCESS: ${exprs.length} rules found`));
  });
});

describe("a running daemon's /metrics and logs", () => {
  let rg: Rollguard;

  before(async () => {
    // Nothing is deployed for the service and nothing is sent: the daemon starts, waits, and is scraped.
    const policy = `${fixturePolicy('http://127.0.0.1:9', { service: 'obs-web', container: 'rg-obs-none', port: 9 })}notifications:
  obs-hook:
    webhook:
      url: http://127.0.0.1:18761/hook
      secret: \${OBS_HOOK_SECRET}
routes:
  P0: [obs-hook]
`;
    rg = await startRollguard(policy, { env: { OBS_HOOK_SECRET: testSecret('observability hook') } });
  });

  after(async () => {
    await rg?.stop();
    if (rg) await rm(rg.stateDir, { recursive: true, force: true });
  });

  it('passes promtool check metrics, with build info, unprefixed process metrics and every series of the policy at 0', async () => {
    const text = await (await fetch(`${rg.apiUrl}/metrics`)).text();
    const r = await promtool(['check', 'metrics'], text);
    // prom-client's default nodejs_active_{handles,requests,resources}_total are gauges named like
    // counters; they keep the names every Node.js dashboard uses (prometheus/client_js#283, open).
    const problems = r.output.split('\n').filter((l) => l.trim() && !/^nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/.test(l));
    assert.deepEqual(problems, [], 'no lint problem in rollguard\'s own metrics');
    assert.ok(r.code === 0 || (r.code === 3 && r.output.includes('nodejs_active_')), `promtool check metrics exited ${r.code}: ${r.output}`);
    const { version } = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.match(text, new RegExp(`^rollguard_build_info\\{version="${version.replaceAll('.', '\\.')}",node_version="${process.version}"\\} 1$`, 'm'));
    assert.match(text, /^process_resident_memory_bytes \d+/m);
    assert.match(text, /^nodejs_heap_size_used_bytes \d+/m);
    assert.doesNotMatch(text, /^rollguard_(process|nodejs)_/m);
    for (const outcome of ['succeeded', 'failed', 'dry_run', 'limited', 'orchestrator']) {
      assert.match(line(text, 'rollguard_rollbacks_total', `service="obs-web",outcome="${outcome}"`) ?? '', / 0$/, `rollbacks ${outcome}`);
    }
    for (const result of ['ok', 'breach', 'no-data']) assert.match(line(text, 'rollguard_samples_total', `service="obs-web",result="${result}"`) ?? '', / 0$/, `samples ${result}`);
    assert.match(text, /^rollguard_time_to_recovery_seconds_count\{service="obs-web"\} 0$/m);
    assert.match(text, /^rollguard_leader\{service="obs-web"\} [01]$/m, 'the leader series exists from the start');
    assert.match(text, /^rollguard_notifications_total\{channel="obs-hook",event="rollback_failed",result="failed"\} 0$/m);
    await waitFor('the only instance to lead its service once started', async () => /^rollguard_leader\{service="obs-web"\} 1$/m.test(await (await fetch(`${rg.apiUrl}/metrics`)).text()));
    await waitFor('the dispatcher to set the outbox gauges', async () => /^rollguard_outbox_oldest_pending_age_seconds\{channel="obs-hook"\} 0$/m.test(await (await fetch(`${rg.apiUrl}/metrics`)).text()));
  });

  it('logs JSON lines with the level as a name and the time in ISO 8601', async () => {
    const lines = (await rg.logs()).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: unknown; time: unknown; msg: string });
    assert.ok(lines.some((l) => l.msg === 'rollguard started'), 'the start was logged');
    for (const l of lines) {
      assert.ok(['trace', 'debug', 'info', 'warn', 'error', 'fatal'].includes(String(l.level)), `level ${String(l.level)}: ${l.msg}`);
      assert.match(String(l.time), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/, l.msg);
    }
  });
});
