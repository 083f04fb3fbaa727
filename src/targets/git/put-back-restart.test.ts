import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import pino from 'pino';
import type { ServicePolicy } from '../../config/policy.js';
import { RevertError } from '../target.js';
import { GitTarget } from './target.js';
import { GIT_ENV, gitService, policyOf, TestRepo } from './test-repo.fixture.js';

// The restart command GitTarget.putBack() runs once the code is put back, on real repositories.

const log = pino({ level: 'silent' });
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanup.splice(0).map((f) => f()));
});

async function repo(): Promise<TestRepo> {
  const r = await TestRepo.create({ 'app.txt': 'v1\n' }, 'good');
  cleanup.push(() => r.remove());
  return r;
}

async function scratch(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rollguard-git-restart-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** The target (with that environment) watching the service's work tree, and the known-good snapshot of HEAD now. */
async function setUp(service: ServicePolicy, env: NodeJS.ProcessEnv = GIT_ENV): Promise<{ t: GitTarget; known: unknown }> {
  const t = new GitTarget(log, () => [service.match], { env });
  const [head] = await t.running(policyOf(service), service);
  assert.ok(head);
  return { t, known: t.snapshot([head]) };
}

/** A command (node, no shell) running `script`. */
const node = (script: string, ...args: string[]): string[] => [process.execPath, '-e', script, ...args];

/** A restart command that appends what app.txt holds and the directory it ran in to `out`, then exits with `code`. */
function restartCommand(out: string, code = 0): string[] {
  return node([
    `const fs = require('fs');`,
    `fs.appendFileSync(${JSON.stringify(out)}, fs.readFileSync('app.txt', 'utf8').trim() + ' in ' + process.cwd() + '\\n');`,
    `console.log('restarting web'); console.error('${code ? 'boom: port 8080 in use' : 'ok'}'); process.exit(${code});`,
  ].join(' '));
}

describe('GitTarget.putBack() restart command', () => {
  it('runs after the code was put back, in the work tree', async () => {
    const r = await repo();
    const out = path.join(await scratch(), 'restarts');
    const command = restartCommand(out);
    const service = gitService(r.dir, {}, { restart: { command, timeoutMs: 10_000 } });
    const { t, known } = await setUp(service);
    await r.commit({ 'app.txt': 'v2\n' }, 'bad');
    const put = await t.putBack(service, known, { force: false });
    assert.ok(put.detail.endsWith(`; ran ${command.join(' ')}: exit 0`), put.detail);
    assert.equal(await readFile(out, 'utf8'), `v1 in ${r.dir}\n`);

    assert.equal((await t.putBack(service, known, { force: false })).how, 'already');
    assert.equal(await readFile(out, 'utf8'), `v1 in ${r.dir}\n`, 'nothing to put back and not forced: no restart');
    assert.match((await t.putBack(service, known, { force: true })).detail, /already has the known-good code.*; ran .*: exit 0$/);
    assert.equal(await readFile(out, 'utf8'), `v1 in ${r.dir}\nv1 in ${r.dir}\n`, 'a forced attempt restarts again');
  });

  it('runs when a resumed revert finds the code put back already: the crash may have come before the restart', async () => {
    const r = await repo();
    const out = path.join(await scratch(), 'restarts');
    const service = gitService(r.dir, {}, { restart: { command: restartCommand(out), timeoutMs: 10_000 } });
    const { t, known } = await setUp(service);
    await r.commit({ 'app.txt': 'v2\n' }, 'bad');
    // The revert commit made before the crash, without its restart.
    await r.git('revert', '--no-edit', 'HEAD');
    const head = await r.head();
    const put = await t.putBack(service, known, { force: false, resume: true });
    assert.equal(put.how, 'already');
    assert.match(put.detail, /already has the known-good code.*; ran .*: exit 0$/);
    assert.equal(await readFile(out, 'utf8'), `v1 in ${r.dir}\n`);
    assert.equal(await r.head(), head, 'git was not changed');
  });

  it('reports a failed restart with its output, keeping the code put back', async () => {
    const r = await repo();
    const good = await r.head();
    const out = path.join(await scratch(), 'restarts');
    const service = gitService(r.dir, {}, { restart: { command: restartCommand(out, 3), timeoutMs: 10_000 } });
    const { t, known } = await setUp(service);
    await r.commit({ 'app.txt': 'v2\n' }, 'bad');
    await assert.rejects(t.putBack(service, known, { force: false }), (err: unknown) => {
      assert.ok(!(err instanceof RevertError), 'not a refusal: the code was changed');
      assert.match((err as Error).message, /^git revert --no-edit .*; the known-good code was put back, but the restart command .* exited with 3; its output ends with: restarting web\nboom: port 8080 in use$/);
      return true;
    });
    assert.equal(await r.tree('HEAD'), await r.tree(good));
    assert.equal(await readFile(out, 'utf8'), `v1 in ${r.dir}\n`);
    await assert.rejects(t.putBack(service, known, { force: true }), /already has the known-good code.*the restart command .* exited with 3/);
    assert.equal(await readFile(out, 'utf8'), `v1 in ${r.dir}\nv1 in ${r.dir}\n`);
  });

  it('stops a restart command that outlives its time limit', async () => {
    const r = await repo();
    const service = gitService(r.dir, { mode: 'checkout' }, { restart: { command: node('setTimeout(() => {}, 30000)'), timeoutMs: 200 } });
    const { t, known } = await setUp(service);
    await r.commit({ 'app.txt': 'v2\n' }, 'bad');
    await assert.rejects(t.putBack(service, known, { force: false }), /took longer than 200 ms and was stopped without output/);
  });
});

describe('GitTarget.putBack() restart command and secrets', () => {
  it('runs without rollguard\'s own secrets in its environment, with the rest of it and the service and commit', async () => {
    const r = await repo();
    const good = await r.head();
    const out = path.join(await scratch(), 'env.json');
    const env: NodeJS.ProcessEnv = {
      ...GIT_ENV,
      ROLLGUARD_API_TOKEN: 'api-token-secret',
      ROLLGUARD_API_TOKEN_FILE: '/run/secrets/rollguard-token',
      DATABASE_URL: 'postgres://rollguard:db-secret@127.0.0.1/rollguard',
      HOME: '/home/deploy',
      XDG_RUNTIME_DIR: '/run/user/1000',
    };
    const command = node(`require('fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(process.env))`);
    const service = gitService(r.dir, { mode: 'checkout' }, { restart: { command, timeoutMs: 10_000 } });
    const { t, known } = await setUp(service, env);
    await r.commit({ 'app.txt': 'v2\n' }, 'bad');
    await t.putBack(service, known, { force: false });
    const seen = JSON.parse(await readFile(out, 'utf8')) as Record<string, string>;
    for (const name of ['ROLLGUARD_API_TOKEN', 'ROLLGUARD_API_TOKEN_FILE', 'DATABASE_URL']) assert.equal(seen[name], undefined, `${name} is not passed on`);
    assert.equal(seen.PATH, env.PATH);
    assert.equal(seen.HOME, '/home/deploy');
    assert.equal(seen.XDG_RUNTIME_DIR, '/run/user/1000');
    assert.equal(seen.ROLLGUARD_SERVICE, 'web');
    assert.equal(seen.ROLLGUARD_COMMIT, good);
  });

  it('redacts credentials in URLs from what the command printed and from its argv', async () => {
    const r = await repo();
    const printed = 'fetching https://deploy:hunter2@git.example.test/app.git?token=tok-abc123&ref=main';
    const failing = node(`console.error(${JSON.stringify(printed)}); process.exit(1)`, 'postgres://app:pw-in-argv@127.0.0.1/app');
    const service = gitService(r.dir, { mode: 'checkout' }, { restart: { command: failing, timeoutMs: 10_000 } });
    const { t, known } = await setUp(service);
    await r.commit({ 'app.txt': 'v2\n' }, 'bad');
    await assert.rejects(t.putBack(service, known, { force: false }), (err: unknown) => {
      const message = (err as Error).message;
      assert.match(message, /exited with 1; its output ends with: fetching https:\/\/git\.example\.test\/app\.git\?token=redacted&ref=main$/);
      assert.match(message, /postgres:\/\/127\.0\.0\.1\/app/);
      for (const secret of ['hunter2', 'tok-abc123', 'pw-in-argv']) assert.ok(!message.includes(secret), `${secret} in: ${message}`);
      return true;
    });

    const passing = node('process.exit(0)', 'https://ci:argv-secret@deploy.example.test/hook');
    const ok = gitService(r.dir, { mode: 'checkout' }, { restart: { command: passing, timeoutMs: 10_000 } });
    const put = await t.putBack(ok, known, { force: true });
    assert.ok(put.detail.endsWith('https://deploy.example.test/hook: exit 0'), put.detail);
    assert.ok(!put.detail.includes('argv-secret'), put.detail);
  });
});
