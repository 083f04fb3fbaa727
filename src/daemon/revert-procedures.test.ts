import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parkedName } from '../targets/parked-names.js';
import type { RevertPhase } from '../store/store.js';
import type { Replica } from '../targets/target.js';
import { DEPLOYMENT_ID, DOWN, RUN_ONCE, setup, UNTOUCHED } from './revert-procedures.fixture.js';

// The safety snapshot and down-migration before a migration deployment is reverted
// (revert-procedures.ts), over a FakeTarget and fake procedures; see the fixture's timeline.

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
