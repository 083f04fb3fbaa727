/**
 * The schema of version 9 in SQLite's DDL: the same tables, columns, constraints and indexes as
 * PostgreSQL's migrations 1–9, made at once when a SQLite database is created (SQLite came with
 * version 9), which then records versions 1–9 as applied. SQLite has no types of its own for
 * what PostgreSQL calls timestamptz, boolean and jsonb: the columns keep those names as declared
 * types, by which the adapter (sqlite.ts) reads them back as Date, boolean and parsed JSON, and
 * their CHECKs hold them to one form — times are integer milliseconds since the epoch (UTC),
 * booleans 0 or 1, JSON valid text. A double precision NaN is kept as the text 'NaN'. IDs never
 * repeat (AUTOINCREMENT), as with PostgreSQL's identity columns; random keys are made as
 * PostgreSQL's defaults make them (a version 4 UUID for delivery_id, 16 hex digits for uid).
 */
export const SQLITE_BASELINE = {
  version: 9,
  sql: `
CREATE TABLE deployments (
  id            integer PRIMARY KEY AUTOINCREMENT,
  service       text NOT NULL,
  container_id  text NOT NULL,
  container_name text NOT NULL,
  from_image    text,
  from_ref      text,
  to_image      text NOT NULL,
  to_ref        text NOT NULL,
  state         text NOT NULL CONSTRAINT deployments_state_check CHECK (state IN ('watching','rolling_back','passed','passed_early','rolled_back','rollback_failed','superseded','inconclusive','would_roll_back')),
  reason        text,
  dry_run       boolean NOT NULL DEFAULT false CHECK (dry_run IN (0, 1)),
  attempts      integer NOT NULL DEFAULT 0,
  started_at    timestamptz NOT NULL CHECK (typeof(started_at) = 'integer'),
  detected_at   timestamptz NOT NULL CHECK (typeof(detected_at) = 'integer'),
  window_ends_at timestamptz NOT NULL CHECK (typeof(window_ends_at) = 'integer'),
  decided_at    timestamptz CHECK (typeof(decided_at) IN ('integer', 'null')),
  recovered_at  timestamptz CHECK (typeof(recovered_at) IN ('integer', 'null')),
  phase         text,
  target        text NOT NULL DEFAULT 'docker-container',
  uid           text NOT NULL DEFAULT (lower(hex(randomblob(8))))
);
CREATE INDEX deployments_service_idx ON deployments (service, id DESC);
CREATE INDEX deployments_open_idx ON deployments (state) WHERE state IN ('watching','rolling_back');

CREATE TABLE samples (
  id            integer PRIMARY KEY AUTOINCREMENT,
  deployment_id bigint NOT NULL REFERENCES deployments(id),
  stage         text NOT NULL CHECK (stage IN ('watch','recovery')),
  signal        text NOT NULL,
  taken_at      timestamptz NOT NULL CHECK (typeof(taken_at) = 'integer'),
  value         double precision,
  result        text NOT NULL CHECK (result IN ('ok','breach','no-data')),
  rules         json NOT NULL DEFAULT '{}' CHECK (json_valid(rules)),
  detail        text,
  latency_ms    double precision NOT NULL
);
CREATE INDEX samples_deployment_idx ON samples (deployment_id, taken_at);

CREATE TABLE decisions (
  id            integer PRIMARY KEY AUTOINCREMENT,
  deployment_id bigint NOT NULL REFERENCES deployments(id),
  decided_at    timestamptz NOT NULL CHECK (typeof(decided_at) = 'integer'),
  kind          text NOT NULL,
  rule          text,
  severity      text,
  detail        text
);
CREATE INDEX decisions_deployment_idx ON decisions (deployment_id);

CREATE TABLE actions (
  id            integer PRIMARY KEY AUTOINCREMENT,
  deployment_id bigint NOT NULL REFERENCES deployments(id),
  attempt       integer NOT NULL,
  kind          text NOT NULL,
  started_at    timestamptz NOT NULL CHECK (typeof(started_at) = 'integer'),
  finished_at   timestamptz NOT NULL CHECK (typeof(finished_at) = 'integer'),
  ok            boolean NOT NULL CHECK (ok IN (0, 1)),
  detail        text
);
CREATE INDEX actions_deployment_idx ON actions (deployment_id);

CREATE TABLE known_good (
  service       text PRIMARY KEY,
  image_id      text NOT NULL,
  image_ref     text NOT NULL,
  container_name text NOT NULL,
  spec          json NOT NULL CHECK (json_valid(spec)),
  deployment_id bigint REFERENCES deployments(id),
  since         timestamptz NOT NULL CHECK (typeof(since) = 'integer'),
  target        text NOT NULL DEFAULT 'docker-container'
);

CREATE TABLE outbox (
  id            integer PRIMARY KEY AUTOINCREMENT,
  deployment_id bigint REFERENCES deployments(id),
  event         text NOT NULL,
  channel       text NOT NULL,
  dedup_key     text NOT NULL UNIQUE,
  payload       json NOT NULL CHECK (json_valid(payload)),
  status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','sent','failed')),
  attempts      integer NOT NULL DEFAULT 0,
  created_at    timestamptz NOT NULL CHECK (typeof(created_at) = 'integer'),
  next_attempt_at timestamptz NOT NULL CHECK (typeof(next_attempt_at) = 'integer'),
  sent_at       timestamptz CHECK (typeof(sent_at) IN ('integer', 'null')),
  last_error    text,
  claim         text,
  delivery_id   text NOT NULL DEFAULT (lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-'
                  || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))))
);
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_pending_channel_idx ON outbox (channel, deployment_id, id) WHERE status = 'pending';

CREATE TABLE holds (
  id            integer PRIMARY KEY AUTOINCREMENT,
  service       text NOT NULL,
  deployment_id bigint NOT NULL REFERENCES deployments(id),
  kind          text NOT NULL CHECK (kind IN ('hold','freeze')),
  reason        text NOT NULL,
  created_at    timestamptz NOT NULL CHECK (typeof(created_at) = 'integer'),
  until         timestamptz CHECK (typeof(until) IN ('integer', 'null')),
  released_at   timestamptz CHECK (typeof(released_at) IN ('integer', 'null'))
);
CREATE INDEX holds_active_idx ON holds (service) WHERE released_at IS NULL;

CREATE TABLE bad_images (
  service       text NOT NULL,
  image_id      text NOT NULL,
  image_ref     text NOT NULL,
  deployment_id bigint REFERENCES deployments(id),
  marked_at     timestamptz NOT NULL CHECK (typeof(marked_at) = 'integer'),
  reason        text NOT NULL,
  PRIMARY KEY (service, image_id)
);

CREATE TABLE leases (
  service       text PRIMARY KEY,
  holder        text NOT NULL,
  fence         bigint NOT NULL,
  acquired_at   timestamptz NOT NULL CHECK (typeof(acquired_at) = 'integer'),
  expires_at    timestamptz NOT NULL CHECK (typeof(expires_at) = 'integer')
);
`,
};
