import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import pino from 'pino';
import type { NewDeployment, SampleRecord, Store } from './store.js';
import { MAX_SAMPLES_PER_STATEMENT, WriteBehind } from './write-behind.js';

const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
/** PostgreSQL's errors as node-postgres gives them: a message and the SQLSTATE in `code`. */
const pgError = (code: string, message: string): Error => Object.assign(new Error(message), { code, severity: 'ERROR' });
const readOnly = pgError('25006', 'cannot execute INSERT in a read-only transaction');
const statementTimeout = pgError('57014', 'canceling statement due to statement timeout');

/**
 * A store that records what it is given; refuses connections while `down`, throws `fail` while
 * set, and holds every write until `hold` resolves while it is set.
 */
function fakeStore() {
  const written: { op: string; args: unknown[] }[] = [];
  const state: { down: boolean; nextId: number; fail?: Error; hold?: Promise<void>; attempts: number } = { down: false, nextId: 100, attempts: 0 };
  const op = (name: string) => async (...args: unknown[]) => {
    state.attempts++;
    if (state.hold) await state.hold;
    if (state.down) throw refused;
    if (state.fail) throw state.fail;
    if (name === 'insertDecision' && (args[0] as { kind: string }).kind === 'invalid') throw pgError('23514', 'new row for relation "decisions" violates check constraint');
    if (name === 'insertSamples' && (args[0] as SampleRecord[]).some((r) => r.signal === 'invalid')) throw pgError('22P02', 'invalid input syntax for type double precision');
    if (name === 'insertDeployment' && (args[0] as { service: string }).service === 'invalid') throw pgError('22001', 'value too long for type character varying(64)');
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

function sample(deployment: number, value = 0.01): SampleRecord {
  return { deployment_id: deployment, stage: 'watch', signal: 'error_rate', taken_at: new Date(1), value, result: 'ok', rules: {}, detail: null, latency_ms: 1 };
}

/** A logger that keeps every line it writes, parsed. */
function capturedLog() {
  const lines: { level: number; msg: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as { level: number; msg: string });
      done();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines, at: (level: number) => lines.filter((l) => l.level === level).map((l) => l.msg) };
}

const until = async (what: string, check: () => boolean, timeoutMs = 2_000): Promise<void> => {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

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

  for (const [what, err] of [
    ['set read-only (25006)', readOnly],
    ['with a statement timeout (57014)', statementTimeout],
    ['with its disk full (53100)', pgError('53100', 'could not extend file "base/16384/16385": No space left on device')],
    ['with a lock timeout (55P03)', pgError('55P03', 'canceling statement due to lock timeout')],
  ] as const) {
    test(`a store ${what} refuses writes: each is kept, in order, with a provisional ID, and made once it takes them`, async () => {
      const { store, written, state } = fakeStore();
      const writes = new WriteBehind(store, { log, retryMs: 60_000 });
      state.fail = err;
      const d = await writes.insertDeployment(newDeployment);
      assert.ok(d.id < 0, 'a provisional ID: the store has not taken the deployment');
      await writes.insertDecision({ deployment_id: d.id, decided_at: new Date(1), kind: 'rollback' });
      await writes.updateDeployment(d.id, { state: 'rolled_back' });
      assert.equal(writes.waiting, 3, 'nothing dropped');
      await writes.flush();
      assert.equal(writes.waiting, 3, 'still refused: still kept, however often retried');
      state.fail = undefined;
      await writes.flush();
      assert.equal(writes.waiting, 0);
      assert.deepEqual(written.map((w) => w.op), ['insertDeployment', 'insertDecision', 'updateDeployment']);
      assert.equal(d.id, 100);
      assert.equal((written[1]?.args[0] as { deployment_id: number }).deployment_id, 100);
      assert.equal(written[2]?.args[0], 100);
    });
  }

  test('while the store refuses writes, callers do not wait on it: later writes are kept without being tried', async () => {
    const { store, state } = fakeStore();
    const writes = new WriteBehind(store, { log, retryMs: 60_000 });
    state.fail = statementTimeout;
    await writes.insertSamples([sample(1)]);
    const tried = state.attempts;
    for (let i = 0; i < 5; i++) await writes.insertAction({ deployment_id: 1, attempt: 1, kind: 'stop-bad', started_at: new Date(0), finished_at: new Date(1), ok: true });
    assert.equal(state.attempts, tried, 'not tried again until the retry');
    assert.equal(writes.waiting, 6);
  });

  test('a caller waits for a slow store no longer than waitMs; its deployment gets a provisional ID that becomes the real one', async () => {
    const { store, written, state } = fakeStore();
    const writes = new WriteBehind(store, { log, waitMs: 50, retryMs: 60_000 });
    let release!: () => void;
    state.hold = new Promise<void>((r) => (release = r));
    const started = Date.now();
    const d = await writes.insertDeployment(newDeployment);
    assert.ok(Date.now() - started < 1_000, 'the caller went on');
    assert.ok(d.id < 0);
    await writes.insertDecision({ deployment_id: d.id, decided_at: new Date(1), kind: 'rollback' });
    assert.ok(Date.now() - started < 1_000, 'and the next caller did not wait either');
    state.hold = undefined;
    release();
    await writes.flush();
    await until('the kept writes', () => writes.waiting === 0);
    assert.deepEqual(written.map((w) => w.op), ['insertDeployment', 'insertDecision']);
    assert.equal(d.id, 100);
    assert.equal((written[1]?.args[0] as { deployment_id: number }).deployment_id, 100);
  });

  test('a write the store rejects as wrong is retried with backoff a few times, then set aside in the file; the writes behind it go on', async () => {
    const { store, written, state } = fakeStore();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rg-write-behind-'));
    const file = path.join(dir, 'writes-set-aside.jsonl');
    let setAside = 0;
    const { log: captured, at } = capturedLog();
    const writes = new WriteBehind(store, { log: captured, retryMs: 250, rejectedAttempts: 3, setAsideFile: file, onSetAside: () => setAside++ });
    await writes.insertDecision({ deployment_id: 1, decided_at: new Date(1), kind: 'invalid', detail: 'the bad one' });
    await writes.insertDecision({ deployment_id: 1, decided_at: new Date(2), kind: 'valid' });
    assert.equal(written.length, 0, 'the one behind waits while the rejected one is retried');
    const before = state.attempts;
    await writes.flush();
    assert.equal(state.attempts, before, 'not retried before its backoff, however often the queue is flushed');
    await until('the rejected write set aside', () => writes.waiting === 0);
    assert.deepEqual(written.map((w) => (w.args[0] as { kind: string }).kind), ['valid']);
    assert.equal(setAside, 1);
    assert.equal(writes.setAside, 1);
    const lines = (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { what: string; error: { code: string }; record: { kind: string; detail: string } });
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.what, 'decision invalid');
    assert.equal(lines[0]?.error.code, '23514');
    assert.equal(lines[0]?.record.detail, 'the bad one', 'the record itself is kept');
    assert.equal(at(40).filter((m) => /rejected a write; retrying/.test(m)).length, 2, 'two retries, each logged');
    assert.equal(at(50).filter((m) => /set aside in the file/.test(m)).length, 1);
  });

  test('a deployment the store rejects is set aside, and so at once is every write that names it; the others go on', async () => {
    const { store, written, state } = fakeStore();
    const { log: captured, lines } = capturedLog();
    const writes = new WriteBehind(store, { log: captured, retryMs: 5, rejectedAttempts: 2 });
    const d = await writes.insertDeployment({ ...newDeployment, service: 'invalid' });
    assert.ok(d.id < 0, 'protection goes on under a provisional ID');
    await writes.insertSamples([{ deployment_id: d.id, stage: 'watch', signal: 'error_rate', taken_at: new Date(1), value: 0.2, result: 'breach', rules: {}, detail: null, latency_ms: 1 }]);
    await writes.setKnownGood({ service: 'web', target: 'docker-container', image_id: 'sha256:a', image_ref: 'app:v1', container_name: 'web', spec: {}, deployment_id: null, since: new Date(2) } as never);
    await until('the queue to empty', () => writes.waiting === 0);
    assert.equal(state.attempts, 3, 'the deployment twice, the known-good once; the samples are set aside without being tried');
    assert.deepEqual(written.map((w) => w.op), ['setKnownGood']);
    assert.equal(writes.setAside, 2);
    const logged = lines.filter((l) => /rejected a write every time/.test(l.msg)) as unknown as { what: string; deployment?: number; err: { message: string } }[];
    assert.deepEqual(logged.map((l) => l.what), ['deployment', 'samples'], 'each one named in the error log');
    assert.equal(logged[0]?.deployment, d.id);
    assert.match(logged[1]?.err.message ?? '', new RegExp(`names deployment ${d.id}`));
  });

  test('one warning per outage, then debug; the end of it at info', async () => {
    const { store, state } = fakeStore();
    const { log: captured, at } = capturedLog();
    const writes = new WriteBehind(store, { log: captured, retryMs: 60_000 });
    state.fail = readOnly;
    for (let i = 0; i < 3; i++) await writes.insertAction({ deployment_id: 1, attempt: 1, kind: 'verify', started_at: new Date(0), finished_at: new Date(1), ok: true });
    for (let i = 0; i < 3; i++) await writes.flush();
    assert.deepEqual(at(40), ['the store refuses writes; keeping them in memory and protecting on']);
    assert.equal(at(20).filter((m) => /still does not take writes/.test(m)).length, 3);
    state.fail = undefined;
    await writes.flush();
    assert.deepEqual(at(30), ['store is back; every write kept during the outage is recorded']);
    assert.equal(at(40).length, 1);
  });

  test('at a stop, what the store never took is set aside in the file, not lost', async () => {
    const { store, state } = fakeStore();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rg-write-behind-'));
    const file = path.join(dir, 'writes-set-aside.jsonl');
    const writes = new WriteBehind(store, { log, retryMs: 60_000, setAsideFile: file });
    state.fail = readOnly;
    const d = await writes.insertDeployment(newDeployment);
    await writes.updateDeployment(d.id, { state: 'rolled_back' });
    writes.close();
    const lines = (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { what: string; record: Record<string, unknown> });
    assert.deepEqual(lines.map((l) => l.what), ['deployment', 'deployment state']);
    assert.equal(lines[0]?.record.provisional_id, d.id);
    assert.equal(lines[1]?.record.deployment_id, d.id);
    assert.equal(lines[1]?.record.state, 'rolled_back');
    assert.equal(writes.waiting, 0);
  });
});

describe('WriteBehind: the samples of many watches', () => {
  const log = pino({ level: 'silent' });
  const samplesCalls = (written: { op: string; args: unknown[] }[]): SampleRecord[][] => written.filter((w) => w.op === 'insertSamples').map((w) => w.args[0] as SampleRecord[]);

  test('the samples of every watch that ticked in the same turn reach the store in one statement, in their place in the queue', async () => {
    const { store, written } = fakeStore();
    const writes = new WriteBehind(store, { log });
    const before = writes.insertDecision({ deployment_id: 1, decided_at: new Date(0), kind: 'migrations' });
    const ticks = Array.from({ length: 200 }, (_, i) => writes.insertSamples([sample(i + 1), { ...sample(i + 1), signal: 'ready' }]));
    const after = writes.insertAction({ deployment_id: 1, attempt: 1, kind: 'stop-bad', started_at: new Date(0), finished_at: new Date(1), ok: true });
    await Promise.all([before, ...ticks, after]);
    assert.deepEqual(written.map((w) => w.op), ['insertDecision', 'insertSamples', 'insertAction']);
    const [rows] = samplesCalls(written);
    assert.equal(rows?.length, 400);
    assert.deepEqual(rows?.slice(0, 4).map((r) => [r.deployment_id, r.signal]), [[1, 'error_rate'], [1, 'ready'], [2, 'error_rate'], [2, 'ready']], 'each watch\'s rows in the order given');
    assert.equal(writes.waiting, 0);
  });

  test('samples that come after the statement started go in the next one; a statement holds at most MAX_SAMPLES_PER_STATEMENT rows', async () => {
    const { store, written } = fakeStore();
    const writes = new WriteBehind(store, { log });
    const n = MAX_SAMPLES_PER_STATEMENT + 10;
    await Promise.all(Array.from({ length: n }, (_, i) => writes.insertSamples([sample(i + 1)])));
    assert.deepEqual(samplesCalls(written).map((rows) => rows.length), [MAX_SAMPLES_PER_STATEMENT, 10]);
    await writes.insertSamples([sample(1)]);
    assert.deepEqual(samplesCalls(written).map((rows) => rows.length), [MAX_SAMPLES_PER_STATEMENT, 10, 1]);
    assert.deepEqual(samplesCalls(written).flat().map((r) => r.deployment_id), [...Array.from({ length: n }, (_, i) => i + 1), 1], 'every row once, in order');
  });

  test('while the store is down, every tick\'s samples are kept and then written in few statements, in order', async () => {
    const { store, written, state } = fakeStore();
    const writes = new WriteBehind(store, { log, retryMs: 60_000 });
    state.down = true;
    for (let tick = 0; tick < 3; tick++) await Promise.all(Array.from({ length: 100 }, (_, i) => writes.insertSamples([sample(i + 1, tick)])));
    assert.equal(written.length, 0);
    state.down = false;
    await writes.flush();
    const calls = samplesCalls(written);
    assert.ok(calls.length <= 2, `300 rows kept through an outage are written in ${calls.length} statements`);
    assert.deepEqual(calls.flat().map((r) => r.value), [...Array(100).fill(0), ...Array(100).fill(1), ...Array(100).fill(2)]);
    assert.equal(writes.waiting, 0);
  });

  test('a batch the store rejects is split into each watch\'s samples: only the bad one is set aside, every other watch\'s samples are written', async () => {
    const { store, written } = fakeStore();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rg-wb-'));
    const file = path.join(dir, 'writes-set-aside.jsonl');
    const { log: lines, lines: logged } = capturedLog();
    const writes = new WriteBehind(store, { log: lines, retryMs: 5, setAsideFile: file });
    await Promise.all([
      writes.insertSamples([sample(1)]),
      writes.insertSamples([{ ...sample(2), signal: 'invalid' }]),
      writes.insertSamples([sample(3)]),
    ]);
    await until('every write made or set aside', () => writes.waiting === 0);
    assert.deepEqual(samplesCalls(written).flat().map((r) => r.deployment_id), [1, 3]);
    assert.equal(writes.setAside, 1);
    const kept = (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { what: string; record: SampleRecord[] });
    assert.deepEqual(kept.map((k) => [k.what, k.record.map((r) => r.deployment_id)]), [['samples', [2]]]);
    assert.ok(logged.some((l) => /rejected a batch of samples/.test(String(l.msg))));
  });
});
