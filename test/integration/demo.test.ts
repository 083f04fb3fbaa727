import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { CLI, docker, freePort, keepOutput, runCli, startPrometheus, waitFor, type CliResult } from './harness.js';

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
function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return runCli(args, { env: { ...process.env, ...env }, timeoutMs: 240_000 });
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

  it('with --prometheus it also watches the runbook\'s 5 % error rule on the app\'s own metrics, scraped by that Prometheus', async () => {
    const port = await freePort();
    const prom = await startPrometheus([{ port, service: 'demo', metricsPath: '/metrics' }]);
    try {
      const r = await cli(['demo', '--prefix', PREFIX, '--port', String(port), '--listen', `127.0.0.1:${await freePort()}`, '--prometheus', prom.url]);
      assert.equal(r.code, 0, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
      assert.match(r.stdout, /sample \d+: .*error rate above 5%: breach/, 'the error rule judged v2 on data from Prometheus');
      assert.match(r.stdout, /recorded: deployment #\d+ rolled_back/);
      assert.deepEqual(await leftovers(), []);
    } finally {
      await prom.stop();
    }
  });

  /** Starts the demo, sends `sig` once `when` shows in its output, and resolves its exit code and output. */
  async function interrupt(sig: NodeJS.Signals, when: RegExp): Promise<{ code: number | null; out: string }> {
    const child = spawn(process.execPath, [CLI, ...(await demoArgs())], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const exited = once(child, 'exit');
    await waitFor(`the demo to print ${when}`, async () => when.test(out), 120_000);
    assert.notDeepEqual(await leftovers(), [], 'the demo created things to clean up');
    child.kill(sig);
    const [code] = (await exited) as [number | null];
    await keepOutput([`demo (${sig})`], out, '');
    return { code, out };
  }

  it('Ctrl-C in the middle stops the demo and cleans up too (exit 130)', async () => {
    const { code, out } = await interrupt('SIGINT', /v1 is up/);
    assert.equal(code, 130, out);
    assert.match(out, /SIGINT: stopping the demo and cleaning up/);
    assert.match(out, /cleaned up: \d container\(s\), 2 image\(s\) removed/);
    assert.deepEqual(await leftovers(), []);
  });

  it('Ctrl-C once the revert is decided lets it finish and still leaves nothing behind', async () => {
    const { code, out } = await interrupt('SIGINT', /revert decided/);
    // The revert and its verification take under a second here, so the signal can land after the
    // demo has shown the whole loop (exit 0, already cleaning up) or before (exit 130).
    assert.ok(code === 130 || (code === 0 && /Time to recovery/.test(out)), `exit ${code}: ${out}`);
    assert.match(out, /cleaned up: \d container\(s\), 2 image\(s\) removed/);
    assert.deepEqual(await leftovers(), []);
  });

  it('a closed terminal (SIGHUP) cleans up like Ctrl-C (exit 129)', async () => {
    const { code, out } = await interrupt('SIGHUP', /v1 is up/);
    assert.equal(code, 129, out);
    assert.match(out, /SIGHUP: stopping the demo and cleaning up/);
    assert.deepEqual(await leftovers(), []);
  });

  it('refuses, changing nothing, when a container or image tag of its names is not the demo\'s', async () => {
    // Someone's own container and image that happen to carry the demo's names (no demo label).
    const ctx = await mkdtemp(path.join(os.tmpdir(), 'rg-demo-foreign-'));
    const foreignImage = 'rg-demo-foreign:latest';
    try {
      await copyFile('/bin/busybox', path.join(ctx, 'busybox'));
      await writeFile(path.join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox", "sleep", "3600"]\n');
      const imageId = await docker('build', '-q', '-t', foreignImage, ctx);
      const containerId = await docker('create', '--name', `${PREFIX}app`, foreignImage);

      const refused = await cli(await demoArgs());
      assert.equal(refused.code, 1, refused.stdout + refused.stderr);
      assert.match(refused.stderr, /rollguard demo refused: container rg-demo-app already exists and is not the demo's \(no label io\.rollguard\.demo=rg-demo-\).*Nothing was changed; choose another name prefix with --prefix/);
      assert.doesNotMatch(refused.stdout, /building/);
      assert.equal(await docker('inspect', '-f', '{{.Id}}', `${PREFIX}app`), containerId, 'the container is left alone');

      await docker('rm', '-f', containerId);
      await docker('tag', foreignImage, `${PREFIX}app:v2`);
      const refusedTag = await cli(await demoArgs());
      assert.equal(refusedTag.code, 1, refusedTag.stdout + refusedTag.stderr);
      assert.match(refusedTag.stderr, /image rg-demo-app:v2 already exists and is not the demo's/);
      assert.equal(await docker('image', 'inspect', '-f', '{{.Id}}', `${PREFIX}app:v2`), imageId, 'the tag still names their image');
    } finally {
      await docker('rm', '-f', `${PREFIX}app`).catch(() => '');
      await docker('rmi', `${PREFIX}app:v2`).catch(() => '');
      await docker('rmi', foreignImage).catch(() => '');
      await rm(ctx, { recursive: true, force: true });
    }
    assert.deepEqual(await leftovers(), []);
  });

  it('an app that dies at start fails the demo at once with its exit code and last log lines', async () => {
    // The port is taken on 127.0.0.1, so the demo app exits with EADDRINUSE as it starts.
    const taken = net.createServer().listen(0, '127.0.0.1');
    await once(taken, 'listening');
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const started = Date.now();
      const r = await cli(['demo', '--prefix', PREFIX, '--port', String(port), '--listen', `127.0.0.1:${await freePort()}`]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /v1 \(container rg-demo-app\) did not start: it exited with code 1; its last log lines:\n.*EADDRINUSE/s);
      assert.doesNotMatch(r.stderr, /timed out/);
      assert.ok(Date.now() - started < 60_000, `noticed after ${Date.now() - started} ms`);
      const kept = /rollguard's log is kept in (\/\S+\/rollguard-demo-log-\w+)\/rollguard\.log/.exec(r.stdout);
      assert.ok(kept, r.stdout);
      await rm(kept[1] as string, { recursive: true, force: true });
    } finally {
      taken.close();
    }
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
