import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openStore } from '../store/open-store.js';
import type { Store } from '../store/store.js';
import { parkedName } from '../targets/parked-names.js';
import { ERROR_RULE, log, rig as makeRig, waitFor, type RigOptions } from './daemon.fixture.js';

// The watch loop end to end — detect, sample, breach, revert, resume — over a FakeTarget and the
// embedded SQLite store, which the file shares; each test has its own service name, which keeps
// the tests' deployments and known-good versions apart.

describe('Daemon watch loop over a fake target', () => {
  let dir: string;
  let store: Store;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'rollguard-daemon-test-'));
    store = await openStore({ stateDir: dir, log });
  });

  after(async () => {
    await store?.sql.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A fake target and providers for service `name`; `start()` starts a daemon over them, stopped when the test ends. */

  const rig = (t: TestContext, name: string, opts: RigOptions = {}) => makeRig(t, store, name, opts);

  it('start() adopts the running replica as known-good and records no deployment', async (t) => {
    const r = rig(t, 'adopt');
    const running = r.target.deploy('adopt', 'app:1');
    await r.start();

    const known = await store.getKnownGood('adopt');
    assert.ok(known, 'a known-good version is recorded');
    assert.equal(known.image_id, 'app:1');
    assert.equal(known.deployment_id, null);
    assert.deepEqual(r.target.knownReplicas(known.spec), [{ name: 'adopt', version: running.version, spec: running.spec }]);
    assert.deepEqual(await r.deployments(), []);
  });

  it('a deploy whose error rate stays low passes its window and becomes known-good', async (t) => {
    const r = rig(t, 'pass', { window: '300ms' });
    r.target.deploy('pass', 'app:1');
    await r.start();
    r.prometheus.set('pass', 0.01);

    const deployed = r.target.deploy('pass', 'app:2');
    const d = await r.finished();

    assert.equal(d.state, 'passed');
    assert.deepEqual([d.from_image, d.to_image, d.container_id], ['app:1', 'app:2', deployed.id]);
    const known = await store.getKnownGood('pass');
    assert.equal(known?.image_id, 'app:2');
    assert.equal(known?.deployment_id, d.id);
    assert.deepEqual(r.target.history, [], 'nothing reverted');
  });

  it('a deploy whose error rate breaches for `for` samples is reverted: the bad replica is parked then removed and the known-good image runs under its name', async (t) => {
    const r = rig(t, 'breach');
    const good = r.target.deploy('breach', 'app:1');
    await r.start();
    r.prometheus.set('breach', 0.5);

    const bad = r.target.deploy('breach', 'app:2');
    const d = await r.finished();

    assert.equal(d.state, 'rolled_back');
    assert.equal(d.phase, 'done');
    const parked = `breach.rollguard-bad.${d.id}`;
    assert.deepEqual(r.target.history, [`park ${bad.id} as ${parked}`, 'create replica-3 as breach from app:1', `remove ${bad.id}`]);
    assert.deepEqual(await r.running(), ['breach app:1']);
    assert.equal((await r.target.replica('breach'))?.version, good.version, 'the known-good settings are back');
    assert.equal(await r.target.replica(parked), undefined, 'the parked replica is gone');
    const decided = (await store.listDecisions(d.id)).filter((x) => x.kind === 'rollback');
    assert.deepEqual(decided.map((x) => x.rule), [ERROR_RULE]);
    assert.deepEqual((await store.listActions(d.id)).map((a) => `${a.kind} ${a.ok}`), ['check-image true', 'stop-bad true', 'start-good true', 'verify true', 'remove-bad true']);

    await r.daemon.settled();
    assert.equal((await r.deployments()).length, 1, "the revert's own start is not a deployment");
    assert.equal((await store.getKnownGood('breach'))?.image_id, 'app:1');
  });

  it('a deployed replica already gone when the revert begins does not stop the known-good one from starting', async (t) => {
    const r = rig(t, 'gone');
    r.target.deploy('gone', 'app:1');
    await r.start();
    r.prometheus.set('gone', 0.5);
    const bad = r.target.deploy('gone', 'app:2');
    await waitFor('the deployment recorded', async () => (await store.latestDeployment('gone'))?.container_id === bad.id);
    await r.target.remove(bad.id); // stopped and removed by someone else
    const d = await r.finished();
    assert.equal(d.state, 'rolled_back', `reason: ${d.reason}`);
    assert.deepEqual(await r.running(), ['gone app:1'], 'the known-good version serves');
    assert.deepEqual((await store.listActions(d.id)).map((a) => a.kind), ['check-image', 'bad-gone', 'start-good', 'verify']);
  });

  it('after a revert the loop resumes watching: the next deploy is detected and judged', async (t) => {
    const r = rig(t, 'again', { window: '300ms' });
    r.target.deploy('again', 'app:1');
    await r.start();
    r.prometheus.set('again', 0.5);
    r.target.deploy('again', 'app:2');
    assert.equal((await r.finished()).state, 'rolled_back');

    r.prometheus.set('again', 0.01);
    r.target.deploy('again', 'app:3');
    const d = await waitFor('the second deployment to end', async () => {
      const latest = await r.finished();
      return latest.to_image === 'app:3' ? latest : undefined;
    });
    assert.equal(d.state, 'passed');
    assert.equal(d.from_image, 'app:1', 'judged against the version the revert put back');
    assert.equal((await store.getKnownGood('again'))?.image_id, 'app:3');
  });

  it('a watch open when the daemon stops is resumed at the next start() from its recorded samples, and reverted on a breach', async (t) => {
    const r = rig(t, 'rewatch');
    r.target.deploy('rewatch', 'app:1');
    await r.start();
    r.prometheus.set('rewatch', 0.01);
    r.target.deploy('rewatch', 'app:2');
    await waitFor('two samples of the deployment', async () => {
      const d = await store.latestDeployment('rewatch');
      return d && (await store.listSamples(d.id)).length >= 4 ? d : undefined; // 2 signals a tick
    });
    await r.stop();

    const second = await r.start();
    const watch = (second.status().services.rewatch as { watch: { samples: number } | null }).watch;
    assert.ok(watch && watch.samples >= 2, `the watch goes on from the recorded samples (${JSON.stringify(watch)})`);
    r.prometheus.set('rewatch', 0.5);
    const d = await r.finished();

    assert.equal(d.state, 'rolled_back');
    assert.equal((await r.deployments()).length, 1, 'still one deployment');
    assert.deepEqual(await r.running(), ['rewatch app:1']);
  });

  it('two replicas replaced one by one are one deployment, and both are reverted', async (t) => {
    const r = rig(t, 'pair', { labels: true });
    const labels = { app: 'pair' };
    r.target.deploy('pair-1', 'app:1', { labels });
    r.target.deploy('pair-2', 'app:1', { labels });
    await r.start();
    const known = await store.getKnownGood('pair');
    assert.deepEqual(r.target.knownReplicas(known?.spec).map((k) => k.name), ['pair-1', 'pair-2']);

    r.prometheus.set('pair', 0.01);
    r.target.deploy('pair-1', 'app:2', { labels });
    await r.daemon.settled();
    r.target.deploy('pair-2', 'app:2', { labels });
    await r.daemon.settled();
    r.prometheus.set('pair', 0.5);
    const d = await r.finished();

    assert.equal(d.state, 'rolled_back');
    assert.equal((await r.deployments()).length, 1, 'one deployment');
    assert.deepEqual(await r.running(), ['pair-1 app:1', 'pair-2 app:1']);
    assert.deepEqual(r.target.counts, { created: 2, parked: 2, restored: 0, removed: 2 });
  });

  it('a same-image deploy with changed settings is a deployment', async (t) => {
    const r = rig(t, 'reconf', { window: '300ms' });
    r.target.deploy('reconf', 'app:1', { settings: { env: ['MODE=a'] } });
    await r.start();
    r.prometheus.set('reconf', 0.01);

    const changed = r.target.deploy('reconf', 'app:1', { settings: { env: ['MODE=b'] } });
    const d = await r.finished();

    assert.equal(d.state, 'passed');
    assert.deepEqual([d.from_image, d.to_image], ['app:1', 'app:1']);
    const known = await store.getKnownGood('reconf');
    assert.deepEqual(r.target.knownReplicas(known?.spec).map((k) => k.version), [changed.version], 'the new settings are known-good');
  });

  it('a redeploy of the same image and settings (a recreate) is not a deployment', async (t) => {
    const r = rig(t, 'recreate');
    r.target.deploy('recreate', 'app:1', { settings: { env: ['MODE=a'] } });
    await r.start();

    r.target.deploy('recreate', 'app:1', { settings: { env: ['MODE=a'] } });
    await r.daemon.settled();

    assert.deepEqual(await r.deployments(), []);
  });

  it("a crashing replica is reverted by the built-in 'replicas not serving' rule though the policy has only a Prometheus rule", async (t) => {
    const r = rig(t, 'crash');
    r.target.deploy('crash', 'app:1');
    await r.start();
    r.prometheus.set('crash', 0);
    r.containers.crashing.add('app:2');

    r.target.deploy('crash', 'app:2');
    const d = await r.finished();

    assert.equal(d.state, 'rolled_back');
    const decided = (await store.listDecisions(d.id)).filter((x) => x.kind === 'rollback');
    assert.deepEqual(decided.map((x) => x.rule), ['replicas not serving']);
    assert.deepEqual(await r.running(), ['crash app:1']);
  });

  it('resume: a revert left rolling_back in phase parked is finished at the next start(), creating one known-good replica', async (t) => {
    const r = rig(t, 'resume');
    // What a daemon killed after parking leaves behind: the decision, the phase, and the parked replica.
    const good = r.target.deploy('resume', 'app:1');
    await store.setKnownGood({ service: 'resume', target: r.target.kind, image_id: 'app:1', image_ref: 'app:1', container_name: 'resume', spec: r.target.snapshot([good]), deployment_id: null, since: new Date() });
    const bad = r.target.deploy('resume', 'app:2');
    const now = new Date();
    const d = await store.insertDeployment({
      service: 'resume', target: r.target.kind, container_id: bad.id, container_name: 'resume', from_image: 'app:1', from_ref: 'app:1', to_image: 'app:2', to_ref: 'app:2',
      dry_run: false, started_at: bad.startedAt, detected_at: now, window_ends_at: new Date(now.getTime() + 60_000), state: 'rolling_back',
    });
    await store.updateDeployment(d.id, { phase: 'parked', attempts: 1, decided_at: now, reason: 'error rate above 5%' });
    await store.insertDecision({ deployment_id: d.id, decided_at: now, kind: 'rollback', rule: ERROR_RULE, severity: 'P0', detail: 'error rate above 5%' });
    await r.target.park(bad, parkedName('resume', d.id), 0);
    r.target.resetCounts();

    await r.start();

    const after = await store.getDeployment(d.id);
    assert.equal(after?.state, 'rolled_back');
    assert.equal(after?.phase, 'done');
    assert.deepEqual(r.target.counts, { created: 1, parked: 0, restored: 0, removed: 1 });
    assert.deepEqual(await r.running(), ['resume app:1']);
    await r.daemon.settled();
    assert.equal((await r.deployments()).length, 1, "the revert's own start is not a deployment");
  });

  it('the known-good image missing: the deployment ends rollback_failed and nothing is changed', async (t) => {
    const r = rig(t, 'noimage');
    r.target.deploy('noimage', 'app:1');
    await r.start();
    r.target.removeImage('app:1');
    r.prometheus.set('noimage', 0.5);

    const bad = r.target.deploy('noimage', 'app:2');
    const d = await r.finished();

    assert.equal(d.state, 'rollback_failed');
    assert.match(d.reason ?? '', /known-good image app:1 \(app:1\) is no longer on this host; nothing was changed/);
    assert.deepEqual(r.target.history, []);
    assert.deepEqual(await r.running(), ['noimage app:2']);
    assert.equal((await r.target.replica('noimage'))?.id, bad.id);
    const kinds = (await store.listDecisions(d.id)).map((x) => x.kind);
    assert.ok(kinds.includes('no_revert_target'), `the missing image is reported when the watch begins (decisions: ${kinds.join(', ')})`);
  });

  it('a known-good replica that cannot be started: the bad one is put back and the deployment ends rollback_failed', async (t) => {
    const r = rig(t, 'nostart');
    r.target.deploy('nostart', 'app:1');
    await r.start();
    r.target.failStart = 'port is already allocated';
    r.prometheus.set('nostart', 0.5);

    const bad = r.target.deploy('nostart', 'app:2');
    const d = await r.finished();

    assert.equal(d.state, 'rollback_failed');
    assert.match(d.reason ?? '', /could not be started in 2 attempt\(s\) \(cannot start nostart from app:1: [^)]*\); the deployed version was put back/);
    assert.deepEqual(r.target.counts, { created: 0, parked: 1, restored: 1, removed: 0 });
    assert.deepEqual(await r.running(), ['nostart app:2']);
    assert.equal((await r.target.replica('nostart'))?.id, bad.id, 'the deployed replica itself, renamed back');
  });

  it('status() counts the running replicas of the current image while two replicas are replaced one by one', async (t) => {
    const r = rig(t, 'count', { labels: true });
    const labels = { app: 'count' };
    r.target.deploy('count-1', 'app:1', { labels });
    r.target.deploy('count-2', 'app:1', { labels });
    await r.start();
    r.prometheus.set('count', 0.01);

    r.target.deploy('count-1', 'app:2', { labels });
    r.target.deploy('count-2', 'app:2', { labels });
    await r.daemon.settled();

    assert.deepEqual(await r.running(), ['count-1 app:2', 'count-2 app:2']);
    assert.equal((r.daemon.status().services.count as { replicas: number }).replicas, 2);
  });

  it('a replica of the deployed version added during its watch (a scale-up) is watched too: its crash is reverted', async (t) => {
    const r = rig(t, 'scale', { labels: true, window: '600ms' });
    const labels = { app: 'scale' };
    r.target.deploy('scale-1', 'app:1', { labels });
    await r.start();
    r.prometheus.set('scale', 0.01);

    r.target.deploy('scale-1', 'app:2', { labels });
    await r.daemon.settled();
    const added = r.target.deploy('scale-2', 'app:2', { labels });
    r.containers.crashing.add(added.id);
    const d = await r.finished();

    assert.equal((await r.deployments()).length, 1, 'one deployment');
    assert.equal(d.state, 'rolled_back');
  });

  it('a recovery criterion over a range is judged only once its range no longer reaches back before the restore: no recreate, no escalation', async (t) => {
    // recovery_timeout is 1 s; the criterion reads [2s] and mixes in the bad version's errors for
    // 1.5 s after the restore — longer than the timeout, shorter than range + margin.
    const r = rig(t, 'settle', { recovery: { query: 'sum(rate(http_errors_total{service="{{service}}"}[2s]))', below: 0.01 } });
    r.target.deploy('settle', 'app:1');
    await r.start();
    r.prometheus.bySignal.set('recovered', async () => {
      const good = await r.target.replica('settle');
      return good?.image === 'app:1' && Date.now() - good.startedAt.getTime() >= 1_500 ? 0 : 0.5;
    });
    r.prometheus.set('settle', 0.5);

    r.target.deploy('settle', 'app:2');
    const d = await r.finished();

    assert.equal(d.state, 'rolled_back', `reason: ${d.reason}`);
    assert.equal(d.attempts, 1);
    assert.equal(r.target.counts.created, 1, 'the restored replica was started once');
    const samples = (await store.listSamples(d.id)).filter((x) => x.stage === 'recovery');
    const early = samples.filter((x) => x.result === 'no-data' && /reaches back before the restore/.test(x.detail ?? ''));
    assert.ok(early.some((x) => x.value === 0.5), 'the samples mixing in the bad version were recorded and not judged');
    assert.equal(samples.at(-1)?.result, 'ok');
    const verify = (await store.listActions(d.id)).find((a) => a.kind === 'verify');
    const started = (await store.listActions(d.id)).find((a) => a.kind === 'start-good');
    assert.ok(verify && started && verify.finished_at.getTime() - started.finished_at.getTime() >= 2_000, 'verified no earlier than the range after the restore');
  });

  it('recovery not met: a known-good replica that serves is kept for the next attempt, not recreated', async (t) => {
    const r = rig(t, 'keep', { recovery: { query: 'errors_now{service="{{service}}"}', below: 0.01 } });
    r.target.deploy('keep', 'app:1');
    await r.start();
    r.prometheus.bySignal.set('recovered', () => 0.5);
    r.prometheus.set('keep', 0.5);

    r.target.deploy('keep', 'app:2');
    const d = await r.finished();

    assert.equal(d.state, 'rollback_failed');
    assert.equal(d.attempts, 2);
    assert.match(d.reason ?? '', /recovery criteria not met after 2 attempt\(s\); the known-good container is running/);
    assert.equal(r.target.counts.created, 1, 'created once, kept for the second attempt');
    assert.deepEqual((await store.listActions(d.id)).map((a) => `${a.attempt} ${a.kind}`), ['0 check-image', '0 stop-bad', '1 start-good', '1 verify', '2 keep-serving', '2 verify']);
    assert.deepEqual(await r.running(), ['keep app:1']);
  });

  it('recovery not met: a known-good replica that does not serve is recreated for the next attempt', async (t) => {
    const r = rig(t, 'recreate', { recovery: { query: 'errors_now{service="{{service}}"}', below: 0.01 } });
    r.target.deploy('recreate', 'app:1');
    await r.start();
    r.prometheus.bySignal.set('recovered', () => 0.5);
    r.prometheus.set('recreate', 0.5);
    r.containers.crashing.add('app:1');

    r.target.deploy('recreate', 'app:2');
    const d = await r.finished();

    assert.equal(d.state, 'rollback_failed');
    assert.equal(r.target.counts.created, 2, 'a new replica for the second attempt');
    assert.deepEqual((await store.listActions(d.id)).map((a) => `${a.attempt} ${a.kind}`), ['0 check-image', '0 stop-bad', '1 start-good', '1 verify', '2 remove-failed', '2 start-good', '2 verify']);
  });

  it('leadership lapsing mid-revert stops it before the next change, recording nothing more, for the leader to finish', async (t) => {
    let lapsed = false;
    const r = rig(t, 'lapse', { leads: () => !lapsed });
    r.target.deploy('lapse', 'app:1');
    await r.start();
    const park = r.target.park.bind(r.target);
    r.target.park = async (...args) => {
      const out = await park(...args);
      lapsed = true; // paused past the lease right after this step
      return out;
    };
    r.prometheus.set('lapse', 0.5);

    const bad = r.target.deploy('lapse', 'app:2');
    await waitFor('the bad replica parked', async () => (lapsed ? true : undefined));
    await new Promise((resolve) => setTimeout(resolve, 300));
    await r.daemon.settled();

    const d = await store.latestDeployment('lapse');
    assert.equal(d?.state, 'rolling_back', 'left as recorded for the leader');
    assert.equal(d?.phase, 'parked');
    assert.deepEqual(r.target.history, [`park ${bad.id} as lapse.rollguard-bad.${d?.id}`], 'nothing started or removed after the lapse');
    assert.deepEqual((await store.listActions(d?.id ?? 0)).map((a) => a.kind), ['check-image', 'stop-bad']);
  });

  it("another service's replica parked under the same deployment number is not taken into this service's revert", async (t) => {
    const r = rig(t, 'own');
    r.target.deploy('own', 'app:1');
    await r.start();
    const max = (await store.sql.query<{ max: number | null }>('SELECT max(id) AS max FROM deployments'))[0]?.max;
    // Set aside by another rollguard database on this host (its own deployment numbers).
    const strangers = Array.from({ length: 5 }, (_, i) => r.target.deploy(`stranger.rollguard-bad.${(max ?? 0) + 1 + i}`, 'other:1'));
    r.prometheus.set('own', 0.5);

    const bad = r.target.deploy('own', 'app:2');
    const d = await r.finished();

    assert.equal(d.state, 'rolled_back', `reason: ${d.reason}`);
    assert.ok(strangers.some((x) => x.name === `stranger.rollguard-bad.${d.id}`), 'a stranger carries this deployment number');
    for (const x of strangers) assert.equal((await r.target.replica(x.id))?.name, x.name, `${x.name} is left alone`);
    assert.deepEqual(r.target.history.filter((h) => h.includes('stranger')), [], 'nothing was done to them');
    assert.equal(r.target.history[0], `park ${bad.id} as own.rollguard-bad.${d.id}`);
  });
  it('status() shows a hold only while it is in force on the deployment watched now: not once expired, not once another deployment is watched', async (t) => {
    type Svc = { hold: { until: Date | null } | null; watch: { deployment: number } | null };
    const r = rig(t, 'holdshow', { window: '3s' });
    r.target.deploy('holdshow', 'app:1');
    await r.start();
    r.prometheus.set('holdshow', 0.01);
    r.target.deploy('holdshow', 'app:2');
    const svc = (): Svc => r.daemon.status().services.holdshow as Svc;
    await waitFor('the deployment watched', async () => svc().watch ?? undefined);

    await r.daemon.hold('holdshow', 100, 'short');
    assert.ok(svc().hold, 'a hold in force is shown');
    await waitFor('the expired hold no longer shown', async () => (svc().hold === null ? true : undefined));

    const first = await r.daemon.hold('holdshow', 60_000, 'fixing forward');
    assert.equal(svc().hold?.until?.getTime(), first.until?.getTime());
    // The next deployment supersedes the held one: that hold pauses nothing now.
    r.target.deploy('holdshow', 'app:3');
    const next = await waitFor('the next deployment watched', async () => {
      const w = svc().watch;
      return w && w.deployment !== first.deployment_id ? w : undefined;
    });
    assert.ok(next);
    assert.equal(svc().hold, null, "a hold of a deployment no longer watched is not shown");
  });

  it('status() reports the revert running (deployment, phase, attempts) while the watch has ended, and nothing once it is done', async (t) => {
    type Svc = { revert: { deployment: number; to_ref: string; phase: string; attempts: number } | null; watch: unknown };
    const r = rig(t, 'revshow');
    r.target.deploy('revshow', 'app:1');
    await r.start();
    let letGo!: () => void;
    const gate = new Promise<void>((resolve) => { letGo = resolve; });
    let parking = false;
    const park = r.target.park.bind(r.target);
    r.target.park = async (...args) => {
      parking = true;
      await gate;
      return park(...args);
    };
    r.prometheus.set('revshow', 0.5);
    r.target.deploy('revshow', 'app:2');
    await waitFor('the revert parking the bad replica', async () => (parking ? true : undefined));

    const svc = (): Svc => r.daemon.status().services.revshow as Svc;
    const d = await store.latestDeployment('revshow');
    assert.equal(svc().watch, null, 'the watch ended when the revert was decided');
    assert.deepEqual(svc().revert, { deployment: d?.id, to_ref: 'app:2', from_ref: 'app:1', phase: 'decided', attempts: 0 });

    letGo();
    assert.equal((await r.finished()).state, 'rolled_back');
    await r.daemon.settled();
    assert.equal(svc().revert, null);
  });
});
