/**
 * The revert's failure paths on the real Docker engine, Prometheus and PostgreSQL. Everything here
 * uses containers named `rg-fail*`, images tagged `rollguard-fixture:fail-*` and fixture port 18081,
 * so it can run beside the other integration tests.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import {
  buildFixtures, dbQuery, deploy, docker, fixturePolicy, freshDatabase, readyStatus, removeContainers,
  startPrometheus, startRollguard, waitFor, type HistoryRow, type Prometheus, type Rollguard,
} from './harness.js';

const NAME = 'rg-fail';
const SERVICE = 'fail';
const PORT = 18081;
const BAD_REF = 'rollguard-fixture:v2-errors';
const FINAL = ['passed', 'rolled_back', 'rollback_failed', 'inconclusive', 'superseded'];

/** What `rollguard history --json` prints, including the fields the harness type leaves out. */
type Row = HistoryRow & { attempts: number; container: string };

/** The parts of `docker inspect` these tests read. */
interface Inspected {
  Id: string;
  Name: string;
  Image: string;
  State: { Running: boolean; StartedAt: string; Health?: { Status: string } };
  Config: { Env: string[]; Labels: Record<string, string>; Healthcheck?: Record<string, unknown> };
  HostConfig: { Tmpfs?: Record<string, string>; RestartPolicy: { Name: string; MaximumRetryCount: number } };
}

async function inspectFull(nameOrId: string): Promise<Inspected | undefined> {
  try {
    return (JSON.parse(await docker('inspect', '--type', 'container', nameOrId)) as Inspected[])[0];
  } catch {
    return undefined;
  }
}

/** Names of every container of this file, parked ones included, sorted. */
async function ownContainers(): Promise<string[]> {
  return (await docker('ps', '-a', '--format', '{{.Names}}', '--filter', `name=^/${NAME}`)).split('\n').filter(Boolean).sort();
}

/** A copy of the good fixture with its own image ID (the label makes it unique), tagged `rollguard-fixture:<tag>`. */
async function buildOwnImage(tag: `fail-${string}`): Promise<string> {
  const ctx = await mkdtemp(path.join(os.tmpdir(), 'rg-fail-image-'));
  try {
    await writeFile(path.join(ctx, 'Dockerfile'), `FROM rollguard-fixture:v1\nLABEL fail=${tag}-${process.pid}-${Date.now()}\n`);
    await docker('build', '-q', '-t', `rollguard-fixture:${tag}`, ctx);
    return docker('image', 'inspect', '-f', '{{.Id}}', `rollguard-fixture:${tag}`);
  } finally {
    await rm(ctx, { recursive: true, force: true });
  }
}

async function removeOwnImages(): Promise<void> {
  const tags = (await docker('images', '--format', '{{.Repository}}:{{.Tag}}', 'rollguard-fixture')).split('\n').filter((t) => t.startsWith('rollguard-fixture:fail-'));
  if (tags.length) await docker('rmi', '-f', ...tags).catch(() => '');
}

/** Container events for this file's containers between two Unix times (seconds, fractional). */
async function containerEvents(since: number, until: number): Promise<string[]> {
  const out = await docker('events', '--since', since.toFixed(3), '--until', until.toFixed(3), '--filter', 'type=container', '--format', '{{json .}}');
  return out.split('\n').filter(Boolean)
    .map((line) => JSON.parse(line) as { Action: string; Actor: { ID: string; Attributes: Record<string, string> } })
    .filter((e) => (e.Actor.Attributes.name ?? '').startsWith(NAME))
    .map((e) => `${e.Action} ${e.Actor.Attributes.name} ${e.Actor.ID.slice(0, 12)}`);
}

async function history(rg: Rollguard): Promise<Row[]> {
  return (await rg.history(SERVICE)) as Row[];
}

/** Waits until rollguard has adopted `imageId` as what runs for the service. */
async function waitForAdoption(rg: Rollguard, imageId: string): Promise<void> {
  await waitFor(`rollguard to adopt ${imageId.slice(7, 19)}`, async () => (await rg.status()).services[SERVICE]?.image === imageId);
}

/** Waits for the deployment of `imageId` to be recorded (each case starts with an empty history). */
async function waitForDetection(rg: Rollguard, imageId: string): Promise<Row> {
  return waitFor('the deployment to be detected', async () => {
    const newest = (await history(rg))[0];
    return newest?.to_image === imageId && newest.container === NAME ? newest : undefined;
  });
}

async function waitForFinal(rg: Rollguard, id: number, timeoutMs = 60_000): Promise<Row> {
  return waitFor(`deployment ${id} to reach a final state`, async () => {
    const row = (await history(rg)).find((d) => d.id === id);
    return row && FINAL.includes(row.state) ? row : undefined;
  }, timeoutMs);
}

describe('revert failure paths on a real Docker host (PostgreSQL store)', { timeout: 360_000 }, () => {
  let prom: Prometheus;
  let rg: Rollguard | undefined;
  let db: { url: string; drop(): Promise<void> } | undefined;
  let errorsImage: string;

  const policy = (over: Parameters<typeof fixturePolicy>[1] = {}): string =>
    fixturePolicy(prom.url, { port: PORT, service: SERVICE, container: NAME, window: '20s', ...over });

  const startCase = async (policyText: string): Promise<Rollguard> => {
    db = await freshDatabase();
    rg = await startRollguard(policyText, { databaseUrl: db.url });
    return rg;
  };

  before(async () => {
    const present = await Promise.all(['rollguard-fixture:v1', BAD_REF].map((ref) => docker('image', 'inspect', ref).then(() => true, () => false)));
    if (present.includes(false)) await buildFixtures();
    errorsImage = await docker('image', 'inspect', '-f', '{{.Id}}', BAD_REF);
    await removeContainers(NAME);
    await removeOwnImages();
    prom = await startPrometheus([{ port: PORT, service: SERVICE }]);
  });

  afterEach(async () => {
    await rg?.stop();
    rg = undefined;
    await db?.drop();
    db = undefined;
    await removeContainers(NAME);
  });

  after(async () => {
    await prom?.stop();
    await removeContainers(NAME);
    await removeOwnImages();
  });

  it('fault: the known-good image removed before a revert → the revert fails naming the image, the bad container is left untouched', { timeout: 120_000 }, async () => {
    const goodImage = await buildOwnImage('fail-good');
    await deploy(NAME, 'rollguard-fixture:fail-good', [], PORT);
    const rg = await startCase(policy());
    await waitForAdoption(rg, goodImage);

    await docker('rm', '-f', NAME);
    await docker('rmi', 'rollguard-fixture:fail-good');
    assert.equal(await docker('image', 'inspect', goodImage).then(() => true, () => false), false, 'the known-good image is really gone');

    const badId = await deploy(NAME, BAD_REF, [], PORT);
    const detected = await waitForDetection(rg, errorsImage);
    const badBefore = await inspectFull(badId);
    assert.ok(badBefore?.State.Running);
    const since = Date.now() / 1000;

    const d = await waitForFinal(rg, detected.id);
    assert.equal(d.state, 'rollback_failed', `reason: ${d.reason}`);
    const logs = await rg.logs();
    const warned = logs.indexOf('the known-good image is missing; this deployment cannot be reverted');
    assert.ok(warned >= 0 && warned < logs.indexOf('"msg":"rolling back"'), 'the missing revert target was reported when the watch began, before any revert was needed');
    assert.equal(d.to_image, errorsImage);
    assert.ok(d.reason?.includes(goodImage), `the reason names the missing image ID: ${d.reason}`);
    assert.ok(d.reason?.includes('rollguard-fixture:fail-good'), `the reason names the missing image's tag: ${d.reason}`);
    assert.match(d.reason ?? '', /no longer on this host; nothing was changed/);
    assert.equal(d.attempts, 0, 'no attempt was started');

    // A bounded negative: nothing touches the service after the failure was recorded.
    await new Promise((r) => setTimeout(r, 3_000));
    const badAfter = await inspectFull(NAME);
    assert.equal(badAfter?.Id, badId, 'the bad container still runs under the service name');
    assert.equal(badAfter?.Name, `/${NAME}`, 'not renamed');
    assert.equal(badAfter?.State.Running, true, 'not stopped');
    assert.equal(badAfter?.State.StartedAt, badBefore?.State.StartedAt, 'not restarted');
    assert.deepEqual(badAfter?.HostConfig.RestartPolicy, badBefore?.HostConfig.RestartPolicy, 'its restart policy is unchanged');
    assert.deepEqual(await ownContainers(), [NAME], 'no container was created or parked');
    assert.deepEqual(await containerEvents(since, Date.now() / 1000), [], 'Docker saw no stop, rename, update, create or start for the service');
    assert.equal(await readyStatus(PORT), 200, 'the bad version still serves');
  });

  it('fault: recovery never met after a revert → retried max_attempts times, then escalated with the known-good running and the bad one parked', { timeout: 120_000 }, async () => {
    const goodImage = await buildOwnImage('fail-retry');
    const unmeetable = policy({ maxAttempts: 2, recoveryTimeout: '3s' })
      .replace(/    recovery:\n(      - .*\n)+/, '    recovery:\n      - {signal: ready, above: 5}\n');
    assert.match(unmeetable, /recovery:\n {6}- \{signal: ready, above: 5\}\n$/, 'the policy edit applied');
    await deploy(NAME, 'rollguard-fixture:fail-retry', [], PORT);
    const rg = await startCase(unmeetable);
    await waitForAdoption(rg, goodImage);

    // From before the deploy: on a busy machine the revert may have begun by the time the detection is read.
    const since = Date.now() / 1000;
    const badId = await deploy(NAME, BAD_REF, [], PORT);
    const detected = await waitForDetection(rg, errorsImage);
    const d = await waitForFinal(rg, detected.id);
    assert.equal(d.state, 'rollback_failed', `reason: ${d.reason}`);
    assert.equal(d.attempts, 2, 'history records both attempts');
    assert.match(d.reason ?? '', /recovery criteria not met after 2 attempt\(s\)/);
    await waitFor('the escalation in the log', async () => (await rg.logs()).includes('ROLLBACK FAILED'), 10_000);

    const parkedName = `${NAME}.rollguard-bad.${d.id}`;
    const running = await inspectFull(NAME);
    assert.equal(running?.Image, goodImage, 'the known-good image runs under the service name');
    assert.equal(running?.State.Running, true);
    assert.notEqual(running?.Id, badId);
    const parked = await inspectFull(parkedName);
    assert.equal(parked?.Id, badId, `the bad container is kept as ${parkedName}`);
    assert.equal(parked?.State.Running, false, 'the bad container is stopped');
    assert.equal(parked?.HostConfig.RestartPolicy.Name, 'no', 'and cannot be restarted by the engine');
    assert.deepEqual(await ownContainers(), [NAME, parkedName].sort());

    // What Docker saw, independent of what rollguard recorded: the known-good container served
    // through the first attempt, so the second attempt kept it rather than recreating it.
    const events = await containerEvents(since, Date.now() / 1000);
    const created = events.filter((e) => e.startsWith(`create ${NAME} `) && !e.endsWith(` ${badId.slice(0, 12)}`)).map((e) => e.split(' ')[2]);
    assert.deepEqual(created, [running?.Id.slice(0, 12)], `one known-good container, kept through both attempts:\n${events.join('\n')}`);
    assert.ok(!events.some((e) => /^(kill|die|stop|destroy) /.test(e) && e.endsWith(` ${created[0]}`)), `the serving container was not stopped or removed:\n${events.join('\n')}`);
  });

  it('fault: a recovery criterion over a rate() range longer than recovery_timeout → judged once the range has passed since the restore; verified without a recreate or an escalation', { timeout: 120_000 }, async () => {
    await buildOwnImage('fail-settle');
    const text = policy({ maxAttempts: 2, recoveryTimeout: '3s' })
      .replace('      restarts:\n', `      errors_20s:\n        prometheus: sum(rate(http_requests_total{service="{{service}}",code=~"5.."}[20s])) / sum(rate(http_requests_total{service="{{service}}"}[20s]))\n      restarts:\n`)
      .replace(/    recovery:\n(      - .*\n)+/, '    recovery:\n      - {signal: errors_20s, below: 0.01}\n');
    assert.match(text, /errors_20s:\n/, 'the signal was added');
    assert.match(text, /recovery:\n {6}- \{signal: errors_20s, below: 0\.01\}\n$/, 'the recovery edit applied');
    await deploy(NAME, 'rollguard-fixture:fail-settle', [], PORT);
    const rg = await startCase(text);
    const goodImage = await docker('image', 'inspect', '-f', '{{.Id}}', 'rollguard-fixture:fail-settle');
    await waitForAdoption(rg, goodImage);

    // From before the deploy: on a busy machine the revert may have begun by the time the detection is read.
    const since = Date.now() / 1000;
    const badId = (await deploy(NAME, BAD_REF, [], PORT)).slice(0, 12);
    const detected = await waitForDetection(rg, errorsImage);
    const d = await waitForFinal(rg, detected.id, 90_000);
    assert.equal(d.state, 'rolled_back', `reason: ${d.reason}`);
    assert.equal(d.attempts, 1, 'one attempt');
    const events = await containerEvents(since, Date.now() / 1000);
    assert.equal(events.filter((e) => e.startsWith(`create ${NAME} `) && !e.endsWith(` ${badId}`)).length, 1, `the known-good container was created once:\n${events.join('\n')}`);

    const samples = await dbQuery<{ value: number | null; result: string; detail: string | null }>(db?.url ?? '', "SELECT value, result, detail FROM samples WHERE deployment_id = $1 AND stage = 'recovery' ORDER BY taken_at", [d.id]);
    const early = samples.filter((x) => x.result === 'no-data' && /reaches back before the restore/.test(x.detail ?? ''));
    assert.ok(early.some((x) => (x.value ?? 0) >= 0.01), `samples mixing in the bad version's errors were recorded and not judged: ${JSON.stringify(samples.slice(0, 3))}`);
    assert.equal(samples.at(-1)?.result, 'ok', 'the judged sample holds');
    assert.equal(await readyStatus(PORT), 200, 'the known-good version serves');
  });

  it('the recreated known-good container keeps its name, env, labels, tmpfs, restart policy and health check', { timeout: 120_000 }, async () => {
    const goodImage = await buildOwnImage('fail-spec');
    const healthCmd = `wget -q -O /dev/null http://127.0.0.1:${PORT}/cgi-bin/ready`;
    const goodId = await deploy(NAME, 'rollguard-fixture:fail-spec', [
      '-e', 'FOO=bar', '--label', 'team=payments', '--tmpfs', '/scratch', '--restart', 'unless-stopped',
      '--health-cmd', healthCmd, '--health-interval', '1s', '--health-timeout', '2s', '--health-retries', '3',
    ], PORT);
    const original = await inspectFull(goodId);
    assert.ok(original?.Config.Healthcheck, 'the original has a health check');
    const rg = await startCase(policy());
    await waitForAdoption(rg, goodImage);

    // The bad version is deployed without the extras, so they can only come from the known-good snapshot.
    const badId = await deploy(NAME, BAD_REF, [], PORT);
    const bad = await inspectFull(badId);
    assert.ok(!bad?.Config.Env.includes('FOO=bar') && !bad?.Config.Labels.team && !bad?.HostConfig.Tmpfs && !bad?.Config.Healthcheck, 'the bad container lacks the extras');
    const detected = await waitForDetection(rg, errorsImage);
    const d = await waitForFinal(rg, detected.id);
    assert.equal(d.state, 'rolled_back', `reason: ${d.reason}`);

    const recreated = await inspectFull(NAME);
    assert.ok(recreated, 'a container runs under the service name');
    assert.notEqual(recreated.Id, goodId, 'it is a new container');
    assert.notEqual(recreated.Id, badId);
    assert.equal(recreated.Name, `/${NAME}`);
    assert.equal(recreated.Image, goodImage);
    assert.equal(recreated.State.Running, true);
    assert.ok(recreated.Config.Env.includes('FOO=bar'), `env: ${recreated.Config.Env.join(' ')}`);
    assert.ok(recreated.Config.Env.includes(`PORT=${PORT}`), `env: ${recreated.Config.Env.join(' ')}`);
    assert.equal(recreated.Config.Labels.team, 'payments');
    assert.deepEqual(recreated.HostConfig.Tmpfs, { '/scratch': '' });
    assert.deepEqual(recreated.HostConfig.RestartPolicy, original.HostConfig.RestartPolicy);
    assert.equal(recreated.HostConfig.RestartPolicy.Name, 'unless-stopped');
    assert.deepEqual(recreated.Config.Healthcheck, original.Config.Healthcheck);
    assert.match(await docker('exec', NAME, 'cat', '/proc/mounts'), /^tmpfs \/scratch tmpfs /m, '/scratch is a tmpfs inside the container');
    await waitFor('the recreated container to report healthy', async () => (await inspectFull(recreated.Id))?.State.Health?.Status === 'healthy', 20_000);
    assert.deepEqual(await ownContainers(), [NAME], 'the bad container is removed once the good one recovered');
  });
});
