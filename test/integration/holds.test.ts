import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  buildFixtures, deploy, fixturePolicy, freshDatabase, inspect, removeContainers, startPrometheus, startRollguard,
  waitFor, type FixtureImages, type HistoryRow, type Prometheus, type Rollguard,
} from './harness.js';

const NAME = 'rg-hold';
const PORT = 18088;
const SERVICE = 'hold';
const TOKEN = 'rg-test-secret-api-token-4f9a';

describe('fix-forward holds and the migration freeze on a real Docker host', { timeout: 300_000 }, () => {
  let images: FixtureImages;
  let prom: Prometheus;
  let db: { url: string; drop(): Promise<void> };
  let rg: Rollguard | undefined;

  const policyText = (url: string, window = '60s', extra = ''): string =>
    fixturePolicy(url, { port: PORT, service: SERVICE, container: NAME, window }).replace('    signals:\n', `${extra}    signals:\n`);

  before(async () => {
    images = await buildFixtures();
    await removeContainers(NAME);
    prom = await startPrometheus([{ port: PORT, service: SERVICE }]);
    await deploy(NAME, 'rollguard-fixture:v1', [], PORT);
    await prom.waitForData();
  });

  after(async () => {
    await rg?.stop();
    await prom?.stop();
    await removeContainers(NAME);
    await db?.drop();
  });

  async function fresh(text: string, env: NodeJS.ProcessEnv = { ROLLGUARD_API_TOKEN: TOKEN }): Promise<Rollguard> {
    await rg?.stop();
    await db?.drop();
    db = await freshDatabase();
    await deploy(NAME, 'rollguard-fixture:v1', [], PORT);
    rg = await startRollguard(text, { databaseUrl: db.url, env });
    const started = rg;
    await waitFor('adoption', async () => (await started.status()).services[SERVICE]?.image === images.good);
    return started;
  }

  async function newest(daemon: Rollguard): Promise<HistoryRow | undefined> {
    return (await daemon.history(SERVICE))[0];
  }

  it('state-changing calls need the bearer token; without a configured token they are disabled', async () => {
    const daemon = await fresh(policyText(prom.url), {});
    const off = await fetch(`${daemon.apiUrl}/api/v1/holds`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: '{}' });
    assert.equal(off.status, 403);
    const withToken = await fresh(policyText(prom.url));
    const wrong = await fetch(`${withToken.apiUrl}/api/v1/holds`, { method: 'POST', headers: { authorization: 'Bearer nope' }, body: '{}' });
    assert.equal(wrong.status, 401);
    const bad = await fetch(`${withToken.apiUrl}/api/v1/holds`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: '{"service": 1}' });
    assert.equal(bad.status, 400);
    const idle = await withToken.cli('hold', SERVICE, '--for', '1m', '--reason', 'x');
    assert.equal(idle.code, 1);
    assert.match(idle.stderr, /409: no deployment of hold is being watched; nothing to hold/);
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const { CLI } = await import('./harness.js');
    const env = { ...withToken.env };
    delete env.ROLLGUARD_API_TOKEN;
    const noToken = await promisify(execFile)(process.execPath, [CLI, 'hold', SERVICE, '--for', '1m', '--reason', 'x'], { env }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    assert.equal(noToken.code, 78, 'a missing token is a setting to fix (configuration)');
    assert.match(noToken.stderr, /set ROLLGUARD_API_TOKEN or ROLLGUARD_API_TOKEN_FILE/);
    assert.equal((await fetch(`${withToken.apiUrl}/metrics`)).status, 200, '/metrics stays open');
  });

  it('a hold pauses the revert until its deadline; if the rule still breaches then, the revert proceeds', async () => {
    const daemon = await fresh(policyText(prom.url));
    await deploy(NAME, 'rollguard-fixture:v2-unready', [], PORT);
    await waitFor('the bad deploy to be watched', async () => (await newest(daemon))?.state === 'watching');
    const env = { ...daemon.env, ROLLGUARD_API_TOKEN: TOKEN };
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const { CLI } = await import('./harness.js');
    const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'hold', SERVICE, '--for', '8s', '--reason', 'fix forward: config patch in review'], { env });
    assert.match(stdout, /paused until/);
    const held = Date.now();
    const status = await daemon.status();
    assert.equal((status.services[SERVICE] as unknown as { hold: { kind: string; reason: string } }).hold.kind, 'hold');
    // Readiness fails from the start: without the hold the revert would come after 3 samples.
    await new Promise((r) => setTimeout(r, 5_000));
    assert.equal((await newest(daemon))?.state, 'watching', 'no revert during the hold');
    assert.equal((await inspect(NAME))?.Image, images.unready);
    const d = await waitFor('the revert after the hold', async () => {
      const n = await newest(daemon);
      return n && n.state !== 'watching' && n.state !== 'rolling_back' ? n : undefined;
    }, 40_000);
    assert.equal(d.state, 'rolled_back', `reason: ${d.reason}`);
    assert.ok(Date.parse(d.decided_at ?? '') >= held + 7_000, 'decided only after the 8 s hold');
    assert.match(await daemon.logs(), /hold placed: automatic reverts paused/);
  });

  it('a deployment labelled rollguard.migrations=true is not reverted; it pages and waits until released', async () => {
    const daemon = await fresh(policyText(prom.url));
    await deploy(NAME, 'rollguard-fixture:v2-unready', ['--label', 'rollguard.migrations=true'], PORT);
    await waitFor('the freeze', async () => {
      const s = await daemon.status();
      return (s.services[SERVICE] as unknown as { hold: { kind: string } | null }).hold?.kind === 'freeze';
    }, 30_000);
    await new Promise((r) => setTimeout(r, 3_000));
    assert.equal((await newest(daemon))?.state, 'watching');
    assert.equal((await inspect(NAME))?.Image, images.unready, 'frozen: not reverted');
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const { CLI } = await import('./harness.js');
    const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'release', SERVICE], { env: { ...daemon.env, ROLLGUARD_API_TOKEN: TOKEN } });
    assert.match(stdout, /freeze of deployment \d+ released/);
    const d = await waitFor('the revert after the release', async () => {
      const n = await newest(daemon);
      return n && n.state !== 'watching' && n.state !== 'rolling_back' ? n : undefined;
    }, 40_000);
    assert.equal(d.state, 'rolled_back', `reason: ${d.reason}`);
    assert.equal((await inspect(NAME))?.Image, images.good);
  });

  it('the deploy API can mark the next deployment of an image as carrying migrations', async () => {
    const daemon = await fresh(policyText(prom.url));
    const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    const unknown = await fetch(`${daemon.apiUrl}/api/v1/migrations`, { method: 'POST', headers, body: JSON.stringify({ service: 'nope', image: 'x' }) });
    assert.equal(unknown.status, 404);
    const res = await fetch(`${daemon.apiUrl}/api/v1/migrations`, { method: 'POST', headers, body: JSON.stringify({ service: SERVICE, image: 'rollguard-fixture:v2-unready' }) });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { service: SERVICE, image: 'rollguard-fixture:v2-unready', applied: 'next' });
    await deploy(NAME, 'rollguard-fixture:v2-unready', [], PORT); // no label: the API said so
    await waitFor('the freeze', async () => {
      const s = await daemon.status();
      return (s.services[SERVICE] as unknown as { hold: { kind: string } | null }).hold?.kind === 'freeze';
    }, 30_000);
    assert.equal((await newest(daemon))?.state, 'watching');
    assert.equal((await inspect(NAME))?.Image, images.unready, 'frozen: not reverted');
  });

  it('on_migrations: revert reverts a migration deployment like any other', async () => {
    const daemon = await fresh(policyText(prom.url, '60s', '    on_migrations: revert\n'));
    await deploy(NAME, 'rollguard-fixture:v2-unready', ['--label', 'rollguard.migrations=true'], PORT);
    const d = await waitFor('the revert', async () => {
      const n = await newest(daemon);
      return n && n.state !== 'watching' && n.state !== 'rolling_back' ? n : undefined;
    }, 40_000);
    assert.equal(d.state, 'rolled_back', `reason: ${d.reason}`);
  });
});
