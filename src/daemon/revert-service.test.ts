import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { createMetrics } from '../api/metrics.js';
import type { PrometheusSignal, Rule, ServicePolicy } from '../config/policy.js';
import { servicePolicy } from '../policy/service.fixture.js';
import type { Measurement, SignalProvider } from '../signals/provider.js';
import type { ActionRecord, Deployment, KnownGood, SampleRecord } from '../store/store.js';
import type { DeploymentPatch, Writes } from '../store/write-behind.js';
import { RevertError, type Convergence, type KnownReplica, type PutBack, type Replica, type ServiceTarget, type UpdateState } from '../targets/target.js';
import { revertDeployment, type RevertDeps } from './revert.js';

// revertDeployment over a service put back as a whole by its orchestrator (revert-service.ts):
// a fake Swarm service in memory, recorded writes, and a clock that sleeping moves forward, so
// waits of minutes take no time.

const log = pino({ level: 'silent' });
const metrics = createMetrics();
const GOOD_IMAGE = `shop/web:1@sha256:${'1'.repeat(64)}`;
const BAD_IMAGE = `shop/web:2@sha256:${'2'.repeat(64)}`;
const T0 = Date.parse('2026-03-02T10:00:00Z');

/**
 * A Swarm service as the revert sees it: it specifies the bad or the known-good version; putting
 * the known-good one back makes Swarm start its tasks, which run once `converged` has been asked
 * `startsAfter` times (never, with `starts: false`).
 */
class FakeSwarmService implements ServiceTarget {
  readonly kind = 'swarm-service';
  readonly revertBy = 'service';
  readonly matches = ['swarm'] as const;
  readonly connected = true;
  spec: 'bad' | 'good' | 'newer' = 'bad';
  starts = true;
  startsAfter = 2;
  update?: UpdateState;
  /** When set, putBack refuses with this message, as Swarm refuses an update. */
  refuse?: string;
  /** The putBack calls, and how many of them changed the service. */
  readonly putBacks: { force: boolean; resume?: boolean }[] = [];
  changes = 0;
  private checks = 0;

  private readonly tasks: Replica[] = [1, 2].map((slot) => ({
    id: `t-good-${slot}`, name: `web.${slot}`, image: GOOD_IMAGE, ref: 'shop/web:1', version: 'v1',
    startedAt: new Date(T0 + 1_000), running: true, labels: {}, spec: {}, values: { slot: String(slot) },
  }));

  private get up(): boolean {
    return this.spec === 'good' && this.starts && this.checks >= this.startsAfter;
  }

  async putBack(_service: ServicePolicy, _snapshot: unknown, opts: { force: boolean; resume?: boolean }): Promise<PutBack> {
    this.putBacks.push(opts);
    if (this.refuse) throw new RevertError(this.refuse);
    if (this.spec === 'good' && !opts.force) return { how: 'already', detail: 'web already runs the known-good spec (shop/web:1); nothing was changed' };
    this.spec = 'good';
    this.changes += 1;
    this.checks = 0;
    return opts.force
      ? { how: 'update', detail: 'web updated again to the known-good spec (shop/web:1), recreating its tasks' }
      : { how: 'rollback', detail: 'Swarm rollback of web to its previous spec, the known-good one (shop/web:1)' };
  }

  async converged(): Promise<Convergence> {
    this.checks += 1;
    return this.up
      ? { done: true, replicas: this.tasks, detail: 'all 2 task(s) of web run the known-good version (web.1, web.2)' }
      : { done: false, replicas: [], detail: '0 of 2 task(s) of web run the known-good version; not yet: slot 1 starting, slot 2 starting' };
  }

  async replica(id: string): Promise<Replica | undefined> {
    // The deployed (bad) task stays in Swarm's task history.
    if (id === 't-bad-1') return { ...(this.tasks[0] as Replica), id, image: BAD_IMAGE, version: 'v2', running: this.spec === 'bad' };
    return this.up ? this.tasks.find((t) => t.id === id) : undefined;
  }

  async replicaValues(id: string) {
    return this.tasks.find((t) => t.id === id)?.values;
  }

  async inspectReplica(id: string) {
    return this.up && this.tasks.some((t) => t.id === id) ? { Id: id, RestartCount: 0, State: { Running: true, Restarting: false, OOMKilled: false } } : undefined;
  }

  knownReplicas(snapshot: unknown): KnownReplica[] {
    return (snapshot as { replicas: { name: string; version: string }[] }).replicas.map((r) => ({ ...r, spec: snapshot }));
  }

  async resolveImage(imageId: string): Promise<string> {
    return imageId;
  }

  async withImage(): Promise<never> {
    throw new Error('not used');
  }

  async specVersion(): Promise<string> {
    return { good: 'v1', bad: 'v2', newer: 'v3' }[this.spec];
  }

  async updateState(): Promise<UpdateState | undefined> {
    return this.update;
  }

  follow(): void {}
  async unfollow(): Promise<void> {}
  async drained(): Promise<void> {}
  async running(): Promise<Replica[]> {
    return this.up ? this.tasks : [];
  }
  servicesOf(): ServicePolicy[] {
    return [];
  }
  role() {
    return { kind: 'service' } as const;
  }
  snapshot(): unknown {
    throw new Error('not used by a revert');
  }
  changedSettings(): string[] {
    return [];
  }
}

/** The writes a revert makes, kept in order. */
class RecordedWrites implements Writes {
  readonly actions: ActionRecord[] = [];
  readonly patches: DeploymentPatch[] = [];
  readonly samples: SampleRecord[] = [];

  async insertAction(a: ActionRecord): Promise<void> {
    this.actions.push(a);
  }
  async updateDeployment(_id: number, patch: DeploymentPatch): Promise<void> {
    this.patches.push(patch);
  }
  async insertSamples(rows: readonly SampleRecord[]): Promise<void> {
    this.samples.push(...rows);
  }
  insertDeployment(): Promise<Deployment> {
    throw new Error('a revert inserts no deployment');
  }
  async insertDecision(): Promise<void> {}
  async setKnownGood(): Promise<void> {}
  async write(): Promise<void> {}
}

/** The error rate after the revert, as Prometheus would answer it: below 5 % once the known-good tasks run. */
class ErrorRate implements SignalProvider<PrometheusSignal> {
  readonly kind = 'prometheus';
  constructor(private readonly value: () => number) {}
  async measure(): Promise<Measurement> {
    return { value: this.value(), latencyMs: 1 };
  }
}

const RULE: Rule = { name: 'error rate above 5%', signal: 'errors', above: 0.05, for: 1, severity: 'P0', action: 'rollback' };

const SERVICE = servicePolicy({
  name: 'web',
  match: { kind: 'swarm', service: 'web' },
  maxAttempts: 2,
  stopTimeoutMs: 10_000,
  recoveryTimeoutMs: 60_000,
  intervalMs: 15_000,
  signals: { errors: { kind: 'prometheus', name: 'errors', query: 'sum(rate(errors{service="{{service}}"}[1m]))' } },
  rules: [RULE],
  recovery: [{ signal: 'errors', below: 0.05 }],
});

const KNOWN: KnownGood = {
  service: 'web', target: 'swarm-service', image_id: GOOD_IMAGE, image_ref: 'shop/web:1', container_name: 'web.1',
  spec: { service: 'web', replicas: [{ name: 'web.1', version: 'v1' }, { name: 'web.2', version: 'v1' }] },
  deployment_id: 6, since: new Date(T0 - 86_400_000),
};

function deployment(over: Partial<Deployment> = {}): Deployment {
  return {
    id: 7, service: 'web', target: 'swarm-service', container_id: 't-bad-1', container_name: 'web.1',
    from_image: GOOD_IMAGE, from_ref: 'shop/web:1', to_image: BAD_IMAGE, to_ref: 'shop/web:2',
    state: 'rolling_back', reason: null, dry_run: false, attempts: 0,
    started_at: new Date(T0 - 120_000), detected_at: new Date(T0 - 119_000), window_ends_at: new Date(T0 + 480_000),
    decided_at: new Date(T0), recovered_at: null, phase: 'decided',
    ...over,
  };
}

/** A revert's dependencies over `target`, with a clock that only sleeping moves. */
function setup(target: FakeSwarmService, errorRate: () => number = () => 0.01) {
  let now = T0;
  const slept: number[] = [];
  const writes = new RecordedWrites();
  const deps: RevertDeps = {
    writes, target, metrics, log,
    running: () => target.running(),
    providers: { prometheus: new ErrorRate(errorRate) },
    now: () => new Date(now),
    sleep: async (ms) => {
      slept.push(ms);
      now += ms;
    },
    ownContainers: new Set(),
  };
  return { deps, writes, slept, elapsed: () => now - T0 };
}

/** The recorded steps as `attempt kind ok`. */
const steps = (writes: RecordedWrites): string[] => writes.actions.map((a) => `${a.attempt} ${a.kind} ${a.ok ? 'ok' : 'failed'}`);

describe('revertDeployment of a service its orchestrator puts back (revertService)', () => {
  it('puts the known-good spec back, waits for its tasks, verifies recovery, and records each step', async () => {
    const target = new FakeSwarmService();
    const { deps, writes } = setup(target);
    const started = performance.now();
    const outcome = await revertDeployment(deps, SERVICE, deployment(), RULE, KNOWN);

    assert.equal(outcome.state, 'rolled_back');
    assert.deepEqual(outcome.containerIds, ['t-good-1', 't-good-2']);
    assert.equal(outcome.image, GOOD_IMAGE);
    assert.equal(outcome.ref, 'shop/web:1');
    assert.equal(outcome.attempts, 1);
    assert.deepEqual(steps(writes), ['0 check-image ok', '1 put-back ok', '1 converge ok', '1 verify ok']);
    assert.equal(writes.actions[1]?.detail, 'Swarm rollback of web to its previous spec, the known-good one (shop/web:1)');
    assert.equal(writes.actions[2]?.detail, 'all 2 task(s) of web run the known-good version (web.1, web.2)');
    assert.match(writes.actions[3]?.detail ?? '', /^recovered: errors below 0\.05 \(0\.01\)$/);
    assert.deepEqual(outcome.criteria, [{ signal: 'errors', threshold: 'below 0.05', measured: 0.01, holds: true }]);
    assert.deepEqual(target.putBacks, [{ force: false, resume: false }]);
    assert.deepEqual(writes.patches, [
      { attempts: 1 },
      { phase: 'started' },
      { state: 'rolled_back', recovered_at: writes.patches[2]?.recovered_at, attempts: 1, phase: 'done' },
    ]);
    assert.deepEqual([...deps.ownContainers].sort(), ['t-good-1', 't-good-2'], 'the known-good tasks are not taken for a deployment');
    assert.ok(performance.now() - started < 500, 'waits on the injected clock, not in real time');
  });

  it('a paused update is recorded before the known-good spec goes back', async () => {
    const target = new FakeSwarmService();
    target.update = { state: 'paused', message: 'update paused due to failure or early termination of task t-bad-1', rolledBack: false, paused: true };
    const { deps, writes } = setup(target);
    const outcome = await revertDeployment(deps, SERVICE, deployment(), RULE, KNOWN);
    assert.equal(outcome.state, 'rolled_back');
    assert.deepEqual(steps(writes).slice(0, 3), ['0 check-image ok', '0 update-paused ok', '1 put-back ok']);
    assert.equal(writes.actions[1]?.detail, 'Swarm paused the update (paused: update paused due to failure or early termination of task t-bad-1); the revert puts the known-good spec back');
  });

  it('a put-back refused on the first attempt fails at once: nothing was changed, nothing tried again', async () => {
    const target = new FakeSwarmService();
    target.refuse = 'cannot update the Swarm service web: rpc error: code = InvalidArgument desc = ContainerSpec: invalid mount config';
    const { deps, writes } = setup(target);
    const outcome = await revertDeployment(deps, SERVICE, deployment(), RULE, KNOWN);

    assert.equal(outcome.state, 'rollback_failed');
    assert.equal(outcome.reason, 'cannot update the Swarm service web: rpc error: code = InvalidArgument desc = ContainerSpec: invalid mount config; nothing was changed');
    assert.deepEqual(outcome.containerIds, ['t-bad-1'], 'the bad version still runs');
    assert.equal(outcome.image, BAD_IMAGE);
    assert.deepEqual(steps(writes), ['0 check-image ok', '1 put-back failed']);
    assert.deepEqual(target.putBacks, [{ force: false, resume: false }]);
    assert.ok(!writes.patches.some((p) => p.phase === 'started'));
    assert.deepEqual(writes.patches.at(-1), { state: 'rollback_failed', reason: outcome.reason, attempts: 1, phase: 'done' });
  });

  it('a service updated again meanwhile (neither the deployed nor the known-good version) is not reverted: superseded, nothing changed', async () => {
    const target = new FakeSwarmService();
    target.spec = 'newer';
    const { deps, writes } = setup(target);
    const outcome = await revertDeployment(deps, SERVICE, deployment(), RULE, KNOWN);

    assert.equal(outcome.state, 'superseded');
    assert.match(outcome.reason ?? '', /updated again \(to another version than shop\/web:2\) before the revert/);
    assert.deepEqual(target.putBacks, [], 'the newer update was left alone');
    assert.deepEqual(writes.patches.at(-1), { state: 'superseded', reason: outcome.reason, phase: 'done' });
  });

  it('Swarm rolling the update back by itself is no newer update: the revert goes on and finds the known-good spec', async () => {
    const target = new FakeSwarmService();
    target.spec = 'good';
    target.update = { state: 'rollback_started', message: 'update rolled back due to failure or early termination of task t-bad-1', rolledBack: true, paused: false };
    const { deps } = setup(target);
    const outcome = await revertDeployment(deps, SERVICE, deployment(), RULE, KNOWN);

    assert.equal(outcome.state, 'rolled_back');
    assert.equal(target.changes, 0, 'rollguard changed nothing');
  });

  it('tasks that never converge: attempt 2 recreates them (force), then the revert escalates as rollback_failed', async () => {
    const target = new FakeSwarmService();
    target.starts = false;
    const { deps, writes, slept, elapsed } = setup(target);
    const started = performance.now();
    const outcome = await revertDeployment(deps, SERVICE, deployment(), RULE, KNOWN);

    assert.deepEqual(target.putBacks, [{ force: false, resume: false }, { force: true, resume: false }]);
    assert.deepEqual(steps(writes), ['0 check-image ok', '1 put-back ok', '1 converge failed', '2 put-back ok', '2 converge failed']);
    assert.equal(writes.actions[3]?.detail, 'web updated again to the known-good spec (shop/web:1), recreating its tasks');
    assert.equal(outcome.state, 'rollback_failed');
    assert.equal(outcome.attempts, 2);
    assert.equal(outcome.reason, 'the service was not recovered after 2 attempt(s): 0 of 2 task(s) of web run the known-good version; not yet: slot 1 starting, slot 2 starting; it keeps the known-good spec');
    assert.equal(outcome.image, GOOD_IMAGE, 'the service is left on the known-good spec');
    assert.deepEqual(writes.patches.at(-1), { state: 'rollback_failed', reason: outcome.reason, attempts: 2, phase: 'done' });
    // Each attempt waits for the tasks to stop (10 s each of 2) and to recover (60 s), polling every 500 ms.
    assert.ok(slept.every((ms) => ms === 500));
    assert.ok(elapsed() >= 2 * 79_000 && elapsed() <= 2 * 80_000, `waited ${elapsed()} ms of the clock`);
    assert.ok(performance.now() - started < 1_000, 'waits on the injected clock, not in real time');
  });

  it('recovery criteria not met on attempt 1: attempt 2 recreates the tasks and recovers', async () => {
    const target = new FakeSwarmService();
    const errorRate = () => (target.putBacks.length < 2 ? 0.2 : 0.01);
    const { deps, writes } = setup(target, errorRate);
    const outcome = await revertDeployment(deps, SERVICE, deployment(), RULE, KNOWN);

    assert.equal(outcome.state, 'rolled_back');
    assert.equal(outcome.attempts, 2);
    assert.deepEqual(target.putBacks, [{ force: false, resume: false }, { force: true, resume: false }]);
    assert.deepEqual(steps(writes), ['0 check-image ok', '1 put-back ok', '1 converge ok', '1 verify failed', '2 put-back ok', '2 converge ok', '2 verify ok']);
    assert.match(writes.actions[3]?.detail ?? '', /^attempt 1: not met: errors below 0\.05 \(got 0\.2\)$/);
  });

  it('resume with the service already on the known-good spec: put-back records "already", changes nothing, and verifies', async () => {
    const target = new FakeSwarmService();
    target.spec = 'good';
    const { deps, writes } = setup(target);
    const outcome = await revertDeployment(deps, SERVICE, deployment({ attempts: 1, phase: 'started' }), RULE, KNOWN, true);

    assert.equal(outcome.state, 'rolled_back');
    assert.equal(outcome.attempts, 1);
    assert.equal(target.changes, 0);
    assert.deepEqual(target.putBacks, [{ force: false, resume: true }]);
    assert.deepEqual(steps(writes), ['1 check-image ok', '1 put-back ok', '1 converge ok', '1 verify ok']);
    assert.equal(writes.actions[1]?.detail, 'web already runs the known-good spec (shop/web:1); nothing was changed');
    assert.ok(!writes.patches.some((p) => p.phase === 'started'), 'the phase is not moved back');
  });

  it('a put-back refused when resuming is tried again on the next attempt instead of failing as unchanged', async () => {
    const target = new FakeSwarmService();
    target.refuse = 'cannot inspect the Swarm service web: connect ECONNREFUSED /var/run/docker.sock';
    const { deps, writes } = setup(target);
    const outcome = await revertDeployment(deps, SERVICE, deployment({ attempts: 1, phase: 'started' }), RULE, KNOWN, true);

    assert.deepEqual(target.putBacks, [{ force: false, resume: true }, { force: true, resume: false }]);
    assert.equal(outcome.state, 'rollback_failed');
    assert.doesNotMatch(outcome.reason ?? '', /nothing was changed/);
    assert.match(outcome.reason ?? '', /^the service was not recovered after 2 attempt\(s\): cannot inspect the Swarm service web: connect ECONNREFUSED/);
    assert.deepEqual(steps(writes), ['1 check-image ok', '1 put-back failed', '2 put-back failed']);
  });

  it('a known-good version recorded on another kind of target is not put back', async () => {
    const target = new FakeSwarmService();
    const { deps, writes } = setup(target);
    const outcome = await revertDeployment(deps, SERVICE, deployment(), RULE, { ...KNOWN, target: 'docker-container' });
    assert.equal(outcome.state, 'rollback_failed');
    assert.match(outcome.reason ?? '', /recorded on a docker-container target .* nothing was changed$/);
    assert.deepEqual(target.putBacks, []);
    assert.deepEqual(steps(writes), []);
  });
});
