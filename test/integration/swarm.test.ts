/**
 * Swarm services on a real swarm: the machine's engine as a single-node swarm (advertising
 * 127.0.0.1, services with `--network host`, each task serving on a port from its slot), Debian's
 * Prometheus scraping each slot, and rollguard with PostgreSQL. Then a second engine joined as a
 * worker (swarm-worker.ts), so a task on another node is watched and reverted. Services
 * `rg-swarm-*`, ports 18961-18962 and 18971-18972.
 */
import assert from 'node:assert/strict';
import os from 'node:os';
import { after, before, beforeEach, describe, it } from 'node:test';
import {
  buildFixtures, dbQuery, docker, freshDatabase, pagerReceiver, startPrometheus, startRollguard, testSecret, waitFor,
  type HistoryRow, type Prometheus, type Rollguard,
} from './harness.js';
import { startSwarmWorker, swarmWorkerUnavailable, type SwarmWorker } from './swarm-worker.js';

const SERVICE = 'rg-swarm-web';
/** Each task serves on 1896<slot>: 18961 and 18962. */
const PORT_PREFIX = '1896';
const FINAL = ['passed', 'rolled_back', 'rollback_failed', 'inconclusive', 'superseded'];
const V1 = 'rollguard-fixture:v1';
const V11 = 'rollguard-fixture:v1.1';
const ERRORS = 'rollguard-fixture:v2-errors';
const UNREADY = 'rollguard-fixture:v2-unready';

/**
 * Swarm's own rollback as operators set it: the first failed task of an update rolls it back. Swarm
 * reacts to tasks that fail — here a version whose process exits after `seconds` (a task failing
 * its HEALTHCHECK never reaches running, so no version of it is served or watched at all).
 */
const swarmRollback = (seconds: number): string[] => ['--env-add', `CRASH_AFTER=${seconds}`, '--update-failure-action', 'rollback', '--update-monitor', '20s', '--update-max-failure-ratio', '0'];

function policy(prom: string, over: { readyFor?: number; errorsFor?: number; service?: string; portPrefix?: string; window?: string; prometheus?: boolean } = {}): string {
  const service = over.service ?? SERVICE;
  const prefix = over.portPrefix ?? PORT_PREFIX;
  const withProm = over.prometheus ?? true;
  return `version: 1
${withProm ? `prometheus:\n  url: ${prom}\n  timeout: 2s\n` : ''}defaults:
  window: ${over.window ?? '10s'}
  interval: 1s
  max_attempts: 2
  stop_timeout: 1s
  recovery_timeout: 20s
  min_data_ratio: 0.5
services:
  web:
    match:
      swarm_service: ${service}
    signals:
${withProm ? `      error_rate:
        prometheus: |
          sum(rate(http_requests_total{service="${service}",slot="{{slot}}",code=~"5.."}[3s]))
            / sum(rate(http_requests_total{service="${service}",slot="{{slot}}"}[3s]))
` : ''}      ready:
        http:
          url: http://{{node_addr}}:${prefix}{{slot}}/cgi-bin/ready
          timeout: 1s
          json: {status: ready}
    rules:
${withProm ? `      - {name: error rate above 5%, signal: error_rate, above: 0.05, for: ${over.errorsFor ?? 3}, severity: P0, action: rollback}
` : ''}      - {name: readiness failing, signal: ready, below: 1, for: ${over.readyFor ?? 3}, severity: P0, action: rollback}
    recovery:
${withProm ? '      - {signal: error_rate, below: 0.01}\n' : ''}      - {signal: ready, above: 0}
`;
}

interface Task { slot: number; image: string; node: string; state: string }

/** The running tasks of a service (desired and current state running). */
async function runningTasks(service: string): Promise<Task[]> {
  const out = await docker('service', 'ps', service, '--filter', 'desired-state=running', '--format', '{{.Name}}|{{.Image}}|{{.Node}}|{{.CurrentState}}');
  return out.split('\n').filter(Boolean).map((line) => {
    const [name = '', image = '', node = '', state = ''] = line.split('|');
    return { slot: Number(name.split('.').pop()), image, node, state };
  }).filter((t) => t.state.startsWith('Running'));
}

/** Waits until exactly `count` tasks run, every one on `image`. */
function allOn(service: string, image: string, count = 2): Promise<Task[]> {
  return waitFor(`every task of ${service} on ${image}`, async () => {
    const tasks = await runningTasks(service);
    return tasks.length === count && tasks.every((t) => t.image === image) ? tasks : undefined;
  }, 60_000, 500);
}

async function ensureSwarm(): Promise<void> {
  const state = await docker('info', '--format', '{{.Swarm.LocalNodeState}}');
  if (state !== 'active') await docker('swarm', 'init', '--advertise-addr', '127.0.0.1');
}

/** `docker service create` of a 2-replica fixture service, each task on `<prefix><slot>`. */
async function createService(name: string, image: string, prefix: string, extra: string[] = []): Promise<void> {
  await docker('service', 'rm', name).catch(() => '');
  await waitFor(`${name} gone`, async () => (await docker('ps', '-q', '--filter', `label=com.docker.swarm.service.name=${name}`)) === '', 30_000, 300);
  await docker('service', 'create', '-d', '--name', name, '--replicas', '2', '--network', 'host', '--no-resolve-image',
    '--stop-grace-period', '1s', '--update-delay', '0s', '--update-parallelism', '1', '--rollback-parallelism', '0', '--env', `PORT=${prefix}{{.Task.Slot}}`, ...extra, image);
}

function update(name: string, image: string, extra: string[] = []): Promise<string> {
  return docker('service', 'update', '-d', '--no-resolve-image', '--image', image, ...extra, name);
}

describe('Swarm services on a real single-node swarm', { timeout: 900_000 }, () => {
  let prom: Prometheus;
  let db: { url: string; drop(): Promise<void> };
  let rg: Rollguard | undefined;
  const query = <T>(text: string, params: unknown[] = []): Promise<T[]> => dbQuery<T>(db.url, text, params);

  /** The newest deployment after `afterId` once final. */
  const settled = (afterId: number, timeoutMs = 90_000): Promise<HistoryRow> => waitFor('the deployment to settle', async () => {
    const newest = (await rg?.history('web'))?.[0];
    return newest && newest.id > afterId && FINAL.includes(newest.state) ? newest : undefined;
  }, timeoutMs);
  const newestId = async (): Promise<number> => (await rg?.history('web'))?.[0]?.id ?? 0;
  const actions = (id: number): Promise<{ kind: string; ok: boolean; detail: string; attempt: number }[]> =>
    query('SELECT kind, ok, detail, attempt FROM actions WHERE deployment_id = $1 ORDER BY id', [id]);
  const start = async (text: string, env: NodeJS.ProcessEnv = {}, stateDir?: string): Promise<Rollguard> => {
    rg = await startRollguard(text, { databaseUrl: db.url, env, stateDir });
    return rg;
  };
  const adopted = (image: string): Promise<unknown> => waitFor(`rollguard to know ${image} as known-good`, async () =>
    (await query<{ image_ref: string }>('SELECT image_ref FROM known_good WHERE service = $1', ['web']))[0]?.image_ref === image, 30_000, 300);

  before(async () => {
    await buildFixtures();
    await ensureSwarm();
    prom = await startPrometheus(['1', '2'].map((slot) => ({ port: Number(`${PORT_PREFIX}${slot}`), service: SERVICE, labels: { slot } })));
  });

  beforeEach(async () => {
    await rg?.stop('SIGKILL');
    rg = undefined;
    await db?.drop();
    db = await freshDatabase();
    await createService(SERVICE, V1, PORT_PREFIX);
    await allOn(SERVICE, V1);
    await prom.waitForData(`sum(rate(http_requests_total{service="${SERVICE}"}[3s])) by (slot)`);
  });

  after(async () => {
    await rg?.stop('SIGKILL');
    await docker('service', 'rm', SERVICE).catch(() => '');
    await prom?.stop();
    await db?.drop();
  });

  it('a bad update of a 2-replica service (20 % errors, seen per task) is reverted with Swarm\'s rollback: every task runs the known-good image again', async () => {
    await start(policy(prom.url));
    await adopted(V1);
    await update(SERVICE, ERRORS);
    const d = await settled(0);
    assert.equal(d.state, 'rolled_back', `${d.state}: ${d.reason}`);
    assert.match(d.reason ?? '', /error rate above 5%/);
    assert.equal(d.to_ref, ERRORS);
    assert.deepEqual((await allOn(SERVICE, V1)).map((t) => t.slot).sort(), [1, 2]);
    const steps = await actions(d.id);
    const put = steps.find((a) => a.kind === 'put-back');
    assert.ok(put?.ok, `a put-back step: ${JSON.stringify(steps)}`);
    assert.match(put.detail, /Swarm rollback of rg-swarm-web to its previous spec, the known-good one/);
    assert.ok(steps.some((a) => a.kind === 'converge' && a.ok && /all 2 task\(s\) of rg-swarm-web run the known-good version/.test(a.detail)), JSON.stringify(steps));
    assert.ok(steps.some((a) => a.kind === 'verify' && a.ok), JSON.stringify(steps));
    const updates = await query<{ detail: string }>('SELECT detail FROM decisions WHERE deployment_id = $1 AND kind = $2', [d.id, 'update_state']);
    assert.ok(updates.some((u) => /^Swarm's update: (updating|completed)/.test(u.detail)), `Swarm's update state is recorded with the samples: ${JSON.stringify(updates)}`);
    const samples = await query<{ detail: string | null }>("SELECT detail FROM samples WHERE deployment_id = $1 AND signal = 'error_rate' AND result = 'breach'", [d.id]);
    assert.ok(samples.length >= 3 && samples.every((s) => /^slot [12]/.test(s.detail ?? '')), `each breach names the worst task's slot: ${JSON.stringify(samples)}`);
  });

  it('a good update becomes known-good; a later bad one is reverted to it, and one pushed while another was rolling out is reverted by updating to the saved spec', async () => {
    await start(policy(prom.url, { window: '6s' }));
    await adopted(V1);
    await update(SERVICE, V11);
    const good = await settled(0);
    assert.equal(good.state, 'passed', `${good.state}: ${good.reason}`);
    await adopted(V11);
    const known = (await query<{ spec: { replicas: { name: string }[] } }>('SELECT spec FROM known_good WHERE service = $1', ['web']))[0];
    assert.deepEqual(known?.spec.replicas.map((r) => r.name), ['rg-swarm-web.1', 'rg-swarm-web.2'], 'the known-good set is both slots');

    // v1 then at once v2-unready: Swarm's previous spec is v1, not the known-good v1.1.
    await update(SERVICE, V1);
    await update(SERVICE, UNREADY);
    const bad = await waitFor('the unready deployment to settle', async () => {
      const rows = (await rg?.history('web')) ?? [];
      const d = rows.find((r) => r.id > good.id && r.to_ref === UNREADY);
      return d && FINAL.includes(d.state) ? d : undefined;
    }, 90_000);
    assert.equal(bad.state, 'rolled_back', `${bad.state}: ${bad.reason}`);
    await allOn(SERVICE, V11);
    const put = (await actions(bad.id)).find((a) => a.kind === 'put-back');
    assert.match(put?.detail ?? '', /rg-swarm-web updated to the saved known-good spec \(rollguard-fixture:v1\.1\)/);
  });

  it('rollguard rollback --to takes a service that passed its window back to an older image: every task runs it and it becomes known-good', async () => {
    const daemon = await start(policy(prom.url, { window: '6s' }), { ROLLGUARD_API_TOKEN: testSecret('swarm-api-token') });
    await adopted(V1);
    await update(SERVICE, V11);
    const good = await settled(0);
    assert.equal(good.state, 'passed', `${good.state}: ${good.reason}`);
    await adopted(V11);

    const r = await daemon.cli('rollback', 'web', '--yes', '--json', '--to', V1, '--reason', 'v1.1 corrupts carts');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal((JSON.parse(r.stdout) as { state: string }).state, 'rolled_back');
    assert.deepEqual((await allOn(SERVICE, V1)).map((t) => t.slot).sort(), [1, 2]);
    await adopted(V1);
    // Swarm's previous spec is v1 with the known-good settings, so Swarm's own rollback puts it back.
    const put = (await actions(good.id)).find((a) => a.kind === 'put-back');
    assert.match(put?.detail ?? '', /Swarm rollback of rg-swarm-web to its previous spec, the known-good one \(rollguard-fixture:v1\)/);
  });

  it('Swarm\'s own failure rollback that comes first is recorded as Swarm\'s and told; rollguard changes nothing and verifies the recovery', async () => {
    const hook = await pagerReceiver();
    try {
      const channel = `notifications:\n  hook:\n    webhook:\n      url: http://127.0.0.1:${hook.port}/hook\n      secret: \${HOOK_SECRET}\nroutes:\n  P0: [hook]\n  P1: [hook]\n`;
      await start(`${policy(prom.url, { readyFor: 30, errorsFor: 30, window: '40s' })}${channel}`, { HOOK_SECRET: testSecret('webhook') });
      await adopted(V1);
      // A version that serves well and then crashes: Swarm rolls back at the crash, before the built-in serving rule's 3 samples.
      await update(SERVICE, V11, swarmRollback(3));
      const d = await settled(0);
      assert.equal(d.state, 'rolled_back', `${d.state}: ${d.reason}`);
      assert.match(d.reason ?? '', /^Swarm rolled the update back by itself \(update state rollback_/);
      await allOn(SERVICE, V1);
      // rollguard followed through without changing anything: it found the known-good spec in place and verified the recovery.
      const steps = await actions(d.id);
      const puts = steps.filter((a) => a.kind === 'put-back');
      assert.equal(puts.length, 1, JSON.stringify(steps));
      assert.match(puts[0]?.detail ?? '', /^Swarm rolled the update of rg-swarm-web back by itself .*so rollguard changed nothing$/);
      assert.ok(steps.some((a) => a.kind === 'verify' && a.ok), JSON.stringify(steps));
      const decisions = await query<{ kind: string; detail: string }>('SELECT kind, detail FROM decisions WHERE deployment_id = $1', [d.id]);
      assert.ok(decisions.some((x) => x.kind === 'orchestrator_rollback'), `recorded as Swarm's rollback: ${JSON.stringify(decisions)}`);
      const events = hook.events as unknown as { event: string; summary: string }[];
      const told = await waitFor('the message telling of Swarm\'s rollback', () => events.find((e) => e.event === 'rollback_succeeded'), 30_000);
      assert.match(told.summary, /^Swarm rolled the update back by itself; rollguard verified the recovery/);
      assert.match(events.find((e) => e.event === 'rollback_started')?.summary ?? '', /Swarm rolled the update back by itself .*rollguard changes nothing/);
      // No revert of the revert, no new deployment from the known-good tasks coming back.
      await new Promise((r) => setTimeout(r, 3_000));
      const rows = (await rg?.history('web')) ?? [];
      assert.equal(rows.length, 1, `one deployment in all: ${JSON.stringify(rows.map((r) => [r.to_ref, r.state, r.reason]))}`);
    } finally {
      await hook.close();
    }
  });

  it('fault: Swarm\'s own failure rollback racing with rollguard\'s revert → one revert, a correct record, every task on the known-good image', async () => {
    await start(policy(prom.url, { readyFor: 3 }));
    await adopted(V1);
    // Unready from the start (rollguard reverts after 3 samples) and crashing after 4 s (Swarm rolls back then).
    await update(SERVICE, UNREADY, swarmRollback(4));
    const d = await settled(0);
    assert.equal(d.state, 'rolled_back', `${d.state}: ${d.reason}`);
    await allOn(SERVICE, V1);
    await new Promise((r) => setTimeout(r, 5_000));
    const rows = (await rg?.history('web')) ?? [];
    assert.equal(rows.length, 1, `one deployment, no revert of the revert: ${JSON.stringify(rows.map((r) => [r.state, r.reason]))}`);
    const spec = JSON.parse(await docker('service', 'inspect', SERVICE, '--format', '{{json .Spec.TaskTemplate.ContainerSpec.Image}}')) as string;
    assert.equal(spec, V1, 'the service is left on the known-good spec');
    const steps = await actions(d.id);
    const put = steps.find((a) => a.kind === 'put-back');
    if (put) {
      // rollguard decided first, or found Swarm's rollback under way: either way one put-back, told as it was.
      assert.equal(steps.filter((a) => a.kind === 'put-back').length, 1, JSON.stringify(steps));
      assert.match(put.detail, /Swarm rollback of rg-swarm-web|Swarm rolled the update of rg-swarm-web back by itself/);
    } else {
      assert.match(d.reason ?? '', /^Swarm rolled the update back by itself/);
    }
  });

  it('fault: kill -9 of rollguard mid-revert of a Swarm service → the restarted one finishes it without putting the spec back twice', async () => {
    const text = policy(prom.url);
    const first = await start(text, { ROLLGUARD_FAILPOINTS: 'revert.after-start' });
    await adopted(V1);
    await update(SERVICE, ERRORS);
    await waitFor('the failpoint after the put-back', async () => /failpoint reached/.test(await first.logs()), 60_000);
    await first.stop('SIGKILL');
    const id = await waitFor('the open revert', async () => (await query<{ id: number; state: string }>('SELECT id, state FROM deployments ORDER BY id DESC LIMIT 1'))[0], 5_000);
    assert.equal(id.state, 'rolling_back');
    await start(text, {}, first.stateDir);
    const d = await settled(0);
    assert.equal(d.id, Number(id.id));
    assert.equal(d.state, 'rolled_back', `${d.state}: ${d.reason}`);
    await allOn(SERVICE, V1);
    const puts = (await actions(d.id)).filter((a) => a.kind === 'put-back');
    assert.equal(puts.length, 2, JSON.stringify(puts));
    assert.match(puts[1]?.detail ?? '', /already runs the known-good spec \(rollguard-fixture:v1\); nothing was changed/);
    // One rollback in all: the spec is the known-good one and the previous spec still the bad one (a second update would have made it v1).
    assert.equal(await docker('service', 'inspect', SERVICE, '--format', '{{.Spec.TaskTemplate.ContainerSpec.Image}} {{.PreviousSpec.TaskTemplate.ContainerSpec.Image}}'), `${V1} ${ERRORS}`);
  });
});

describe('a task on another node: a second engine joined as a worker', { timeout: 600_000 }, async () => {
  const unavailable = await swarmWorkerUnavailable();
  const MULTI = 'rg-swarm-multi';
  const PREFIX = '1897';
  let worker: SwarmWorker | undefined;
  let rg: Rollguard | undefined;
  let db: { url: string; drop(): Promise<void> } | undefined;

  before(async () => {
    if (unavailable) return;
    await buildFixtures();
    worker = await startSwarmWorker({ images: [V1, UNREADY] });
    db = await freshDatabase();
  });

  after(async () => {
    await rg?.stop('SIGKILL');
    await docker('service', 'rm', MULTI).catch(() => '');
    await worker?.stop();
    await db?.drop();
  });

  it('watches the task on the worker by its node address and reverts it with the rest', { skip: unavailable }, async () => {
    const w = worker as SwarmWorker;
    const listen = `${os.hostname()}=${w.managerAddr} ${w.hostname}=${w.addr}`;
    await createService(MULTI, V1, PREFIX, ['--placement-pref', 'spread=node.id', '--env', 'NODE={{.Node.Hostname}}', '--env', `LISTEN_BY_NODE=${listen}`]);
    const tasks = await allOn(MULTI, V1);
    assert.deepEqual(tasks.map((t) => t.node).sort(), [os.hostname(), w.hostname].sort(), 'one task on each node');
    rg = await startRollguard(policy('', { service: MULTI, portPrefix: PREFIX, prometheus: false }), { databaseUrl: db?.url });
    await waitFor('adopted', async () => (await dbQuery<{ n: number }>(db?.url as string, 'SELECT count(*)::int AS n FROM known_good'))[0]?.n === 1, 30_000, 300);
    await update(MULTI, UNREADY);
    const d = await waitFor('the revert', async () => {
      const newest = (await rg?.history('web'))?.[0];
      return newest && FINAL.includes(newest.state) ? newest : undefined;
    }, 90_000);
    assert.equal(d.state, 'rolled_back', `${d.state}: ${d.reason}`);
    const back = await allOn(MULTI, V1);
    assert.ok(back.some((t) => t.node === w.hostname), `the worker's task is back on the known-good image: ${JSON.stringify(back)}`);
    const samples = await dbQuery<{ detail: string | null }>(db?.url as string, "SELECT detail FROM samples WHERE deployment_id = $1 AND signal = 'ready' AND result = 'breach'", [d.id]);
    assert.ok(samples.length >= 3, 'the readiness breaches were seen');
    const ready = await fetch(`http://${w.addr}:${PREFIX}${back.find((t) => t.node === w.hostname)?.slot}/cgi-bin/ready`).then((r) => r.json()) as { version: string };
    assert.equal(ready.version, 'v1', 'the task on the worker serves the known-good version');
  });
});
