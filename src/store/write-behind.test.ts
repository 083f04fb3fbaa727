import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import type { NewDeployment, Store } from './store.js';
import { isUnreachable, WriteBehind } from './write-behind.js';

const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });

/** A store that records what it is given, and refuses connections while `down`. */
function fakeStore() {
  const written: { op: string; args: unknown[] }[] = [];
  const state = { down: false, nextId: 100 };
  const op = (name: string) => async (...args: unknown[]) => {
    if (state.down) throw refused;
    if (name === 'insertDecision' && (args[0] as { kind: string }).kind === 'invalid') throw Object.assign(new Error('violates check constraint'), { code: '23514' });
    written.push({ op: name, args });
    if (name === 'insertDeployment') return { ...(args[0] as object), id: state.nextId++, state: 'watching', reason: null, attempts: 0, decided_at: null, recovered_at: null };
  };
  const store = {
    insertDeployment: op('insertDeployment'),
    updateDeployment: op('updateDeployment'),
    insertSamples: op('insertSamples'),
    insertDecision: op('insertDecision'),
    insertAction: op('insertAction'),
    setKnownGood: op('setKnownGood'),
  } as unknown as Store;
  return { store, written, state };
}

const newDeployment: NewDeployment = {
  service: 'web', target: 'docker-container', container_id: 'c1', container_name: 'web', from_image: 'sha256:a', from_ref: 'app:v1', to_image: 'sha256:b', to_ref: 'app:v2',
  dry_run: false, started_at: new Date(0), detected_at: new Date(0), window_ends_at: new Date(60_000),
};
const log = pino({ level: 'silent' });

describe('WriteBehind', () => {
  test('writes go straight to a store that answers', async () => {
    const { store, written } = fakeStore();
    const writes = new WriteBehind(store, { log });
    const d = await writes.insertDeployment(newDeployment);
    await writes.updateDeployment(d.id, { state: 'passed' });
    assert.equal(d.id, 100);
    assert.deepEqual(written.map((w) => w.op), ['insertDeployment', 'updateDeployment']);
    assert.equal(writes.waiting, 0);
  });

  test('during an outage a deployment gets a provisional ID and every write is kept, then made in order with the real ID', async () => {
    const { store, written, state } = fakeStore();
    let errors = 0;
    const writes = new WriteBehind(store, { log, onError: () => errors++, retryMs: 60_000 });
    state.down = true;
    const d = await writes.insertDeployment(newDeployment);
    assert.ok(d.id < 0, 'a provisional ID is negative');
    const provisional = d.id;
    await writes.insertSamples([{ deployment_id: d.id, stage: 'watch', signal: 'error_rate', taken_at: new Date(1), value: 0.2, result: 'breach', rules: {}, detail: null, latency_ms: 1 }]);
    await writes.insertDecision({ deployment_id: d.id, decided_at: new Date(2), kind: 'rollback' });
    await writes.updateDeployment(d.id, { state: 'rolled_back' });
    assert.equal(written.length, 0);
    assert.equal(writes.waiting, 4);
    assert.equal(errors, 1, 'the outage is counted once, not once per kept write');

    await writes.flush();
    assert.equal(writes.waiting, 4, 'still down: nothing is dropped');
    state.down = false;
    await writes.flush();
    assert.equal(writes.waiting, 0);
    assert.deepEqual(written.map((w) => w.op), ['insertDeployment', 'insertSamples', 'insertDecision', 'updateDeployment']);
    assert.equal(d.id, 100, 'the deployment object now has the real ID');
    assert.equal((written[1]?.args[0] as { deployment_id: number }[])[0]?.deployment_id, 100);
    assert.equal((written[2]?.args[0] as { deployment_id: number }).deployment_id, 100);
    assert.equal(written[3]?.args[0], 100);
    assert.notEqual(provisional, 100);
  });

  test('a write made while others wait goes behind them, even when the store answers again', async () => {
    const { store, written, state } = fakeStore();
    const writes = new WriteBehind(store, { log, retryMs: 60_000 });
    state.down = true;
    await writes.insertDecision({ deployment_id: 1, decided_at: new Date(1), kind: 'first' });
    state.down = false;
    await writes.insertDecision({ deployment_id: 1, decided_at: new Date(2), kind: 'second' });
    assert.equal(written.length, 0, 'not ahead of the kept one');
    await writes.flush();
    assert.deepEqual(written.map((w) => (w.args[0] as { kind: string }).kind), ['first', 'second']);
  });

  test('a write the store refuses for another reason is dropped and does not block the rest', async () => {
    const { store, written, state } = fakeStore();
    const writes = new WriteBehind(store, { log, retryMs: 60_000 });
    state.down = true;
    await writes.insertDecision({ deployment_id: 1, decided_at: new Date(1), kind: 'invalid' });
    await writes.insertDecision({ deployment_id: 1, decided_at: new Date(2), kind: 'valid' });
    state.down = false;
    await writes.flush();
    assert.deepEqual(written.map((w) => (w.args[0] as { kind: string }).kind), ['valid']);
    assert.equal(writes.waiting, 0);
    await writes.insertDecision({ deployment_id: 1, decided_at: new Date(3), kind: 'invalid' });
    assert.equal(writes.waiting, 0, 'refused at once: dropped, not kept');
  });

  test('the retry timer writes what was kept without being asked', async () => {
    const { store, written, state } = fakeStore();
    const writes = new WriteBehind(store, { log, retryMs: 20 });
    state.down = true;
    await writes.insertAction({ deployment_id: 1, attempt: 1, kind: 'stop-bad', started_at: new Date(0), finished_at: new Date(1), ok: true });
    state.down = false;
    for (let i = 0; i < 100 && writes.waiting; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(writes.waiting, 0);
    assert.equal(written[0]?.op, 'insertAction');
  });
});

describe('isUnreachable', () => {
  test('connection errors and server shutdowns are outages', () => {
    assert.ok(isUnreachable(refused));
    assert.ok(isUnreachable({ code: '57P01', message: 'terminating connection due to administrator command' }));
    assert.ok(isUnreachable({ code: '08006', message: 'connection failure' }));
    assert.ok(isUnreachable(new Error('Connection terminated unexpectedly')));
    assert.ok(isUnreachable(new Error('timeout exceeded when trying to connect')));
  });

  test('a refused statement is not an outage', () => {
    assert.ok(!isUnreachable({ code: '23505', message: 'duplicate key value violates unique constraint' }));
    assert.ok(!isUnreachable(new Error('syntax error at or near "FROM"')));
  });
});
