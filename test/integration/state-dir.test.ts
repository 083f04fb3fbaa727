/**
 * The state directory: the embedded database in it holds every guarded container's spec,
 * environment secrets included, so it is private to rollguard's user whatever the umask; and an
 * OS lock, not a pid, decides which rollguard owns it. No containers: the policy's service has
 * none running (`rg-statedir-none` is never created), so rollguard only opens its store and waits.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CLI, fixturePolicy, freePort, keepOutput, keptLogFile, startRollguard, waitFor, type Rollguard } from './harness.js';

/** Nothing is deployed for the service, so no PromQL query or HTTP check is ever made. */
const POLICY = fixturePolicy('http://127.0.0.1:9', { service: 'statedir', container: 'rg-statedir-none', port: 9 });

/** Every directory under `dir` (itself included) whose mode is not 0700 and every file whose mode is not 0600. */
async function notPrivate(dir: string): Promise<{ open: string[] }> {
  const open: string[] = [];
  const walk = async (at: string): Promise<void> => {
    const info = await lstat(at);
    const mode = info.mode & 0o7777;
    const want = info.isDirectory() ? 0o700 : 0o600;
    if (mode !== want) open.push(`${path.relative(dir, at) || '.'} ${mode.toString(8)} (want ${want.toString(8)})`);
    if (info.isDirectory()) for (const name of await readdir(at)) await walk(path.join(at, name));
  };
  await walk(dir);
  return { open };
}

/** Gives every directory under `dir` mode 0777 and every file 0666, as an older version left them. */
async function openUp(dir: string): Promise<void> {
  const info = await lstat(dir);
  await chmod(dir, info.isDirectory() ? 0o777 : 0o666);
  if (info.isDirectory()) for (const name of await readdir(dir)) await openUp(path.join(dir, name));
}

/** Runs the CLI to completion (killed after `timeoutMs`), with the given environment. */
function runCli(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<{ output: string; code: number | null }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env, timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: unknown }).code as number | null | undefined) ?? null : 0;
      void keepOutput(args, stdout, stderr).finally(() => resolve({ output: `${stdout}${stderr}`, code: typeof code === 'number' ? code : null }));
    });
  });
}

const exited = (child: ChildProcess): Promise<number | null> =>
  child.exitCode !== null || child.signalCode !== null ? Promise.resolve(child.exitCode) : new Promise((r) => child.once('exit', (code) => r(code)));

interface Spawned { child: ChildProcess; apiUrl: string; logs: () => Promise<string> }

/** Starts `rollguard run` on `stateDir` with the policy outside it; `shell` runs first in the shell that execs it. */
async function spawnRollguard(stateDir: string, policyFile: string, shell = ''): Promise<Spawned> {
  const port = await freePort();
  const logFile = keptLogFile('rollguard');
  const log = openSync(logFile, 'a');
  const env: NodeJS.ProcessEnv = { ...process.env, ROLLGUARD_STATE_DIR: stateDir, ROLLGUARD_LOG_LEVEL: 'debug' };
  delete env.DATABASE_URL;
  const child = spawn('sh', ['-c', `${shell} exec "$@"`, 'sh', process.execPath, CLI, 'run', '--policy', policyFile, '--listen', `127.0.0.1:${port}`], {
    env, stdio: ['ignore', log, log],
  });
  closeSync(log);
  return { child, apiUrl: `http://127.0.0.1:${port}`, logs: () => readFile(logFile, 'utf8') };
}

/** Waits until `rg` has started: /healthz answers before the signal handlers are in place. */
async function untilStarted(rg: Spawned): Promise<void> {
  await waitFor('rollguard started', async () => {
    if (rg.child.exitCode !== null) throw new Error(`rollguard exited with ${rg.child.exitCode}: ${await rg.logs()}`);
    return (await rg.logs()).includes('"msg":"rollguard started"');
  }, 60_000);
}

describe('the state directory', { timeout: 300_000 }, () => {
  let root: string;
  let stateDir: string;
  let policyFile: string;
  let running: Rollguard[] = [];
  let sleeper: ChildProcess | undefined;

  // The tests share one state directory, in order: the first creates the database, the second
  // finds it as an older version left it.
  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'rg-statedir-'));
    stateDir = path.join(root, 'state');
    await mkdir(stateDir, { mode: 0o755 });
    // The policy lives outside the state directory: everything in it is rollguard's own.
    policyFile = path.join(root, 'policy.yaml');
    await writeFile(policyFile, POLICY);
  });

  after(async () => {
    sleeper?.kill('SIGKILL');
    for (const rg of running) await rg.stop('SIGKILL');
    await rm(root, { recursive: true, force: true });
  });

  const start = async (): Promise<Rollguard> => {
    const rg = await startRollguard(POLICY, { stateDir });
    running.push(rg);
    await untilStarted({ child: rg.process, apiUrl: rg.apiUrl, logs: rg.logs });
    return rg;
  };
  const stop = async (rg: Rollguard, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> => {
    const code = await rg.stop(signal);
    running = running.filter((r) => r !== rg);
    return code;
  };

  it('fault: the state directory checked with stat after a run under umask 000 → every directory 0700 and every file 0600', async () => {
    const shellMade = path.join(root, 'made-under-umask');
    const rg = await spawnRollguard(stateDir, policyFile, `umask 000 && : > '${shellMade}' &&`);
    try {
      await untilStarted(rg);
      assert.equal((await stat(shellMade)).mode & 0o777, 0o666, 'the shell that started rollguard ran with umask 000');
      const umask = /^Umask:\s*(\d+)$/m.exec(await readFile(`/proc/${rg.child.pid}/status`, 'utf8'))?.[1];
      assert.equal(umask, '0077', 'rollguard set its own umask');
      const running = await readdir(stateDir);
      for (const file of ['rollguard.db', 'rollguard.db-wal', 'rollguard.db-shm']) assert.ok(running.includes(file), `${file} while it runs: ${running.join(' ')}`);
      assert.deepEqual((await notPrivate(stateDir)).open, [], 'every directory 0700 and every file 0600 while it runs');
    } finally {
      rg.child.kill('SIGTERM');
    }
    assert.equal(await exited(rg.child), 0, 'a clean stop');
    assert.ok((await readdir(stateDir)).includes('rollguard.db'), 'the embedded database was created');
    assert.deepEqual((await notPrivate(stateDir)).open, [], 'every directory 0700 and every file 0600');
  });

  it('fault: a state directory an older version left world-readable (directories 0777, files 0666) → private again once rollguard has started', async () => {
    await openUp(stateDir);
    const rg = await start();
    const { open } = await notPrivate(stateDir);
    assert.deepEqual(open, [], 'every directory 0700 and every file 0600 while it runs');
    assert.equal(await stop(rg), 0);
    assert.deepEqual((await notPrivate(stateDir)).open, [], 'and after it stopped');
  });

  it('fault: a pid file naming a live unrelated process (the pid of a running sleep) → rollguard starts', async () => {
    // After a reboot, or in a container restarted after a crash, the recorded pid belongs to
    // another process: it holds no lock on the file, so it owns nothing.
    sleeper = spawn('sleep', ['300'], { stdio: 'ignore' });
    const pidFile = path.join(stateDir, 'rollguard.pid');
    await writeFile(pidFile, JSON.stringify({ pid: sleeper.pid, api: 'http://127.0.0.1:9' }));
    const rg = await start();
    assert.deepEqual(JSON.parse(await readFile(pidFile, 'utf8')), { pid: rg.process.pid, api: rg.apiUrl }, 'the lock file names the new daemon and its API');
    assert.equal(sleeper.exitCode, null, 'the unrelated process is left alone');
    assert.equal(await stop(rg), 0);
  });

  it('a second rollguard on the state directory is refused, naming the directory and the holder; after kill -9 of the holder a new one starts at once', async () => {
    const first = await start();
    const status = await first.cli('status', '--json');
    assert.equal(status.code, 0, `status finds the daemon through the lock file: ${status.stderr}`);
    assert.equal((JSON.parse(status.stdout) as { pid: number }).pid, first.process.pid);

    const second = await runCli(['run', '--policy', path.join(stateDir, 'policy.yaml'), '--listen', `127.0.0.1:${await freePort()}`], first.env);
    assert.equal(second.code, 1, `refused: ${second.output}`);
    const lock = path.join(stateDir, 'rollguard.pid');
    assert.ok(second.output.includes(`another rollguard (pid ${first.process.pid}) is running with state directory ${stateDir}: it holds the lock on ${lock}, API ${first.apiUrl}`), second.output);
    assert.equal((await fetch(`${first.apiUrl}/healthz`)).status, 200, 'the first keeps running');

    await stop(first, 'SIGKILL');
    const afterKill = await first.cli('status');
    assert.equal(afterKill.code, 69, 'a killed daemon is not running, though its lock file stays (unavailable)');
    const startedAt = Date.now();
    const next = await start();
    const startMs = Date.now() - startedAt;
    assert.ok(startMs < 20_000, `started in ${startMs} ms`);
    assert.equal(await stop(next), 0);
  });

  it('two rollguards started together on one state directory → exactly one runs, the other exits 1 naming the directory', async () => {
    const both = [await spawnRollguard(stateDir, policyFile), await spawnRollguard(stateDir, policyFile)];
    try {
      const first = await waitFor('one of the two to exit', () => both.find((rg) => rg.child.exitCode !== null || rg.child.signalCode !== null), 30_000, 50);
      const winner = both.find((rg) => rg !== first) as Spawned;
      assert.equal(first.child.exitCode, 1, 'the loser exits 1');
      assert.match(await first.logs(), new RegExp(`another rollguard \\(pid ${winner.child.pid}\\) is running with state directory ${stateDir}`));
      await untilStarted(winner);
      assert.equal((await fetch(`${winner.apiUrl}/healthz`)).status, 200, 'the winner runs');
      winner.child.kill('SIGTERM');
      assert.equal(await exited(winner.child), 0);
    } finally {
      for (const rg of both) rg.child.kill('SIGKILL');
    }
  });

  it('fault: SIGTERM while rollguard is starting (creating its embedded database) → it finishes starting, then stops cleanly: exit 0, the lock released, every file private', async () => {
    const fresh = path.join(root, 'fresh-state');
    const rg = await spawnRollguard(fresh, policyFile);
    try {
      // The lock is taken before the database is created and the daemon set up: a stop lands in between.
      await waitFor('the state directory claimed', async () => (await readdir(fresh).catch((): string[] => [])).includes('rollguard.pid'), 30_000, 20);
      assert.equal((await rg.logs()).includes('"msg":"rollguard started"'), false, 'still starting');
      rg.child.kill('SIGTERM');
      assert.equal(await exited(rg.child), 0, `a clean stop, not killed by the signal (signal: ${rg.child.signalCode})`);
    } finally {
      rg.child.kill('SIGKILL');
    }
    const logs = await rg.logs();
    const order = ['shutdown requested during start-up; stopping once started', 'rollguard started', '"msg":"stopped"'].map((m) => logs.indexOf(m));
    assert.ok(order.every((i, n) => i >= 0 && (n === 0 || i > (order[n - 1] as number))), `requested, started, stopped, in that order: ${order.join(', ')}`);
    assert.equal((await readdir(fresh)).includes('rollguard.pid'), false, 'the lock file is released');
    assert.deepEqual((await notPrivate(fresh)).open, [], 'every directory 0700 and every file 0600');
  });
});

