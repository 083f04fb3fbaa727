import { redactUrlsIn } from '../model/redact-url.js';
import type { KnownGood } from '../store/store.js';
import type { DeployTarget } from '../targets/target.js';
import type { SafetySnapshot } from './procedures.js';
import { rethrowLapse, type RevertRun } from './revert-run.js';

/** Output of commands the policy runs may print URLs with credentials: never recorded or told with them. */
const message = (err: unknown): string => redactUrlsIn(err instanceof Error ? err.message : String(err));

/** The one-off container of a deployment's down-migration: one name per deployment, so a restart finds it. */
export const downMigrationName = (service: string, deploymentId: number): string => `${service}.rollguard-down-migration.${deploymentId}`;

/**
 * Runbook Option 3 before a revert of a deployment that carries DB migrations touches anything:
 * a pg_dump safety snapshot of the service's database, then its down-migration in the
 * known-good version. Returns why the revert must stop — the deployed version keeps running —
 * or undefined to go on. Each step is recorded with its result and timing.
 */
export async function migrateDown(run: RevertRun, target: DeployTarget, known: KnownGood, image: string): Promise<string | undefined> {
  const { deps, service, deployment, step } = run;
  const database = service.database;
  if (!database) {
    await step('migrations', 'the deployment carries DB migrations and the policy names no database: no safety snapshot was taken, and the known-good version will run on the schema as the deployment left it', () => Promise.resolve());
    return undefined;
  }
  let snapshot: SafetySnapshot;
  try {
    if (!deps.procedures) throw new Error('snapshots are not available in this process');
    const take = deps.procedures.snapshot.bind(deps.procedures);
    snapshot = await step('snapshot', (s: SafetySnapshot) => `pg_dump -Fc of ${s.database} to ${s.path} (${s.size} bytes); restore command: rollguard restore-hint ${s.id}`, () => (run.guard(), take(service, deployment.id)));
  } catch (err) {
    rethrowLapse(err);
    return `the safety snapshot of the database failed (${message(err)}), so the migrations were not reverted and nothing was changed: ${deployment.to_ref} keeps running on its schema`;
  }
  const down = service.downMigration;
  const name = downMigrationName(service.name, deployment.id);
  if (down) {
    const argv = down.command.join(' ');
    try {
      if (!target.runOnce) throw new Error(`the ${target.kind} target cannot run a one-off command`);
      const runOnce = target.runOnce.bind(target);
      await step('down-migration', (o: { output: string; adopted?: boolean }) => `${argv} in ${known.image_ref}: exit 0${o.adopted ? ' (the run started before rollguard restarted)' : ''}${o.output ? `; ${tail(o.output)}` : ''}`,
        () => (run.guard(), runOnce(known, image, down.command, down.timeoutMs, name)));
    } catch (err) {
      rethrowLapse(err);
      await target.removeOnce?.(name).catch(() => {});
      return `the down-migration failed, so the revert stopped before touching ${deployment.to_ref}, which keeps running; the schema may be HALF MIGRATED. ${message(err)}. The safety snapshot taken before it: ${snapshot.path} (\`rollguard restore-hint ${snapshot.id}\` prints the pg_restore command)`;
    }
    run.migratedDown = { path: snapshot.path, id: snapshot.id };
  }
  await run.phase('migrated');
  await run.failpoint('revert.after-migrate', { deployment: deployment.id });
  // Removed only now: until the phase is recorded, a restart takes the container's run rather than running it again.
  await target.removeOnce?.(name).catch(() => {});
  return undefined;
}

/**
 * The follow-up steps after a verified revert (runbook Option 1 step 7, Option 2 step 8), each
 * recorded as `follow-up:<kind>` with its output. A failure never undoes the revert: it is
 * logged and shown with the revert's own steps.
 */
export async function followUp(run: RevertRun): Promise<void> {
  const { deps, service, deployment } = run;
  const steps = service.afterRollback ?? [];
  if (!steps.length) return;
  if (!deps.procedures) {
    const now = deps.now();
    await run.record({ deployment_id: deployment.id, attempt: run.attempt, kind: 'follow-up', started_at: now, finished_at: now, ok: false, detail: 'the follow-up steps are not available in this process; none was run' });
    return;
  }
  await deps.procedures.followUps(steps, async (o) => {
    if (!o.ok && !o.skipped) run.log.error({ step: o.label, detail: o.detail }, 'a follow-up step after the revert failed');
    await run.record({ deployment_id: deployment.id, attempt: run.attempt, kind: `follow-up:${o.kind}`, started_at: o.startedAt, finished_at: o.finishedAt, ok: o.ok, detail: `${o.label}: ${o.detail}` });
  });
}

function tail(text: string, max = 500): string {
  const t = redactUrlsIn(text.trim());
  return t.length > max ? `…${t.slice(-max)}` : t;
}
