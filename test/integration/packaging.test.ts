/**
 * Packaging as an operator installs it. The Dockerfile is built on the real engine, on a
 * node:20-bookworm-slim made locally by scripts/make-base-image.sh when no registry has one
 * (Debian bookworm debootstrapped, this machine's Node.js, CA bundle and npm settings), then run
 * with the Docker socket, host networking and a named state volume: it runs non-root under tini,
 * its HEALTHCHECK passes, it comes back with its state after `kill -9` and `docker start`, and
 * reverts a bad deploy. The systemd unit passes `systemd-analyze verify` and `security`, its
 * sysusers.d file makes the user, and the CLI keeps its state in systemd's $STATE_DIRECTORY.
 * Names rg-pkg-*, ports 18740 (rollguard in the container), 18741 (fixture), 18742 (CLI daemon).
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { CLI, deploy, docker, inspect, keptLogFile, readyStatus, removeContainers, ROOT, waitFor, type HistoryRow } from './harness.js';

const run = promisify(execFile);
const IMAGE = 'rg-pkg-rollguard:test';
const CONTAINER = 'rg-pkg-rollguard';
const VOLUME = 'rg-pkg-state';
const APP = 'rg-pkg-app';
const SERVICE = 'pkg';
const API_PORT = 18740;
const APP_PORT = 18741;
const CLI_PORT = 18742;
const API = `http://127.0.0.1:${API_PORT}`;
const FIXTURES = { good: 'rg-pkg-fixture:v1', good2: 'rg-pkg-fixture:v1.1', bad: 'rg-pkg-fixture:v2-unready' };

/** Readiness only (no Prometheus), the benchmark's timings: a bad version is reverted in seconds. */
const policy = (container: string, port: number): string => `version: 1
defaults:
  window: 8s
  interval: 1s
  max_attempts: 2
  stop_timeout: 1s
  recovery_timeout: 20s
services:
  ${SERVICE}:
    match:
      container: ${container}
    signals:
      ready:
        http:
          url: http://127.0.0.1:${port}/cgi-bin/ready
          timeout: 1s
          status: 200
          json: {status: ready, checks.database.status: ok}
    rules:
      - name: readiness failing
        signal: ready
        below: 1
        for: 3
        severity: P0
        action: rollback
    recovery:
      - {signal: ready, above: 0}
`;

async function api<T>(pathname: string): Promise<T> {
  const res = await fetch(`${API}${pathname}`, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`${pathname}: HTTP ${res.status}`);
  return (await res.json()) as T;
}
const history = (): Promise<HistoryRow[]> => api<HistoryRow[]>(`/api/v1/deployments?service=${SERVICE}`);
const knownGood = async (): Promise<string | undefined> =>
  (await api<{ services: Record<string, { known_good: { image: string } | null }> }>('/api/v1/status')).services[SERVICE]?.known_good?.image;
const healthy = async (): Promise<boolean> => (await fetch(`${API}/healthz`, { signal: AbortSignal.timeout(2_000) }).catch(() => undefined))?.ok ?? false;

/** A process's uid and command name, from the host's /proc. */
async function procInfo(pid: number): Promise<{ uid: number; comm: string }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return { uid: Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]), comm: (await readFile(`/proc/${pid}/comm`, 'utf8')).trim() };
}

describe('the container image', { timeout: 900_000 }, () => {
  const images: Record<keyof typeof FIXTURES, string> = { good: '', good2: '', bad: '' };
  let policyDir: string;

  const containerLogs = (): Promise<string> => docker('logs', '--tail', '40', CONTAINER).catch((err: Error) => err.message);
  const waitHealthy = async (): Promise<void> => {
    await waitFor('rollguard in the container to answer /healthz', async () => {
      const state = await docker('inspect', '-f', '{{.State.Status}}', CONTAINER);
      if (state !== 'running') throw new Error(`container ${state}: ${await containerLogs()}`);
      return healthy();
    }, 60_000);
  };

  before(async () => {
    await cleanUp();
    // The base image: a real one when the engine has it, else made here (cached: seconds after the first time).
    await run(path.join(ROOT, 'scripts/make-base-image.sh'), [], { timeout: 600_000, maxBuffer: 16 * 1024 * 1024 })
      .catch((err: { stdout?: string; stderr?: string }) => { throw new Error(`make-base-image.sh failed:\n${err.stdout}${err.stderr}`); });
    await docker('build', '-q', '--network', 'host', '-t', IMAGE, ROOT)
      .catch((err: { stderr?: string }) => { throw new Error(`docker build failed:\n${err.stderr}`); });

    const ctx = await mkdtemp(path.join(os.tmpdir(), 'rg-pkg-fixture-'));
    await cp(path.join(ROOT, 'test/fixtures/app'), ctx, { recursive: true });
    await cp('/bin/busybox', path.join(ctx, 'busybox'));
    const versions: Record<keyof typeof FIXTURES, string[]> = { good: ['VERSION=v1'], good2: ['VERSION=v1.1'], bad: ['VERSION=v2', 'READY=0'] };
    for (const [k, tag] of Object.entries(FIXTURES) as [keyof typeof FIXTURES, string][]) {
      await docker('build', '-q', '-t', tag, ...versions[k].flatMap((a) => ['--build-arg', a]), ctx);
      images[k] = await docker('image', 'inspect', '-f', '{{.Id}}', tag);
    }
    await rm(ctx, { recursive: true, force: true });

    // Mounted read-only into the container, whose user (node, uid 1000) must be able to read it.
    policyDir = await mkdtemp(path.join(os.tmpdir(), 'rg-pkg-policy-'));
    await chmod(policyDir, 0o755);
    await writeFile(path.join(policyDir, 'policy.yaml'), policy(APP, APP_PORT), { mode: 0o644 });
  });

  async function cleanUp(): Promise<void> {
    await removeContainers('rg-pkg-');
    await docker('volume', 'rm', '-f', VOLUME).catch(() => '');
    // --no-prune keeps the build's layers as cache for the next run; the tags go.
    for (const tag of [IMAGE, ...Object.values(FIXTURES)]) await docker('rmi', '--no-prune', tag).catch(() => '');
  }

  after(async () => {
    await writeFile(keptLogFile('container'), await docker('logs', CONTAINER).catch(() => '')).catch(() => undefined);
    await cleanUp();
    if (policyDir) await rm(policyDir, { recursive: true, force: true });
  });

  it('runs as non-root under tini, passes its HEALTHCHECK, survives kill -9 with its state volume, and reverts a bad deploy', async () => {
    await deploy(APP, FIXTURES.good, [], APP_PORT);
    await waitFor('the fixture ready', async () => (await readyStatus(APP_PORT)) === 200);

    const socket = process.env.DOCKER_HOST?.startsWith('unix://') ? process.env.DOCKER_HOST.slice('unix://'.length) : '/var/run/docker.sock';
    const socketGid = (await stat(socket)).gid;
    await docker('volume', 'create', VOLUME);
    await docker('run', '-d', '--name', CONTAINER, '--network', 'host',
      '--group-add', String(socketGid), '-v', `${socket}:/var/run/docker.sock`,
      '-v', `${policyDir}:/etc/rollguard:ro`, '-v', `${VOLUME}:/var/lib/rollguard`,
      '-e', `ROLLGUARD_LISTEN=127.0.0.1:${API_PORT}`,
      // The image's own health check, asked every second instead of every 30 s.
      '--health-interval', '1s', '--health-start-period', '30s',
      IMAGE);
    await waitHealthy();

    // PID 1 is tini; rollguard is its child; neither runs as root (seen from the host's /proc).
    const pid1 = Number(await docker('inspect', '-f', '{{.State.Pid}}', CONTAINER));
    const children = (await readFile(`/proc/${pid1}/task/${pid1}/children`, 'utf8')).trim().split(/\s+/).map(Number);
    const init = await procInfo(pid1);
    const daemon = await procInfo(children[0] ?? 0);
    assert.deepEqual({ init: init.comm, daemon: daemon.comm }, { init: 'tini', daemon: 'node' });
    assert.notEqual(init.uid, 0, 'tini runs as root');
    assert.notEqual(daemon.uid, 0, 'rollguard runs as root');
    assert.equal(await docker('exec', CONTAINER, 'stat', '-c', '%a %u', '/var/lib/rollguard'), `700 ${daemon.uid}`, 'the state volume is private to rollguard\'s user');
    await waitFor('the image\'s HEALTHCHECK to report healthy', async () =>
      (await docker('inspect', '-f', '{{.State.Health.Status}}', CONTAINER)) === 'healthy', 30_000);

    // A good deploy is watched and passes: v1.1 becomes known-good, recorded in the volume.
    await deploy(APP, FIXTURES.good2, [], APP_PORT);
    const passed = await waitFor('the v1.1 deploy to pass', async () => (await history()).find((d) => d.to_image === images.good2 && d.state === 'passed'), 60_000);
    assert.equal(await knownGood(), images.good2);

    // kill -9 (tini and rollguard with it), then start again with the same volume.
    await docker('kill', '-s', 'KILL', CONTAINER);
    await waitFor('the container to stop', async () => (await docker('inspect', '-f', '{{.State.Status}}', CONTAINER)) === 'exited');
    await docker('start', CONTAINER);
    await waitHealthy();
    assert.ok((await history()).some((d) => d.id === passed.id && d.state === 'passed'), 'the deployment before the kill is still in the history');
    // /healthz answers while rollguard still catches up with Docker at start; the known-good version shows once it has.
    await waitFor('the known-good version v1.1 after the restart', async () => (await knownGood()) === images.good2, 30_000);

    // A bad deploy after the restart is reverted to the known-good version.
    await deploy(APP, FIXTURES.bad, [], APP_PORT);
    const reverted = await waitFor('the bad deploy to be rolled back', async () =>
      (await history()).find((d) => d.to_image === images.bad && ['rolled_back', 'rollback_failed'].includes(d.state)), 90_000);
    assert.equal(reverted.state, 'rolled_back', `reason: ${reverted.reason}\n${await containerLogs()}`);
    assert.equal((await inspect(APP))?.Image, images.good2, 'the service runs the known-good image again');
    await waitFor('the reverted service ready', async () => (await readyStatus(APP_PORT)) === 200);
  });
});

describe('the systemd unit', () => {
  const unitFile = path.join(ROOT, 'systemd/rollguard.service');

  /** The unit with its node path pointing at this machine's node (systemd-analyze checks ExecStart's binary exists). */
  async function unitCopy(dir: string): Promise<string> {
    const text = (await readFile(unitFile, 'utf8')).replaceAll('/usr/bin/node ', `${await stat('/usr/bin/node').then(() => '/usr/bin/node', () => process.execPath)} `);
    const copy = path.join(dir, 'rollguard.service');
    await writeFile(copy, text);
    return copy;
  }

  it('passes systemd-analyze verify without a warning, and security rates its hardening OK (exposure ≤ 4)', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rg-pkg-unit-'));
    try {
      const copy = await unitCopy(dir);
      const verify = await run('systemd-analyze', ['verify', copy]);
      assert.equal(`${verify.stdout}${verify.stderr}`.trim(), '');
      // Exits non-zero above the threshold, given in tenths (40: exposure 4.0, "OK").
      const security = await run('systemd-analyze', ['security', '--offline=true', '--threshold=40', copy])
        .catch((err: { stdout?: string }) => { throw new Error(`exposure above 4.0: ${err.stdout?.split('\n').slice(-3).join(' ')}`); });
      assert.match(security.stdout, /Overall exposure level for rollguard\.service: \d\.\d OK/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('wants Docker without binding to it, starts as exec, keeps files private, and does not restart on a bad policy', async () => {
    const text = await readFile(unitFile, 'utf8');
    const values = (key: string): string[] => [...text.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].flatMap((m) => (m[1] ?? '').split(/\s+/));
    assert.ok(values('Wants').includes('docker.service') && values('After').includes('docker.service'));
    for (const binding of ['Requires', 'BindsTo', 'PartOf', 'Requisite']) assert.ok(!values(binding).includes('docker.service'), `${binding}=docker.service would stop rollguard with Docker`);
    assert.deepEqual(values('Type'), ['exec']);
    assert.deepEqual(values('UMask'), ['0077']);
    assert.deepEqual(values('Restart'), ['on-failure']);
    assert.deepEqual(values('RestartPreventExitStatus'), ['78']);
    assert.deepEqual(values('StateDirectory'), ['rollguard']);
    assert.ok(values('ExecStart').includes('${STATE_DIRECTORY}'), 'ExecStart keeps the state in $STATE_DIRECTORY');
  });

  it('its sysusers.d file makes the unit\'s user: a system user without login, at home in the state directory', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'rg-pkg-sysusers-'));
    try {
      await mkdir(path.join(root, 'etc'));
      await run('systemd-sysusers', [`--root=${root}`, path.join(ROOT, 'systemd/rollguard.sysusers')]);
      const user = /^[^=]*User=(.*)$/m.exec(await readFile(unitFile, 'utf8'))?.[1];
      const entry = (await readFile(path.join(root, 'etc/passwd'), 'utf8')).split('\n').find((l) => l.startsWith(`${user}:`));
      const [, , uid, , , home, shell] = entry?.split(':') ?? [];
      assert.ok(Number(uid) > 0 && Number(uid) < 1000, `a system uid: ${entry}`);
      assert.deepEqual({ home, shell }, { home: '/var/lib/rollguard', shell: '/usr/sbin/nologin' });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  describe('the CLI under systemd', () => {
    let dir: string;
    const env = (): NodeJS.ProcessEnv => {
      const e: NodeJS.ProcessEnv = { ...process.env, STATE_DIRECTORY: path.join(dir, 'state') };
      delete e.ROLLGUARD_STATE_DIR;
      return e;
    };
    before(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'rg-pkg-systemd-'));
      await mkdir(path.join(dir, 'state'), { mode: 0o700 });
      await mkdir(path.join(dir, 'cwd'));
    });
    after(() => rm(dir, { recursive: true, force: true }));

    it('keeps its state in $STATE_DIRECTORY when ROLLGUARD_STATE_DIR and --state-dir are not given', { timeout: 60_000 }, async () => {
      const policyFile = path.join(dir, 'policy.yaml');
      await writeFile(policyFile, policy('rg-pkg-none', APP_PORT));
      const log = openSync(keptLogFile('rollguard'), 'a');
      const child = spawn(process.execPath, [CLI, 'run', '--policy', policyFile, '--listen', `127.0.0.1:${CLI_PORT}`], { env: env(), cwd: path.join(dir, 'cwd'), stdio: ['ignore', log, log] });
      closeSync(log);
      const exited = new Promise((r) => child.once('exit', r));
      try {
        await waitFor('rollguard /healthz', async () => {
          if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}`);
          return (await fetch(`http://127.0.0.1:${CLI_PORT}/healthz`).catch(() => undefined))?.ok;
        });
        assert.ok((await readdir(path.join(dir, 'state'))).includes('rollguard.pid'), 'the lock file is in $STATE_DIRECTORY');
        assert.deepEqual(await readdir(path.join(dir, 'cwd')), [], 'nothing in ./var');
        // Another command finds the daemon through the same directory.
        const status = await run(process.execPath, [CLI, 'status', '--json'], { env: env(), cwd: path.join(dir, 'cwd') });
        assert.ok(SERVICE in (JSON.parse(status.stdout) as { services: Record<string, unknown> }).services);
      } finally {
        child.kill('SIGTERM');
        await exited;
      }
    });

    it('exits 78 (EX_CONFIG) on a bad policy, the status the unit does not restart on', { timeout: 30_000 }, async () => {
      const policyFile = path.join(dir, 'bad.yaml');
      await writeFile(policyFile, policy('rg-pkg-none', APP_PORT).replace('version: 1', 'version: 2'));
      const result = await run(process.execPath, [CLI, 'run', '--policy', policyFile, '--listen', `127.0.0.1:${CLI_PORT}`], { env: env(), cwd: path.join(dir, 'cwd') })
        .then(() => ({ code: 0, stderr: '' }), (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }));
      assert.equal(result.code, 78, result.stderr);
      assert.match(result.stderr, /version/);
    });
  });
});
