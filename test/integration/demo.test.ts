import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { CLI, docker, freePort, keepOutput, waitFor } from './harness.js';

const run = promisify(execFile);
const PREFIX = 'rg-demo-';
const LABEL = `label=io.rollguard.demo=${PREFIX}`;

/** Every container, image and volume the demo could have left: by its label and by its name prefix. */
async function leftovers(): Promise<string[]> {
  const lines = (s: string): string[] => s.split('\n').filter(Boolean);
  return [
    ...lines(await docker('ps', '-a', '--format', '{{.Names}}', '--filter', LABEL)),
    ...lines(await docker('ps', '-a', '--format', '{{.Names}}', '--filter', `name=^/${PREFIX}`)),
    ...lines(await docker('images', '--format', '{{.Repository}}:{{.Tag}}', '--filter', LABEL)),
    ...lines(await docker('images', '--format', '{{.Repository}}:{{.Tag}}', `${PREFIX}app`)),
    ...lines(await docker('volume', 'ls', '-q', '--filter', LABEL)),
  ];
}

async function demoArgs(): Promise<string[]> {
  return ['demo', '--prefix', PREFIX, '--port', String(await freePort()), '--listen', `127.0.0.1:${await freePort()}`];
}

/** Runs the built CLI to the end with `env` added; its output is kept like every rollguard command's. */
async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: 240_000 });
    await keepOutput(args, stdout, stderr);
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    await keepOutput(args, e.stdout, e.stderr);
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

describe('rollguard demo on the real engine', { timeout: 600_000 }, () => {
  after(async () => {
    // Only if a case failed half-way: the demo's own clean-up is what the cases assert.
    const ids = (await docker('ps', '-aq', '--filter', LABEL)).split('\n').filter(Boolean);
    if (ids.length) await docker('rm', '-f', ...ids);
    const images = (await docker('images', '-q', '--filter', LABEL)).split('\n').filter(Boolean);
    if (images.length) await docker('rmi', '-f', ...images).catch(() => '');
  });

  it('shows the deployment, the revert and the time to recovery, prints the status page, exits 0 and leaves nothing behind', async () => {
    const started = Date.now();
    const r = await cli(await demoArgs());
    const tookMs = Date.now() - started;
    process.stdout.write(`# rollguard demo took ${(tookMs / 1000).toFixed(1)} s\n`);
    assert.equal(r.code, 0, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
    assert.match(r.stdout, /rollguard adopted v1 \(\w+\) as the known-good version/);
    assert.match(r.stdout, /rollguard detected deployment #\d+: rg-demo-app:v1 → rg-demo-app:v2/);
    assert.match(r.stdout, /sample \d+: readiness failing: breach/);
    assert.match(r.stdout, /revert decided: "readiness failing" failed 3 samples in a row; putting rg-demo-app:v1 back/);
    assert.match(r.stdout, /known-good v1 restored as rg-demo-app/);
    assert.match(r.stdout, /recorded: deployment #\d+ rolled_back/);
    assert.match(r.stdout, /Time to recovery: \d+\.\d s/);
    assert.match(r.stdout, /Status page: http:\/\/127\.0\.0\.1:\d+\//);
    assert.match(r.stdout, /cleaned up: 3 container\(s\), 2 image\(s\) removed|cleaned up: \d container\(s\), 2 image\(s\) removed/);
    assert.doesNotMatch(r.stdout, /\x1b\[/, 'no terminal codes when stdout is not a terminal');
    assert.deepEqual(await leftovers(), []);
    assert.ok(tookMs < 150_000, `the demo took ${tookMs} ms`);
  });

  it('Ctrl-C in the middle stops the demo and cleans up too', async () => {
    const child = spawn(process.execPath, [CLI, ...(await demoArgs())], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const exited = once(child, 'exit');
    // In the middle: the demo's own v1 container runs.
    await waitFor('the demo to run its v1 container', async () => /v1 is up/.test(out), 120_000);
    assert.notDeepEqual(await leftovers(), [], 'the demo created things to clean up');
    child.kill('SIGINT');
    const [code] = await exited;
    await keepOutput(['demo (SIGINT)'], out, '');
    assert.equal(code, 130, out);
    assert.match(out, /SIGINT: stopping the demo and cleaning up/);
    assert.match(out, /cleaned up: \d container\(s\), 2 image\(s\) removed/);
    assert.deepEqual(await leftovers(), []);
  });
});

describe('without a reachable Docker engine, commands say so plainly', { timeout: 120_000 }, () => {
  const plain = (stderr: string, socket: string): void => {
    assert.match(stderr, new RegExp(`cannot reach the Docker engine at unix://${socket.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(DOCKER_HOST=unix://`));
    assert.match(stderr, /Check that the engine is running \(systemctl status docker\) and that your user can use the socket \(member of the docker group/);
    assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
  };

  it('a socket that does not exist (ENOENT): run and demo name it', async () => {
    const socket = '/tmp/nonexistent-rg-demo.sock';
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rg-demo-state-'));
    try {
      const env = { DOCKER_HOST: `unix://${socket}` };
      const runResult = await cli(['run', '--policy', 'config/policy.example.yaml', '--state-dir', dir, '--listen', `127.0.0.1:${await freePort()}`], env);
      assert.equal(runResult.code, 69, 'EX_UNAVAILABLE');
      plain(runResult.stderr, socket);
      assert.match(runResult.stderr, /connect ENOENT/);
      const demoResult = await cli(['demo', '--prefix', PREFIX], env);
      assert.equal(demoResult.code, 69, 'EX_UNAVAILABLE');
      plain(demoResult.stderr, socket);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a socket file nobody listens on (ECONNREFUSED): run and demo name it', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rg-demo-sock-'));
    const socket = path.join(dir, 'docker.sock');
    // A process that listened and was killed leaves its socket file behind, with nobody listening.
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(socket)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await once(child.stdout, 'data');
    child.kill('SIGKILL');
    await once(child, 'exit');
    try {
      const env = { DOCKER_HOST: `unix://${socket}` };
      const runResult = await cli(['run', '--policy', 'config/policy.example.yaml', '--state-dir', path.join(dir, 'state'), '--listen', `127.0.0.1:${await freePort()}`], env);
      assert.equal(runResult.code, 69, 'EX_UNAVAILABLE');
      plain(runResult.stderr, socket);
      assert.match(runResult.stderr, /connect ECONNREFUSED/);
      const demoResult = await cli(['demo', '--prefix', PREFIX], env);
      assert.equal(demoResult.code, 69, 'EX_UNAVAILABLE');
      plain(demoResult.stderr, socket);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
