import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { createMetrics } from '../api/metrics.js';
import { parsePolicy } from '../config/load-policy.js';
import type { ContainerSignal, Policy, PrometheusSignal } from '../config/policy.js';
import type { Measurement, ProbeContext, SignalProvider } from '../signals/provider.js';
import type { Deployment, Store } from '../store/store.js';
import { WriteBehind } from '../store/write-behind.js';
import { FakeTarget } from '../targets/fake/fake-target.js';
import { Daemon } from './daemon.js';

// The watch loop end to end over a FakeTarget and a real store: the providers, policy and daemon
// rig the daemon's tests share.

export const log = pino({ level: process.env.LOG_LEVEL ?? 'silent' });
export const ERROR_RULE = 'error rate above 5%';

export interface RigOptions {
  window?: string; labels?: boolean; recovery?: { query: string; below: number }; leads?: () => boolean;
  /** `pass_after` in the defaults, as YAML: `{ok: 6, min: 500ms}`. */
  passAfter?: string;
}

/** Error rates by service, as the test sets them (0 until set). */
export class FakePrometheus implements SignalProvider<PrometheusSignal> {
  readonly kind = 'prometheus';
  private readonly values = new Map<string, number>();
  /** Signals answered by a function of their own instead of the service's error rate. */
  readonly bySignal = new Map<string, () => number | Promise<number>>();

  set(service: string, value: number): void {
    this.values.set(service, value);
  }

  async measure(signal: PrometheusSignal, ctx: ProbeContext): Promise<Measurement> {
    const own = this.bySignal.get(signal.name);
    if (own) return { value: await own(), latencyMs: 0 };
    return { value: this.values.get(ctx.template.service) ?? 0, latencyMs: 0 };
  }
}

/** `serving`: 1 for every replica found, 0 when any is told to crash, no data when none is found. */
export class FakeContainers implements SignalProvider<ContainerSignal> {
  readonly kind = 'container';
  /** Images whose replicas crash, and single replicas (by ID) that crash. */
  readonly crashing = new Set<string>();

  constructor(private readonly target: FakeTarget) {}

  async measure(signal: ContainerSignal, ctx: ProbeContext): Promise<Measurement> {
    if (signal.field !== 'serving') return { value: null, detail: `the fake answers only serving, not ${signal.field}`, latencyMs: 0 };
    const ids = ctx.containerIds?.length ? ctx.containerIds : [ctx.containerId];
    const found = (await Promise.all(ids.map((id) => this.target.replica(id)))).filter((r) => r !== undefined);
    if (!found.length) return { value: null, detail: 'no replica found', latencyMs: 0 };
    return { value: found.some((r) => this.crashing.has(r.image) || this.crashing.has(r.id)) ? 0 : 1, latencyMs: 0 };
  }
}

/**
 * One service `name` with one Prometheus rollback rule (error rate above 5 % for 2 samples),
 * sampled every 50 ms, read by the real policy loader. `labels` matches replicas by the label
 * `app=<name>` instead of by container name.
 */
export function policyFor(name: string, opts: RigOptions = {}): Policy {
  const text = [
    'version: 1',
    'prometheus:',
    '  url: http://127.0.0.1:9',
    'defaults:',
    '  interval: 50ms',
    `  window: ${opts.window ?? '1s'}`,
    '  stop_timeout: 0s',
    '  recovery_timeout: 1s',
    ...(opts.passAfter ? [`  pass_after: ${opts.passAfter}`] : []),
    'services:',
    `  ${name}:`,
    '    match:',
    opts.labels ? `      labels: {app: ${name}}` : `      container: ${name}`,
    '    signals:',
    '      error_rate:',
    // With pass_after, a query over no range: one over [1m] would hold the early pass off for a minute (settledAfterMs).
    opts.passAfter
      ? `        prometheus: 'http_error_ratio{service="{{service}}"}'`
      : `        prometheus: 'sum(rate(http_errors_total{service="{{service}}"}[1m])) / sum(rate(http_requests_total{service="{{service}}"}[1m]))'`,
    ...(opts.recovery ? ['      recovered:', `        prometheus: '${opts.recovery.query}'`] : []),
    '    rules:',
    `      - name: ${ERROR_RULE}`,
    '        signal: error_rate',
    '        above: 0.05',
    '        for: 2',
    '        severity: P0',
    '        action: rollback',
    ...(opts.recovery ? ['    recovery:', `      - {signal: recovered, below: ${opts.recovery.below}}`] : []),
  ].join('\n');
  return parsePolicy(text, 'daemon.test.yaml', {});
}

/** Polls `probe` until it returns something, failing with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await probe();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function rig(t: TestContext, store: Store, name: string, opts: RigOptions = {}) {
  const policy = policyFor(name, opts);
  const service = policy.services[name];
  assert.ok(service);
  const target = new FakeTarget();
  const prometheus = new FakePrometheus();
  const containers = new FakeContainers(target);
  let current: { daemon: Daemon; writes: WriteBehind } | undefined;
  const stop = async (): Promise<void> => {
    if (!current) return;
    const { daemon, writes } = current;
    current = undefined;
    await daemon.stop(5_000);
    await writes.flush();
    writes.close();
  };
  t.after(stop);
  return {
    policy, target, prometheus, containers,
    get daemon(): Daemon {
      assert.ok(current, 'start() a daemon first');
      return current.daemon;
    },
    /** Starts a daemon over the shared store and this target (after `stop()`: a restart). */
    async start(): Promise<Daemon> {
      assert.equal(current, undefined, 'one daemon at a time follows the target');
      const writes = new WriteBehind(store, { log });
      const daemon = new Daemon(policy, { targets: [target], store, writes, providers: { prometheus, container: containers }, metrics: createMetrics(), log, leads: opts.leads });
      current = { daemon, writes };
      await daemon.start();
      return daemon;
    },
    /** Stops the daemon, leaving what it recorded for the next one. */
    stop,
    /** The service's deployments, newest first. */
    deployments: () => store.listDeployments({ service: name }),
    /** Waits for the latest deployment of the service to leave watching and rolling_back. */
    finished: () => waitFor(`a deployment of ${name} to end`, async (): Promise<Deployment | undefined> => {
      const d = await store.latestDeployment(name);
      return d && d.state !== 'watching' && d.state !== 'rolling_back' ? d : undefined;
    }),
    /** The service's running replicas as `name image`, sorted. */
    running: async () => (await target.running(policy, service)).map((r) => `${r.name} ${r.image}`).sort(),
  };
}
