import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import pino from 'pino';
import type { LeaseClaim } from '../store/leases.js';
import { instanceId, LeaseLeadership, soleLeadership, type LeaseStore } from './leadership.js';

const unreachable = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });

/**
 * The lease table's rules (src/store/leases.ts) in memory, on a clock the test moves. The
 * instances' monotonic clocks read the same time (`db.now`): real time passes for all alike.
 * `answerAfterMs` delays each answer: the statement runs when the claim is sent, and time passes
 * before the claimant reads the result.
 */
function fakeLeases() {
  const rows = new Map<string, { holder: string; fence: number; expiresAt: number }>();
  const db = { now: 1_000_000, down: false, answerAfterMs: 0 };
  const leases: LeaseStore = {
    async claim(service, holder, knownFence, ttlMs): Promise<LeaseClaim> {
      if (db.down) throw unreachable;
      const row = rows.get(service);
      const result = (r: { holder: string; fence: number; expiresAt: number }, mine: boolean): LeaseClaim => {
        const claim = { service, mine, holder: r.holder, fence: r.fence, expiresAt: new Date(r.expiresAt), now: new Date(db.now) };
        db.now += db.answerAfterMs;
        return claim;
      };
      if (!row) {
        const fresh = { holder, fence: 1, expiresAt: db.now + ttlMs };
        rows.set(service, fresh);
        return result(fresh, true);
      }
      if (row.holder !== holder && row.expiresAt > db.now) return result(row, false);
      const keeps = row.holder === holder && row.fence === knownFence;
      const next = { holder, fence: keeps ? row.fence : row.fence + 1, expiresAt: db.now + ttlMs };
      rows.set(service, next);
      return result(next, true);
    },
    async release(service, holder, fence) {
      if (db.down) throw unreachable;
      const row = rows.get(service);
      if (row && row.holder === holder && row.fence === fence) row.expiresAt = db.now;
    },
  };
  return { leases, rows, db };
}

/** Log lines as `msg service`, for the messages asserted. */
function memoryLog() {
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => {
    const { msg, service } = JSON.parse(line) as { msg: string; service?: string };
    lines.push(service ? `${msg} ${service}` : msg);
  } });
  return { log, lines };
}

/** An instance with a 6 s lease (so it acts until 5 s after a renewal was sent) on the test's clock. */
function instance(fake: ReturnType<typeof fakeLeases>, id: string, services = ['web', 'api']) {
  const events: string[] = [];
  const { log, lines } = memoryLog();
  // renewMs far away: the test drives each round itself.
  const l = new LeaseLeadership({ leases: fake.leases, instanceId: id, services: () => services, log, ttlMs: 6_000, renewMs: 3_600_000, clock: () => fake.db.now });
  return { l, events, lines, follow: () => l.follow({ gained: (s) => events.push(`gained ${s}`), lost: (s) => events.push(`lost ${s}`) }) };
}

/** Time passes for the store, the instances' clocks and their timers alike. */
function advance(fake: ReturnType<typeof fakeLeases>, ms: number): void {
  fake.db.now += ms;
  mock.timers.tick(ms);
}

describe('LeaseLeadership', () => {
  // Every timer (renewal, lapse, a claim's timeout) runs on the mock clock, moved by `advance`.
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
  afterEach(() => mock.timers.reset());

  test('a single instance leads every service after its first round', async () => {
    const fake = fakeLeases();
    const a = instance(fake, 'a');
    await a.l.start();
    assert.ok(a.l.leads('web') && a.l.leads('api'));
    assert.deepEqual(a.l.status(['web']), { web: { leader: true, holder: 'a', fence: 1 } });
    await a.l.stop();
  });

  test('a second instance leads nothing while the first renews, and takes over once its lease runs out', async () => {
    const fake = fakeLeases();
    const a = instance(fake, 'a');
    const b = instance(fake, 'b');
    await a.l.start();
    await b.l.start();
    b.follow();
    assert.equal(b.l.leads('web'), false);
    assert.deepEqual(b.l.status(['web']), { web: { leader: false, holder: 'a', fence: 1 } });
    advance(fake, 4_000);
    await a.l.round();
    advance(fake, 4_000);
    await b.l.round();
    assert.equal(b.l.leads('web'), false, 'a renewed within its TTL');
    // a is killed: no more renewals.
    advance(fake, 6_001);
    await b.l.round();
    assert.ok(b.l.leads('web') && b.l.leads('api'));
    assert.deepEqual(b.events, ['gained web', 'gained api']);
    assert.equal(b.l.status(['web']).web?.fence, 2, 'a new holder increments the fence');
    await b.l.stop();
  });

  test('the next pass is due when the other holder\'s lease expires, not a whole renew period later', async () => {
    const fake = fakeLeases();
    const a = instance(fake, 'a');
    const b = instance(fake, 'b');
    await a.l.start();
    fake.db.now += 4_000;
    assert.equal(await b.l.round(), 2_000 + 50);
  });

  test('a leader renewing in time leads on, with no events', async () => {
    const fake = fakeLeases();
    const a = instance(fake, 'a');
    await a.l.start();
    a.follow();
    for (let i = 0; i < 5; i++) {
      advance(fake, 2_000);
      await a.l.round();
    }
    assert.ok(a.l.leads('web'));
    assert.deepEqual(a.events, []);
    assert.deepEqual(a.lines.filter((l) => l.startsWith('leadership lapsed')), []);
  });

  test('leads() turns false on the instance\'s own clock once the lease minus the margin has passed since the renewal was sent, with no round and no store', async () => {
    const fake = fakeLeases();
    const a = instance(fake, 'a');
    await a.l.start();
    a.follow();
    fake.db.down = true; // not asked anyway: no round runs
    fake.db.now += 4_999;
    assert.ok(a.l.leads('web'));
    fake.db.now += 1; // 6 s lease − 1 s margin
    assert.equal(a.l.leads('web'), false, 'false at once, before any timer or renewal has run');
    assert.deepEqual(a.l.status(['web']), { web: { leader: false, holder: 'a', fence: 1 } });
    assert.deepEqual(a.events, []);
    mock.timers.tick(5_000); // the lapse timer, due when the lease ran out
    assert.deepEqual(a.events, ['lost web', 'lost api']);
    assert.deepEqual(a.lines.filter((l) => l.startsWith('leadership lapsed')), ['leadership lapsed web', 'leadership lapsed api']);
  });

  test('the time a renewal grants counts from when it was sent, not from when it was answered', async () => {
    const fake = fakeLeases();
    const a = instance(fake, 'a', ['web']);
    await a.l.start();
    a.follow();
    fake.db.answerAfterMs = 3_000;
    advance(fake, 1_000);
    await a.l.round(); // sent at +1 s, answered at +4 s: good until +6 s
    assert.ok(a.l.leads('web'));
    fake.db.now += 1_999;
    assert.ok(a.l.leads('web'));
    fake.db.now += 1;
    assert.equal(a.l.leads('web'), false);
  });

  test('a renewal answered after the time it would grant has passed is not acted on: lapsed until the next renewal confirms the lease', async () => {
    const fake = fakeLeases();
    const a = instance(fake, 'a', ['web']);
    await a.l.start();
    a.follow();
    fake.db.answerAfterMs = 5_500; // this instance was paused while it waited for the answer
    advance(fake, 2_000);
    await a.l.round();
    assert.equal(a.l.leads('web'), false);
    assert.deepEqual(a.events, ['lost web']);
    assert.ok(a.lines.includes('lease renewed too late to act on; waiting for the next renewal web'));
    fake.db.answerAfterMs = 0;
    await a.l.round();
    assert.ok(a.l.leads('web'));
    assert.deepEqual(a.events, ['lost web', 'gained web']);
  });

  test('a leader paused past its lease while another took over: on resuming it leads nothing at once, is told of the lapse once, and hears it lost', async () => {
    const fake = fakeLeases();
    const a = instance(fake, 'a', ['web']);
    const b = instance(fake, 'b', ['web']);
    await a.l.start();
    await b.l.start();
    a.follow();
    b.follow();
    // a is stopped (SIGSTOP): its timers do not run; b takes over once a's lease has run out.
    fake.db.now += 6_001;
    await b.l.round();
    assert.ok(b.l.leads('web'));
    // a runs again: before any of its timers or renewals, it no longer believes it leads.
    assert.equal(a.l.leads('web'), false);
    await a.l.round();
    assert.equal(a.l.leads('web'), false);
    assert.deepEqual(a.events, ['lost web'], 'lost once: the lapse, not again when the store answers');
    assert.deepEqual(a.lines.filter((l) => l.startsWith('leadership')), ['leadership acquired web', 'leadership lapsed web', 'leadership lost web']);
    assert.deepEqual(a.l.status(['web']), { web: { leader: false, holder: 'b', fence: 2 } });
    mock.timers.tick(60_000);
    assert.deepEqual(a.events, ['lost web'], 'no lapse timer for a lease no longer held');
  });

  test('a leader paused past its lease while nobody took over: the renewal keeps the fence, so it catches up from the store (lost, then gained)', async () => {
    const fake = fakeLeases();
    const a = instance(fake, 'a', ['web']);
    await a.l.start();
    a.follow();
    fake.db.now += 30_000;
    assert.equal(a.l.leads('web'), false);
    await a.l.round();
    assert.ok(a.l.leads('web'));
    assert.deepEqual(a.events, ['lost web', 'gained web'], 'what it was doing ended at the lapse; resumed from what is recorded');
    assert.equal(a.l.status(['web']).web?.fence, 1, 'nobody led in between');
    assert.ok(a.lines.includes('leadership confirmed again; catching up from the store web'));
  });

  test('a leader gives a service up as soon as the store says another instance holds it', async () => {
    const fake = fakeLeases();
    const a = instance(fake, 'a');
    const b = instance(fake, 'b');
    await a.l.start();
    a.follow();
    fake.db.now += 7_000; // a was stalled past its TTL
    await b.l.start();
    await a.l.round();
    assert.equal(a.l.leads('web'), false);
    assert.deepEqual(a.events, ['lost web', 'lost api']);
    assert.deepEqual(a.l.status(['web']), { web: { leader: false, holder: 'b', fence: 2 } });
  });

  test('while the store is unreachable a leader that keeps trying on schedule keeps its services; a pause during the outage is a lapse; it leads again once a renewal confirms the lease', async () => {
    const fake = fakeLeases();
    const a = instance(fake, 'a');
    const b = instance(fake, 'b');
    await a.l.start();
    await b.l.start();
    a.follow();
    b.follow();
    fake.db.down = true;
    advance(fake, 2_000);
    assert.equal(await a.l.round(), 3_600_000 / 4, 'retried sooner than a renew period');
    assert.ok(a.l.leads('web'), 'an outage shorter than the lease changes nothing');
    for (let t = 0; t < 60_000; t += 1_500) {
      advance(fake, 1_500);
      await a.l.round();
      await b.l.round();
    }
    assert.ok(a.l.leads('web'), 'a minute of outage, renewals tried on schedule: still leading (nobody can take a lease without the store)');
    assert.equal(b.l.leads('web'), false, 'nobody takes a lease without the store');
    assert.deepEqual(a.events, []);
    advance(fake, 7_000); // paused: no renewal tried for longer than the lease
    assert.equal(a.l.leads('web'), false, 'a pause during the outage is a lapse');
    await a.l.round();
    assert.deepEqual(a.events, ['lost web', 'lost api']);
    fake.db.down = false;
    await a.l.round();
    assert.ok(a.l.leads('web'));
    assert.deepEqual(a.events, ['lost web', 'lost api', 'gained web', 'gained api']);
    assert.deepEqual(b.events, []);
  });

  test('a renewal that comes back with another fence means someone led in between: lost, then gained again', async () => {
    const fake = fakeLeases();
    const a = instance(fake, 'a', ['web']);
    const b = instance(fake, 'b', ['web']);
    await a.l.start();
    a.follow();
    fake.db.down = true; // a is cut off …
    fake.db.now += 7_000;
    await a.l.round();
    fake.db.down = false; // … while b takes the lease, then b dies
    await b.l.start();
    assert.ok(b.l.leads('web'));
    fake.db.now += 7_000;
    await a.l.round();
    assert.ok(a.l.leads('web'));
    assert.deepEqual(a.events, ['lost web', 'gained web']);
    assert.equal(a.l.status(['web']).web?.fence, 3);
  });

  test('stop() releases the leases, so another instance takes over at its next pass', async () => {
    const fake = fakeLeases();
    const a = instance(fake, 'a');
    const b = instance(fake, 'b');
    await a.l.start();
    await b.l.start();
    await a.l.stop();
    assert.equal(a.l.leads('web'), false);
    await b.l.round();
    assert.ok(b.l.leads('web'));
  });

  test('a service dropped from the policy is released, and what this instance did for it ends', async () => {
    const fake = fakeLeases();
    const services = ['web', 'api'];
    const a = instance(fake, 'a', services);
    await a.l.start();
    a.follow();
    services.pop();
    await a.l.round();
    assert.equal(a.l.leads('api'), false);
    assert.ok((fake.rows.get('api')?.expiresAt ?? Infinity) <= fake.db.now);
    assert.deepEqual(a.events, ['lost api']);
  });
});

describe('instance ids', () => {
  test('ROLLGUARD_INSTANCE_ID names the instance; otherwise host, pid and a random part', () => {
    assert.equal(instanceId({ ROLLGUARD_INSTANCE_ID: ' node-a ' }), 'node-a');
    const generated = instanceId({});
    assert.match(generated, new RegExp(`:${process.pid}:[0-9a-f]{6}$`));
    assert.notEqual(generated, instanceId({}));
  });

  test('with the embedded database the only process leads every service', () => {
    const sole = soleLeadership('x');
    assert.ok(sole.leads('anything'));
    assert.deepEqual(sole.status(['web']), { web: { leader: true, holder: 'x', fence: null } });
  });
});
