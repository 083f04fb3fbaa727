import type { Sql } from './sql.js';
import { SQLITE_BASELINE } from './sqlite-schema.js';

/** One schema change, in PostgreSQL's DDL and in SQLite's. */
export interface Migration {
  version: number;
  name: string;
  /** PostgreSQL's DDL (PostgreSQL and, before SQLite, the embedded PGlite). */
  sql: string;
  /**
   * SQLite's DDL for the same change. None for the versions up to SQLITE_BASELINE.version: a new
   * SQLite database gets their schema in one step (no SQLite database predates it).
   */
  sqlite?: string;
}

/** Ordered schema migrations. Append only: an applied migration is never edited. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'deployments, samples, decisions, actions, known-good snapshots',
    sql: `
CREATE TABLE deployments (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  service       text NOT NULL,
  container_id  text NOT NULL,
  container_name text NOT NULL,
  from_image    text,
  from_ref      text,
  to_image      text NOT NULL,
  to_ref        text NOT NULL,
  state         text NOT NULL CHECK (state IN ('watching','rolling_back','passed','rolled_back','rollback_failed','superseded','inconclusive','would_roll_back')),
  reason        text,
  dry_run       boolean NOT NULL DEFAULT false,
  attempts      integer NOT NULL DEFAULT 0,
  started_at    timestamptz NOT NULL,
  detected_at   timestamptz NOT NULL,
  window_ends_at timestamptz NOT NULL,
  decided_at    timestamptz,
  recovered_at  timestamptz
);
CREATE INDEX deployments_service_idx ON deployments (service, id DESC);
CREATE INDEX deployments_open_idx ON deployments (state) WHERE state IN ('watching','rolling_back');

CREATE TABLE samples (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  deployment_id bigint NOT NULL REFERENCES deployments(id),
  stage         text NOT NULL CHECK (stage IN ('watch','recovery')),
  signal        text NOT NULL,
  taken_at      timestamptz NOT NULL,
  value         double precision,
  result        text NOT NULL CHECK (result IN ('ok','breach','no-data')),
  rules         jsonb NOT NULL DEFAULT '{}',
  detail        text,
  latency_ms    double precision NOT NULL
);
CREATE INDEX samples_deployment_idx ON samples (deployment_id, taken_at);

CREATE TABLE decisions (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  deployment_id bigint NOT NULL REFERENCES deployments(id),
  decided_at    timestamptz NOT NULL,
  kind          text NOT NULL,
  rule          text,
  severity      text,
  detail        text
);
CREATE INDEX decisions_deployment_idx ON decisions (deployment_id);

CREATE TABLE actions (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  deployment_id bigint NOT NULL REFERENCES deployments(id),
  attempt       integer NOT NULL,
  kind          text NOT NULL,
  started_at    timestamptz NOT NULL,
  finished_at   timestamptz NOT NULL,
  ok            boolean NOT NULL,
  detail        text
);
CREATE INDEX actions_deployment_idx ON actions (deployment_id);

CREATE TABLE known_good (
  service       text PRIMARY KEY,
  image_id      text NOT NULL,
  image_ref     text NOT NULL,
  container_name text NOT NULL,
  spec          jsonb NOT NULL,
  deployment_id bigint REFERENCES deployments(id),
  since         timestamptz NOT NULL
);
`,
  },
  {
    version: 2,
    name: 'notification outbox',
    sql: `
CREATE TABLE outbox (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  deployment_id bigint REFERENCES deployments(id),
  event         text NOT NULL,
  channel       text NOT NULL,
  dedup_key     text NOT NULL UNIQUE,
  payload       jsonb NOT NULL,
  status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','sent','failed')),
  attempts      integer NOT NULL DEFAULT 0,
  created_at    timestamptz NOT NULL,
  next_attempt_at timestamptz NOT NULL,
  sent_at       timestamptz,
  last_error    text
);
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE status = 'pending';
`,
  },
  {
    version: 3,
    name: 'holds and migration freezes',
    sql: `
CREATE TABLE holds (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  service       text NOT NULL,
  deployment_id bigint NOT NULL REFERENCES deployments(id),
  kind          text NOT NULL CHECK (kind IN ('hold','freeze')),
  reason        text NOT NULL,
  created_at    timestamptz NOT NULL,
  until         timestamptz,
  released_at   timestamptz
);
CREATE INDEX holds_active_idx ON holds (service) WHERE released_at IS NULL;
`,
  },
  {
    version: 4,
    name: 'revert phase',
    sql: `
ALTER TABLE deployments ADD COLUMN phase text;
`,
  },
  {
    version: 5,
    name: 'images reverted away from',
    sql: `
CREATE TABLE bad_images (
  service       text NOT NULL,
  image_id      text NOT NULL,
  image_ref     text NOT NULL,
  deployment_id bigint REFERENCES deployments(id),
  marked_at     timestamptz NOT NULL,
  reason        text NOT NULL,
  PRIMARY KEY (service, image_id)
);
`,
  },
  {
    version: 6,
    name: 'per-service leadership leases',
    sql: `
CREATE TABLE leases (
  service       text PRIMARY KEY,
  holder        text NOT NULL,
  fence         bigint NOT NULL,
  acquired_at   timestamptz NOT NULL,
  expires_at    timestamptz NOT NULL
);
`,
  },
  {
    version: 7,
    name: 'deploy target kind of deployments and known-good versions',
    sql: `
ALTER TABLE deployments ADD COLUMN target text NOT NULL DEFAULT 'docker-container';
ALTER TABLE known_good ADD COLUMN target text NOT NULL DEFAULT 'docker-container';
`,
  },
  {
    // Keys a receiver sees must be unique forever, across restarts, instances and databases: a
    // random delivery ID per message, and a random key per deployment for its PagerDuty incident
    // (a deployment recorded before keeps its start time, the key its open incident was made with).
    // A claim token per message, so only the instance whose claim holds can renew or reschedule it.
    version: 8,
    name: 'outbox claims, delivery IDs and deployment keys unique forever',
    sql: `
ALTER TABLE outbox ADD COLUMN claim text;
ALTER TABLE outbox ADD COLUMN delivery_id text;
UPDATE outbox SET delivery_id = id::text;
ALTER TABLE outbox ALTER COLUMN delivery_id SET DEFAULT gen_random_uuid()::text;
ALTER TABLE outbox ALTER COLUMN delivery_id SET NOT NULL;
CREATE INDEX outbox_pending_channel_idx ON outbox (channel, deployment_id, id) WHERE status = 'pending';
ALTER TABLE deployments ADD COLUMN uid text;
UPDATE deployments SET uid = floor(extract(epoch FROM started_at))::bigint::text;
ALTER TABLE deployments ALTER COLUMN uid SET DEFAULT left(replace(gen_random_uuid()::text, '-', ''), 16);
ALTER TABLE deployments ALTER COLUMN uid SET NOT NULL;
`,
  },
  {
    // pass_after: a deployment that passed before its window ended is recorded as passed_early.
    // The state's CHECK of migration 1 (named by PostgreSQL after its table and column) is replaced.
    version: 9,
    name: 'deployments may pass early',
    sql: `
ALTER TABLE deployments DROP CONSTRAINT IF EXISTS deployments_state_check;
ALTER TABLE deployments ADD CONSTRAINT deployments_state_check CHECK (state IN ('watching','rolling_back','passed','passed_early','rolled_back','rollback_failed','superseded','inconclusive','would_roll_back'));
`,
  },
];

/** The table of applied versions, in each dialect. */
const SCHEMA_MIGRATIONS = {
  postgres: 'CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
  sqlite: `CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS integer)) CHECK (typeof(applied_at) = 'integer'))`,
};

const LOCK_KEY = 0x726f6c6c; // 'roll': serialises migrations between instances sharing one database

/** The versions applied already, read without writing anything; empty before the first migration. */
async function appliedVersions(sql: Sql): Promise<Set<number>> {
  const exists = sql.kind === 'sqlite'
    ? (await sql.query("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'")).length > 0
    : !!(await sql.query<{ t: string | null }>("SELECT to_regclass('schema_migrations')::text AS t"))[0]?.t;
  if (!exists) return new Set();
  return new Set((await sql.query<{ version: number }>('SELECT version FROM schema_migrations')).map((r) => Number(r.version)));
}

/** One step of DDL and the versions it brings. */
interface Step { ddl: string; migrations: readonly Migration[] }

/** The steps that bring a database with versions `done` applied up to date, in its dialect. */
function pendingSteps(kind: Sql['kind'], done: ReadonlySet<number>): Step[] {
  const pending = MIGRATIONS.filter((m) => !done.has(m.version));
  if (kind !== 'sqlite') return pending.map((m) => ({ ddl: m.sql, migrations: [m] }));
  const steps: Step[] = [];
  const inBaseline = (m: Migration): boolean => m.version <= SQLITE_BASELINE.version;
  const baseline = pending.filter(inBaseline);
  if (baseline.length) {
    if (done.size) throw new Error(`the SQLite database records some versions up to ${SQLITE_BASELINE.version} but not ${baseline.map((m) => m.version).join(', ')}: SQLite makes them all at once`);
    steps.push({ ddl: SQLITE_BASELINE.sql, migrations: baseline });
  }
  for (const m of pending.filter((x) => !inBaseline(x))) {
    if (m.sqlite === undefined) throw new Error(`migration ${m.version} (${m.name}) has no SQLite DDL`);
    steps.push({ ddl: m.sqlite, migrations: [m] });
  }
  return steps;
}

/**
 * Applies every migration not yet applied, in one transaction. Returns the versions applied.
 * When none is pending nothing is written, so rollguard starts (and `history` reads) on a
 * database that refuses writes — a standby after a failover, or one set read-only.
 */
export async function migrate(sql: Sql): Promise<number[]> {
  const already = await appliedVersions(sql);
  if (MIGRATIONS.every((m) => already.has(m.version))) return [];
  const sqlite = sql.kind === 'sqlite';
  return sql.transaction(async (tx) => {
    // SQLite's transaction holds the database's write lock from its start (BEGIN IMMEDIATE).
    if (!sqlite) await tx.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
    await tx.query(sqlite ? SCHEMA_MIGRATIONS.sqlite : SCHEMA_MIGRATIONS.postgres);
    const done = new Set((await tx.query<{ version: number }>('SELECT version FROM schema_migrations')).map((r) => Number(r.version)));
    const applied: number[] = [];
    for (const step of pendingSteps(sql.kind, done)) {
      for (const statement of step.ddl.split(/;\s*\n/).map((s) => s.trim()).filter(Boolean)) await tx.query(statement);
      for (const m of step.migrations) {
        await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
        applied.push(m.version);
      }
    }
    return applied;
  });
}
