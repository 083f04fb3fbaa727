import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { cp, lstat, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { BadImages } from './bad-images.js';
import { Holds } from './holds.js';
import { Leases } from './leases.js';
import { migrate, MIGRATIONS } from './migrations.js';
import { openStore } from './open-store.js';
import { convertPglite, CONVERT_LOCK } from './pglite-convert.js';
import { Outbox } from './outbox.js';
import { PGLITE_DIR, pgliteSql } from './pglite.js';
import type { Sql } from './sql.js';
import { SQLITE_FILE, sqliteSql } from './sqlite.js';
import { Store, type NewDeployment } from './store.js';

// The upgrade from an older version's embedded PGlite database: real PGlite directories, made
// with the PGlite adapter and migrations, rows in every table, converted by openStore.

const TABLES: Record<string, string> = {
  schema_migrations: 'version', deployments: 'id', samples: 'id', decisions: 'id', actions: 'id',
  known_good: 'service', outbox: 'id', holds: 'id', bad_images: 'service, image_id', leases: 'service',
};

/** Every row of every table, in key order. */
async function dump(sql: Sql): Promise<Record<string, Record<string, unknown>[]>> {
  const out: Record<string, Record<string, unknown>[]> = {};
  for (const [table, key] of Object.entries(TABLES)) out[table] = await sql.query(`SELECT * FROM ${table} ORDER BY ${key}`);
  return out;
}

const at = new Date('2026-02-01T08:00:00.250Z');
const later = (ms: number): Date => new Date(at.getTime() + ms);
const deployment = (service: string, extra: Partial<NewDeployment> = {}): NewDeployment => ({
  service, target: 'docker-container', container_id: `c-${service}`, container_name: service, from_image: 'sha256:1', from_ref: 'app:v1',
  to_image: 'sha256:2', to_ref: 'app:v2', dry_run: false, started_at: at, detected_at: later(10), window_ends_at: later(60_000), ...extra,
});

/** Rows in every table, through the repositories, as a running rollguard writes them. */
async function fill(sql: Sql): Promise<void> {
  const store = new Store(sql);
  const a = await store.insertDeployment(deployment('web'));
  const b = await store.insertDeployment(deployment('api', { dry_run: true, reason: 'dry run' }));
  await store.updateDeployment(a.id, { state: 'rolled_back', reason: 'error rate', decided_at: later(20_000), recovered_at: later(25_000), attempts: 1, phase: 'done' });
  await store.insertSamples([Infinity, -Infinity, Number.NaN, null, 0.042].map((value, i) => ({
    deployment_id: a.id, stage: i < 4 ? 'watch' : 'recovery', signal: 'error_rate', taken_at: later(1_000 * i), value, result: i === 3 ? 'no-data' : 'breach', rules: { 'error rate above 5%': 'breach' }, detail: i === 3 ? 'no data' : null, latency_ms: 2.5 + i,
  })));
  await store.insertDecision({ deployment_id: a.id, decided_at: later(20_000), kind: 'rollback', rule: 'error rate above 5%', severity: 'P0', detail: 'breached 3 times' });
  await store.insertAction({ deployment_id: a.id, attempt: 1, kind: 'stop-bad', started_at: later(20_100), finished_at: later(20_900), ok: true });
  await store.insertAction({ deployment_id: a.id, attempt: 1, kind: 'verify', started_at: later(21_000), finished_at: later(24_000), ok: false, detail: 'not ready' });
  await store.setKnownGood({ service: 'web', target: 'docker-container', image_id: 'sha256:1', image_ref: 'app:v1', container_name: 'web', spec: { Image: 'app:v1', Env: ['SECRET=x'], HostConfig: { Memory: 0 } } as never, deployment_id: null, since: at });
  const outbox = new Outbox(sql);
  const payload = (title: string) => ({ kind: 'rollback_started', severity: 'P0', title, summary: 's', at: at.toISOString(), samples: [{ at: at.toISOString(), value: Infinity, result: 'breach' }] }) as never;
  await outbox.add([
    { deployment_id: a.id, event: 'rollback_started', channel: 'hook', dedup_key: 'k1', payload: payload('one'), created_at: at },
    { deployment_id: a.id, event: 'rollback_started', channel: 'mail', dedup_key: 'k2', payload: payload('two'), created_at: at },
    { deployment_id: null, event: 'digest', channel: 'mail', dedup_key: 'k3', payload: payload('three'), created_at: at },
  ]);
  const claimed = await outbox.claimNext('hook', 60_000);
  assert.ok(claimed);
  await outbox.markSent(claimed.id, later(30_000));
  const failing = await outbox.claimNext('mail', 60_000);
  assert.ok(failing);
  await outbox.markFailed(failing, 'SMTP 451', 120_000);
  const holds = new Holds(sql);
  const hold = await holds.add({ service: 'api', deployment_id: b.id, kind: 'hold', reason: 'fix forward', created_at: at, until: later(3_600_000) });
  await holds.release(hold.id, later(60_000));
  await holds.add({ service: 'api', deployment_id: b.id, kind: 'freeze', reason: 'migrations', created_at: later(1), until: null });
  await new BadImages(sql).mark({ service: 'web', image_id: 'sha256:2', image_ref: 'app:v2', deployment_id: a.id, marked_at: later(20_000), reason: 'error rate' });
  await new Leases(sql).claim('web', 'host-a', null, 60_000);
}

function capturedLog(): { log: pino.Logger; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const stream = new Writable({ write(chunk, _enc, cb) { out.push(String(chunk)); cb(); } });
  return { log: pino({ level: 'info' }, stream), lines: () => out.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

/** Every file and directory under `dir` whose mode is not private. */
async function notPrivate(dir: string): Promise<string[]> {
  const open: string[] = [];
  const walk = async (at: string): Promise<void> => {
    const info = await lstat(at);
    if (info.mode & 0o077) open.push(`${path.relative(dir, at)} ${(info.mode & 0o777).toString(8)}`);
    if (info.isDirectory()) for (const name of await readdir(at)) await walk(path.join(at, name));
  };
  await walk(dir);
  return open;
}

describe('converting an older embedded PGlite database to SQLite', { timeout: 300_000 }, () => {
  let root: string;
  /** A state directory holding a filled PGlite database at the current schema, closed. */
  let template: string;
  let expected: Record<string, Record<string, unknown>[]>;

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'rollguard-pglite-convert-'));
    template = path.join(root, 'template');
    const pglite = await pgliteSql(template);
    try {
      await migrate(pglite);
      await fill(pglite);
      expected = await dump(pglite);
    } finally {
      await pglite.close();
    }
    for (const [table, rows] of Object.entries(expected)) assert.ok(rows.length > 0, `the template has rows in ${table}`);
  });

  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const stateDirFrom = async (name: string): Promise<string> => {
    const dir = path.join(root, name);
    await cp(template, dir, { recursive: true });
    return dir;
  };

  it('copies every row of every table once, IDs kept, then keeps the PGlite directory renamed and says so', async () => {
    const stateDir = await stateDirFrom('convert');
    const { log, lines } = capturedLog();
    const store = await openStore({ stateDir, log });
    try {
      assert.equal(store.sql.kind, 'sqlite');
      assert.deepEqual(await dump(store.sql), expected);
      const names = await readdir(stateDir);
      const kept = names.filter((n) => /^pglite\.converted-\d{8}T\d{6}Z$/.test(n));
      assert.equal(kept.length, 1, names.join(' '));
      assert.ok(names.includes(SQLITE_FILE));
      assert.ok(!names.includes(PGLITE_DIR) && !names.some((n) => n.endsWith('.converting')), names.join(' '));
      assert.ok(existsSync(path.join(stateDir, kept[0] as string, 'PG_VERSION')), 'the PGlite files are kept');
      const line = lines().find((l) => l.msg === 'embedded PGlite database converted to SQLite; the PGlite directory is kept, renamed');
      assert.ok(line, JSON.stringify(lines()));
      assert.equal(line.keptAs, path.join(stateDir, kept[0] as string));
      assert.deepEqual(line.rows, Object.fromEntries(Object.entries(expected).map(([t, rows]) => [t, rows.length])));
      assert.ok(!lines().some((l) => l.msg === 'database migrations applied'), 'the converted database needs no migration');

      const next = await store.insertDeployment(deployment('after'));
      assert.equal(next.id, Math.max(...(expected.deployments ?? []).map((r) => Number(r.id))) + 1, 'IDs go on after the highest');
      const outbox = new Outbox(store.sql);
      const pending = await outbox.list();
      assert.deepEqual(pending.map((i) => i.delivery_id), (expected.outbox ?? []).map((r) => r.delivery_id).reverse(), 'delivery IDs are kept');
      assert.equal(pending.find((i) => i.dedup_key === 'k1')?.payload.samples?.[0]?.value, Infinity);
      assert.deepEqual(await notPrivate(stateDir), [], 'everything in the state directory stays private');
    } finally {
      await store.sql.close();
    }

    const { log: again, lines: againLines } = capturedLog();
    const reopened = await openStore({ stateDir, log: again });
    try {
      assert.equal((await reopened.listDeployments({ service: 'after' })).length, 1, 'a restart opens the SQLite file');
      assert.deepEqual(againLines(), [], 'and converts nothing again');
    } finally {
      await reopened.sql.close();
    }
  });

  it("SQLite's schema is PostgreSQL's: the same tables, columns, NOT NULLs and indexes", async () => {
    const pglite = await pgliteSql(template);
    const sqlite = await sqliteSql(path.join(root, 'schema'));
    try {
      await migrate(sqlite);
      const pgColumns = await pglite.query<{ t: string; c: string; nullable: string }>(
        'SELECT table_name AS t, column_name AS c, is_nullable AS nullable FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY 1, 2');
      const liteColumns = await sqlite.query<{ t: string; c: string; required: number; pk: number }>(
        "SELECT m.name AS t, p.name AS c, p.\"notnull\" AS required, p.pk AS pk FROM sqlite_schema m, pragma_table_info(m.name) p WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY 1, 2");
      assert.deepEqual(
        liteColumns.map((r) => `${r.t}.${r.c}${r.required || r.pk ? ' NOT NULL' : ''}`),
        pgColumns.map((r) => `${r.t}.${r.c}${r.nullable === 'NO' ? ' NOT NULL' : ''}`),
      );
      const pgIndexes = await pglite.query<{ name: string }>("SELECT indexname AS name FROM pg_indexes WHERE schemaname = current_schema() AND indexname NOT LIKE '%\\_pkey' AND indexname NOT LIKE '%\\_key' ORDER BY 1");
      const liteIndexes = await sqlite.query<{ name: string }>("SELECT name FROM sqlite_schema WHERE type = 'index' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY 1");
      assert.deepEqual(liteIndexes.map((r) => r.name), pgIndexes.map((r) => r.name));
      assert.ok(pgIndexes.length >= 8, pgIndexes.map((r) => r.name).join(' '));
    } finally {
      await sqlite.close();
      await pglite.close();
    }
  });

  it('brings a PGlite database of an older schema version up to date first', async () => {
    const stateDir = path.join(root, 'older');
    const pglite = await pgliteSql(stateDir);
    try {
      await pglite.transaction(async (tx) => {
        await tx.query('CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
        for (const m of MIGRATIONS.filter((x) => x.version <= 7)) {
          for (const statement of m.sql.split(/;\s*\n/).map((s) => s.trim()).filter(Boolean)) await tx.query(statement);
          await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
        }
        await tx.query(`INSERT INTO deployments (service, container_id, container_name, to_image, to_ref, state, started_at, detected_at, window_ends_at)
          VALUES ('old', 'c', 'old', 'sha256:2', 'app:v2', 'passed', $1, $1, $1)`, [at]);
      });
    } finally {
      await pglite.close();
    }
    const store = await openStore({ stateDir, log: pino({ level: 'silent' }) });
    try {
      const versions = await store.sql.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
      assert.deepEqual(versions.map((r) => r.version), MIGRATIONS.map((m) => m.version));
      const [old] = await store.sql.query<{ uid: string }>("SELECT uid FROM deployments WHERE service = 'old'");
      assert.equal(old?.uid, String(Math.floor(at.getTime() / 1000)), 'migration 8 ran on PGlite, as it did at start before');
    } finally {
      await store.sql.close();
    }
  });

  it('two processes opening the store at once (the daemon starting, a CLI command): one converts, the other waits and then opens what it made', async () => {
    const stateDir = await stateDirFrom('twice');
    const outcomes = await Promise.all([convertPglite(stateDir), convertPglite(stateDir)]);
    assert.equal(outcomes.filter(Boolean).length, 1, 'converted once');
    const sql = await sqliteSql(stateDir);
    try {
      assert.deepEqual(await dump(sql), expected, 'every row, once');
    } finally {
      await sql.close();
    }
    const names = await readdir(stateDir);
    assert.equal(names.filter((n) => n.startsWith('pglite.converted-')).length, 1, names.join(' '));
  });

  describe('fault: a conversion that cannot finish leaves the PGlite database as it was, makes no SQLite file, and start-up fails naming the state directory', () => {
    const fails = async (name: string, spoil: (pglite: Sql) => Promise<void>, reason: RegExp): Promise<void> => {
      const stateDir = await stateDirFrom(name);
      const pglite = await pgliteSql(stateDir);
      let before: Record<string, Record<string, unknown>[]>;
      try {
        await spoil(pglite);
        before = await dump(pglite);
      } finally {
        await pglite.close();
      }
      await assert.rejects(openStore({ stateDir, log: pino({ level: 'silent' }) }), (err: Error) => {
        assert.match(err.message, new RegExp(`^cannot open the embedded database under ${stateDir}: converting the embedded PGlite database in ${path.join(stateDir, PGLITE_DIR)} to SQLite failed`));
        assert.match(err.message, reason);
        return true;
      });
      assert.deepEqual((await readdir(stateDir)).filter((n) => n !== CONVERT_LOCK).sort(), [PGLITE_DIR], 'no SQLite file, nothing renamed');
      const reopened = await pgliteSql(stateDir);
      try {
        assert.deepEqual(await dump(reopened), before, 'the PGlite database holds what it held');
      } finally {
        await reopened.close();
      }
    };

    it('a row SQLite cannot hold (a time of infinity) fails the copy, after the SQLite file was begun', async () => {
      await fails('infinity', async (pglite) => {
        await pglite.query("UPDATE holds SET until = 'infinity' WHERE kind = 'hold'");
      }, /copying holds \(id \d+\): CHECK constraint failed/);
    });

    it('a schema version from a newer rollguard', async () => {
      await fails('newer', async (pglite) => {
        await pglite.query("INSERT INTO schema_migrations (version, name) VALUES (99, 'from the future')");
      }, /schema versions this rollguard does not know \(99\)/);
    });

    it('a table that is not rollguard\'s', async () => {
      await fails('foreign', async (pglite) => {
        await pglite.query('CREATE TABLE notes (id integer PRIMARY KEY, body text)');
      }, /tables that are not rollguard's \(notes\)/);
    });
  });
});
