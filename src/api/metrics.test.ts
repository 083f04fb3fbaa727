import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseYaml } from 'yaml';
import { NOTIFICATION_RESULTS, ROLLBACK_OUTCOMES, SAMPLE_RESULTS, createMetrics, type Metrics } from './metrics.js';

const ROOT = new URL('../../', import.meta.url);
/** What `forPolicy` reads of a policy: the names of its services and channels. */
const policyOf = (services: string[]): Parameters<Metrics['forPolicy']>[0] =>
  ({ services: Object.fromEntries(services.map((s) => [s, {}])), notifications: { ops: {} } }) as unknown as Parameters<Metrics['forPolicy']>[0];
const policy = policyOf(['web', 'api']);

/** The value of one series in the exposition text, or undefined when it is not there. */
function series(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

/** Every metric name a scrape can show: each metric's own, and a histogram's _bucket, _sum and _count. */
async function exposedNames(m: Metrics): Promise<Set<string>> {
  const names = new Set<string>();
  for (const metric of await m.registry.getMetricsAsJSON()) {
    names.add(metric.name);
    if (String(metric.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(metric.name + s);
  }
  return names;
}

/** The rollguard_, process_ and nodejs_ metric names a PromQL expression uses. */
const namesIn = (expr: string): string[] => [...expr.matchAll(/\b(?:rollguard|process|nodejs)_[a-z0-9_]+\b/g)].map((m) => m[0]);

describe('metrics', () => {
  it('rollguard_store_writes_waiting reads the write queue at each scrape', async () => {
    const m = createMetrics();
    assert.match(await m.registry.metrics(), /^rollguard_store_writes_waiting 0$/m);
    let waiting = 3;
    m.writesWaiting.read = () => waiting;
    assert.match(await m.registry.metrics(), /^rollguard_store_writes_waiting 3$/m);
    waiting = 0;
    assert.match(await m.registry.metrics(), /^rollguard_store_writes_waiting 0$/m);
    m.storeWritesSetAside.inc();
    assert.match(await m.registry.metrics(), /^rollguard_store_writes_set_aside_total 1$/m);
  });

  it('has the standard process_* and nodejs_* metrics under their own names, without a prefix', async () => {
    const text = await createMetrics().registry.metrics();
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_p99_seconds']) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
    }
    assert.doesNotMatch(text, /^rollguard_(process|nodejs)_/m);
  });

  it('rollguard_build_info is 1 with the version of package.json and of Node.js', async () => {
    const { version } = JSON.parse(readFileSync(new URL('package.json', ROOT), 'utf8')) as { version: string };
    const text = await createMetrics().registry.metrics();
    assert.equal(series(text, 'rollguard_build_info', { version, node_version: process.version }), 1);
  });

  it("creates every series of the policy's services and channels at 0 before any event", async () => {
    const m = createMetrics();
    m.forPolicy(policy);
    const text = await m.registry.metrics();
    for (const service of ['web', 'api']) {
      for (const outcome of ROLLBACK_OUTCOMES) assert.equal(series(text, 'rollguard_rollbacks_total', { service, outcome }), 0, `${service} ${outcome}`);
      for (const result of SAMPLE_RESULTS) assert.equal(series(text, 'rollguard_samples_total', { service, result }), 0, `${service} ${result}`);
      assert.equal(series(text, 'rollguard_deployments_seen_total', { service }), 0);
      assert.equal(series(text, 'rollguard_time_to_recovery_seconds_count', { service }), 0);
      assert.equal(series(text, 'rollguard_leader', { service }), 0);
    }
    for (const result of NOTIFICATION_RESULTS) assert.equal(series(text, 'rollguard_notifications_total', { channel: 'ops', event: 'rollback_failed', result }), 0, result);
    assert.equal(series(text, 'rollguard_outbox_pending', { channel: 'ops' }), 0);
    assert.equal(series(text, 'rollguard_outbox_oldest_pending_age_seconds', { channel: 'ops' }), 0);
    assert.equal(series(text, 'rollguard_active_watches'), 0);
    for (const kind of ['prometheus', 'http', 'container']) assert.equal(series(text, 'rollguard_probe_duration_seconds_count', { kind }), 0, kind);
  });

  it('a reload adds the new services at 0 and keeps what was counted', async () => {
    const m = createMetrics();
    m.forPolicy(policy);
    m.rollbacks.inc({ service: 'web', outcome: 'failed' });
    m.timeToRecovery.observe({ service: 'web' }, 42);
    m.outboxPending.set({ channel: 'ops' }, 2);
    m.forPolicy(policyOf(['web', 'api', 'worker']));
    const text = await m.registry.metrics();
    assert.equal(series(text, 'rollguard_rollbacks_total', { service: 'web', outcome: 'failed' }), 1);
    assert.equal(series(text, 'rollguard_time_to_recovery_seconds_count', { service: 'web' }), 1);
    assert.equal(series(text, 'rollguard_outbox_pending', { channel: 'ops' }), 2);
    assert.equal(series(text, 'rollguard_rollbacks_total', { service: 'worker', outcome: 'failed' }), 0);
    assert.equal(series(text, 'rollguard_time_to_recovery_seconds_count', { service: 'worker' }), 0);
  });

  it('rollguard_time_to_recovery_seconds has buckets from 5 s to 30 min', async () => {
    const m = createMetrics();
    m.timeToRecovery.observe({ service: 'web' }, 12);
    const text = await m.registry.metrics();
    assert.equal(series(text, 'rollguard_time_to_recovery_seconds_bucket', { service: 'web', le: '5' }), 0);
    assert.equal(series(text, 'rollguard_time_to_recovery_seconds_bucket', { service: 'web', le: '15' }), 1);
    assert.equal(series(text, 'rollguard_time_to_recovery_seconds_bucket', { service: 'web', le: '1800' }), 1);
    assert.equal(series(text, 'rollguard_time_to_recovery_seconds_sum', { service: 'web' }), 12);
  });

  it('every label takes its values from a small fixed set or from names in the policy', async () => {
    const m = createMetrics();
    m.forPolicy(policy);
    const fixed: Record<string, readonly string[]> = {
      outcome: ROLLBACK_OUTCOMES, result: [...SAMPLE_RESULTS, ...NOTIFICATION_RESULTS], kind: ['prometheus', 'http', 'container', 'alertmanager'],
      event: ['deployment_detected', 'rule_breached', 'rollback_started', 'rollback_succeeded', 'rollback_failed', 'watch_inconclusive', 'deployment_passed', 'digest', 'test'],
    };
    const named = new Set(['service', 'channel']);
    // prom-client's own process_* and nodejs_* metrics are left out; build_info carries versions by design.
    const ours = (await m.registry.getMetricsAsJSON()).filter((x) => x.name.startsWith('rollguard_') && x.name !== 'rollguard_build_info');
    for (const metric of ours) {
      for (const value of metric.values) {
        for (const [label, v] of Object.entries(value.labels)) {
          if (named.has(label) || label === 'le') continue;
          assert.ok(fixed[label]?.includes(String(v)), `${metric.name}{${label}="${String(v)}"} is not from a fixed set`);
        }
      }
    }
  });
});

describe('the Grafana dashboard and the alert rules use only metrics rollguard exposes', () => {
  it('config/grafana-dashboard.json: every query names existing metrics', async () => {
    const names = await exposedNames(createMetrics());
    const dashboard = JSON.parse(readFileSync(new URL('config/grafana-dashboard.json', ROOT), 'utf8')) as { panels: { title: string; targets?: { expr: string }[] }[] };
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
    assert.ok(exprs.length >= 10, 'the dashboard has queries');
    for (const { panel, expr } of exprs) {
      assert.ok(namesIn(expr).length > 0, `${panel}: ${expr} names a rollguard metric`);
      for (const name of namesIn(expr)) assert.ok(names.has(name), `${panel}: ${name} does not exist`);
    }
    const used = new Set(exprs.flatMap((e) => namesIn(e.expr)));
    for (const name of ['rollguard_rollbacks_total', 'rollguard_active_watches', 'rollguard_samples_total', 'rollguard_time_to_recovery_seconds_bucket', 'rollguard_store_writes_waiting', 'rollguard_outbox_pending', 'rollguard_leader', 'process_resident_memory_bytes']) {
      assert.ok(used.has(name), `the dashboard shows ${name}`);
    }
  });

  it('config/prometheus-alerts.yml: every rule names existing metrics', async () => {
    const names = await exposedNames(createMetrics());
    const file = parseYaml(readFileSync(new URL('config/prometheus-alerts.yml', ROOT), 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] };
    const rules = file.groups.flatMap((g) => g.rules);
    assert.deepEqual(rules.map((r) => r.alert).sort(), ['RollguardDown', 'RollguardNoLeader', 'RollguardOutboxStuck', 'RollguardRollbackFailed']);
    for (const rule of rules) for (const name of namesIn(rule.expr)) assert.ok(names.has(name), `${rule.alert}: ${name} does not exist`);
  });
});
