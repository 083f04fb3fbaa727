import type { KnownGood } from '../model/known-good.js';
import type { Sql } from './sql.js';
import { insertRowsSqlite } from './sqlite-samples.js';

export type { KnownGood } from '../model/known-good.js';

/** `passed_early`: passed before its window ended (`pass_after`); it counts as `passed` everywhere. */
export type DeploymentState =
  | 'watching' | 'rolling_back' | 'passed' | 'passed_early' | 'rolled_back' | 'rollback_failed' | 'superseded' | 'inconclusive' | 'would_roll_back';

/** The states of a deployment that passed and became known-good: at the end of its window, or early. */
export const PASSED_STATES: readonly DeploymentState[] = ['passed', 'passed_early'];

export const OPEN_STATES: readonly DeploymentState[] = ['watching', 'rolling_back'];

/** One deployment of one service, as recorded. Image fields are image IDs; refs are tags. */
export interface Deployment {
  id: number;
  service: string;
  /** The kind of deploy target it was made on (see targets/): its container fields and specs are that target's. */
  target: string;
  container_id: string;
  container_name: string;
  from_image: string | null;
  from_ref: string | null;
  to_image: string;
  to_ref: string;
  state: DeploymentState;
  reason: string | null;
  dry_run: boolean;
  attempts: number;
  started_at: Date;
  detected_at: Date;
  window_ends_at: Date;
  decided_at: Date | null;
  recovered_at: Date | null;
  /** How far a revert got, written before each step so a restart can finish it: decided, parked, started, done. */
  phase?: RevertPhase | null;
}

/** Steps of a revert: decided (nothing changed yet), parked (bad container stopped and renamed), started (known-good container started), done. */
/** decided: nothing touched yet; migrated: the down-migration ran (the bad version still runs); parked, started: see revert-replicas.ts. */
export type RevertPhase = 'decided' | 'migrated' | 'parked' | 'started' | 'done';

export type NewDeployment = Omit<Deployment, 'id' | 'reason' | 'attempts' | 'decided_at' | 'recovered_at' | 'state' | 'phase'> & { state?: DeploymentState; reason?: string | null };

export interface SampleRecord {
  deployment_id: number;
  stage: 'watch' | 'recovery';
  signal: string;
  taken_at: Date;
  value: number | null;
  result: 'ok' | 'breach' | 'no-data';
  rules: Record<string, string>;
  detail: string | null;
  latency_ms: number;
}

export interface DecisionRecord {
  deployment_id: number;
  decided_at: Date;
  kind: string;
  rule?: string | null;
  severity?: string | null;
  detail?: string | null;
}

export interface ActionRecord {
  deployment_id: number;
  attempt: number;
  kind: string;
  started_at: Date;
  finished_at: Date;
  ok: boolean;
  detail?: string | null;
}

const DEPLOYMENT_COLUMNS = 'id, service, target, container_id, container_name, from_image, from_ref, to_image, to_ref, state, reason, dry_run, attempts, started_at, detected_at, window_ends_at, decided_at, recovered_at, phase';

function toDeployment(row: Record<string, unknown>): Deployment {
  return { ...(row as unknown as Deployment), id: Number(row.id), attempts: Number(row.attempts) };
}

/** Repositories over the rollguard schema. */
export class Store {
  constructor(readonly sql: Sql) {}

  /** The same repositories over a transaction. */
  within(tx: Sql): Store {
    return new Store(tx);
  }

  async insertDeployment(d: NewDeployment): Promise<Deployment> {
    const rows = await this.sql.query(
      `INSERT INTO deployments (service, container_id, container_name, from_image, from_ref, to_image, to_ref, state, reason, dry_run, started_at, detected_at, window_ends_at, target)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14) RETURNING ${DEPLOYMENT_COLUMNS}`,
      [d.service, d.container_id, d.container_name, d.from_image, d.from_ref, d.to_image, d.to_ref, d.state ?? 'watching', d.reason ?? null, d.dry_run, d.started_at, d.detected_at, d.window_ends_at, d.target],
    );
    return toDeployment(rows[0] as Record<string, unknown>);
  }

  async updateDeployment(id: number, patch: Partial<Pick<Deployment, 'state' | 'reason' | 'attempts' | 'decided_at' | 'recovered_at' | 'window_ends_at' | 'phase'>>): Promise<void> {
    const keys = Object.keys(patch) as (keyof typeof patch)[];
    if (!keys.length) return;
    const sets = keys.map((k, i) => `${k} = $${i + 2}`).join(', ');
    await this.sql.query(`UPDATE deployments SET ${sets} WHERE id = $1`, [id, ...keys.map((k) => patch[k])]);
  }

  async getDeployment(id: number): Promise<Deployment | undefined> {
    const rows = await this.sql.query(`SELECT ${DEPLOYMENT_COLUMNS} FROM deployments WHERE id = $1`, [id]);
    return rows[0] ? toDeployment(rows[0]) : undefined;
  }

  async listDeployments(opts: { service?: string; limit?: number } = {}): Promise<Deployment[]> {
    const rows = await this.sql.query(
      `SELECT ${DEPLOYMENT_COLUMNS} FROM deployments WHERE (CAST($1 AS text) IS NULL OR service = $1) ORDER BY id DESC LIMIT $2`,
      [opts.service ?? null, opts.limit ?? 100],
    );
    return rows.map(toDeployment);
  }

  async openDeployments(): Promise<Deployment[]> {
    const rows = await this.sql.query(`SELECT ${DEPLOYMENT_COLUMNS} FROM deployments WHERE state IN ('watching','rolling_back') ORDER BY id`);
    return rows.map(toDeployment);
  }

  async latestDeployment(service: string): Promise<Deployment | undefined> {
    return (await this.listDeployments({ service, limit: 1 }))[0];
  }

  /**
   * Inserts the rows in one statement whatever their number: each column goes as one array
   * parameter (`unnest`), so a tick of thousands of watches is one statement of nine parameters.
   * The embedded SQLite store runs one prepared insert per row in one transaction instead (no
   * round trips; see sqlite-samples.ts).
   */
  async insertSamples(samples: readonly SampleRecord[]): Promise<void> {
    if (!samples.length) return;
    if (this.sql.kind === 'sqlite') {
      const insert = 'INSERT INTO samples (deployment_id, stage, signal, taken_at, value, result, rules, detail, latency_ms) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)';
      return insertRowsSqlite(this.sql, insert, samples.map((s) => [s.deployment_id, s.stage, s.signal, s.taken_at, s.value, s.result, JSON.stringify(s.rules), s.detail, s.latency_ms]));
    }
    await this.sql.query(
      `INSERT INTO samples (deployment_id, stage, signal, taken_at, value, result, rules, detail, latency_ms)
       SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], $5::float8[], $6::text[], $7::jsonb[], $8::text[], $9::float8[])`,
      [
        samples.map((s) => s.deployment_id), samples.map((s) => s.stage), samples.map((s) => s.signal), samples.map((s) => s.taken_at),
        samples.map((s) => s.value), samples.map((s) => s.result), samples.map((s) => JSON.stringify(s.rules)), samples.map((s) => s.detail),
        samples.map((s) => s.latency_ms),
      ],
    );
  }

  async listSamples(deploymentId: number): Promise<SampleRecord[]> {
    const rows = await this.sql.query<SampleRecord>(
      'SELECT deployment_id, stage, signal, taken_at, value, result, rules, detail, latency_ms FROM samples WHERE deployment_id = $1 ORDER BY taken_at, id',
      [deploymentId],
    );
    return rows.map((r) => ({ ...r, deployment_id: Number(r.deployment_id) }));
  }

  async insertDecision(d: DecisionRecord): Promise<void> {
    await this.sql.query('INSERT INTO decisions (deployment_id, decided_at, kind, rule, severity, detail) VALUES ($1,$2,$3,$4,$5,$6)', [
      d.deployment_id, d.decided_at, d.kind, d.rule ?? null, d.severity ?? null, d.detail ?? null,
    ]);
  }

  async listDecisions(deploymentId: number): Promise<DecisionRecord[]> {
    const rows = await this.sql.query<DecisionRecord>('SELECT deployment_id, decided_at, kind, rule, severity, detail FROM decisions WHERE deployment_id = $1 ORDER BY id', [deploymentId]);
    return rows.map((r) => ({ ...r, deployment_id: Number(r.deployment_id) }));
  }

  async insertAction(a: ActionRecord): Promise<void> {
    await this.sql.query('INSERT INTO actions (deployment_id, attempt, kind, started_at, finished_at, ok, detail) VALUES ($1,$2,$3,$4,$5,$6,$7)', [
      a.deployment_id, a.attempt, a.kind, a.started_at, a.finished_at, a.ok, a.detail ?? null,
    ]);
  }

  async listActions(deploymentId: number): Promise<ActionRecord[]> {
    const rows = await this.sql.query<ActionRecord>('SELECT deployment_id, attempt, kind, started_at, finished_at, ok, detail FROM actions WHERE deployment_id = $1 ORDER BY id', [deploymentId]);
    return rows.map((r) => ({ ...r, deployment_id: Number(r.deployment_id) }));
  }

  async getKnownGood(service: string): Promise<KnownGood | undefined> {
    const rows = await this.sql.query<KnownGood>('SELECT service, target, image_id, image_ref, container_name, spec, deployment_id, since FROM known_good WHERE service = $1', [service]);
    const row = rows[0];
    return row ? { ...row, deployment_id: row.deployment_id === null ? null : Number(row.deployment_id) } : undefined;
  }

  async setKnownGood(k: KnownGood): Promise<void> {
    await this.sql.query(
      `INSERT INTO known_good (service, image_id, image_ref, container_name, spec, deployment_id, since, target) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)
       ON CONFLICT (service) DO UPDATE SET image_id = EXCLUDED.image_id, image_ref = EXCLUDED.image_ref, container_name = EXCLUDED.container_name,
         spec = EXCLUDED.spec, deployment_id = EXCLUDED.deployment_id, since = EXCLUDED.since, target = EXCLUDED.target`,
      [k.service, k.image_id, k.image_ref, k.container_name, JSON.stringify(k.spec), k.deployment_id, k.since, k.target],
    );
  }
}
