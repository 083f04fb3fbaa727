/**
 * rollguard's lifecycle on a real Docker host: the embedded store and its one-process rule,
 * dry run, catching up after downtime, Compose-style recreates, SIGHUP reloads, /metrics and
 * `policy check`. Runs beside other Docker tests: only containers named `rg-life*` and only
 * fixture port 18082.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  buildFixtures, CLI, deploy, docker, fixturePolicy, freePort, freshDatabase, inspect, keepOutput, readyStatus,
  removeContainers, ROOT, startPrometheus, startRollguard, waitFor, type FixtureImages, type HistoryRow,
  type Prometheus, type Rollguard,
} from './harness.js';

const PORT = 18082;
const SERVICE = 'life';
const NAME = 'rg-life';
const FINAL = ['passed', 'rolled_back', 'rollback_failed', 'inconclusive', 'superseded', 'would_roll_back'];

const lifePolicy = (promUrl: string, container = NAME): string => fixturePolicy(promUrl, { port: PORT, service: SERVICE, container });

/** The fixture policy with its `match` block replaced by a Compose project and service. */
function composePolicy(promUrl: string, project: string, composeService: string): string {
  const text = lifePolicy(promUrl);
  const block = `    match:\n      container: ${NAME}\n`;
  assert.ok(text.includes(block), 'the fixture policy has the expected match block');
  return text.replace(block, `    match:\n      compose: {project: ${project}, service: ${composeService}}\n`);
}

/** Runs the CLI to completion (killed after `timeoutMs`), with the given environment. */
function runCli(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: unknown }).code as number | null | undefined) ?? null : 0;
      // Kept with the run's logs, so the secrets scan covers these commands too.
      void keepOutput(args, stdout, stderr).finally(() => resolve({ stdout, stderr, code: typeof code === 'number' ? code : null }));
    });
  });
}

/** The daemon's JSON log lines, parsed. */
async function logEntries(rg: Rollguard): Promise<Record<string, unknown>[]> {
  return (await rg.logs()).split('\n').filter((l) => l.startsWith('{')).map((l) => {
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch {
      return {};
    }
  });
}

async function waitForLog(rg: Rollguard, what: string, match: (entry: Record<string, unknown>) => boolean, timeoutMs = 30_000): Promise<Record<string, unknown>> {
  return waitFor(`log: ${what}`, async () => (await logEntries(rg)).find(match), timeoutMs);
}

const msgStarts = (prefix: string) => (e: Record<string, unknown>): boolean => typeof e.msg === 'string' && e.msg.startsWith(prefix);

/** SIGTERM's handler is installed once start-up is complete; stop a daemon only after this. */
const started = (rg: Rollguard): Promise<unknown> => waitForLog(rg, 'rollguard started', msgStarts('rollguard started'));

async function waitForAdoption(rg: Rollguard, image: string): Promise<void> {
  await waitFor(`${SERVICE} adopted as ${image}`, async () => (await rg.status()).services[SERVICE]?.image === image);
}

/** Waits until the newest recorded deployment is newer than `afterId` and has reached a final state. */
async function settled(rg: Rollguard, afterId: number, timeoutMs = 60_000): Promise<HistoryRow> {
  return waitFor(`a deployment of ${SERVICE} after #${afterId} to settle`, async () => {
    const newest = (await rg.history(SERVICE))[0];
    return newest && newest.id > afterId && FINAL.includes(newest.state) ? newest : undefined;
  }, timeoutMs);
}

async function newestId(rg: Rollguard): Promise<number> {
  return (await rg.history(SERVICE))[0]?.id ?? 0;
}

async function parkedContainers(name: string): Promise<string[]> {
  return (await docker('ps', '-a', '--format', '{{.Names}}', '--filter', `name=^/${name}.rollguard-bad`)).split('\n').filter(Boolean);
}

/** The value of one sample in Prometheus text exposition, by exact name and label subset. */
function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let total: number | undefined;
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    if (!Object.entries(labels).every(([k, v]) => have[k] === v)) continue;
    total = (total ?? 0) + Number(m[3]);
  }
  return total;
}

async function fetchMetrics(rg: Rollguard): Promise<string> {
  const res = await fetch(`${rg.apiUrl}/metrics`, { signal: AbortSignal.timeout(5_000) });
  assert.equal(res.status, 200);
  return res.text();
}

describe('rollguard lifecycle on a real Docker host', { timeout: 900_000 }, () => {
  let images: FixtureImages;
  let prom: Prometheus;

  before(async () => {
    images = await buildFixtures();
    await removeContainers(NAME);
    prom = await startPrometheus([{ port: PORT, service: SERVICE }]);
  });

  after(async () => {
    await prom?.stop();
    await removeContainers(NAME);
  });

  /** Puts v1 on the fixture port and waits until Prometheus has its rates. */
  async function deployGood(name = NAME, extra: string[] = []): Promise<void> {
    await deploy(name, 'rollguard-fixture:v1', extra, PORT);
    await waitFor('v1 ready', async () => (await readyStatus(PORT)) === 200);
    await prom.waitForData(`sum(rate(http_requests_total{service="${SERVICE}"}[3s]))`);
  }

  describe('embedded SQLite store', () => {
    let rg: Rollguard | undefined;
    let stateDir: string;

    before(async () => {
      stateDir = await mkdtemp(path.join(os.tmpdir(), 'rg-life-state-'));
    });

    after(async () => {
      await rg?.stop();
      await removeContainers(NAME);
      await rm(stateDir, { recursive: true, force: true });
    });

    it('reverts a bad deploy, refuses a second daemon on the state dir, stops cleanly on SIGTERM and keeps the history readable', async () => {
      await deployGood();
      rg = await startRollguard(lifePolicy(prom.url), { stateDir });
      const daemon = rg;
      await waitForAdoption(daemon, images.good);
      await started(daemon);

      const pidFile = path.join(stateDir, 'rollguard.pid');
      const published = JSON.parse(await readFile(pidFile, 'utf8')) as { pid: number; api: string };
      assert.deepEqual(published, { pid: daemon.process.pid, api: daemon.apiUrl }, 'the pid file names the daemon and its API (history goes through it)');

      await deploy(NAME, 'rollguard-fixture:v2-errors', [], PORT);
      const d = await settled(daemon, 0);
      assert.equal(d.state, 'rolled_back', `reason: ${d.reason}`);
      assert.equal(d.to_image, images.errors);
      assert.equal(d.from_image, images.good);
      assert.equal((await inspect(NAME))?.Image, images.good, 'the known-good image runs again');
      const whileRunning = await daemon.history();
      assert.equal(whileRunning.length, 1);

      const second = await runCli(['run', '--policy', path.join(stateDir, 'policy.yaml'), '--listen', `127.0.0.1:${await freePort()}`], daemon.env);
      const output = `${second.stdout}\n${second.stderr}`;
      assert.equal(second.code, 1, `a second daemon on the same state dir must exit 1; output: ${output}`);
      assert.match(output, new RegExp(`another rollguard \\(pid ${daemon.process.pid}\\) is running with state directory`));
      assert.deepEqual(JSON.parse(await readFile(pidFile, 'utf8')), published, 'the refused daemon leaves the pid file alone');
      assert.equal((await fetch(`${daemon.apiUrl}/healthz`)).status, 200, 'the first daemon keeps running');

      assert.equal(await daemon.stop('SIGTERM'), 0, 'SIGTERM is a clean exit');
      rg = undefined;
      assert.equal(existsSync(pidFile), false, 'the pid file is removed on exit');

      const afterStop = await daemon.history();
      assert.deepEqual(afterStop, whileRunning, 'reading the SQLite file directly gives the same rows as the daemon API');
      assert.equal(existsSync(path.join(stateDir, 'pglite')), false, 'a new state directory gets no PGlite database');
      const file = new Database(path.join(stateDir, 'rollguard.db'), { readonly: true, fileMustExist: true });
      try {
        const rows = file.prepare('SELECT id, state, to_image FROM deployments ORDER BY id DESC').all();
        assert.deepEqual(rows, whileRunning.map((r) => ({ id: r.id, state: r.state, to_image: r.to_image })), 'the rows are in rollguard.db, committed');
      } finally {
        file.close();
      }
    });
  });

  describe('dry run (PostgreSQL store)', () => {
    let rg: Rollguard | undefined;
    let db: { url: string; drop(): Promise<void> };

    before(async () => {
      db = await freshDatabase();
    });

    after(async () => {
      await rg?.stop();
      await removeContainers(NAME);
      await db?.drop();
    });

    it('a bad deploy ends in would_roll_back and its container is left untouched', async () => {
      await deployGood();
      rg = await startRollguard(lifePolicy(prom.url), { databaseUrl: db.url, extraArgs: ['--dry-run'] });
      await waitForAdoption(rg, images.good);
      assert.equal((await rg.status() as unknown as { dryRun: boolean }).dryRun, true);

      const badId = await deploy(NAME, 'rollguard-fixture:v2-errors', [], PORT);
      const d = await settled(rg, 0);
      assert.equal(d.state, 'would_roll_back', `reason: ${d.reason}`);
      assert.match(d.reason ?? '', /error rate above 5%/);
      assert.equal((d as HistoryRow & { dry_run?: boolean }).dry_run, true);
      const running = await inspect(NAME);
      assert.equal(running?.Id, badId, 'the same container, not a recreated one');
      assert.equal(running?.Image, images.errors);
      assert.equal(running?.State.Running, true);
      assert.deepEqual(await parkedContainers(NAME), [], 'nothing was parked');
    });
  });

  describe('catch-up at start-up (PostgreSQL store)', () => {
    let rg: Rollguard | undefined;
    let db: { url: string; drop(): Promise<void> };

    before(async () => {
      db = await freshDatabase();
    });

    after(async () => {
      await rg?.stop();
      await removeContainers(NAME);
      await db?.drop();
    });

    it('a deployment made while rollguard was down is detected and reverted when it starts', async () => {
      await deployGood();
      const first = await startRollguard(lifePolicy(prom.url), { databaseUrl: db.url });
      rg = first;
      await waitForAdoption(first, images.good);
      await started(first);
      assert.equal(await first.stop(), 0);
      rg = undefined;

      await deploy(NAME, 'rollguard-fixture:v2-errors', [], PORT);
      rg = await startRollguard(lifePolicy(prom.url), { databaseUrl: db.url, stateDir: first.stateDir });
      await waitForLog(rg, 'catch-up detection', msgStarts('a deployment happened while rollguard was not watching'));
      const d = await settled(rg, 0);
      assert.equal(d.state, 'rolled_back', `reason: ${d.reason}`);
      assert.equal(d.from_image, images.good);
      assert.equal(d.to_image, images.errors);
      const running = await inspect(NAME);
      assert.equal(running?.Image, images.good, 'the known-good image runs again');
      assert.equal(running?.State.Running, true);
      assert.equal(await readyStatus(PORT), 200);
    });
  });

  describe('Compose-style recreate (PostgreSQL store)', () => {
    const COMPOSE_NAME = 'rg-life-web-1';
    const TEMP_NAME = 'rg-life-web-1-recreating';
    const labels = ['--label', 'com.docker.compose.project=rglife', '--label', 'com.docker.compose.service=web'];
    let rg: Rollguard | undefined;
    let db: { url: string; drop(): Promise<void> };

    before(async () => {
      db = await freshDatabase();
    });

    after(async () => {
      await rg?.stop();
      await removeContainers(NAME);
      await db?.drop();
    });

    it('create-new, remove-old, rename, start is a deployment and the revert keeps the compose labels', async () => {
      await deployGood(COMPOSE_NAME, labels);
      rg = await startRollguard(composePolicy(prom.url, 'rglife', 'web'), { databaseUrl: db.url });
      await waitForAdoption(rg, images.good);

      await docker('rm', '-f', TEMP_NAME).catch(() => '');
      await docker('create', '--name', TEMP_NAME, '--network', 'host', '--restart', 'unless-stopped', '-e', `PORT=${PORT}`, ...labels, 'rollguard-fixture:v2-errors');
      await docker('rm', '-f', COMPOSE_NAME);
      await docker('rename', TEMP_NAME, COMPOSE_NAME);
      await docker('start', COMPOSE_NAME);

      const d = await settled(rg, 0);
      assert.equal(d.state, 'rolled_back', `reason: ${d.reason}`);
      assert.equal(d.to_image, images.errors);
      assert.equal(d.from_image, images.good);
      const running = await inspect(COMPOSE_NAME);
      assert.equal(running?.Image, images.good, 'the known-good image runs again under the compose name');
      assert.equal(running?.State.Running, true);
      const runningLabels = JSON.parse(await docker('inspect', '-f', '{{json .Config.Labels}}', COMPOSE_NAME)) as Record<string, string>;
      assert.equal(runningLabels['com.docker.compose.project'], 'rglife');
      assert.equal(runningLabels['com.docker.compose.service'], 'web');
    });
  });

  describe('SIGHUP reload (PostgreSQL store)', () => {
    let rg: Rollguard | undefined;
    let db: { url: string; drop(): Promise<void> };

    before(async () => {
      db = await freshDatabase();
    });

    after(async () => {
      await rg?.stop();
      await removeContainers(NAME);
      await db?.drop();
    });

    it('refuses a broken policy with its line, keeps watching, then applies a valid one that adds a service', async () => {
      await deployGood();
      const daemon = await startRollguard(lifePolicy(prom.url), { databaseUrl: db.url });
      rg = daemon;
      await waitForAdoption(daemon, images.good);
      const policyFile = path.join(daemon.stateDir, 'policy.yaml');

      const broken = lifePolicy(prom.url).replace('above: 0.05', 'above: lots');
      const brokenLine = broken.split('\n').findIndex((l) => l.includes('above: lots')) + 1;
      assert.ok(brokenLine > 0);
      await writeFile(policyFile, broken);
      daemon.process.kill('SIGHUP');
      const refused = await waitForLog(daemon, 'policy reload refused', msgStarts('policy reload refused'));
      const problems = refused.problems as { file: string; line?: number; path: string; message: string }[] | undefined;
      assert.ok(
        problems?.some((p) => p.line === brokenLine && p.path === 'services.life.rules[0].above' && /number/.test(p.message)),
        `the refusal names line ${brokenLine}: ${JSON.stringify(refused)}`,
      );
      assert.equal(daemon.process.exitCode, null, 'the daemon is still running');
      assert.deepEqual(Object.keys((await daemon.status()).services), [SERVICE], 'status works and the running policy is kept');

      const lastId = await newestId(daemon);
      await deploy(NAME, 'rollguard-fixture:v2-errors', [], PORT);
      const d = await settled(daemon, lastId);
      assert.equal(d.state, 'rolled_back', `still watching after the refused reload; reason: ${d.reason}`);
      assert.equal((await inspect(NAME))?.Image, images.good);

      const second = fixturePolicy(prom.url, { port: PORT, service: 'life-b', container: 'rg-life-b' });
      const secondServices = second.slice(second.indexOf('services:\n') + 'services:\n'.length);
      await writeFile(policyFile, lifePolicy(prom.url) + secondServices);
      daemon.process.kill('SIGHUP');
      const reloaded = await waitForLog(daemon, 'policy reloaded', msgStarts('policy reloaded'));
      assert.deepEqual(reloaded.added, ['life-b']);
      const status = await daemon.status();
      assert.deepEqual(Object.keys(status.services).sort(), [SERVICE, 'life-b']);
      assert.equal(status.services[SERVICE]?.image, images.good, 'the first service keeps its state across the reload');
    });
  });

  describe('SIGHUP during start-up (embedded SQLite store)', () => {
    let rg: Rollguard | undefined;
    let stateDir: string;

    before(async () => {
      stateDir = await mkdtemp(path.join(os.tmpdir(), 'rg-life-state-'));
    });

    after(async () => {
      await rg?.stop();
      await rm(stateDir, { recursive: true, force: true });
    });

    it('a reload requested while the store is still opening is applied once started, not fatal', async () => {
      // systemd's `reload` may come right after `start` (Type=simple); SIGHUP's default action ends
      // the process, and systemd counts that as a clean exit, so it would not restart rollguard.
      const starting = startRollguard(lifePolicy(prom.url, 'rg-life-startup'), { stateDir });
      starting.catch(() => {}); // judged below
      const pidFile = path.join(stateDir, 'rollguard.pid');
      const claimed = await waitFor('the pid file (state dir claimed, store not yet open)', async () => {
        const info = JSON.parse(await readFile(pidFile, 'utf8')) as { pid: number; api: string };
        return info.pid ? info : undefined;
      }, 30_000, 10);
      assert.equal(claimed.api, '', 'the signal goes in while start-up is still under way');
      process.kill(claimed.pid, 'SIGHUP');
      const alive = (): boolean => {
        try {
          process.kill(claimed.pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      const died = waitFor('the daemon to die', () => !alive(), 35_000, 50).then(() => {
        throw new Error('rollguard died from a SIGHUP received during start-up');
      });
      died.catch(() => {});
      rg = await Promise.race([starting, died]);
      await waitForLog(rg, 'the deferred reload', msgStarts('policy reloaded'));
      assert.ok(alive(), 'still running after the reload');
      assert.deepEqual(Object.keys((await rg.status()).services), [SERVICE]);
      assert.equal(await rg.stop(), 0);
      rg = undefined;
    });
  });

  describe('/metrics and /healthz (PostgreSQL store)', () => {
    let rg: Rollguard | undefined;
    let db: { url: string; drop(): Promise<void> };

    before(async () => {
      db = await freshDatabase();
    });

    after(async () => {
      await rg?.stop();
      await removeContainers(NAME);
      await db?.drop();
    });

    it('exposes deployments, rollbacks, samples, probe latency and active watches after a revert', async () => {
      await deployGood();
      const daemon = await startRollguard(lifePolicy(prom.url), { databaseUrl: db.url });
      rg = daemon;
      await waitForAdoption(daemon, images.good);

      const health = await fetch(`${daemon.apiUrl}/healthz`);
      assert.equal(health.status, 200);
      assert.equal(((await health.json()) as { ok: boolean }).ok, true);
      assert.equal(metricValue(await fetchMetrics(daemon), 'rollguard_active_watches'), 0, 'no watch before a deploy');

      await deploy(NAME, 'rollguard-fixture:v2-errors', [], PORT);
      await waitFor('rollguard_active_watches 1 during the watch', async () => metricValue(await fetchMetrics(daemon), 'rollguard_active_watches') === 1, 30_000, 100);
      const d = await settled(daemon, 0);
      assert.equal(d.state, 'rolled_back', `reason: ${d.reason}`);

      const text = await fetchMetrics(daemon);
      assert.equal(metricValue(text, 'rollguard_deployments_seen_total', { service: SERVICE }), 1);
      assert.equal(metricValue(text, 'rollguard_rollbacks_total', { service: SERVICE, outcome: 'succeeded' }), 1);
      assert.ok((metricValue(text, 'rollguard_samples_total', { service: SERVICE, result: 'breach' }) ?? 0) >= 3, 'at least the 3 breaching samples');
      for (const kind of ['prometheus', 'http', 'container']) {
        assert.ok((metricValue(text, 'rollguard_probe_duration_seconds_count', { kind }) ?? 0) > 0, `probe latency of ${kind} signals`);
        assert.ok(metricValue(text, 'rollguard_probe_duration_seconds_bucket', { kind, le: '+Inf' }) !== undefined);
      }
      assert.equal(metricValue(text, 'rollguard_active_watches'), 0, 'no watch once the revert is done');
      assert.equal((await fetch(`${daemon.apiUrl}/healthz`)).status, 200);
    });
  });

  describe('rollguard policy check', () => {
    let dir: string;

    before(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'rg-life-policy-'));
    });

    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('prints every mistake as file:line: path: message and exits 1', async () => {
      const file = path.join(dir, 'broken.yaml');
      const text = [
        'version: 2',
        'prometheus:',
        '  url: http://127.0.0.1:9090',
        'defaults:',
        '  window: soon',
        'services:',
        '  life:',
        '    match:',
        '      container: rg-life',
        '    signals:',
        '      ready:',
        '        http:',
        '          url: ftp://127.0.0.1/ready',
        '    rules:',
        '      - name: readiness failing',
        '        signal: missing',
        '        below: 1',
        '        colour: red',
        '',
      ].join('\n');
      await writeFile(file, text);
      const r = await runCli(['policy', 'check', file], { ...process.env });
      assert.equal(r.code, 1, `stdout: ${r.stdout} stderr: ${r.stderr}`);
      const lines = r.stderr.trim().split('\n');
      const expected = [
        `${file}:1: version: expected 1 (the only policy version)`,
        `${file}:5: defaults.window: expected a duration such as 500ms, 15s, 10m or 1h`,
        `${file}:13: services.life.signals.ready.http.url: expected an http:// or https:// URL`,
        `${file}:16: services.life.rules[0].signal: unknown signal "missing"; defined: ready`,
        `${file}:18: services.life.rules[0].colour: unknown key`,
      ];
      for (const line of expected) assert.ok(lines.includes(line), `expected "${line}" in:\n${r.stderr}`);
      for (const line of lines) assert.match(line, /^.+:\d+: \S+: .+$/, 'every problem is file:line: path: message');
    });

    it('accepts config/policy.example.yaml and exits 0', async () => {
      const r = await runCli(['policy', 'check', path.join(ROOT, 'config/policy.example.yaml')], { ...process.env });
      assert.equal(r.code, 0, `stderr: ${r.stderr}`);
      assert.match(r.stdout, /ok — 1 service\(s\): web \(3 rules\)/);
    });
  });
});
