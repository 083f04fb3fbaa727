import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { nodeRuntimeFiles } from '../../src/cli/demo/image.js';
import {
  buildFixtures, dbQuery, deploy, docker, freePort, freshDatabase, inspect, removeContainers, startRollguard, testSecret, waitFor,
  type HistoryRow, type Rollguard,
} from './harness.js';

/**
 * The runbook's procedures around a container revert, end to end on the real parts: a deployment
 * carrying DB migrations is reverted with a pg_dump safety snapshot (PostgreSQL) and its
 * down-migration run in the known-good image (Docker), then the follow-up steps run — the workers
 * restarted, the cache flushed (Redis), a smoke test exec'd, the cache warmed over HTTP — each
 * recorded and told; a failing down-migration leaves the bad version running and escalates with
 * the snapshot's path.
 */

const run = promisify(execFile);
const PREFIX = 'rgrb-';
const WEB = `${PREFIX}web`;
const WORKER = `${PREFIX}worker`;
const PORT = 18096;
const WORKER_PORT = 18097;
const SERVICE = 'rbweb';
const REDIS_DB = 9;
const REDIS = `redis://127.0.0.1:6379/${REDIS_DB}`;
const HOOK_SECRET = testSecret('runbook-hook');

interface Hook { event: string; summary: string; actions: { kind: string; ok: boolean; detail: string | null }[]; deployment: { id: number } | null }

async function redis(...args: string[]): Promise<string> {
  return (await run('redis-cli', ['-n', String(REDIS_DB), ...args])).stdout.trim();
}

/** The fixture app's image with the host's psql in it, so a down-migration can reach PostgreSQL from the known-good version. */
async function buildImages(): Promise<{ good: string; bad: string }> {
  await buildFixtures();
  const psql = (await run('sh', ['-c', 'ls /usr/lib/postgresql/*/bin/psql | sort -V | tail -1'])).stdout.trim();
  const ctx = await mkdtemp(path.join(os.tmpdir(), 'rgrb-image-'));
  try {
    const files: [string, string][] = [[psql, '/usr/bin/psql'], ...(await nodeRuntimeFiles(psql)).map((f): [string, string] => [f, f])];
    for (const [from, at] of files) {
      const to = path.join(ctx, 'root', at);
      await mkdir(path.dirname(to), { recursive: true });
      await cp(from, to, { dereference: true });
    }
    await writeFile(path.join(ctx, 'Dockerfile'), 'FROM rollguard-fixture:v1\nCOPY root/ /\nENV VERSION=rb1\n');
    await docker('build', '-q', '-t', 'rgrb-app:v1', ctx);
    await writeFile(path.join(ctx, 'Dockerfile'), 'FROM rgrb-app:v1\nENV VERSION=rb2 READY=0\n');
    await docker('build', '-q', '-t', 'rgrb-app:v2', ctx);
  } finally {
    await rm(ctx, { recursive: true, force: true });
  }
  return { good: await docker('image', 'inspect', '-f', '{{.Id}}', 'rgrb-app:v1'), bad: await docker('image', 'inspect', '-f', '{{.Id}}', 'rgrb-app:v2') };
}

/** A loopback HTTP server recording every request's method, path and JSON body. */
async function receiver(): Promise<{ port: number; got: { method: string; path: string; body: unknown }[]; close(): Promise<void> }> {
  const got: { method: string; path: string; body: unknown }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch { /* not JSON */ }
      got.push({ method: req.method ?? '', path: req.url ?? '', body });
      res.writeHead(200).end('ok');
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { port, got, close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }) };
}

function policy(appDb: string, warmPort: number, hookPort: number, databaseUrl = '"${APP_DB_URL}"'): string {
  const dbName = new URL(appDb).pathname.slice(1);
  return `version: 1
defaults:
  window: 60s
  interval: 1s
  max_rollbacks: {count: 20, per: 1h}
  stop_timeout: 1s
  recovery_timeout: 20s
notifications:
  hook:
    webhook:
      url: http://127.0.0.1:${hookPort}/hook
      secret: \${HOOK_SECRET}
routes:
  P0: [hook]
  P1: [hook]
services:
  ${SERVICE}:
    match: {container: ${WEB}}
    on_migrations: revert
    signals:
      ready:
        http: {url: "http://127.0.0.1:${PORT}/cgi-bin/ready", timeout: 1s}
    rules:
      - {name: readiness failing, signal: ready, below: 1, for: 3, severity: P0, action: rollback}
    recovery:
      - {signal: ready, above: 0}
    database: {url: ${databaseUrl}, keep: 2}
    down_migration:
      command: [psql, -h, 127.0.0.1, -U, postgres, -d, ${dbName}, -v, ON_ERROR_STOP=1, -c, SELECT pg_sleep(2), -c, DROP TABLE audit_log]
      timeout: 30s
    after_rollback:
      - restart: {containers: [${WORKER}], timeout: 30s}
      - redis_flush: {url: "\${REDIS_URL}", pattern: "rgrb:cache:*"}
      - exec: {container: ${WEB}, command: [psql, --version], timeout: 20s}
      - exec: {container: ${WEB}, command: ["false"], timeout: 20s, continue_on_error: true}
      - http: {method: POST, url: "http://127.0.0.1:${warmPort}/internal/cache/warm", timeout: 5s}
`;
}

describe('the runbook around a container revert: snapshot, down-migration, follow-up steps', { timeout: 300_000 }, () => {
  let images: { good: string; bad: string };
  let store: { url: string; drop(): Promise<void> };
  let app: { url: string; drop(): Promise<void> };
  let warm: Awaited<ReturnType<typeof receiver>>;
  let hook: Awaited<ReturnType<typeof receiver>>;
  let rg: Rollguard;
  const hooks = (): Hook[] => hook.got.filter((g) => g.path === '/hook').map((g) => g.body as Hook);
  const start = (opts: { failpoint?: string; stateDir?: string } = {}): Promise<Rollguard> => startRollguard(policy(app.url, warm.port, hook.port), {
    databaseUrl: store.url,
    stateDir: opts.stateDir,
    env: { APP_DB_URL: app.url, REDIS_URL: REDIS, HOOK_SECRET, ...(opts.failpoint ? { ROLLGUARD_FAILPOINTS: opts.failpoint } : {}) },
  });

  /** Back to the known-good version, then the bad one carrying a migration that made audit_log. */
  async function deployMigration(): Promise<void> {
    await deploy(WEB, 'rgrb-app:v1', [], PORT);
    await waitFor('v1 running', async () => (await rg.status()).services[SERVICE]?.image === images.good);
    await dbQuery(app.url, 'CREATE TABLE IF NOT EXISTS audit_log (id serial PRIMARY KEY, entry text)');
    await deploy(WEB, 'rgrb-app:v2', ['--label', 'rollguard.migrations=true'], PORT);
  }

  before(async () => {
    images = await buildImages();
    await removeContainers(PREFIX);
    [store, app, warm, hook] = await Promise.all([freshDatabase(), freshDatabase(), receiver(), receiver()]);
    await deploy(WEB, 'rgrb-app:v1', [], PORT);
    await deploy(WORKER, 'rollguard-fixture:v1', [], WORKER_PORT);
    rg = await start();
    await waitFor('adoption', async () => (await rg.status()).services[SERVICE]?.image === images.good);
  });

  after(async () => {
    await rg?.stop();
    await removeContainers(PREFIX);
    await Promise.all([store?.drop(), app?.drop(), warm?.close(), hook?.close()]);
    await redis('FLUSHDB').catch(() => '');
  });

  async function deployment(state: string, after = 0): Promise<HistoryRow> {
    return waitFor(`a deployment ${state}`, async () => (await rg.history(SERVICE)).find((d) => d.state === state && d.id > after), 120_000, 500);
  }

  const newestId = async (): Promise<number> => (await rg.history(SERVICE))[0]?.id ?? 0;

  async function steps(id: number): Promise<{ step: string; ok: boolean; detail: string | null }[]> {
    const r = await rg.cli('history', '--deployment', String(id), '--json');
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { steps: { step: string; ok: boolean; detail: string | null }[] }).steps;
  }

  it('reverts a migration deployment: snapshot first, the down-migration in the known-good image, then every follow-up step, each recorded and told', async () => {
    const workerBefore = (await inspect(WORKER))?.State;
    const startedBefore = JSON.parse(await docker('inspect', '-f', '{{json .State.StartedAt}}', WORKER)) as string;
    await redis('SET', 'rgrb:cache:a', '1');
    await redis('SET', 'rgrb:cache:b', '2');
    await redis('SET', 'rgrb:session:keep', '3');
    // The bad version's migration: a new table, then the deploy that carries it.
    await dbQuery(app.url, 'CREATE TABLE audit_log (id serial PRIMARY KEY, entry text)');
    await dbQuery(app.url, "INSERT INTO audit_log (entry) VALUES ('written by the bad version')");
    await deploy(WEB, 'rgrb-app:v2', ['--label', 'rollguard.migrations=true'], PORT);

    const d = await deployment('rolled_back');
    const recorded = await steps(d.id);
    const kinds = recorded.map((s) => s.step);
    // Runbook Option 3: snapshot, down-migration, and only then is the bad version stopped.
    assert.ok(kinds.indexOf('snapshot') >= 0 && kinds.indexOf('snapshot') < kinds.indexOf('down-migration'), kinds.join(', '));
    assert.ok(kinds.indexOf('down-migration') < kinds.indexOf('stop-bad'), kinds.join(', '));
    assert.ok(recorded.filter((s) => ['snapshot', 'down-migration', 'stop-bad', 'start-good', 'verify'].includes(s.step)).every((s) => s.ok), JSON.stringify(recorded));

    // The snapshot holds the migrated schema and is listed; the down-migration dropped the table.
    const snaps = JSON.parse((await rg.cli('snapshots', '--json')).stdout) as { id: string; service: string; deployment: number; path: string; size: number }[];
    const snap = snaps.find((s) => s.deployment === d.id);
    assert.ok(snap, JSON.stringify(snaps));
    assert.equal(snap.service, SERVICE);
    assert.ok(snap.path.startsWith(path.join(rg.stateDir, 'snapshots')), snap.path);
    assert.match((await run('pg_restore', ['--list', snap.path])).stdout, /TABLE public audit_log/);
    assert.deepEqual(await dbQuery(app.url, "SELECT to_regclass('audit_log')::text AS t"), [{ t: null }]);
    assert.match(recorded.find((s) => s.step === 'snapshot')?.detail ?? '', new RegExp(`restore-hint ${snap.id}`));
    const hint = await rg.cli('restore-hint', snap.id);
    assert.equal(hint.code, 0, hint.stderr);
    assert.match(hint.stdout, /pg_restore .*--dbname/);

    // The known-good version runs again, and the follow-up steps ran in order.
    assert.equal((await inspect(WEB))?.Image, images.good);
    const followUps = recorded.filter((s) => s.step.startsWith('follow-up:'));
    assert.deepEqual(followUps.map((s) => [s.step, s.ok]), [
      ['follow-up:restart', true], ['follow-up:redis_flush', true], ['follow-up:exec', true], ['follow-up:exec', false], ['follow-up:http', true],
    ]);
    assert.match(followUps[2]?.detail ?? '', /psql \(PostgreSQL\) \d+/, 'the exec step keeps the output');
    assert.match(followUps[3]?.detail ?? '', /exit(ed)? (with )?code 1|exit code 1/i);
    const startedAfter = JSON.parse(await docker('inspect', '-f', '{{json .State.StartedAt}}', WORKER)) as string;
    assert.ok(workerBefore?.Running && startedAfter !== startedBefore, 'the worker was restarted');
    assert.equal(await redis('EXISTS', 'rgrb:cache:a'), '0');
    assert.equal(await redis('EXISTS', 'rgrb:cache:b'), '0');
    assert.equal(await redis('GET', 'rgrb:session:keep'), '3', 'keys outside the pattern stay');
    assert.deepEqual(warm.got.map((g) => [g.method, g.path]), [['POST', '/internal/cache/warm']]);

    // The message tells the steps, the failed one loudly, and the revert stands.
    const told = await waitFor('the rolled-back message', () => hooks().find((h) => h.event === 'rollback_succeeded' && h.deployment?.id === d.id), 30_000);
    assert.deepEqual(told.actions.filter((a) => a.kind.startsWith('follow-up:')).map((a) => a.ok), [true, true, true, false, true]);
    assert.ok(told.actions.some((a) => a.kind === 'snapshot' && a.ok) && told.actions.some((a) => a.kind === 'down-migration' && a.ok));
    assert.match(told.summary, /FOLLOW-UP NEEDED: 1 of 5 follow-up steps/);
    // The status page's deployment view shows the same steps.
    const page = (await (await fetch(`${rg.apiUrl}/api/v1/deployments/${d.id}`)).json()) as { actions: { kind: string }[] };
    assert.ok(page.actions.some((a) => a.kind === 'follow-up:http'));
  });

  it('a failing down-migration stops the revert: the bad version keeps running and the escalation names the snapshot', async () => {
    // No audit_log this time: `DROP TABLE audit_log` fails in the known-good image.
    await deploy(WEB, 'rgrb-app:v2', ['--label', 'rollguard.migrations=true'], PORT);
    const d = await deployment('rollback_failed');
    assert.match(d.reason ?? '', /down-migration failed/);
    assert.match(d.reason ?? '', /HALF MIGRATED/);
    assert.match(d.reason ?? '', /audit_log" does not exist/);
    const snaps = JSON.parse((await rg.cli('snapshots', '--json', '--service', SERVICE)).stdout) as { deployment: number; path: string }[];
    const snap = snaps.find((s) => s.deployment === d.id);
    assert.ok(snap && (d.reason ?? '').includes(snap.path), `${d.reason} names ${snap?.path}`);
    const recorded = await steps(d.id);
    assert.deepEqual(recorded.filter((s) => s.step === 'down-migration').map((s) => s.ok), [false]);
    assert.ok(!recorded.some((s) => s.step === 'stop-bad'), 'the bad version was never touched');
    const web = await inspect(WEB);
    assert.equal(web?.Image, images.bad);
    assert.equal(web?.State.Running, true);
    const told = await waitFor('the escalation', () => hooks().find((h) => h.event === 'rollback_failed' && h.deployment?.id === d.id), 30_000);
    assert.ok(JSON.stringify(told).includes(snap.path));
    // keep: 2 — the first revert's snapshot and this one.
    assert.ok((await readdir(path.join(rg.stateDir, 'snapshots'))).filter((f) => f.endsWith('.dump')).length <= 2);
  });

  it('fault: kill -9 after the down-migration → the revert is finished at restart without a second snapshot or down-migration', async () => {
    await rg.stop();
    rg = await start({ failpoint: 'revert.after-migrate', stateDir: rg.stateDir });
    const before = await newestId();
    await deployMigration();
    await waitFor('the daemon to stop after the down-migration', async () => (await rg.logs()).includes('"failpoint":"revert.after-migrate"'), 120_000);
    assert.deepEqual(await dbQuery(app.url, "SELECT to_regclass('audit_log')::text AS t"), [{ t: null }], 'the down-migration ran');
    rg.process.kill('SIGKILL');
    await rg.stop();
    rg = await start({ stateDir: rg.stateDir });
    // A second `DROP TABLE audit_log` would fail now: rolled_back shows it was not run again.
    const d = await deployment('rolled_back', before);
    const recorded = await steps(d.id);
    assert.equal(recorded.filter((s) => s.step === 'snapshot').length, 1, JSON.stringify(recorded));
    assert.equal(recorded.filter((s) => s.step === 'down-migration').length, 1);
    assert.equal((await inspect(WEB))?.Image, images.good);
  });

  it('fault: the application database unreachable → the safety snapshot fails and nothing is changed', async () => {
    const closed = await freePort();
    await writeFile(path.join(rg.stateDir, 'policy.yaml'), policy(app.url, warm.port, hook.port, `"postgresql://postgres@127.0.0.1:${closed}/app"`));
    await waitFor('the policy reload', async () => (await rg.logs()).includes('applying policy changes'), 30_000);
    const before = await newestId();
    await deployMigration();
    const d = await deployment('rollback_failed', before);
    assert.match(d.reason ?? '', /safety snapshot of the database failed/);
    assert.match(d.reason ?? '', /nothing was changed/);
    const recorded = await steps(d.id);
    assert.deepEqual(recorded.filter((s) => s.step === 'snapshot').map((s) => s.ok), [false]);
    assert.ok(!recorded.some((s) => s.step === 'down-migration' || s.step === 'stop-bad'), JSON.stringify(recorded));
    assert.equal((await inspect(WEB))?.Image, images.bad, 'the deployed version keeps running');
    assert.deepEqual(await dbQuery(app.url, "SELECT to_regclass('audit_log')::text AS t"), [{ t: 'audit_log' }], 'its schema untouched');
  });

  it('fault: kill -9 while the down-migration runs → its run is taken at restart, never started a second time', async () => {
    await writeFile(path.join(rg.stateDir, 'policy.yaml'), policy(app.url, warm.port, hook.port));
    await waitFor('the policy reload', async () => ((await rg.logs()).match(/applying policy changes/g) ?? []).length >= 2, 30_000);
    const before = await newestId();
    await deployMigration();
    const oneOff = await waitFor('the down-migration running', async () => {
      const names = (await docker('ps', '--filter', 'label=io.rollguard.one-off=true', '--format', '{{.Names}}')).split('\n').filter(Boolean);
      return names.find((n) => n.startsWith(`${SERVICE}.rollguard-down-migration.`));
    }, 120_000, 100);
    rg.process.kill('SIGKILL');
    await rg.stop();
    rg = await start({ stateDir: rg.stateDir });
    // A second `DROP TABLE audit_log` would fail: rolled_back shows the first run was taken.
    const d = await deployment('rolled_back', before);
    assert.ok(oneOff.endsWith(`.${d.id}`), `${oneOff} is the down-migration of deployment ${d.id}`);
    const recorded = await steps(d.id);
    const down = recorded.filter((s) => s.step === 'down-migration');
    assert.deepEqual(down.map((s) => s.ok), [true], JSON.stringify(recorded));
    assert.match(down[0]?.detail ?? '', /started before rollguard restarted/);
    assert.equal((await docker('ps', '-a', '--filter', `name=^/${oneOff}$`, '--format', '{{.Names}}')), '', 'the one-off container is removed once recorded');
    assert.equal((await inspect(WEB))?.Image, images.good);
  });
});
