import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type Docker from 'dockerode';
import pino from 'pino';
import type { Policy } from '../../config/policy.js';
import { servicePolicy } from '../../policy/service.fixture.js';
import { RevertError, type Replica } from '../target.js';
import { rolledBackByItself, STACK_LABEL, SwarmServiceTarget } from './target.js';
import { templateVersion } from './version.js';

// SwarmServiceTarget over a fake manager API: a few services, tasks, nodes and containers in
// memory, answering only the calls the target makes. Updates are recorded, not carried out.

const log = pino({ level: 'silent' });
const DIGEST_1 = `sha256:${'1'.repeat(64)}`;
const DIGEST_2 = `sha256:${'2'.repeat(64)}`;

type Json = Record<string, unknown>;

/** The known-good task template (shop/web:1) and the bad one (shop/web:2). */
const GOOD = { ContainerSpec: { Image: `shop/web:1@${DIGEST_1}`, Env: ['MODE=live'], Labels: { tier: 'front' } }, RestartPolicy: { Condition: 'any' }, ForceUpdate: 0 };
const BAD = { ContainerSpec: { Image: `shop/web:2@${DIGEST_2}`, Env: ['MODE=live'], Labels: { tier: 'front' } }, RestartPolicy: { Condition: 'any' }, ForceUpdate: 0 };
const OLDER = { ...GOOD, ContainerSpec: { ...GOOD.ContainerSpec, Image: 'shop/web:0' } };
const GOOD_VERSION = templateVersion(GOOD);

const notFound = (what: string): Error => Object.assign(new Error(`(HTTP code 404) no such ${what}`), { statusCode: 404 });
const refused = (message: string): Error => Object.assign(new Error(`(HTTP code 500) server error - ${message}`), { statusCode: 500, json: { message } });

/** A service as `docker service inspect` shows it: `template` runs now, `previous` before it. */
function swarmService(o: { id?: string; name?: string; template?: Json; previous?: Json | null; replicas?: number | 'global'; update?: { State: string; Message?: string }; index?: number; labels?: Json } = {}): Json {
  return {
    ID: o.id ?? 'svc-web',
    Version: { Index: o.index ?? 12 },
    Spec: {
      Name: o.name ?? 'web',
      Labels: o.labels ?? {},
      TaskTemplate: o.template ?? GOOD,
      Mode: o.replicas === 'global' ? { Global: {} } : { Replicated: { Replicas: o.replicas ?? 2 } },
      UpdateConfig: { Parallelism: 1, FailureAction: 'pause' },
      EndpointSpec: { Mode: 'vip' },
    },
    ...(o.previous === undefined ? {} : { PreviousSpec: o.previous && { Name: o.name ?? 'web', TaskTemplate: o.previous } }),
    ...(o.update ? { UpdateStatus: o.update } : {}),
  };
}

/** A task as `docker inspect` shows it; `at` is the minute (10:mm) it was created and last changed state. */
function swarmTask(id: string, o: { service?: string; slot?: number; node?: string; template?: Json; state?: string; desired?: string; at?: number; container?: string; exitCode?: number; err?: string } = {}): Json {
  const at = `2026-03-02T10:${String(o.at ?? 0).padStart(2, '0')}:00.000Z`;
  const state = o.state ?? 'running';
  return {
    ID: id,
    ServiceID: o.service ?? 'svc-web',
    NodeID: o.node ?? 'node-a',
    ...(o.slot === undefined ? {} : { Slot: o.slot }),
    CreatedAt: at,
    Spec: o.template ?? GOOD,
    DesiredState: o.desired ?? 'running',
    Status: {
      Timestamp: at,
      State: state,
      Message: state,
      ...(o.err ? { Err: o.err } : {}),
      ...(o.container ? { ContainerStatus: { ContainerID: o.container, ExitCode: o.exitCode ?? 0 } } : {}),
    },
  };
}

/** The manager API, in memory: what the target reads, and the updates it sends. */
class FakeSwarm {
  readonly services: Json[] = [];
  readonly tasks: Json[] = [];
  readonly nodes = new Map<string, Json>([
    ['node-a', { ID: 'node-a', Description: { Hostname: 'manager-1' }, Status: { State: 'ready', Addr: '10.0.0.1' } }],
    ['node-b', { ID: 'node-b', Description: { Hostname: 'worker-1' }, Status: { State: 'ready', Addr: '10.0.0.2' } }],
  ]);
  /** Containers on this engine (a task elsewhere has none here). */
  readonly containers = new Map<string, Json>();
  readonly updates: { id: string; query: Json; body: Json }[] = [];
  /** Refusals the next updates meet, in order. */
  readonly refusals: Error[] = [];
  /** Set to make every read fail, as a manager that does not answer. */
  down?: Error;

  constructor(...services: Json[]) {
    this.services.push(...services);
  }

  private service(nameOrId: string): Json | undefined {
    return this.services.find((s) => s.ID === nameOrId || (s.Spec as Json).Name === nameOrId);
  }

  /** Only what SwarmServiceTarget calls. */
  readonly docker = {
    getService: (nameOrId: string) => ({
      inspect: async () => {
        if (this.down) throw this.down;
        const s = this.service(nameOrId);
        if (!s) throw notFound('service');
        return structuredClone(s);
      },
      update: async (opts: { _query: Json; _body: Json }) => {
        this.updates.push({ id: nameOrId, query: opts._query, body: opts._body });
        const refusal = this.refusals.shift();
        if (!refusal) return;
        // "out of sequence": another writer updated the service since it was read.
        const s = this.service(nameOrId);
        if (s && /out of sequence/.test(refusal.message)) (s.Version as Json).Index = (s.Version as { Index: number }).Index + 1;
        throw refusal;
      },
    }),
    getTask: (id: string) => ({
      inspect: async () => {
        if (this.down) throw this.down;
        const t = this.tasks.find((x) => x.ID === id);
        if (!t) throw notFound('task');
        return structuredClone(t);
      },
    }),
    listTasks: async (opts: { filters: string }) => {
      if (this.down) throw this.down;
      const filters = JSON.parse(opts.filters) as Record<string, string[]>;
      return structuredClone(this.tasks.filter((t) =>
        (!filters.service || filters.service.some((s) => s === t.ServiceID || this.service(s)?.ID === t.ServiceID))
        && (!filters['desired-state'] || filters['desired-state'].includes(t.DesiredState as string))));
    },
    getNode: (id: string) => ({
      inspect: async () => {
        const n = this.nodes.get(id);
        if (!n) throw notFound('node');
        return structuredClone(n);
      },
    }),
    getContainer: (id: string) => ({
      inspect: async () => {
        const c = this.containers.get(id);
        if (!c) throw notFound('container');
        return structuredClone(c);
      },
    }),
  };

  target(): SwarmServiceTarget {
    return new SwarmServiceTarget(this.docker as unknown as Docker, log);
  }
}

const WEB = servicePolicy({ name: 'web', match: { kind: 'swarm', service: 'web' } });

/** A known-good snapshot of web's two tasks of `GOOD`, as the store keeps it (plain JSON). */
async function goodSnapshot(): Promise<unknown> {
  const swarm = new FakeSwarm(swarmService());
  swarm.tasks.push(swarmTask('t-good-1', { slot: 1, at: 1 }), swarmTask('t-good-2', { slot: 2, at: 2 }));
  const target = swarm.target();
  return JSON.parse(JSON.stringify(target.snapshot(await target.running({} as Policy, WEB))));
}

describe('rolledBackByItself', () => {
  const FAILURE = 'update rolled back due to failure or early termination of task 4x0k7i9d';
  const cases: [state: string, message: string | undefined, byItself: boolean][] = [
    ['rollback_started', FAILURE, true],
    ['rollback_paused', 'rollback paused due to failure or early termination of task 4x0k7i9d', true],
    ['rollback_started', undefined, true],
    ['rollback_started', 'manually requested rollback', false],
    ['rollback_started', 'Manually Requested Rollback', false],
    // Every finished rollback reads the same, whoever asked for it: never taken for Swarm's own.
    ['rollback_completed', 'rollback completed', false],
    ['updating', 'update in progress', false],
    ['completed', 'update completed', false],
    ['paused', 'update paused due to failure or early termination of task 4x0k7i9d', false],
  ];
  for (const [state, message, byItself] of cases) {
    it(`${state}${message ? ` "${message}"` : ' without a message'}: ${byItself ? 'Swarm\'s own rollback' : 'not Swarm\'s own rollback'}`, () => {
      assert.equal(rolledBackByItself(state, message), byItself);
    });
  }
});

describe('SwarmServiceTarget: replicas, snapshots and the services they belong to', () => {
  it('running() lists the running tasks as replicas named service.slot, newest first, with their placeholders', async () => {
    const swarm = new FakeSwarm(swarmService({ labels: { team: 'shop' } }));
    swarm.tasks.push(
      swarmTask('t-1', { slot: 1, at: 1, node: 'node-a' }),
      swarmTask('t-2', { slot: 2, at: 3, node: 'node-b' }),
      swarmTask('t-3', { slot: 3, at: 4, state: 'starting' }),
      swarmTask('t-old', { slot: 1, at: 0, template: OLDER, state: 'shutdown', desired: 'shutdown' }),
    );
    const replicas = await swarm.target().running({} as Policy, WEB);
    assert.deepEqual(replicas.map((r) => [r.name, r.id]), [['web.2', 't-2'], ['web.1', 't-1']]);
    const [second] = replicas as [Replica];
    assert.equal(second.image, `shop/web:1@${DIGEST_1}`);
    assert.equal(second.ref, 'shop/web:1');
    assert.equal(second.version, GOOD_VERSION);
    assert.equal(second.running, true);
    assert.deepEqual(second.values, { task: 't-2', slot: '2', node: 'worker-1', node_addr: '10.0.0.2' });
    assert.deepEqual(second.labels, { team: 'shop', tier: 'front', 'com.docker.swarm.service.name': 'web' });
  });

  it('running() of a service that is gone is no replicas', async () => {
    assert.deepEqual(await new FakeSwarm().target().running({} as Policy, WEB), []);
  });

  it('a snapshot keeps the template without ForceUpdate and the replicas by name; knownReplicas gives them back', async () => {
    const swarm = new FakeSwarm(swarmService({ template: { ...GOOD, ForceUpdate: 4 } }));
    swarm.tasks.push(swarmTask('t-2', { slot: 2, at: 2, template: { ...GOOD, ForceUpdate: 4 } }), swarmTask('t-1', { slot: 1, at: 1, template: { ...GOOD, ForceUpdate: 4 } }));
    const target = swarm.target();
    const stored = JSON.parse(JSON.stringify(target.snapshot(await target.running({} as Policy, WEB))));
    const { ForceUpdate: _force, ...template } = GOOD;
    assert.deepEqual(target.knownReplicas(stored), [
      { name: 'web.1', version: GOOD_VERSION, spec: template },
      { name: 'web.2', version: GOOD_VERSION, spec: template },
    ]);
  });

  it('withImage (rollback --to) puts another image into the known-good template; every replica gets the new template\'s version', async () => {
    const swarm = new FakeSwarm(swarmService({ template: GOOD }));
    swarm.tasks.push(swarmTask('t-1', { slot: 1, at: 1, template: GOOD }), swarmTask('t-2', { slot: 2, at: 2, template: GOOD }));
    const target = swarm.target();
    const known = { service: 'web', target: target.kind, image_id: 'shop/web:1', image_ref: 'shop/web:1', container_name: 'web.1', spec: target.snapshot(await target.running({} as Policy, WEB)), deployment_id: 7, since: new Date(0) };
    const older = await target.withImage(known, 'shop/web:0.9');
    assert.deepEqual([older.image_id, older.image_ref, older.deployment_id], ['shop/web:0.9', 'shop/web:0.9', null]);
    const replicas = target.knownReplicas(older.spec);
    const { ForceUpdate: _force, ...template } = GOOD;
    const expected = { ...template, ContainerSpec: { ...template.ContainerSpec, Image: 'shop/web:0.9' } };
    assert.deepEqual(replicas.map((r) => r.spec), [expected, expected]);
    assert.notEqual(replicas[0]?.version, GOOD_VERSION);
    assert.equal(new Set(replicas.map((r) => r.version)).size, 1);
  });

  it('a snapshot needs at least one task', () => {
    assert.throws(() => new FakeSwarm().target().snapshot([]), /at least one task/);
  });

  it('knownReplicas refuses a snapshot made by another kind of target', () => {
    assert.throws(() => new FakeSwarm().target().knownReplicas({ replicas: [{ name: 'web', image: 'shop/web:1' }] }), (err: unknown) => err instanceof RevertError && /not a Swarm service's/.test(err.message));
  });

  it('changedSettings names what a task changes against the snapshot', async () => {
    const snapshot = await goodSnapshot();
    const swarm = new FakeSwarm(swarmService({ template: BAD }));
    swarm.tasks.push(swarmTask('t-bad', { slot: 1, template: BAD }));
    const bad = await swarm.target().replica('t-bad');
    assert.ok(bad);
    assert.deepEqual(swarm.target().changedSettings(snapshot, bad), ['ContainerSpec.Image']);
  });

  describe('servicesOf', () => {
    const policy: Policy = {
      version: 1, source: '/etc/rollguard/policy.yaml', notifications: {}, routes: {}, escalation: [],
      services: {
        web: WEB,
        'shop-web': servicePolicy({ name: 'shop-web', match: { kind: 'swarm', service: 'shop_web', stack: 'shop' } }),
        'web-container': servicePolicy({ name: 'web-container', match: { kind: 'container', name: 'web' } }),
      },
    };
    const swarm = new FakeSwarm(
      swarmService(),
      swarmService({ id: 'svc-shop-web', name: 'shop_web', labels: { [STACK_LABEL]: 'shop' } }),
      swarmService({ id: 'svc-loose', name: 'shop_web_2' }),
      swarmService({ id: 'svc-other-stack', name: 'shop_web_3', labels: { [STACK_LABEL]: 'other' } }),
    );
    swarm.tasks.push(
      swarmTask('t-web', { slot: 1 }),
      swarmTask('t-shop', { service: 'svc-shop-web', slot: 1 }),
    );
    const of = async (taskId: string): Promise<string[]> => {
      const target = swarm.target();
      const replica = await target.replica(taskId);
      assert.ok(replica, `task ${taskId} is missing`);
      return target.servicesOf(policy, replica).map((s) => s.name);
    };

    it('a task of a swarm_service match belongs to it, not to a container match of the same name', async () => {
      assert.deepEqual(await of('t-web'), ['web']);
    });

    it('a task of a stack\'s service belongs to the stack match', async () => {
      assert.deepEqual(await of('t-shop'), ['shop-web']);
    });

    it('a service named like a stack\'s but outside the stack does not belong to the stack match', () => {
      const target = swarm.target();
      const replica = (name: string, labels: Record<string, string>): Replica => ({
        id: 'x', name: `${name}.1`, image: 'i', ref: 'r', version: 'v', startedAt: new Date(0), running: true, spec: {},
        labels: { 'com.docker.swarm.service.name': name, ...labels },
      });
      assert.deepEqual(target.servicesOf(policy, replica('shop_web', {})).map((s) => s.name), []);
      assert.deepEqual(target.servicesOf(policy, replica('shop_web', { [STACK_LABEL]: 'other' })).map((s) => s.name), []);
      assert.deepEqual(target.servicesOf(policy, replica('shop_web', { [STACK_LABEL]: 'shop' })).map((s) => s.name), ['shop-web']);
    });
  });
});

describe('SwarmServiceTarget: the service\'s spec and update', () => {
  it('specVersion is the version of the template the service specifies, undefined when it is gone', async () => {
    assert.equal(await new FakeSwarm(swarmService({ template: { ...GOOD, ForceUpdate: 9 } })).target().specVersion(WEB), GOOD_VERSION);
    assert.equal(await new FakeSwarm().target().specVersion(WEB), undefined);
  });

  const states: [update: { State: string; Message?: string } | undefined, expected: unknown][] = [
    [undefined, undefined],
    [{ State: 'updating', Message: 'update in progress' }, { state: 'updating', message: 'update in progress', rolledBack: false, paused: false }],
    [{ State: 'paused', Message: 'update paused due to failure' }, { state: 'paused', message: 'update paused due to failure', rolledBack: false, paused: true }],
    [{ State: 'rollback_started', Message: 'update rolled back due to failure' }, { state: 'rollback_started', message: 'update rolled back due to failure', rolledBack: true, paused: false }],
    [{ State: 'rollback_paused', Message: 'rollback paused due to failure' }, { state: 'rollback_paused', message: 'rollback paused due to failure', rolledBack: true, paused: true }],
    [{ State: 'rollback_started', Message: 'manually requested rollback' }, { state: 'rollback_started', message: 'manually requested rollback', rolledBack: false, paused: false }],
  ];
  for (const [update, expected] of states) {
    const outcome = expected ? `rolled back by Swarm: ${(expected as { rolledBack: boolean }).rolledBack}, paused: ${(expected as { paused: boolean }).paused}` : 'undefined';
    it(`updateState of ${update ? `${update.State} "${update.Message}"` : 'a service never updated'} is ${outcome}`, async () => {
      assert.deepEqual(await new FakeSwarm(swarmService({ update })).target().updateState(WEB), expected);
    });
  }
});

describe('SwarmServiceTarget.putBack', () => {
  it('uses Swarm\'s own rollback when the previous spec is the known-good one', async () => {
    const swarm = new FakeSwarm(swarmService({ template: BAD, previous: { ...GOOD, ForceUpdate: 1 }, index: 40, update: { State: 'updating', Message: 'update in progress' } }));
    const put = await swarm.target().putBack(WEB, await goodSnapshot(), { force: false });
    assert.deepEqual(put, { how: 'rollback', detail: 'Swarm rollback of web to its previous spec, the known-good one (shop/web:1)' });
    assert.equal(swarm.updates.length, 1);
    const [sent] = swarm.updates;
    assert.deepEqual(sent?.query, { version: 40, rollback: 'previous' });
    assert.equal(sent?.id, 'svc-web');
    assert.deepEqual((sent?.body.TaskTemplate as Json).ContainerSpec, BAD.ContainerSpec, 'a rollback sends the spec as it is: Swarm takes the previous one');
  });

  it('says that Swarm\'s rollback resumes a paused update', async () => {
    const swarm = new FakeSwarm(swarmService({ template: BAD, previous: GOOD, update: { State: 'paused', Message: 'update paused due to failure' } }));
    const put = await swarm.target().putBack(WEB, await goodSnapshot(), { force: false });
    assert.equal(put.how, 'rollback');
    assert.match(put.detail, /\(this resumes the update Swarm paused\)$/);
  });

  it('updates the service to the saved template, keeping ForceUpdate, when the previous spec is another version', async () => {
    const swarm = new FakeSwarm(swarmService({ template: { ...BAD, ForceUpdate: 2 }, previous: OLDER, index: 41 }));
    const put = await swarm.target().putBack(WEB, await goodSnapshot(), { force: false });
    assert.deepEqual(put, { how: 'update', detail: 'web updated to the saved known-good spec (shop/web:1)' });
    const [sent] = swarm.updates;
    assert.deepEqual(sent?.query, { version: 41 });
    const { ForceUpdate: _force, ...template } = GOOD;
    assert.deepEqual(sent?.body.TaskTemplate, { ...template, ForceUpdate: 2 });
    assert.equal(sent?.body.Name, 'web');
    assert.deepEqual(sent?.body.Mode, { Replicated: { Replicas: 2 } }, 'the rest of the spec is sent back as it was');
    assert.deepEqual(sent?.body.UpdateConfig, { Parallelism: 1, FailureAction: 'pause' });
  });

  it('updates to the saved template when the service has no previous spec', async () => {
    const swarm = new FakeSwarm(swarmService({ template: BAD, previous: null }));
    assert.equal((await swarm.target().putBack(WEB, await goodSnapshot(), { force: false })).how, 'update');
    assert.deepEqual(swarm.updates[0]?.query, { version: 12 });
  });

  it('force: updates again with ForceUpdate + 1, never Swarm\'s rollback, even on the known-good spec', async () => {
    const swarm = new FakeSwarm(swarmService({ template: { ...GOOD, ForceUpdate: 2 }, previous: GOOD }));
    const put = await swarm.target().putBack(WEB, await goodSnapshot(), { force: true });
    assert.deepEqual(put, { how: 'update', detail: 'web updated again to the known-good spec (shop/web:1), recreating its tasks' });
    assert.deepEqual(swarm.updates[0]?.query, { version: 12 });
    assert.equal((swarm.updates[0]?.body.TaskTemplate as Json).ForceUpdate, 3);
  });

  it('changes nothing when the service already specifies the known-good template (ForceUpdate aside)', async () => {
    const swarm = new FakeSwarm(swarmService({ template: { ...GOOD, ForceUpdate: 5 }, previous: BAD, update: { State: 'completed', Message: 'update completed' } }));
    const put = await swarm.target().putBack(WEB, await goodSnapshot(), { force: false });
    assert.deepEqual(put, { how: 'already', detail: 'web already runs the known-good spec (shop/web:1); nothing was changed' });
    assert.equal(swarm.updates.length, 0);
  });

  it('names Swarm\'s own rollback when Swarm already put the known-good template back', async () => {
    const swarm = new FakeSwarm(swarmService({ template: GOOD, update: { State: 'rollback_started', Message: 'update rolled back due to failure or early termination of task t-bad-1' } }));
    const put = await swarm.target().putBack(WEB, await goodSnapshot(), { force: false });
    assert.deepEqual(put, {
      how: 'already',
      detail: 'Swarm rolled the update of web back by itself (rollback_started: update rolled back due to failure or early termination of task t-bad-1); it runs the known-good spec (shop/web:1) again, so rollguard changed nothing',
    });
    assert.equal(swarm.updates.length, 0);
  });

  it('a rollback someone asked for is no rollback by Swarm itself: already on the known-good spec, nothing more', async () => {
    const swarm = new FakeSwarm(swarmService({ template: GOOD, previous: BAD, update: { State: 'rollback_started', Message: 'manually requested rollback' } }));
    const put = await swarm.target().putBack(WEB, await goodSnapshot(), { force: false });
    assert.deepEqual(put, { how: 'already', detail: 'web already runs the known-good spec (shop/web:1); nothing was changed' });
  });

  it('tries again with the new version index when another writer updated the service in between', async () => {
    const swarm = new FakeSwarm(swarmService({ template: BAD, previous: OLDER, index: 50 }));
    swarm.refusals.push(refused('rpc error: code = Unknown desc = update out of sequence'));
    const put = await swarm.target().putBack(WEB, await goodSnapshot(), { force: false });
    assert.equal(put.how, 'update');
    assert.deepEqual(swarm.updates.map((u) => u.query.version), [50, 51]);
  });

  it('gives up on "out of sequence" after 3 tries, with Docker\'s message', async () => {
    const swarm = new FakeSwarm(swarmService({ template: BAD, previous: OLDER }));
    for (let i = 0; i < 3; i++) swarm.refusals.push(refused('update out of sequence'));
    await assert.rejects(swarm.target().putBack(WEB, await goodSnapshot(), { force: false }), (err: unknown) => err instanceof RevertError && err.message === 'cannot update the Swarm service web: update out of sequence');
    assert.equal(swarm.updates.length, 3);
  });

  it('an update Swarm refuses is a RevertError with Docker\'s message, not tried again', async () => {
    const swarm = new FakeSwarm(swarmService({ template: BAD, previous: OLDER }));
    swarm.refusals.push(refused('rpc error: code = InvalidArgument desc = ContainerSpec: invalid mount config'));
    await assert.rejects(swarm.target().putBack(WEB, await goodSnapshot(), { force: false }), (err: unknown) =>
      err instanceof RevertError && err.message === 'cannot update the Swarm service web: rpc error: code = InvalidArgument desc = ContainerSpec: invalid mount config');
    assert.equal(swarm.updates.length, 1);
  });

  it('a service that is gone, or a manager that does not answer, is a RevertError naming the service', async () => {
    const snapshot = await goodSnapshot();
    await assert.rejects(new FakeSwarm().target().putBack(WEB, snapshot, { force: false }), (err: unknown) => err instanceof RevertError && err.message === 'the Swarm service web is gone');
    const down = new FakeSwarm(swarmService({ template: BAD }));
    down.down = new Error('connect ECONNREFUSED /var/run/docker.sock');
    await assert.rejects(down.target().putBack(WEB, snapshot, { force: false }), (err: unknown) =>
      err instanceof RevertError && err.message === 'cannot inspect the Swarm service web: connect ECONNREFUSED /var/run/docker.sock');
  });

  it('refuses a snapshot that is not a Swarm service\'s, changing nothing', async () => {
    const swarm = new FakeSwarm(swarmService({ template: BAD, previous: GOOD }));
    await assert.rejects(swarm.target().putBack(WEB, { replicas: [] }, { force: false }), RevertError);
    assert.equal(swarm.updates.length, 0);
  });
});

describe('SwarmServiceTarget.converged', () => {
  /** Web on the known-good spec with `replicas` wanted, and these tasks. */
  async function converged(tasks: Json[], o: { replicas?: number | 'global'; template?: Json; update?: { State: string; Message?: string } } = {}) {
    const swarm = new FakeSwarm(swarmService({ template: o.template ?? GOOD, replicas: o.replicas, update: o.update }));
    swarm.tasks.push(...tasks);
    return swarm.target().converged(WEB, await goodSnapshot());
  }
  const replaced = [
    swarmTask('t-bad-1', { slot: 1, template: BAD, state: 'shutdown', desired: 'shutdown' }),
    swarmTask('t-bad-2', { slot: 2, template: BAD, state: 'shutdown', desired: 'shutdown' }),
  ];

  it('is done when every task Swarm wants running runs the known-good version, as many as the service wants', async () => {
    const c = await converged([...replaced, swarmTask('t-1', { slot: 1, at: 5 }), swarmTask('t-2', { slot: 2, at: 6 })], { update: { State: 'rollback_completed', Message: 'rollback completed' } });
    assert.equal(c.done, true);
    assert.deepEqual(c.replicas.map((r) => r.name).sort(), ['web.1', 'web.2']);
    assert.equal(c.detail, 'all 2 task(s) of web run the known-good version (web.1, web.2); Swarm\'s update: rollback_completed');
  });

  it('is not done while a known-good task is still starting', async () => {
    const c = await converged([...replaced, swarmTask('t-1', { slot: 1, at: 5 }), swarmTask('t-2', { slot: 2, at: 6, state: 'starting' })]);
    assert.equal(c.done, false);
    assert.deepEqual(c.replicas.map((r) => r.name), ['web.1']);
    assert.equal(c.detail, '1 of 2 task(s) of web run the known-good version; not yet: slot 2 starting');
  });

  it('is not done while a task of another version is still wanted running (start-first)', async () => {
    const c = await converged([swarmTask('t-1', { slot: 1, at: 5 }), swarmTask('t-2', { slot: 2, at: 6 }), swarmTask('t-bad-2', { slot: 2, template: BAD })]);
    assert.equal(c.done, false);
    assert.match(c.detail, /^2 of 2 task\(s\) of web run the known-good version; not yet: slot 2 running$/);
  });

  it('is not done with fewer known-good tasks than the service wants', async () => {
    const c = await converged([swarmTask('t-1', { slot: 1 }), swarmTask('t-2', { slot: 2 })], { replicas: 3 });
    assert.equal(c.done, false);
    assert.equal(c.detail, '2 of 3 task(s) of web run the known-good version');
  });

  it('names why a task does not run', async () => {
    const c = await converged([swarmTask('t-1', { slot: 1 }), swarmTask('t-2', { slot: 2, state: 'rejected', err: 'No such image: shop/web:1' })]);
    assert.equal(c.done, false);
    assert.equal(c.detail, '1 of 2 task(s) of web run the known-good version; not yet: slot 2 rejected (No such image: shop/web:1)');
  });

  it('is not done while the service specifies another template, though its tasks still run the known-good one', async () => {
    const c = await converged([swarmTask('t-1', { slot: 1 }), swarmTask('t-2', { slot: 2 })], { template: BAD, update: { State: 'updating' } });
    assert.equal(c.done, false);
    assert.equal(c.detail, '2 of 2 task(s) of web run the known-good version; the service is not on the known-good spec; Swarm\'s update: updating');
  });

  it('a global service wants as many tasks as Swarm runs for it', async () => {
    const c = await converged([swarmTask('t-a', { node: 'node-a' }), swarmTask('t-b', { node: 'node-b' })], { replicas: 'global' });
    assert.equal(c.done, true);
    assert.deepEqual(c.replicas.map((r) => r.name).sort(), ['web.node-a', 'web.node-b']);
  });

  it('is not done when the service is gone', async () => {
    assert.deepEqual(await new FakeSwarm().target().converged(WEB, await goodSnapshot()), { done: false, replicas: [], detail: 'the Swarm service web is gone' });
  });
});

describe('SwarmServiceTarget.inspectReplica', () => {
  /** Slot 1 of web: the first task (t-first, 10:00) and whatever Swarm started after it; slot 2 has a task of its own. */
  function slotOne(...after: Json[]): FakeSwarm {
    const swarm = new FakeSwarm(swarmService());
    swarm.tasks.push(
      swarmTask('t-first', { slot: 1, at: 0, state: 'failed', desired: 'shutdown', container: 'c-first', exitCode: 1 }),
      swarmTask('t-other-slot', { slot: 2, at: 9, container: 'c-other' }),
      ...after,
    );
    return swarm;
  }

  it('reads as the slot\'s newest task, counting each failed task of the slot as a restart', async () => {
    const swarm = slotOne(
      swarmTask('t-second', { slot: 1, at: 1, state: 'failed', desired: 'shutdown', container: 'c-second', exitCode: 1 }),
      swarmTask('t-third', { slot: 1, at: 2, container: 'c-third' }),
    );
    swarm.containers.set('c-third', { Id: 'c-third', State: { Running: true, OOMKilled: false, Health: { Status: 'healthy' } } });
    assert.deepEqual(await swarm.target().inspectReplica('t-first'), {
      Id: 't-first',
      RestartCount: 2,
      State: { Running: true, Restarting: false, OOMKilled: false, ExitCode: undefined, Health: { Status: 'healthy' } },
    });
  });

  it('the slot\'s newest task itself has no restarts', async () => {
    const swarm = slotOne(swarmTask('t-second', { slot: 1, at: 1, container: 'c-second' }));
    assert.equal((await swarm.target().inspectReplica('t-second'))?.RestartCount, 0);
  });

  it('a slot whose new task is still being prepared is restarting', async () => {
    const swarm = slotOne(swarmTask('t-second', { slot: 1, at: 1, state: 'preparing' }));
    assert.deepEqual(await swarm.target().inspectReplica('t-first'), {
      Id: 't-first', RestartCount: 1, State: { Running: false, Restarting: true, OOMKilled: false, ExitCode: 0, Health: null },
    });
  });

  it('an OOM kill is read from the container where it ran on this engine', async () => {
    const swarm = slotOne();
    swarm.containers.set('c-first', { Id: 'c-first', State: { Running: false, OOMKilled: true, Health: null } });
    const view = await swarm.target().inspectReplica('t-first');
    assert.deepEqual(view?.State, { Running: false, Restarting: false, OOMKilled: true, ExitCode: 1, Health: null });
  });

  it('a task on another node is read from its status alone: no health, no OOM', async () => {
    const swarm = slotOne(swarmTask('t-second', { slot: 1, at: 1, node: 'node-b', container: 'c-on-worker' }));
    assert.deepEqual((await swarm.target().inspectReplica('t-first'))?.State, { Running: true, Restarting: false, OOMKilled: false, ExitCode: undefined, Health: null });
  });

  it('a slot Swarm replaces in order (an update, --force, a drain) is no restart: stopped on request, not restarting', async () => {
    const swarm = new FakeSwarm(swarmService());
    swarm.tasks.push(
      swarmTask('t-old', { slot: 1, at: 0, state: 'shutdown', desired: 'shutdown', exitCode: 0 }),
      swarmTask('t-new', { slot: 1, at: 1, state: 'starting' }),
    );
    assert.deepEqual(await swarm.target().inspectReplica('t-old'), {
      Id: 't-old', RestartCount: 0, State: { Running: false, Restarting: false, OOMKilled: false, ExitCode: 0, Health: null },
    });
  });

  it('a task Swarm failed with a kill (a failed health check exits 137) is a failure, never a stop on request', async () => {
    const swarm = new FakeSwarm(swarmService());
    swarm.tasks.push(swarmTask('t-killed', { slot: 1, at: 0, state: 'failed', desired: 'shutdown', exitCode: 137 }));
    assert.deepEqual((await swarm.target().inspectReplica('t-killed'))?.State.ExitCode, -1);
    assert.equal((await swarm.target().inspectReplica('t-killed'))?.RestartCount, 1);
  });

  it('a task Swarm rejected, without a container, exited -1', async () => {
    const swarm = slotOne(swarmTask('t-second', { slot: 1, at: 1, state: 'rejected', desired: 'shutdown', err: 'No such image' }));
    assert.equal((await swarm.target().inspectReplica('t-first'))?.State.ExitCode, -1);
  });

  it('a task of a global service counts the tasks started after it on its node', async () => {
    const swarm = new FakeSwarm(swarmService({ replicas: 'global' }));
    swarm.tasks.push(
      swarmTask('t-a1', { node: 'node-a', at: 0, state: 'failed', desired: 'shutdown' }),
      swarmTask('t-a2', { node: 'node-a', at: 1 }),
      swarmTask('t-b1', { node: 'node-b', at: 2 }),
    );
    assert.equal((await swarm.target().inspectReplica('t-a1'))?.RestartCount, 1);
  });

  it('a task that is gone is undefined; a manager that does not answer throws, naming the task', async () => {
    const swarm = slotOne();
    assert.equal(await swarm.target().inspectReplica('t-nope'), undefined);
    swarm.down = new Error('connect ECONNREFUSED /var/run/docker.sock');
    await assert.rejects(swarm.target().inspectReplica('t-first'), /^Error: cannot inspect Swarm task t-first: connect ECONNREFUSED/);
  });
});
