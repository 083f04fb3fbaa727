import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { createMetrics } from '../api/metrics.js';
import { parsePolicy } from '../config/load-policy.js';
import type { FollowUpStep, Policy, Rule, ServicePolicy } from '../config/policy.js';
import { redactUrl } from '../model/redact-url.js';
import type { ActionRecord, Deployment, KnownGood, RevertPhase, SampleRecord } from '../store/store.js';
import type { DeploymentPatch, Writes } from '../store/write-behind.js';
import { FakeTarget } from '../targets/fake/fake-target.js';
import { parkedName } from '../targets/parked-names.js';
import type { Replica } from '../targets/target.js';
import { buildEvent } from './evidence.js';
import type { RunbookProcedures, SafetySnapshot, StepOutcome } from './procedures.js';
import { revertDeployment, type RevertDeps, type RevertOutcome } from './revert.js';

// The runbook's procedures around a revert (revert-procedures.ts), over a FakeTarget and fake
// procedures: the safety snapshot and down-migration before a migration deployment is touched,
// the follow-up steps after its recovery is verified. One timeline holds the target's changes,
// the snapshots taken and the writes, in the order they happened.

const log = pino({ level: 'silent' });
const metrics = createMetrics();
const T0 = Date.parse('2026-03-02T10:00:00Z');
const DEPLOYMENT_ID = 7;
const DOWN = ['python', 'manage.py', 'migrate', 'accounting', '0002_add_journal_entry'];
const RULE: Rule = { name: 'not running', signal: 'running', below: 1, for: 1, severity: 'P0', action: 'rollback' };

/** The service `web` as the policy loader reads it, with the runbook keys asked for. */
function policyWith(opts: { database?: boolean; downMigration?: boolean; followUps?: boolean } = {}): Policy {
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
class RecordedWrites implements Writes {
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
class FakeProcedures implements RunbookProcedures {
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
function setup(policyOpts: Parameters<typeof policyWith>[0] = {}, opts: { procedures?: boolean } = {}) {
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

const UNTOUCHED = { created: 0, parked: 0, restored: 0, removed: 0 };
const RUN_ONCE = `run-once web.rollguard-down-migration.${DEPLOYMENT_ID} from app:1 (limit 90000 ms): ${DOWN.join(' ')}`;

describe('the safety snapshot and down-migration before a migration deployment is reverted (migrateDown)', () => {
  it('snapshot, then the down-migration in the known-good image, then phase migrated, all before the bad replica is stopped', async () => {
    const s = setup({ database: true, downMigration: true });
    s.target.runOnceOutput = 'Operations to perform:\n  Target specific migration: 0002_add_journal_entry, from accounting\nRunning migrations:\n  Unapplying accounting.0003_ledger... OK\n';
    const outcome = await s.revert({ migrations: true });

    assert.equal(outcome.state, 'rolled_back');
    assert.deepEqual(s.timeline, [
      'check-image ok',
      'pg_dump web',
      'snapshot ok',
      RUN_ONCE,
      'down-migration ok',
      'phase migrated',
      `park ${s.bad.id} as ${parkedName('web', DEPLOYMENT_ID)}`,
      'stop-bad ok',
      'phase parked',
      'create replica-3 as web from app:1',
      'start-good ok',
      'phase started',
      'verify ok',
      `remove ${s.bad.id}`,
      'remove-bad ok',
      'state rolled_back',
    ]);
    assert.deepEqual(s.procedures.snapshots, [{ service: 'web', deploymentId: DEPLOYMENT_ID }]);
    const [snapshot] = s.writes.of('snapshot');
    assert.equal(snapshot?.detail, `pg_dump -Fc of postgresql://127.0.0.1:5432/shop to /var/lib/rollguard/snapshots/web-7-20260302T100000Z.dump (4096 bytes); restore command: rollguard restore-hint web-7-20260302T100000Z`);
    const [down] = s.writes.of('down-migration');
    assert.match(down?.detail ?? '', /^python manage\.py migrate accounting 0002_add_journal_entry in app:1: exit 0; Operations to perform:.*Unapplying accounting\.0003_ledger\.\.\. OK$/s);
    assert.deepEqual(outcome.actions.map((a) => a.kind).slice(0, 4), ['check-image', 'snapshot', 'down-migration', 'stop-bad'], 'the steps are told with the revert\'s own');
    assert.deepEqual(await s.running(), ['web app:1']);
  });

  it('a failed snapshot fails the revert before anything is changed: the bad replica keeps running, untouched', async () => {
    const s = setup({ database: true, downMigration: true });
    s.procedures.snapshotFails = 'pg_dump: error: connection to server at "127.0.0.1", port 5432 failed: Connection refused';
    const outcome = await s.revert({ migrations: true });

    assert.equal(outcome.state, 'rollback_failed');
    assert.equal(outcome.reason, 'the safety snapshot of the database failed (pg_dump: error: connection to server at "127.0.0.1", port 5432 failed: Connection refused), so the migrations were not reverted and nothing was changed: app:2 keeps running on its schema');
    assert.deepEqual(outcome.containerIds, [s.bad.id]);
    assert.equal(outcome.image, 'app:2');
    assert.deepEqual(s.timeline, ['check-image ok', 'pg_dump web', 'snapshot failed', 'state rollback_failed']);
    assert.deepEqual(s.target.counts, UNTOUCHED);
    assert.deepEqual(await s.running(), ['web app:2']);
    assert.deepEqual(s.writes.patches.at(-1), { state: 'rollback_failed', reason: outcome.reason, attempts: 0, phase: 'done' });
  });

  it('a failed down-migration fails the revert with the bad replica untouched; the reason names the snapshot and says HALF MIGRATED', async () => {
    const s = setup({ database: true, downMigration: true });
    s.target.failRunOnce = 'django.db.utils.ProgrammingError: relation "accounting_ledger" does not exist';
    const outcome = await s.revert({ migrations: true });

    assert.equal(outcome.state, 'rollback_failed');
    assert.match(outcome.reason ?? '', /^the down-migration failed, so the revert stopped before touching app:2, which keeps running; the schema may be HALF MIGRATED\./);
    assert.match(outcome.reason ?? '', /relation "accounting_ledger" does not exist/, 'with the command\'s own error');
    assert.ok(outcome.reason?.includes('The safety snapshot taken before it: /var/lib/rollguard/snapshots/web-7-20260302T100000Z.dump (`rollguard restore-hint web-7-20260302T100000Z` prints the pg_restore command)'), outcome.reason);
    assert.deepEqual(outcome.containerIds, [s.bad.id]);
    assert.deepEqual(s.timeline, ['check-image ok', 'pg_dump web', 'snapshot ok', RUN_ONCE, 'down-migration failed', 'state rollback_failed']);
    assert.deepEqual(s.target.counts, UNTOUCHED);
    assert.deepEqual(await s.running(), ['web app:2']);
  });

  it('after a down-migration, a known-good version that cannot start never brings the bad one back: it stays stopped and the escalation names the snapshot', async () => {
    const s = setup({ database: true, downMigration: true });
    s.target.failStart = 'port 8000 is already in use';
    const outcome = await s.revert({ migrations: true });

    assert.equal(outcome.state, 'rollback_failed');
    assert.match(outcome.reason ?? '', /the deployed version was NOT put back, since the schema was migrated down under it: neither version runs/);
    assert.match(outcome.reason ?? '', /The schema WAS MIGRATED DOWN for the known-good version before this; the safety snapshot taken before it: \/var\/lib\/rollguard\/snapshots\/web-7-20260302T100000Z\.dump/);
    assert.equal(s.target.counts.restored, 0, 'the bad replica was not put back');
    assert.deepEqual(await s.running(), []);
    assert.ok(!s.timeline.includes('restore-bad ok'));
  });

  it('without a down-migration the bad version is put back as before when the known-good one cannot start (the schema was not changed)', async () => {
    const s = setup({ database: true });
    s.target.failStart = 'port 8000 is already in use';
    const outcome = await s.revert({ migrations: true });

    assert.equal(outcome.state, 'rollback_failed');
    assert.match(outcome.reason ?? '', /the deployed version was put back/);
    assert.doesNotMatch(outcome.reason ?? '', /MIGRATED DOWN/);
    assert.deepEqual(await s.running(), ['web app:2']);
  });

  it('migrations with no database in the policy: a migrations note, no snapshot, and the revert goes on', async () => {
    const s = setup();
    const outcome = await s.revert({ migrations: true });

    assert.equal(outcome.state, 'rolled_back');
    assert.deepEqual(s.timeline.slice(0, 3), ['check-image ok', 'migrations ok', `park ${s.bad.id} as ${parkedName('web', DEPLOYMENT_ID)}`]);
    assert.match(s.writes.of('migrations')[0]?.detail ?? '', /policy names no database: no safety snapshot was taken, and the known-good version will run on the schema as the deployment left it/);
    assert.deepEqual(s.procedures.snapshots, []);
    assert.ok(!s.timeline.includes('phase migrated'));
    assert.deepEqual(await s.running(), ['web app:1']);
  });

  it('a deployment without migrations runs neither the snapshot nor the down-migration, even with a database', async () => {
    for (const migrations of [undefined, false]) {
      const s = setup({ database: true, downMigration: true });
      const outcome = await s.revert({ migrations });

      assert.equal(outcome.state, 'rolled_back');
      assert.deepEqual(s.procedures.snapshots, []);
      assert.deepEqual(s.timeline.slice(0, 2), ['check-image ok', `park ${s.bad.id} as ${parkedName('web', DEPLOYMENT_ID)}`]);
      assert.ok(!s.timeline.some((l) => l.startsWith('run-once') || l === 'migrations ok' || l === 'phase migrated'), s.timeline.join('\n'));
    }
  });
});

describe('a revert resumed after a restart (resume)', () => {
  /** Sets the bad replica aside as the revert did before the restart. */
  const parkBad = async (s: ReturnType<typeof setup>): Promise<void> => {
    await s.target.park(s.bad as Replica, parkedName('web', DEPLOYMENT_ID), 0);
    s.target.resetCounts();
  };

  for (const phase of ['migrated', 'parked'] as const satisfies readonly RevertPhase[]) {
    it(`past the down-migration (phase ${phase}) does not take the snapshot or run the down-migration again`, async () => {
      const s = setup({ database: true, downMigration: true });
      if (phase === 'parked') await parkBad(s);
      const outcome = await s.revert({ migrations: true, resume: true, deployment: { phase } });

      assert.equal(outcome.state, 'rolled_back');
      assert.deepEqual(s.procedures.snapshots, []);
      assert.ok(!s.timeline.some((l) => l.startsWith('run-once') || l.startsWith('pg_dump') || l === 'phase migrated'), s.timeline.join('\n'));
      assert.equal(s.timeline[0], 'check-image ok');
      assert.ok(s.timeline.includes('stop-bad ok'), 'the revert goes on where it was');
      assert.deepEqual(await s.running(), ['web app:1']);
    });
  }

  it('at phase decided (nothing touched yet) takes the snapshot and runs the down-migration', async () => {
    const s = setup({ database: true, downMigration: true });
    const outcome = await s.revert({ migrations: true, resume: true, deployment: { phase: 'decided' } });

    assert.equal(outcome.state, 'rolled_back');
    assert.deepEqual(s.timeline.slice(0, 6), ['check-image ok', 'pg_dump web', 'snapshot ok', RUN_ONCE, 'down-migration ok', 'phase migrated']);
    assert.deepEqual(s.procedures.snapshots, [{ service: 'web', deploymentId: DEPLOYMENT_ID }]);
  });
});

describe('the follow-up steps after a verified revert (followUp)', () => {
  it('run after the recovery is verified, each recorded as follow-up:<kind>; a failed one leaves the deployment rolled_back', async () => {
    const s = setup({ followUps: true });
    s.procedures.failing.add('http');
    const outcome = await s.revert();

    assert.equal(outcome.state, 'rolled_back');
    assert.deepEqual(s.procedures.followUpCalls, [['restart', 'http']]);
    // After the verified recovery and the bad replica's removal (the final write may come before or after them).
    assert.deepEqual(s.timeline.filter((l) => !l.startsWith('state ')).slice(-5), ['verify ok', `remove ${s.bad.id}`, 'remove-bad ok', 'follow-up:restart ok', 'follow-up:http failed']);
    const followUps = s.writes.actions.filter((a) => a.kind.startsWith('follow-up'));
    assert.deepEqual(followUps.map((a) => [a.kind, a.ok, a.detail, a.attempt]), [
      ['follow-up:restart', true, 'restart web-worker: done', 1],
      ['follow-up:http', false, 'POST http://127.0.0.1:9/warm: connect ECONNREFUSED 127.0.0.1:9', 1],
    ]);
    assert.deepEqual(outcome.actions.slice(-2).map((a) => [a.kind, a.ok]), [['follow-up:restart', true], ['follow-up:http', false]], 'told with the revert\'s steps');
    assert.equal(s.writes.patches.at(-1)?.state, 'rolled_back', 'nothing is written over the recovery');
    assert.ok(!s.writes.patches.some((p) => p.state === 'rollback_failed'));
  });

  it('do not run when the revert fails', async () => {
    const s = setup({ followUps: true });
    s.target.failStart = 'the engine refused to create the container';
    const outcome = await s.revert();

    assert.equal(outcome.state, 'rollback_failed');
    assert.deepEqual(s.procedures.followUpCalls, []);
    assert.ok(!s.writes.actions.some((a) => a.kind.startsWith('follow-up')));
  });

  it('none configured: nothing is run or recorded', async () => {
    const s = setup();
    const outcome = await s.revert();

    assert.equal(outcome.state, 'rolled_back');
    assert.deepEqual(s.procedures.followUpCalls, []);
    assert.ok(!s.writes.actions.some((a) => a.kind.startsWith('follow-up')));
  });

  it('without the procedures in this process, one failed follow-up action says none was run', async () => {
    const s = setup({ followUps: true }, { procedures: false });
    const outcome = await s.revert();

    assert.equal(outcome.state, 'rolled_back');
    const followUps = s.writes.actions.filter((a) => a.kind.startsWith('follow-up'));
    assert.deepEqual(followUps.map((a) => [a.kind, a.ok, a.detail]), [['follow-up', false, 'the follow-up steps are not available in this process; none was run']]);
    assert.equal(s.writes.patches.at(-1)?.state, 'rolled_back');
  });
});

describe('the rollback_succeeded summary tells the follow-up steps (buildEvent)', () => {
  /** The summary of the rollback_succeeded message for a revert's outcome, as record.ts builds it. */
  const summaryOf = (s: ReturnType<typeof setup>, outcome: RevertOutcome): string => buildEvent({
    kind: 'rollback_succeeded', severity: 'P0', policy: s.policy, service: s.service,
    deployment: deploymentOf(s, outcome),
    template: { service: 'web', container: 'web', image: 'app:2', version: '2' },
    rule: RULE, actions: outcome.actions, criteria: outcome.criteria, revertAt: outcome.revertAt, recoveredAt: outcome.recoveredAt, at: new Date(T0),
  }).summary;
  const deploymentOf = (s: ReturnType<typeof setup>, outcome: RevertOutcome): Deployment => ({
    id: DEPLOYMENT_ID, service: 'web', target: s.target.kind, container_id: s.bad.id, container_name: 'web',
    from_image: 'app:1', from_ref: 'app:1', to_image: 'app:2', to_ref: 'app:2', state: 'rolled_back', reason: null, dry_run: false,
    attempts: outcome.attempts, started_at: new Date(T0 - 120_000), detected_at: new Date(T0 - 119_000), window_ends_at: new Date(T0 + 480_000),
    decided_at: new Date(T0), recovered_at: new Date(T0), phase: 'done',
  });
  const REVERTED = 'rollguard reverted web from app:2 to the known-good version and the recovery criteria hold.';

  it('says FOLLOW-UP NEEDED with the failed step when one of two failed', async () => {
    const s = setup({ followUps: true });
    s.procedures.failing.add('http');
    const summary = summaryOf(s, await s.revert());
    assert.equal(summary, `${REVERTED} FOLLOW-UP NEEDED: 1 of 2 follow-up steps did not run through (POST http://127.0.0.1:9/warm: connect ECONNREFUSED 127.0.0.1:9); the revert itself stands.`);
  });

  it('says the follow-up steps ran when all did', async () => {
    const s = setup({ followUps: true });
    const summary = summaryOf(s, await s.revert());
    assert.equal(summary, `${REVERTED} The 2 follow-up steps ran.`);
  });

  it('says nothing of follow-up steps when none are configured', async () => {
    const s = setup();
    const summary = summaryOf(s, await s.revert());
    assert.equal(summary, REVERTED);
  });

  it('says FOLLOW-UP NEEDED when the follow-up steps were not available to run', async () => {
    const s = setup({ followUps: true }, { procedures: false });
    const summary = summaryOf(s, await s.revert());
    assert.match(summary, /FOLLOW-UP NEEDED: 1 of 1 follow-up step did not run through \(the follow-up steps are not available in this process; none was run\)/);
  });
});
