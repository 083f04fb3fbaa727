import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promisify } from 'node:util';
import pg from 'pg';
import pino from 'pino';
import { listSnapshots, restoreHint, takeSnapshot, type Snapshot } from '../../src/actions/db-snapshot/index.js';
import { dbQuery, runCli, testSecret } from './harness.js';

// Runbook Option 3 step 3 on the machine's PostgreSQL: real pg_dump into a state directory, real
// pg_restore from what rollguard lists and hints. Each run has its own databases, rgsnap_<random>.

const run = promisify(execFile);
const log = pino({ level: 'silent' });
const ADMIN = process.env.ROLLGUARD_TEST_PG_ADMIN ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** The URL of database `name` on the test server, with `password` in its userinfo when given. */
function urlOf(name: string, password?: string): string {
  const url = new URL(ADMIN);
  url.pathname = `/${name}`;
  if (password) url.password = password;
  return url.toString();
}

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

const mode = async (file: string): Promise<number> => (await stat(file)).mode & 0o777;

describe('database safety snapshots on the real PostgreSQL', { timeout: 240_000 }, () => {
  const name = `rgsnap_${randomBytes(6).toString('hex')}`;
  const databases: string[] = [];
  let state: string;
  let dir: string;

  const createDatabase = async (db: string, table: string): Promise<void> => {
    await admin(`CREATE DATABASE ${db}`);
    databases.push(db);
    await dbQuery(urlOf(db), `CREATE TABLE ${table} (id int PRIMARY KEY, note text NOT NULL)`);
    await dbQuery(urlOf(db), `INSERT INTO ${table} SELECT g, 'row ' || g FROM generate_series(1, 250) g`);
  };
  const snapshot = (over: Partial<Parameters<typeof takeSnapshot>[0]>): Promise<Snapshot> =>
    takeSnapshot({ url: urlOf(name), stateDir: state, service: 'web', deploymentId: 1, now: new Date(), timeoutMs: 60_000, keep: 5, log, ...over });

  before(async () => {
    state = await mkdtemp(path.join(os.tmpdir(), 'rg-snapshots-'));
    dir = path.join(state, 'snapshots');
    await createDatabase(name, 'orders');
  });

  after(async () => {
    for (const db of databases) await admin(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    await rm(state, { recursive: true, force: true });
  });

  it('takes a pg_dump -Fc snapshot into <state dir>/snapshots, private, whose table of contents has the table', async () => {
    const now = new Date('2026-11-29T23:30:00.000Z');
    const s = await snapshot({ deploymentId: 12, now });
    assert.equal(s.id, 'web-d12-20261129T233000Z');
    assert.equal(s.path, path.join(dir, 'web-d12-20261129T233000Z.dump'));
    assert.equal(s.created_at, now.toISOString());
    assert.equal(s.database, urlOf(name));
    assert.equal(s.size, (await stat(s.path)).size);
    assert.deepEqual(JSON.parse(await readFile(path.join(dir, `${s.id}.json`), 'utf8')), s);
    assert.equal(await mode(dir), 0o700);
    assert.equal(await mode(s.path), 0o600, 'the dump is private whatever the umask (this process runs with 022)');
    assert.equal(await mode(path.join(dir, `${s.id}.json`)), 0o600);
    assert.deepEqual((await readdir(dir)).sort(), [`${s.id}.dump`, `${s.id}.json`], 'no temporary file left');
    const { stdout } = await run('pg_restore', ['--list', s.path]);
    assert.match(stdout, /TABLE public orders /);
    assert.match(stdout, /TABLE DATA public orders /);
    assert.deepEqual(await listSnapshots(state, 'web'), [s]);
  });

  it('keeps the newest 2 of 3 with keep: 2, deleting the oldest dump and sidecar, and never another service\'s', async () => {
    const at = (h: number): Date => new Date(Date.UTC(2026, 10, 30, h, 0, 0));
    const taken: Snapshot[] = [];
    for (const [i, h] of [9, 10, 11].entries()) taken.push(await snapshot({ service: 'worker', deploymentId: 20 + i, now: at(h), keep: 2 }));
    assert.deepEqual((await listSnapshots(state, 'worker')).map((s) => s.id), [taken[2]!.id, taken[1]!.id]);
    const names = await readdir(dir);
    assert.ok(!names.some((n) => n.startsWith(taken[0]!.id)), `the oldest is gone: ${names.join(', ')}`);
    assert.deepEqual((await listSnapshots(state, 'web')).map((s) => s.id), ['web-d12-20261129T233000Z'], 'web\'s snapshot, older than all of them, is kept');
  });

  it('a failing pg_dump (no such database) throws with pg_dump\'s reason and exit code and leaves no file', async () => {
    const before = (await readdir(dir)).sort();
    const missing = `${name}_missing`;
    await assert.rejects(snapshot({ url: urlOf(missing), service: 'web', deploymentId: 13 }), (err: Error) => {
      assert.match(err.message, /^pg_dump of \S+ failed \(exit code 1\): /);
      assert.match(err.message, new RegExp(`database "${missing}" does not exist`));
      return true;
    });
    assert.deepEqual((await readdir(dir)).sort(), before);
  });

  it('a pg_dump that overruns its time limit is killed, and leaves no file', async () => {
    // pg_dump waits for a share lock on each table: an exclusive lock held elsewhere makes it hang.
    const locker = new pg.Client({ connectionString: urlOf(name) });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE orders IN ACCESS EXCLUSIVE MODE');
      const before = (await readdir(dir)).sort();
      const started = Date.now();
      await assert.rejects(snapshot({ deploymentId: 14, timeoutMs: 1_500 }), /did not finish within 1500 ms and was stopped \(SIGKILL\)/);
      assert.ok(Date.now() - started < 15_000, 'stopped at the limit, not when the lock was released');
      assert.deepEqual((await readdir(dir)).sort(), before);
    } finally {
      await locker.query('ROLLBACK').catch(() => {});
      await locker.end();
    }
  });

  it('a password in the URL reaches pg_dump only through PGPASSWORD: never in its argv, the sidecar or the hint', async () => {
    // A pg_dump in front of the real one on PATH records the argv and PGPASSWORD it was given
    // (what `ps` would show), then runs the real one; trust auth lets the password be anything.
    const realPgDump = (await run('sh', ['-c', 'command -v pg_dump'])).stdout.trim();
    const shimDir = await mkdtemp(path.join(os.tmpdir(), 'rg-pgdump-shim-'));
    const password = `${testSecret('pg-password')}@:/?x`;
    const saved = { PATH: process.env.PATH };
    try {
      await writeFile(path.join(shimDir, 'pg_dump'), `#!/bin/sh\nprintf '%s\\n' "$@" > '${shimDir}/argv'\nprintf '%s' "\${PGPASSWORD-unset}" > '${shimDir}/pgpassword'\nexec '${realPgDump}' "$@"\n`);
      await chmod(path.join(shimDir, 'pg_dump'), 0o700);
      process.env.PATH = `${shimDir}:${process.env.PATH ?? ''}`;
      const url = urlOf(name, password);
      assert.ok(url.includes('%40%3A%2F%3Fx'), `the test URL carries the password, encoded: ${url.replace(/rg-test-secret[^@]*/, '…')}`);
      const s = await snapshot({ url, service: 'secure', deploymentId: 5 });
      const argv = (await readFile(path.join(shimDir, 'argv'), 'utf8')).split('\n').slice(0, -1);
      assert.equal(await readFile(path.join(shimDir, 'pgpassword'), 'utf8'), password, 'PGPASSWORD holds the decoded password');
      assert.deepEqual(argv, ['-Fc', '--no-password', '-f', argv[3]!, '--dbname', urlOf(name)]);
      assert.match(argv[3]!, new RegExp(`^${dir}/\\.secure-d5-\\d{8}T\\d{6}Z\\.dump\\.[0-9a-f]+\\.partial$`), 'pg_dump writes a temporary name');
      const secret = password.split('@')[0]!;
      for (const [what, text] of [['argv', argv.join(' ')], ['sidecar', await readFile(path.join(dir, `${s.id}.json`), 'utf8')], ['hint', restoreHint(s)], ['snapshot', JSON.stringify(s)]] as const) {
        assert.ok(!text.includes(secret), `${what} does not contain the password`);
      }
      assert.equal(s.database, urlOf(name));
    } finally {
      process.env.PATH = saved.PATH;
      await rm(shimDir, { recursive: true, force: true });
    }
  });

  it('the built CLI lists the snapshots (--json and a table) and restore-hint prints a command that restores into a fresh database', async () => {
    const billing = `${name}_r`;
    await createDatabase(billing, 'ledger');
    const password = testSecret('pg-password');
    const s = await takeSnapshot({ url: urlOf(billing, password), stateDir: state, service: 'billing', deploymentId: 3, now: new Date(), timeoutMs: 60_000, keep: 3, log });

    const json = await runCli(['snapshots', '--json', '--state-dir', state]);
    assert.equal(json.code, 0, json.stderr);
    const listed = JSON.parse(json.stdout) as Record<string, unknown>[];
    for (const row of listed) assert.deepEqual(Object.keys(row).sort(), ['created_at', 'deployment', 'id', 'path', 'service', 'size']);
    assert.deepEqual(listed.find((r) => r.id === s.id), { id: s.id, service: 'billing', deployment: 3, path: s.path, size: s.size, created_at: s.created_at });
    assert.deepEqual(listed.map((r) => r.id), (await listSnapshots(state)).map((x) => x.id), 'newest first, as listSnapshots');

    const only = await runCli(['snapshots', '--service', 'billing', '--json', '--state-dir', state]);
    assert.deepEqual((JSON.parse(only.stdout) as { id: string }[]).map((r) => r.id), [s.id]);
    const table = await runCli(['snapshots', '--service', 'worker', '--state-dir', state]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^ID +SERVICE +DEPLOYMENT +CREATED +SIZE\n/);
    assert.match(table.stdout, /worker-d22-20261130T110000Z +worker +22 /);
    assert.doesNotMatch(table.stdout, /billing|web-d12/);
    assert.match(table.stdout, /rollguard restore-hint ID/);

    const hint = await runCli(['restore-hint', s.id, '--state-dir', state]);
    assert.equal(hint.code, 0, hint.stderr);
    assert.match(hint.stdout, /^pg_restore --clean --if-exists --single-transaction --no-owner --dbname '[^']+' '[^']+\.dump'\n# /);
    assert.ok(!hint.stdout.includes(password), 'the hint shows no password');

    // The database is lost and recreated empty; the printed text, run as it is, restores it.
    await admin(`DROP DATABASE ${billing} WITH (FORCE)`);
    await admin(`CREATE DATABASE ${billing}`);
    const env = { ...process.env };
    delete env.PGPASSWORD;
    await run('sh', ['-c', hint.stdout], { env });
    const rows = await dbQuery<{ n: string; last: string }>(urlOf(billing), 'SELECT count(*) AS n, max(note) AS last FROM ledger');
    assert.deepEqual(rows, [{ n: '250', last: 'row 99' }]);
  });

  it('restore-hint of an unknown id exits 1 and says how to list them; an empty state directory lists none', async () => {
    const unknown = await runCli(['restore-hint', 'web-d99-20000101T000000Z', '--state-dir', state]);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stdout, '');
    assert.match(unknown.stderr, /no database snapshot "web-d99-20000101T000000Z" in .*; list them with: rollguard snapshots --state-dir /);
    const empty = await mkdtemp(path.join(os.tmpdir(), 'rg-snapshots-empty-'));
    try {
      const json = await runCli(['snapshots', '--json', '--state-dir', empty]);
      assert.equal(json.code, 0, json.stderr);
      assert.deepEqual(JSON.parse(json.stdout), []);
      const text = await runCli(['snapshots', '--state-dir', empty]);
      assert.match(text.stdout, /^no database snapshots in /);
      assert.deepEqual(await readdir(empty), [], 'listing creates nothing');
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
