import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { startRollguard, waitFor, type HistoryRow, type Rollguard } from './harness.js';

/**
 * Code-only deployments (runbook Option 1) end to end: a real git work tree, a real application
 * process serving its readiness from the checked-out code, restarted by the policy's command. A
 * new HEAD is a deployment; one that survives its window is known-good; a bad one is reverted with
 * `git revert` (history kept), the application restarted and the recovery verified; the revert
 * commit is not a deployment; a dirty work tree is refused and left exactly as found.
 */

const run = promisify(execFile);
const PORT = 18098;
const SERVICE = 'gitapp';
const TOKEN = 'rg-test-secret-git-token-7c21';

/** The application: serves /ready and /version from app.json as it was when the process started. */
const SERVER = `const http = require('node:http');
const app = require('./app.json');
http.createServer((req, res) => {
  if (req.url === '/ready') { res.writeHead(app.ready ? 200 : 503); return res.end(app.ready ? 'ready' : 'not ready'); }
  if (req.url === '/version') { res.writeHead(200); return res.end(app.version + ' ' + process.pid); }
  res.writeHead(404); res.end();
}).listen(${PORT}, '127.0.0.1');
`;

/** The restart command: stops the running process (pid file), starts the checked-out code, waits until it listens. */
const RESTART = `const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const [repo, pidFile, logFile] = process.argv.slice(2);
try { process.kill(Number(fs.readFileSync(pidFile, 'utf8')), 'SIGKILL'); } catch {}
const started = Date.now();
const free = () => new Promise((r) => { const s = net.connect(${PORT}, '127.0.0.1'); s.on('connect', () => { s.destroy(); r(false); }); s.on('error', () => r(true)); });
(async () => {
  while (!(await free())) { if (Date.now() - started > 10000) process.exit(3); await new Promise((r) => setTimeout(r, 50)); }
  const out = fs.openSync(logFile, 'a');
  const child = spawn(process.execPath, ['server.js'], { cwd: repo, detached: true, stdio: ['ignore', out, out] });
  fs.writeFileSync(pidFile, String(child.pid));
  child.unref();
  while (await free()) { if (Date.now() - started > 10000) process.exit(4); await new Promise((r) => setTimeout(r, 50)); }
  console.log('restarted as pid ' + child.pid);
})();
`;

describe('code-only deployments on a real git work tree', { timeout: 240_000 }, () => {
  let tmp: string;
  let repo: string;
  let restart: string[];
  let rg: Rollguard;
  let policyText: string;

  const git = async (...args: string[]): Promise<string> => (await run('git', ['-C', repo, ...args])).stdout.trim();
  const version = async (): Promise<string> => (await (await fetch(`http://127.0.0.1:${PORT}/version`)).text()).trim();

  /** Commits a version of the app and restarts it, as a deploy pipeline on the host does. */
  async function deployVersion(name: string, ready: boolean): Promise<string> {
    await writeFile(path.join(repo, 'app.json'), `${JSON.stringify({ version: name, ready })}\n`);
    await git('commit', '-qam', `release ${name}`);
    await run(restart[0] as string, restart.slice(1));
    return git('rev-parse', 'HEAD');
  }

  async function deployment(sha: string, state: string): Promise<HistoryRow> {
    return waitFor(`the deployment of ${sha.slice(0, 12)} ${state}`, async () => (await rg.history(SERVICE)).find((d) => d.to_image === sha && d.state === state), 90_000, 500);
  }

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'rggit-'));
    repo = path.join(tmp, 'app');
    await run('git', ['init', '-q', '-b', 'main', repo]);
    await git('config', 'user.name', 'Deploy Pipeline');
    await git('config', 'user.email', 'deploy@example.invalid');
    await writeFile(path.join(repo, 'server.js'), SERVER);
    await writeFile(path.join(repo, 'README'), 'the app\n');
    await writeFile(path.join(tmp, 'restart.js'), RESTART);
    restart = [process.execPath, path.join(tmp, 'restart.js'), repo, path.join(tmp, 'app.pid'), path.join(tmp, 'app.log')];
    await writeFile(path.join(repo, 'app.json'), `${JSON.stringify({ version: 'v1', ready: true })}\n`);
    await git('add', '.');
    await git('commit', '-qm', 'release v1');
    await run(restart[0] as string, restart.slice(1));
    const policy = `version: 1
defaults:
  window: 8s
  interval: 1s
  recovery_timeout: 15s
services:
  ${SERVICE}:
    match: {git: {path: ${repo}, branch: main, poll: 500ms}}
    restart: ${JSON.stringify(restart)}
    restart_timeout: 20s
    signals:
      ready: {http: {url: "http://127.0.0.1:${PORT}/ready", timeout: 1s}}
    rules:
      - {name: readiness failing, signal: ready, below: 1, for: 3, severity: P0, action: rollback}
    recovery:
      - {signal: ready, above: 0}
`;
    policyText = policy;
    rg = await startRollguard(policy, { env: { ROLLGUARD_API_TOKEN: TOKEN } });
    const v1 = await git('rev-parse', 'HEAD');
    await waitFor('adoption of v1', async () => (await rg.status()).services[SERVICE]?.image === v1);
  });

  after(async () => {
    await rg?.stop();
    const pid = await readFile(path.join(tmp, 'app.pid'), 'utf8').catch(() => '');
    if (pid) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch { /* gone */ }
    }
    await rm(tmp, { recursive: true, force: true });
  });

  it('a new HEAD announced through the deploy API is a deployment, and surviving its window makes it known-good', async () => {
    const v2 = await deployVersion('v2', true);
    const res = await fetch(`${rg.apiUrl}/api/v1/deployments`, {
      method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ service: SERVICE, commit: v2 }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    const body = (await res.json()) as { running: string; deployment: number | null };
    assert.equal(body.running, v2);
    assert.ok(body.deployment, 'the announcement answers with the deployment watching it');
    const d = await deployment(v2, 'passed');
    assert.equal(d.id, body.deployment);
    assert.equal(d.to_ref, v2.slice(0, 12));
    const wrong = await fetch(`${rg.apiUrl}/api/v1/deployments`, {
      method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ service: SERVICE, commit: 'abcdef12' }),
    });
    assert.equal(wrong.status, 409, 'a commit that is not HEAD: the deploy did not land');
  });

  it('a bad commit is reverted with git revert (history kept), the application restarted and its recovery verified; the revert commit is no deployment', async () => {
    const v2 = await git('rev-parse', 'HEAD');
    const v2Tree = await git('rev-parse', 'HEAD^{tree}');
    const v3 = await deployVersion('v3', false);
    const d = await deployment(v3, 'rolled_back');
    const head = await git('rev-parse', 'HEAD');
    assert.notEqual(head, v2, 'a revert commit, not a reset');
    assert.equal(await git('rev-parse', 'HEAD^{tree}'), v2Tree, 'the code is the known-good version');
    assert.equal(await git('rev-parse', 'HEAD~1'), v3, 'history kept: the bad commit stays under the revert');
    assert.match(await git('log', '-1', '--format=%an <%ae> %s'), /^rollguard <rollguard@localhost> Revert "release v3"/);
    assert.deepEqual(JSON.parse(await readFile(path.join(repo, 'app.json'), 'utf8')), { version: 'v2', ready: true });
    assert.match(await version(), /^v2 \d+$/, 'the restart command started the known-good code');
    const r = await rg.cli('history', '--deployment', String(d.id), '--json');
    const steps = (JSON.parse(r.stdout) as { steps: { step: string; ok: boolean; detail: string | null }[] }).steps;
    const putBack = steps.find((s) => s.step === 'put-back');
    assert.ok(putBack?.ok, JSON.stringify(steps));
    assert.match(putBack.detail ?? '', /git revert --no-edit/);
    assert.match(putBack.detail ?? '', /restarted as pid|exit 0/);
    assert.ok(steps.some((s) => s.step === 'verify' && s.ok));
    // Looked at again at once (the deploy API's announcement answers once HEAD is handled): the revert commit is no deployment of its own.
    const again = await fetch(`${rg.apiUrl}/api/v1/deployments`, {
      method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ service: SERVICE, commit: head }),
    });
    assert.equal(again.status, 200, await again.clone().text());
    assert.equal(((await again.json()) as { deployment: number | null }).deployment, null, 'no watch of the revert commit');
    const rows = await rg.history(SERVICE);
    assert.ok(!rows.some((x) => x.to_image === head), JSON.stringify(rows.map((x) => [x.id, x.to_ref, x.state])));
    assert.equal((await rg.status()).services[SERVICE]?.image, head);
  });

  it('refuses on a dirty work tree, leaving it exactly as found, and escalates', async () => {
    const v4 = await deployVersion('v4', false);
    // Someone edits a tracked file on the host before the revert.
    await writeFile(path.join(repo, 'README'), 'hot-patched on the server\n');
    const statusBefore = await git('status', '--porcelain');
    const d = await deployment(v4, 'rollback_failed');
    assert.match(d.reason ?? '', /README/);
    assert.match(d.reason ?? '', /uncommitted|dirty|local changes/i);
    assert.equal(await git('rev-parse', 'HEAD'), v4, 'nothing was committed');
    assert.equal(await git('status', '--porcelain'), statusBefore);
    assert.equal(await readFile(path.join(repo, 'README'), 'utf8'), 'hot-patched on the server\n');
  });

  it('rollback --to a commit by hand puts back that commit\'s code the same way, and it becomes known-good', async () => {
    await git('checkout', '--', 'README');
    const v1 = await git('rev-list', '--max-parents=0', 'HEAD');
    const r = await rg.cli('rollback', SERVICE, '--to', v1, '--yes', '--json', '--reason', 'back to the first release');
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.equal(await git('rev-parse', 'HEAD^{tree}'), await git('rev-parse', `${v1}^{tree}`));
    assert.match(await version(), /^v1 \d+$/);
    assert.deepEqual(JSON.parse(await readFile(path.join(repo, 'app.json'), 'utf8')), { version: 'v1', ready: true });
  });

  it('a commit made while rollguard was stopped is a deployment when it starts again', async () => {
    await rg.stop();
    const v5 = await deployVersion('v5', true);
    rg = await startRollguard(policyText, { stateDir: rg.stateDir, env: { ROLLGUARD_API_TOKEN: TOKEN } });
    const d = await deployment(v5, 'passed');
    assert.ok(d.from_image, 'compared with the version known before');
  });
});
