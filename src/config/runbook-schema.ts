import { z } from 'zod';
import { parseDuration } from './duration.js';

/**
 * The policy keys of the runbook's procedures besides the container revert: follow-up steps
 * after a verified revert (Option 1 step 7, Option 2 step 8), the application database's safety
 * snapshot and down-migration (Option 3), and the restart of a git-deployed service (Option 1).
 */

const positiveDuration = z
  .string()
  .refine((text) => (parseDuration(text) ?? 0) > 0, { message: 'expected a duration greater than 0, such as 500ms, 15s, 10m or 1h' })
  .transform((text) => parseDuration(text) as number);

const argv = z.array(z.string().min(1)).min(1, 'name the program and its arguments');
const name = z.string().min(1);

const stepOptions = {
  continue_on_error: z.boolean().default(false).describe('A failure of this step is reported and the next steps run anyway (default false: the steps after it are skipped).'),
};

/** Each follow-up step is a mapping with exactly one of these keys. */
const followUpStep = z
  .strictObject({
    restart: z
      .strictObject({
        containers: z.array(name).default([]).describe('Containers to restart, by name (e.g. the workers: himalytix-celery).'),
        compose_services: z.array(name).default([]).describe('Services of the same Compose project as this service (its match must be compose), every container of each restarted.'),
        timeout: positiveDuration.default(60_000).describe('The whole step\'s limit (default 60s).'),
        ...stepOptions,
      })
      .superRefine((r, ctx) => {
        if (!r.containers.length && !r.compose_services.length) ctx.addIssue({ code: 'custom', message: 'name containers or compose_services to restart' });
      })
      .optional()
      .describe('`docker restart` the dependent containers (runbook: restart celery and celery-beat).'),
    redis_flush: z
      .strictObject({
        url: name.refine((u) => /^rediss?:\/\//.test(u), { message: 'expected redis://[user:password@]host:port[/db] or rediss://…; give it as ${ENV}' })
          .describe('The Redis to flush, redis://host:port/db; a password only through ${ENV} (e.g. "${REDIS_URL}").'),
        pattern: name.optional().describe('Delete only the keys matching this glob (SCAN + UNLINK, never KEYS), e.g. "cache:*". Without it: FLUSHDB of the URL\'s database — never FLUSHALL.'),
        timeout: positiveDuration.default(30_000).describe('The step\'s limit (default 30s).'),
        ...stepOptions,
      })
      .optional()
      .describe('Clear the cache the bad version filled (runbook: flush Redis).'),
    exec: z
      .strictObject({
        container: name.describe('A running container, by name.'),
        command: argv.describe('The program and its arguments (no shell), e.g. [python, manage.py, check, --deploy].'),
        timeout: positiveDuration.default(60_000).describe('The step\'s limit (default 60s).'),
        ...stepOptions,
      })
      .optional()
      .describe('`docker exec` a command in a container (runbook: smoke tests); a non-zero exit fails the step.'),
    http: z
      .strictObject({
        method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']).default('POST').describe('The request method (default POST).'),
        url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).describe('Where to send it.'),
        status: z.number().int().min(100).max(599).optional().describe('The status it must answer (default: any 2xx).'),
        timeout: positiveDuration.default(10_000).describe('The step\'s limit (default 10s).'),
        ...stepOptions,
      })
      .optional()
      .describe('An HTTP request, e.g. to warm the cache.'),
  })
  .superRefine((s, ctx) => {
    const kinds = [s.restart, s.redis_flush, s.exec, s.http].filter((v) => v !== undefined).length;
    if (kinds !== 1) ctx.addIssue({ code: 'custom', message: 'each step is exactly one of restart, redis_flush, exec or http' });
  })
  .describe('One follow-up step: exactly one of restart, redis_flush, exec or http.');

export const runbookServiceKeys = {
  after_rollback: z
    .array(followUpStep)
    .default([])
    .describe('Steps run in order after a verified revert (runbook Option 1 step 7, Option 2 step 8); a failed step is reported with its output and never undoes the revert.'),
  database: z
    .strictObject({
      url: name.refine((u) => /^postgres(ql)?:\/\//.test(u), { message: 'expected postgresql://user@host:port/database; give it as ${ENV} (e.g. "${APP_DB_URL}")' })
        .describe('The application\'s PostgreSQL database, postgresql://user[:password]@host:port/db; a password only through ${ENV}.'),
      keep: z.number().int().min(1).max(1000).default(5).describe('Safety snapshots kept per service, newest first (default 5).'),
      timeout: positiveDuration.default(600_000).describe('pg_dump\'s limit (default 10m); over it the revert stops and escalates.'),
    })
    .optional()
    .describe('Before reverting a deployment that carries DB migrations, a pg_dump -Fc safety snapshot of this database goes to the state directory (runbook Option 3 step 3). See `rollguard snapshots`.'),
  down_migration: z
    .strictObject({
      command: argv.describe('Run in the known-good version (its image and settings, as a one-off container), e.g. [python, manage.py, migrate, accounting, "0002_add_journal_entry"].'),
      timeout: positiveDuration.default(300_000).describe('Its limit (default 5m).'),
    })
    .optional()
    .describe('Runbook Option 3 step 4: after the snapshot and before the bad version is touched. If it fails, the bad version keeps running and the revert escalates with the snapshot\'s path. Needs database.'),
  restart: argv
    .optional()
    .describe('git services: the program that restarts the application after its code was put back, e.g. [systemctl, restart, gunicorn.service, celery.service] (no shell).'),
  restart_timeout: positiveDuration.default(120_000).describe('git services: the restart command\'s limit (default 2m).'),
};

export const gitMatch = z
  .strictObject({
    path: name.refine((p) => p.startsWith('/'), { message: 'expected an absolute path' }).describe('The work tree the application runs from, e.g. /var/www/himalytix.'),
    branch: name.default('main').describe('The branch deployed (default main): a new HEAD commit of it is a deployment.'),
    poll: positiveDuration.refine((ms) => ms <= 3_600_000, { message: 'at most 1h' }).default(2_000).describe('How often HEAD is read (default 2s); the deploy API (POST /api/v1/deployments) announces one at once.'),
    mode: z.enum(['revert', 'checkout']).default('revert').describe('revert: one commit reverting <known-good>..<bad> (`git revert --no-edit --no-commit`, then `git commit`; history kept, as the runbook does); checkout: HEAD detached at the known-good commit.'),
  })
  .describe('A git work tree deployed by checking out commits (runbook Option 1, code-only deployments).');
