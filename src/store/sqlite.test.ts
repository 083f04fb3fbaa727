import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { BadImages } from './bad-images.js';
import { Holds } from './holds.js';
import { Leases } from './leases.js';
import { migrate, MIGRATIONS } from './migrations.js';
import { Outbox } from './outbox.js';
import type { Sql } from './sql.js';
import { SQLITE_FILE, sqliteSql } from './sqlite.js';
import { Store, type NewDeployment, type SampleRecord } from './store.js';
import { classifyWriteFailure } from './write-failure.js';

// The embedded SQLite store on real files: the values each column gives back, the `$n`
// parameters, transactions, durability, file modes and the errors' SQLSTATEs.

const deployment = (service: string, at = new Date('2026-03-01T10:00:00.123Z')): NewDeployment => ({
  service, target: 'docker-container', container_id: `c-${service}`, container_name: service, from_image: null, from_ref: null,
  to_image: 'sha256:2', to_ref: 'app:v2', dry_run: true, started_at: at, detected_at: at, window_ends_at: new Date(at.getTime() + 60_000),
});

/** Resolves once the event loop has gone round `turns` times: long enough for anything not blocked to run. */
const turns = async (n = 5): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

describe('the embedded SQLite store', () => {
  let dir: string;
  let sql: Sql;
  let store: Store;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'rollguard-sqlite-test-'));
    sql = await sqliteSql(dir);
    assert.deepEqual(await migrate(sql), MIGRATIONS.map((m) => m.version));
    store = new Store(sql);
  });

  after(async () => {
    await sql.close();
    await rm(dir, { recursive: true, force: true });
  });

  describe('migrations', () => {
    it('records every version once; migrating again applies nothing', async () => {
      assert.deepEqual(await migrate(sql), []);
      const rows = await sql.query<{ version: number; name: string; applied_at: Date }>('SELECT version, name, applied_at FROM schema_migrations ORDER BY version');
      assert.deepEqual(rows.map((r) => [r.version, r.name]), MIGRATIONS.map((m) => [m.version, m.name]));
      assert.ok(rows.every((r) => r.applied_at instanceof Date && Math.abs(r.applied_at.getTime() - Date.now()) < 60_000));
    });

    it('keeps the state CHECK of migration 9: passed_early is a state, anything else is refused', async () => {
      const d = await store.insertDeployment({ ...deployment('check'), state: 'passed_early' });
      assert.equal(d.state, 'passed_early');
      await assert.rejects(store.updateDeployment(d.id, { state: 'nonsense' as never }), { code: '23514' });
    });
  });

  describe('values read back as PostgreSQL gives them', () => {
    it('a deployment: Date for timestamptz (milliseconds kept), boolean, null, numbers', async () => {
      const at = new Date('2026-03-01T10:00:00.123Z');
      const d = await store.insertDeployment(deployment('types', at));
      assert.ok(d.started_at instanceof Date);
      assert.equal(d.started_at.toISOString(), '2026-03-01T10:00:00.123Z');
      assert.equal(d.window_ends_at.getTime(), at.getTime() + 60_000);
      assert.equal(d.dry_run, true);
      assert.equal(d.decided_at, null);
      assert.equal(d.from_image, null);
      assert.equal(d.attempts, 0);
      assert.equal(d.state, 'watching');
      await store.updateDeployment(d.id, { state: 'passed', decided_at: new Date(at.getTime() + 5), attempts: 2, phase: 'done' });
      const back = await store.getDeployment(d.id);
      assert.deepEqual(back, { ...d, state: 'passed', decided_at: new Date(at.getTime() + 5), attempts: 2, phase: 'done' });
    });

    it('samples: +Inf, -Inf, NaN, null and finite values, and their rules as parsed JSON', async () => {
      const d = await store.insertDeployment(deployment('samples'));
      const taken = new Date('2026-03-01T10:00:01Z');
      const values = [Infinity, -Infinity, Number.NaN, null, 0.25, 3];
      await store.insertSamples(values.map((value, i) => ({
        deployment_id: d.id, stage: 'watch', signal: `s${i}`, taken_at: new Date(taken.getTime() + i), value, result: 'ok', rules: { 'error rate': i % 2 ? 'breach' : 'ok' }, detail: null, latency_ms: 1.5,
      })));
      const kept = await store.listSamples(d.id);
      assert.deepEqual(kept.map((s) => s.value), values);
      assert.deepEqual(kept[1]?.rules, { 'error rate': 'breach' });
      assert.deepEqual(kept[0]?.taken_at, taken);
      assert.equal(kept[0]?.latency_ms, 1.5);
      assert.equal(kept[0]?.deployment_id, d.id);
    });

    it('actions and known-good: boolean false, JSON objects with nested values, null deployment', async () => {
      const d = await store.insertDeployment(deployment('kg'));
      const at = new Date('2026-03-01T10:00:02Z');
      await store.insertAction({ deployment_id: d.id, attempt: 1, kind: 'stop-bad', started_at: at, finished_at: at, ok: false, detail: 'x' });
      assert.deepEqual(await store.listActions(d.id), [{ deployment_id: d.id, attempt: 1, kind: 'stop-bad', started_at: at, finished_at: at, ok: false, detail: 'x' }]);
      const spec = { Image: 'app:v1', Env: ['A=1', 'B=é'], HostConfig: { Memory: 0, Privileged: false, Binds: null }, n: 1.5 };
      await store.setKnownGood({ service: 'kg', target: 'docker-container', image_id: 'sha256:1', image_ref: 'app:v1', container_name: 'kg', spec: spec as never, deployment_id: null, since: at });
      assert.deepEqual(await store.getKnownGood('kg'), { service: 'kg', target: 'docker-container', image_id: 'sha256:1', image_ref: 'app:v1', container_name: 'kg', spec, deployment_id: null, since: at });
      await store.setKnownGood({ service: 'kg', target: 'docker-container', image_id: 'sha256:3', image_ref: 'app:v3', container_name: 'kg', spec: {} as never, deployment_id: d.id, since: at });
      assert.equal((await store.getKnownGood('kg'))?.image_id, 'sha256:3', 'ON CONFLICT updates');
    });

    it('holds, bad images and the revert history', async () => {
      const d = await store.insertDeployment({ ...deployment('hb'), dry_run: false });
      const at = new Date('2026-03-01T11:00:00Z');
      const holds = new Holds(sql);
      const hold = await holds.add({ service: 'hb', deployment_id: d.id, kind: 'hold', reason: 'fix forward', created_at: at, until: new Date(at.getTime() + 60_000) });
      assert.deepEqual(hold, { id: hold.id, service: 'hb', deployment_id: d.id, kind: 'hold', reason: 'fix forward', created_at: at, until: new Date(at.getTime() + 60_000), released_at: null });
      assert.deepEqual((await holds.active(at)).map((h) => h.id), [hold.id]);
      assert.deepEqual(await holds.active(new Date(at.getTime() + 60_000)), [], 'past its deadline');
      await holds.release(hold.id, at);
      assert.deepEqual(await holds.active(at), []);

      const bad = new BadImages(sql);
      await bad.mark({ service: 'hb', image_id: 'sha256:2', image_ref: 'app:v2', deployment_id: d.id, marked_at: at, reason: 'r1' });
      await bad.mark({ service: 'hb', image_id: 'sha256:2', image_ref: 'app:v2', deployment_id: d.id, marked_at: new Date(at.getTime() + 1), reason: 'r2' });
      assert.deepEqual(await bad.forService('hb'), [{ service: 'hb', image_id: 'sha256:2', image_ref: 'app:v2', deployment_id: d.id, marked_at: new Date(at.getTime() + 1), reason: 'r2' }]);
      await bad.unmark('hb', 'sha256:2', at);
      assert.equal((await bad.forService('hb')).length, 1, 'a mark newer than upTo stays');
      await store.insertDecision({ deployment_id: d.id, decided_at: at, kind: 'rollback', rule: 'r', severity: 'P0' });
      await store.insertDecision({ deployment_id: d.id, decided_at: new Date(at.getTime() + 9), kind: 'rollback' });
      assert.deepEqual(await bad.revertsSince('hb', at), [{ deployment_id: d.id, container_id: 'c-hb', decided_at: at }]);
      assert.deepEqual(await bad.revertsSince('hb', new Date(at.getTime() + 10)), []);
    });

    it('listDeployments filters by service only when one is given', async () => {
      await store.insertDeployment(deployment('list-a'));
      await store.insertDeployment(deployment('list-b'));
      assert.deepEqual((await store.listDeployments({ service: 'list-b' })).map((d) => d.service), ['list-b']);
      const all = await store.listDeployments({ limit: 2 });
      assert.deepEqual(all.map((d) => d.service), ['list-b', 'list-a'], 'newest first');
    });
  });

  describe('the outbox on the database clock', () => {
    const item = (channel: string, key: string, deploymentId: number | null = null) => ({
      deployment_id: deploymentId, event: 'test', channel, dedup_key: key, created_at: new Date(),
      payload: { kind: 'test', severity: 'P2', title: 't', summary: 's', at: new Date().toISOString(), samples: [{ at: '', value: Infinity, result: 'breach' }] } as never,
    });

    it('adds once per key, claims, renews, fails with a retry, holds the channel, then sends', async () => {
      const outbox = new Outbox(sql);
      const once = item('o1', 'k1');
      assert.deepEqual(await outbox.add([once, once]), { added: 1, duplicates: [once] });
      const claimed = await outbox.claimNext('o1', 60_000);
      assert.ok(claimed, 'a due message is claimed');
      assert.match(claimed.delivery_id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.equal(claimed.payload.samples?.[0]?.value, Infinity);
      assert.ok(claimed.next_attempt_at.getTime() > Date.now() + 50_000, 'the claim pushes the next attempt past the lease');
      assert.equal(await outbox.claimNext('o1', 60_000), undefined, 'claimed already');
      assert.equal(await outbox.renew(claimed, 120_000), true);
      assert.equal(await outbox.renew({ id: claimed.id, claim: 'other' }, 1), false);
      await outbox.markFailed(claimed, 'HTTP 503', 0);
      const again = await outbox.claimNext('o1', 60_000);
      assert.equal(again?.id, claimed.id, 'due again at once');
      assert.equal(again?.attempts, 1);
      await outbox.markFailed(again, 'HTTP 503', 0);
      await outbox.holdChannel('o1', 3_600_000);
      assert.equal(await outbox.claimNext('o1', 60_000), undefined, 'held for an hour');
      const [row] = await outbox.list({ limit: 1 });
      assert.ok(row && row.next_attempt_at.getTime() > Date.now() + 3_500_000);
      await outbox.markSent(claimed.id, new Date());
      assert.deepEqual((await outbox.deliveryByChannel()).find((c) => c.channel === 'o1'), { channel: 'o1', pending: 0, failed: 0, sent: 1, last_error: null });
    });

    it('gives up with a null retry; counts and ages pending messages; finds events; claims outside a set of channels', async () => {
      const d = await store.insertDeployment(deployment('ob'));
      const outbox = new Outbox(sql);
      await outbox.add([item('o2', 'k2', d.id), item('o3', 'k3', d.id)]);
      const pending = await outbox.pendingWithAgeByChannel();
      assert.equal(pending.o2?.pending, 1);
      assert.ok(pending.o2?.oldest instanceof Date);
      assert.equal(await outbox.hasEvent(d.id, 'o2', ['deployment_detected', 'test']), true);
      assert.equal(await outbox.hasEvent(d.id, 'o2', ['deployment_detected']), false);
      const outside = await outbox.claimOutside(['o1', 'o2'], 60_000);
      assert.equal(outside?.channel, 'o3');
      assert.equal(outside?.deployment_uid?.length, 16);
      await outbox.markFailed(outside, 'gone from the policy', null);
      assert.deepEqual((await outbox.deliveryByChannel()).find((c) => c.channel === 'o3'), { channel: 'o3', pending: 0, failed: 1, sent: 0, last_error: 'gone from the policy' });
      assert.deepEqual((await outbox.list({ deploymentId: d.id })).map((i) => [i.channel, i.status]), [['o3', 'failed'], ['o2', 'pending']]);
    });
  });

  describe('statements', () => {
    it('a parameter used twice, and in any order', async () => {
      assert.deepEqual(await sql.query('SELECT $2 AS b, $1 AS a, $1 || $2 AS ab', ['x', 'y']), [{ b: 'y', a: 'x', ab: 'xy' }]);
    });

    it('an integer is bound as one: a text column reads "5", not "5.0"', async () => {
      const d = await store.insertDeployment({ ...deployment('int'), reason: 5 as never });
      assert.equal(d.reason, '5');
    });

    it('refuses a parameter it cannot store, or an invalid date, as a TypeError (a rejected write)', async () => {
      await assert.rejects(sql.query('SELECT $1', [Symbol('x')]), TypeError);
      await assert.rejects(store.insertDeployment(deployment('bad-date', new Date(Number.NaN))), (err: Error) => err instanceof TypeError && classifyWriteFailure(err) === 'rejected');
    });

    it("gives PostgreSQL's SQLSTATE for SQLite's errors: constraints rejected, a locked database refusing", async () => {
      const check = await sql.query("INSERT INTO decisions (deployment_id, decided_at, kind) VALUES (1, 'yesterday', 'x')").catch((e: unknown) => e);
      assert.equal((check as { code?: string }).code, '23514', String(check));
      assert.equal(classifyWriteFailure(check), 'rejected');
      const fk = await store.insertDecision({ deployment_id: 999_999, decided_at: new Date(), kind: 'x' }).catch((e: unknown) => e);
      assert.equal((fk as { code?: string }).code, '23503', String(fk));
      const notNull = await sql.query('INSERT INTO decisions (deployment_id, decided_at) VALUES (1, 1)').catch((e: unknown) => e);
      assert.equal((notNull as { code?: string }).code, '23502');
      const syntax = await sql.query('SELEKT 1').catch((e: unknown) => e);
      assert.equal((syntax as { code?: string }).code, '42000');
      assert.equal(classifyWriteFailure(syntax), 'rejected');
      const busy = Object.assign(new Error('database is locked'), { name: 'SqliteError', code: 'SQLITE_BUSY' });
      const { fromSqlite } = await import('./sqlite-errors.js');
      assert.equal(classifyWriteFailure(fromSqlite(busy)), 'refusing');
      assert.equal(classifyWriteFailure(fromSqlite(Object.assign(new Error('disk full'), { name: 'SqliteError', code: 'SQLITE_FULL' }))), 'refusing');
    });

    it('many samples at once (a tick of thousands of watches) are written in one transaction, past the parameter limit of one multi-row INSERT', async () => {
      const d = await store.insertDeployment(deployment('many'));
      const samples = (n: number, signal: string): SampleRecord[] => Array.from({ length: n }, (_, i) => ({
        deployment_id: d.id, stage: 'watch', signal, taken_at: new Date(1_700_000_000_000 + i), value: i % 7 ? i / 10 : Infinity, result: 'ok', rules: {}, detail: null, latency_ms: 1,
      }));
      // 10,000 rows of 9 values: one multi-row INSERT would need 90,000 parameters (SQLite takes 32,766).
      await store.insertSamples(samples(10_000, 'error_rate'));
      const kept = await store.listSamples(d.id);
      assert.equal(kept.length, 10_000);
      assert.deepEqual(kept.slice(0, 3).map((x) => x.value), [Infinity, 0.1, 0.2]);
      // All or none: a batch with one row the store rejects writes nothing.
      const bad = [...samples(100, 'ready'), { ...samples(1, 'ready')[0] as SampleRecord, result: 'maybe' as never }];
      await assert.rejects(store.insertSamples(bad), (err: unknown) => classifyWriteFailure(err) === 'rejected');
      assert.equal((await store.listSamples(d.id)).length, 10_000, 'nothing of the rejected batch was written');
    });

    it('leases are PostgreSQL only', () => {
      assert.throws(() => new Leases(sql), /PostgreSQL only/);
    });
  });

  describe('transactions', () => {
    it('rolls back when the function throws, and the error reaches the caller', async () => {
      const before = (await store.listDeployments({ service: 'rolled' })).length;
      await assert.rejects(
        sql.transaction(async (tx) => {
          await new Store(tx).insertDeployment(deployment('rolled'));
          throw new Error('changed my mind');
        }),
        /changed my mind/,
      );
      assert.equal((await store.listDeployments({ service: 'rolled' })).length, before);
    });

    it('one at a time: a second transaction and a plain statement wait until the first commits, and never see it half done', async () => {
      const order: string[] = [];
      let release!: () => void;
      const latch = new Promise<void>((resolve) => { release = resolve; });
      const first = sql.transaction(async (tx) => {
        order.push('first begins');
        await new Store(tx).insertDeployment(deployment('serial'));
        await latch;
        await new Store(tx).insertDeployment(deployment('serial'));
        order.push('first commits');
      });
      await turns();
      const second = sql.transaction(async (tx) => {
        order.push('second begins');
        order.push(`second sees ${(await new Store(tx).listDeployments({ service: 'serial' })).length}`);
      });
      const plain = store.listDeployments({ service: 'serial' }).then((rows) => order.push(`plain sees ${rows.length}`));
      await turns(20);
      assert.deepEqual(order, ['first begins'], 'both wait while the first is open');
      release();
      await Promise.all([first, second, plain]);
      assert.deepEqual(order, ['first begins', 'first commits', 'second begins', 'second sees 2', 'plain sees 2']);
    });

    it("a statement on the store itself from inside a transaction fails at once instead of waiting for it forever", async () => {
      await assert.rejects(
        sql.transaction(async () => sql.query('SELECT 1')),
        /must use the transaction's handle/,
      );
      assert.deepEqual(await sql.query('SELECT 1 AS one'), [{ one: 1 }], 'and the store goes on');
    });

    it("the transaction's handle is refused once it has ended", async () => {
      let kept: Sql | undefined;
      await sql.transaction(async (tx) => { kept = tx; });
      await assert.rejects(kept!.query('SELECT 1'), /after its transaction ended/);
    });

    it('a transaction started from within runs in it (as on PostgreSQL)', async () => {
      const n = await sql.transaction(async (tx) => tx.transaction(async (inner) => (await inner.query<{ n: number }>('SELECT 41 + 1 AS n'))[0]?.n));
      assert.equal(n, 42);
    });
  });
});

describe('the SQLite file', () => {
  it('is created private (0600, its -wal and -shm too) whatever the umask, in WAL mode with synchronous=FULL and foreign keys on', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rollguard-sqlite-files-'));
    const umask = process.umask(0);
    try {
      const sql = await sqliteSql(dir);
      try {
        await migrate(sql);
        for (const suffix of ['', '-wal', '-shm']) assert.equal((await stat(path.join(dir, SQLITE_FILE + suffix))).mode & 0o777, 0o600, `${SQLITE_FILE}${suffix}`);
        assert.deepEqual(await sql.query('SELECT * FROM pragma_journal_mode'), [{ journal_mode: 'wal' }]);
        assert.deepEqual(await sql.query('SELECT * FROM pragma_synchronous'), [{ synchronous: 2 }]);
        assert.deepEqual(await sql.query('SELECT * FROM pragma_foreign_keys'), [{ foreign_keys: 1 }]);
      } finally {
        await sql.close();
      }
    } finally {
      process.umask(umask);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('fault: kill -9 right after a commit → the row is there when the file is opened again', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rollguard-sqlite-crash-'));
    try {
      const url = (f: string): string => pathToFileURL(path.join(import.meta.dirname, f)).href;
      const script = `
        import { sqliteSql } from ${JSON.stringify(url('sqlite.ts'))};
        import { migrate } from ${JSON.stringify(url('migrations.ts'))};
        import { Store } from ${JSON.stringify(url('store.ts'))};
        const sql = await sqliteSql(${JSON.stringify(dir)});
        await migrate(sql);
        const at = new Date();
        const d = await new Store(sql).insertDeployment({ service: 'crash', target: 'docker-container', container_id: 'c', container_name: 'n', from_image: null, from_ref: null,
          to_image: 'i', to_ref: 'r', dry_run: false, started_at: at, detected_at: at, window_ends_at: at });
        await sql.transaction(async (tx) => tx.query("UPDATE deployments SET state = 'passed', reason = 'committed' WHERE id = $1", [d.id]));
        process.stdout.write('committed ' + d.id + '\\n');
        setInterval(() => {}, 1000);
      `;
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
      let id = 0;
      for await (const line of createInterface({ input: child.stdout })) {
        const m = /^committed (\d+)$/.exec(line);
        if (m) {
          id = Number(m[1]);
          child.kill('SIGKILL');
          break;
        }
      }
      assert.equal(await exited, 'SIGKILL');
      const sql = await sqliteSql(dir);
      try {
        const d = await new Store(sql).getDeployment(id);
        assert.equal(d?.state, 'passed');
        assert.equal(d?.reason, 'committed');
      } finally {
        await sql.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
