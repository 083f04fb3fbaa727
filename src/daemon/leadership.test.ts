import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import type { LeaseClaim } from '../store/leases.js';
import { instanceId, LeaseLeadership, soleLeadership, type LeaseStore } from './leadership.js';

const unreachable = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });

/** The lease table's rules (src/store/leases.ts) in memory, on a clock the test moves. */
function fakeLeases() {
  const rows = new Map<string, { holder: string; fence: number; expiresAt: number }>();
  const db = { now: 1_000_000, down: false };
  const leases: LeaseStore = {
    async claim(service, holder, knownFence, ttlMs): Promise<LeaseClaim> {
      if (db.down) throw unreachable;
      const row = rows.get(service);
      const result = (r: { holder: string; fence: number; expiresAt: number }, mine: boolean): LeaseClaim =>
        ({ service, mine, holder: r.holder, fence: r.fence, expiresAt: new Date(r.expiresAt), now: new Date(db.now) });
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

function instance(leases: LeaseStore, id: string, services = ['web', 'api']) {
  const events: string[] = [];
  // renewMs far away: the test drives each round itself.
  const l = new LeaseLeadership({ leases, instanceId: id, services: () => services, log: pino({ level: 'silent' }), ttlMs: 6_000, renewMs: 3_600_000 });
  return { l, events, follow: () => l.follow({ gained: (s) => events.push(`gained ${s}`), lost: (s) => events.push(`lost ${s}`) }) };
}

describe('LeaseLeadership', () => {
  test('a single instance leads every service after its first round', async () => {
    const { leases } = fakeLeases();
    const a = instance(leases, 'a');
    await a.l.start();
    assert.ok(a.l.leads('web') && a.l.leads('api'));
    assert.deepEqual(a.l.status(['web']), { web: { leader: true, holder: 'a', fence: 1 } });
    await a.l.stop();
  });

  test('a second instance leads nothing while the first renews, and takes over once its lease runs out', async () => {
    const { leases, db } = fakeLeases();
    const a = instance(leases, 'a');
    const b = instance(leases, 'b');
    await a.l.start();
    await b.l.start();
    b.follow();
    assert.equal(b.l.leads('web'), false);
    assert.deepEqual(b.l.status(['web']), { web: { leader: false, holder: 'a', fence: 1 } });
    db.now += 5_000;
    await a.l.round();
    db.now += 5_000;
    await b.l.round();
    assert.equal(b.l.leads('web'), false, 'a renewed within its TTL');
    // a is killed: no more renewals.
    db.now += 6_001;
    await b.l.round();
    assert.ok(b.l.leads('web') && b.l.leads('api'));
    assert.deepEqual(b.events, ['gained web', 'gained api']);
    assert.equal(b.l.status(['web']).web?.fence, 2, 'a new holder increments the fence');
    await b.l.stop();
  });

  test('the next pass is due when the other holder\'s lease expires, not a whole renew period later', async () => {
    const { leases, db } = fakeLeases();
    const a = instance(leases, 'a');
    const b = instance(leases, 'b');
    await a.l.start();
    db.now += 4_000;
    assert.equal(await b.l.round(), 2_000 + 50);
  });

  test('a leader gives a service up as soon as the store says another instance holds it', async () => {
    const { leases, db } = fakeLeases();
    const a = instance(leases, 'a');
    const b = instance(leases, 'b');
    await a.l.start();
    a.follow();
    db.now += 7_000; // a was stalled past its TTL
    await b.l.start();
    await a.l.round();
    assert.equal(a.l.leads('web'), false);
    assert.deepEqual(a.events, ['lost web', 'lost api']);
    assert.deepEqual(a.l.status(['web']), { web: { leader: false, holder: 'b', fence: 2 } });
  });

  test('while the store is unreachable a leader keeps its services and a follower stays a follower', async () => {
    const { leases, db } = fakeLeases();
    const a = instance(leases, 'a');
    const b = instance(leases, 'b');
    await a.l.start();
    await b.l.start();
    a.follow();
    b.follow();
    db.down = true;
    db.now += 60_000;
    await a.l.round();
    await b.l.round();
    assert.ok(a.l.leads('web'), 'the leader acts on');
    assert.equal(b.l.leads('web'), false, 'nobody takes a lease without the store');
    db.down = false;
    await a.l.round();
    assert.ok(a.l.leads('web'));
    assert.deepEqual(a.events, [], 'a renewal with the same fence is no change');
    assert.deepEqual(b.events, []);
  });

  test('a renewal that comes back with another fence means someone led in between: lost, then gained again', async () => {
    const { leases, db } = fakeLeases();
    const a = instance(leases, 'a', ['web']);
    const b = instance(leases, 'b', ['web']);
    await a.l.start();
    a.follow();
    db.down = true; // a is cut off …
    db.now += 7_000;
    await a.l.round();
    db.down = false; // … while b takes the lease, then b dies
    await b.l.start();
    assert.ok(b.l.leads('web'));
    db.now += 7_000;
    await a.l.round();
    assert.ok(a.l.leads('web'));
    assert.deepEqual(a.events, ['lost web', 'gained web']);
    assert.equal(a.l.status(['web']).web?.fence, 3);
  });

  test('stop() releases the leases, so another instance takes over at its next pass', async () => {
    const { leases } = fakeLeases();
    const a = instance(leases, 'a');
    const b = instance(leases, 'b');
    await a.l.start();
    await b.l.start();
    await a.l.stop();
    assert.equal(a.l.leads('web'), false);
    await b.l.round();
    assert.ok(b.l.leads('web'));
  });

  test('a service dropped from the policy is released', async () => {
    const { leases, rows, db } = fakeLeases();
    const services = ['web', 'api'];
    const l = new LeaseLeadership({ leases, instanceId: 'a', services: () => services, log: pino({ level: 'silent' }), ttlMs: 6_000 });
    await l.start();
    services.pop();
    await l.round();
    assert.equal(l.leads('api'), false);
    assert.ok((rows.get('api')?.expiresAt ?? Infinity) <= db.now);
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
