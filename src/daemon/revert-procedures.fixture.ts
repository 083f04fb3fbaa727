import pino from 'pino';
import { createMetrics } from '../api/metrics.js';
import { parsePolicy } from '../config/load-policy.js';
import type { FollowUpStep, Policy, Rule, ServicePolicy } from '../config/policy.js';
import { redactUrl } from '../model/redact-url.js';
import type { ActionRecord, Deployment, KnownGood, SampleRecord } from '../store/store.js';
import type { DeploymentPatch, Writes } from '../store/write-behind.js';
import { FakeTarget } from '../targets/fake/fake-target.js';
import type { RunbookProcedures, SafetySnapshot, StepOutcome } from './procedures.js';
import { revertDeployment, type RevertDeps, type RevertOutcome } from './revert.js';

// The rig of the tests of the runbook's procedures around a revert (revert-procedures.ts): a
// FakeTarget and fake procedures, and one timeline holding the target's changes, the snapshots
// taken and the writes, in the order they happened.

const log = pino({ level: 'silent' });
const metrics = createMetrics();
export const T0 = Date.parse('2026-03-02T10:00:00Z');
export const DEPLOYMENT_ID = 7;
export const DOWN = ['python', 'manage.py', 'migrate', 'accounting', '0002_add_journal_entry'];
export const RULE: Rule = { name: 'not running', signal: 'running', below: 1, for: 1, severity: 'P0', action: 'rollback' };

/** The service `web` as the policy loader reads it, with the runbook keys asked for. */
export function policyWith(opts: { database?: boolean; downMigration?: boolean; followUps?: boolean } = {}): Policy {
  const text = [
    'version: 1',
    'defaults:',
    '  stop_timeout: 0s',
    'services:',
    '  web:',
    '    match: {container: web}',
    '    signals:',
    '      running: {container: running}',
    '    rules:',
    '      - {name: not running, signal: running, below: 1, for: 1, severity: P0, action: rollback}',
    ...(opts.database ? ['    database:', '      url: ${APP_DB_URL}'] : []),
    ...(opts.downMigration ? ['    down_migration:', `      command: [${DOWN.map((a) => JSON.stringify(a)).join(', ')}]`, '      timeout: 90s'] : []),
    ...(opts.followUps ? [
      '    after_rollback:',
      '      - restart: {containers: [web-worker], continue_on_error: true}',
      '      - http: {url: "http://127.0.0.1:9/warm"}',
    ] : []),
  ].join('\n');
  return parsePolicy(text, 'revert-procedures.test.yaml', { APP_DB_URL: 'postgresql://app:s3cret@127.0.0.1:5432/shop' });
}

/** The writes a revert makes: kept, and told on the timeline (`<kind> ok|failed`, `phase <p>`, `state <s>`). */
export class RecordedWrites implements Writes {
  readonly actions: ActionRecord[] = [];
  readonly patches: DeploymentPatch[] = [];

  constructor(private readonly timeline: string[]) {}

  async insertAction(a: ActionRecord): Promise<void> {
    this.actions.push(a);
    this.timeline.push(`${a.kind} ${a.ok ? 'ok' : 'failed'}`);
  }
  async updateDeployment(_id: number, patch: DeploymentPatch): Promise<void> {
    this.patches.push(patch);
    if (patch.state) this.timeline.push(`state ${patch.state}`);
    else if (patch.phase) this.timeline.push(`phase ${patch.phase}`);
  }
  async insertSamples(_rows: readonly SampleRecord[]): Promise<void> {}
  insertDeployment(): Promise<Deployment> {
    throw new Error('a revert inserts no deployment');
  }
  async insertDecision(): Promise<void> {}
  async setKnownGood(): Promise<void> {}
  async write(): Promise<void> {}

  /** The recorded steps of a kind. */
  of(kind: string): ActionRecord[] {
    return this.actions.filter((a) => a.kind === kind);
  }
}

/** Snapshots and follow-up steps that touch nothing: a snapshot fails when told to, a follow-up step of a kind in `failing` fails. */
export class FakeProcedures implements RunbookProcedures {
  snapshotFails?: string;
  readonly failing = new Set<FollowUpStep['kind']>();
  readonly snapshots: { service: string; deploymentId: number }[] = [];
  /** The follow-up steps asked for, one list per call. */
  readonly followUpCalls: FollowUpStep['kind'][][] = [];

  constructor(private readonly timeline: string[], private readonly now: () => Date) {}

  async snapshot(service: ServicePolicy, deploymentId: number): Promise<SafetySnapshot> {
    this.snapshots.push({ service: service.name, deploymentId });
    this.timeline.push(`pg_dump ${service.name}`);
    if (this.snapshotFails) throw new Error(this.snapshotFails);
    const id = `${service.name}-${deploymentId}-20260302T100000Z`;
    return { id, path: `/var/lib/rollguard/snapshots/${id}.dump`, size: 4096, database: redactUrl(service.database?.url ?? '') };
  }

  async followUps(steps: readonly FollowUpStep[], onStep: (outcome: StepOutcome) => Promise<void>): Promise<StepOutcome[]> {
    this.followUpCalls.push(steps.map((s) => s.kind));
    const outcomes: StepOutcome[] = [];
    for (const s of steps) {
      const ok = !this.failing.has(s.kind);
      const label = s.kind === 'restart' ? `restart ${s.containers.join(', ')}` : s.kind === 'http' ? `${s.method} ${s.url}` : s.kind;
      const o: StepOutcome = { kind: s.kind, label, ok, skipped: false, startedAt: this.now(), finishedAt: this.now(), detail: ok ? 'done' : 'connect ECONNREFUSED 127.0.0.1:9' };
      outcomes.push(o);
      await onStep(o);
    }
    return outcomes;
  }
}

/**
 * `web` ran app:1 (known-good) and now runs app:2 (deployment 7), on a FakeTarget; the revert's
 * dependencies over it with a clock that only sleeping moves.
 */
export function setup(policyOpts: Parameters<typeof policyWith>[0] = {}, opts: { procedures?: boolean } = {}) {
  const policy = policyWith(policyOpts);
  const service = policy.services.web as ServicePolicy;
  const target = new FakeTarget();
  const good = target.deploy('web', 'app:1');
  const known: KnownGood = {
    service: 'web', target: target.kind, image_id: 'app:1', image_ref: 'app:1', container_name: 'web',
    spec: target.snapshot([good]), deployment_id: null, since: new Date(T0 - 86_400_000),
  };
  const bad = target.deploy('web', 'app:2');
  target.resetCounts();
  const timeline = target.history;
  let now = T0;
  const clock = (): Date => new Date(now);
  const writes = new RecordedWrites(timeline);
  const procedures = new FakeProcedures(timeline, clock);
  const deps: RevertDeps = {
    writes, target, metrics, log,
    running: (svc) => target.running(policy, svc),
    providers: {},
    now: clock,
    sleep: async (ms) => {
      now += ms;
    },
    ownContainers: new Set(),
    procedures: opts.procedures === false ? undefined : procedures,
  };
  const deployment = (over: Partial<Deployment> = {}): Deployment => ({
    id: DEPLOYMENT_ID, service: 'web', target: target.kind, container_id: bad.id, container_name: 'web',
    from_image: 'app:1', from_ref: 'app:1', to_image: 'app:2', to_ref: 'app:2',
    state: 'rolling_back', reason: null, dry_run: false, attempts: 0,
    started_at: new Date(T0 - 120_000), detected_at: new Date(T0 - 119_000), window_ends_at: new Date(T0 + 480_000),
    decided_at: new Date(T0), recovered_at: null, phase: 'decided',
    ...over,
  });
  const revert = (opts: { migrations?: boolean; resume?: boolean; deployment?: Partial<Deployment> } = {}): Promise<RevertOutcome> =>
    revertDeployment(deps, service, deployment(opts.deployment), RULE, known, opts.resume ?? false, { migrations: opts.migrations });
  return {
    policy, service, target, bad, known, writes, procedures, timeline, deps, revert,
    /** The service's running replicas as `name image`. */
    running: async () => (await target.running(policy, service)).map((r) => `${r.name} ${r.image}`),
  };
}

export const UNTOUCHED = { created: 0, parked: 0, restored: 0, removed: 0 };
export const RUN_ONCE = `run-once web.rollguard-down-migration.${DEPLOYMENT_ID} from app:1 (limit 90000 ms): ${DOWN.join(' ')}`;
