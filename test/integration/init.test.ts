/**
 * `rollguard init` against the real engine: a container with a HEALTHCHECK that probes a URL, one
 * that only exposes its port, and a Compose project on host networking (with a one-off beside it)
 * become a starter policy that `rollguard policy check` accepts. Each guessed readiness URL is
 * requested once: the HEALTHCHECK's answers 200 and reverts; the fixture's `/` (busybox httpd
 * serving a directory without an index) answers 404, so the port guesses only notify.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { EXIT } from '../../src/cli/exit-codes.js';
import { ROOT, docker, removeContainers, runCli, waitFor, type CliResult } from './harness.js';

const run = promisify(execFile);
const PREFIX = 'rg-init-';
const PROJECT = 'rg-init-compose';
const HC_PORT = 18801;
const EXPOSED_PORT = 18802;
const COMPOSE_PORT = 18803;

const rollguard = (args: string[], env: NodeJS.ProcessEnv = process.env): Promise<CliResult> => runCli(args, { env });

interface RuleYaml { name: string; signal: string; action: string; severity: string }
interface ServiceYaml {
  match: Record<string, unknown>;
  signals: Record<string, { http?: { url: string }; container?: string }>;
  rules: RuleYaml[];
  recovery?: { signal: string }[];
}

/** The action of a service's readiness rule, and whether its recovery waits for readiness. */
function readiness(s: ServiceYaml): { action?: string; recovers: boolean } {
  return { action: s.rules.find((r) => r.signal === 'ready')?.action, recovers: Boolean(s.recovery?.some((r) => r.signal === 'ready')) };
}

/** The generated service whose match is `match`. */
function serviceMatching(policy: { services: Record<string, ServiceYaml> }, match: Record<string, unknown>): [string, ServiceYaml] {
  const found = Object.entries(policy.services).find(([, s]) => JSON.stringify(s.match) === JSON.stringify(match));
  assert.ok(found, `a service matching ${JSON.stringify(match)}; got ${Object.keys(policy.services).join(', ')}`);
  return found;
}

describe('rollguard init on a real Docker host', { timeout: 180_000 }, () => {
  let dir: string;
  const composeFile = (): string => path.join(dir, 'docker-compose.yml');
  const compose = (...args: string[]): Promise<{ stdout: string }> => run('docker-compose', ['-p', PROJECT, '-f', composeFile(), ...args], { maxBuffer: 4 * 1024 * 1024 });

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), PREFIX));
    // The fixture service (busybox httpd FROM scratch), and the same with a HEALTHCHECK that probes its readiness URL.
    const ctx = path.join(dir, 'image');
    await cp(path.join(ROOT, 'test/fixtures/app'), ctx, { recursive: true });
    await cp('/bin/busybox', path.join(ctx, 'busybox'));
    await docker('build', '-q', '-t', `${PREFIX}app:base`, ctx);
    await writeFile(path.join(dir, 'Dockerfile.hc'), [
      `FROM ${PREFIX}app:base`,
      `ENV PORT=${HC_PORT}`,
      'HEALTHCHECK --interval=1s --timeout=1s CMD wget -q -O /dev/null http://127.0.0.1:${PORT}/cgi-bin/ready || exit 1',
      '',
    ].join('\n'));
    await docker('build', '-q', '-t', `${PREFIX}app:hc`, '-f', path.join(dir, 'Dockerfile.hc'), dir);

    await removeContainers(PREFIX);
    await docker('run', '-d', '--name', `${PREFIX}hc`, '--network', 'host', `${PREFIX}app:hc`);
    await docker('run', '-d', '--name', `${PREFIX}exposed`, '--network', 'host', '--expose', String(EXPOSED_PORT), '-e', `PORT=${EXPOSED_PORT}`, `${PREFIX}app:base`);
    await writeFile(composeFile(), [
      "version: '2.4'",
      'services:',
      '  web:',
      `    image: ${PREFIX}app:base`,
      '    network_mode: host',
      `    environment: {PORT: "${COMPOSE_PORT}"}`,
      '',
    ].join('\n'));
    await compose('up', '-d');
    // A one-off of the service (`docker-compose run`, as a migration step would): never a service of
    // its own. Debian's docker-compose 1.29 links a one-off to the running service, which host
    // networking refuses, so it is made with the labels Compose gives one.
    await docker('run', '-d', '--name', `${PROJECT}_web_run_1`, '--network', 'host',
      '--label', `com.docker.compose.project=${PROJECT}`, '--label', 'com.docker.compose.service=web',
      '--label', 'com.docker.compose.oneoff=True', '--label', 'com.docker.compose.container-number=1',
      `${PREFIX}app:base`, 'sleep', '300');
    // The port guesses' premise: the fixture's / answers 404 (no index in the directory httpd serves).
    await waitFor('the exposed container and the Compose service to answer 404 on /', async () => {
      const statuses = await Promise.all([EXPOSED_PORT, COMPOSE_PORT].map((p) => fetch(`http://127.0.0.1:${p}/`).then((r) => r.status, () => 0)));
      return statuses.every((s) => s === 404);
    }, 30_000);
    await waitFor('the HEALTHCHECK container to be healthy', async () => (await docker('inspect', '-f', '{{.State.Health.Status}}', `${PREFIX}hc`)) === 'healthy', 30_000);
  });

  after(async () => {
    await compose('down', '-v', '--remove-orphans').catch(() => undefined);
    await removeContainers(PREFIX);
    await docker('rmi', `${PREFIX}app:hc`, `${PREFIX}app:base`).catch(() => '');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('writes a policy for the running containers that policy check accepts: HEALTHCHECK URL, exposed port, Compose service', async () => {
    const out = path.join(dir, 'tmp', 'x.yaml');
    await run('mkdir', ['-p', path.dirname(out)]);
    const init = await rollguard(['init', '--output', out]);
    assert.equal(init.code, 0, init.stderr);
    assert.match(init.stdout, new RegExp(`wrote ${out}: \\d+ service\\(s\\)`));

    const check = await rollguard(['policy', 'check', out]);
    assert.equal(check.code, 0, `policy check refused it:\n${check.stderr}\n---\n${await readFile(out, 'utf8')}`);

    const text = await readFile(out, 'utf8');
    const policy = parse(text) as { services: Record<string, ServiceYaml> };
    const [, hc] = serviceMatching(policy, { container: `${PREFIX}hc` });
    assert.equal(hc.signals.ready?.http?.url, `http://127.0.0.1:${HC_PORT}/cgi-bin/ready`, 'the URL its HEALTHCHECK probes');
    assert.equal(hc.signals.health?.container, 'health', 'its HEALTHCHECK as a signal');
    assert.deepEqual(readiness(hc), { action: 'rollback', recovers: true }, 'it answered 200 when init probed it');

    const [exposedKey, exposed] = serviceMatching(policy, { container: `${PREFIX}exposed` });
    assert.equal(exposed.signals.ready?.http?.url, `http://127.0.0.1:${EXPOSED_PORT}/`);
    assert.equal(exposed.signals.health, undefined);
    assert.match(text, new RegExp(`guessed from EXPOSE ${EXPOSED_PORT}: FIX THE PATH`));
    assert.deepEqual(readiness(exposed), { action: 'notify', recovers: false }, 'its / answered 404: a wrong guess must not revert a healthy deploy');
    assert.ok(!exposed.rules.some((r) => r.action === 'rollback'), 'no rule of it reverts');
    assert.match(text, new RegExp(`# Notify only, not verified: GET http://127\\.0\\.0\\.1:${EXPOSED_PORT}/ → HTTP 404, expected 200 now; fix the path, then make it severity: P0, action: rollback`));

    const [webKey, web] = serviceMatching(policy, { compose: { project: PROJECT, service: 'web' } });
    assert.equal(web.signals.ready?.http?.url, `http://127.0.0.1:${COMPOSE_PORT}/`, 'host networking: its PORT variable');
    assert.deepEqual(readiness(web), { action: 'notify', recovers: false });
    assert.match(init.stdout, new RegExp(`only notify until fixed .*: (?=.*${exposedKey})(?=.*${webKey})`));
    assert.match(text, new RegExp(`# Compose project "${PROJECT}", service "web": 1 replica here \\(${PROJECT}_web_1\\)`));
    assert.ok(!Object.keys(policy.services).some((k) => k !== webKey && k.startsWith(`${PROJECT}_web_run`)), 'no service for the one-off');
    assert.match(text, new RegExp(`# Not included: ${PROJECT}_web_run_\\w+, a Compose one-off container`));
  });

  it('does not overwrite an existing file without --force; --stdout prints the policy and nothing else', async () => {
    const out = path.join(dir, 'existing.yaml');
    await writeFile(out, 'mine\n');
    const refused = await rollguard(['init', '--output', out]);
    assert.equal(refused.code, EXIT.failure);
    assert.match(refused.stderr, /existing\.yaml exists; not overwritten\. Use --force/);
    assert.equal(await readFile(out, 'utf8'), 'mine\n');

    const forced = await rollguard(['init', '--output', out, '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(await readFile(out, 'utf8'), /^version: 1$/m);

    const printed = await rollguard(['init', '--stdout']);
    assert.equal(printed.code, 0, printed.stderr);
    const policy = parse(printed.stdout) as { services: Record<string, ServiceYaml> };
    serviceMatching(policy, { container: `${PREFIX}hc` });
    assert.match(printed.stderr, /^printed: \d+ service\(s\)/, 'the summary goes to stderr');
  });

  it('without a reachable Docker engine it says where it looked, and exits 69 (unavailable)', async () => {
    const out = path.join(dir, 'unreachable.yaml');
    const r = await rollguard(['init', '--output', out], { ...process.env, DOCKER_HOST: `unix://${path.join(dir, 'no-docker.sock')}` });
    assert.equal(r.code, EXIT.unavailable);
    assert.match(r.stderr, /cannot reach the Docker engine at unix:\/\/.*no-docker\.sock/);
    await assert.rejects(readFile(out), 'nothing written');
  });
});
