import type { Sql } from './sql.js';

/**
 * A pause of automatic reverts for one deployment. `hold`: an operator's fix-forward window with a
 * deadline; `freeze`: a deployment carrying DB migrations, paused until an operator releases it.
 */
export interface Hold {
  id: number;
  service: string;
  deployment_id: number;
  kind: 'hold' | 'freeze';
  reason: string;
  created_at: Date;
  until: Date | null;
  released_at: Date | null;
}

const COLUMNS = 'id, service, deployment_id, kind, reason, created_at, until, released_at';
const toHold = (r: Record<string, unknown>): Hold => ({ ...(r as unknown as Hold), id: Number(r.id), deployment_id: Number(r.deployment_id) });

export class Holds {
  constructor(private readonly sql: Sql) {}

  async add(h: Omit<Hold, 'id' | 'released_at'>): Promise<Hold> {
    const rows = await this.sql.query(
      `INSERT INTO holds (service, deployment_id, kind, reason, created_at, until) VALUES ($1,$2,$3,$4,$5,$6) RETURNING ${COLUMNS}`,
      [h.service, h.deployment_id, h.kind, h.reason, h.created_at, h.until],
    );
    return toHold(rows[0] as Record<string, unknown>);
  }

  async release(id: number, at: Date): Promise<void> {
    await this.sql.query('UPDATE holds SET released_at = $2 WHERE id = $1 AND released_at IS NULL', [id, at]);
  }

  /** Holds not released and not past their deadline. */
  async active(now: Date): Promise<Hold[]> {
    const rows = await this.sql.query(`SELECT ${COLUMNS} FROM holds WHERE released_at IS NULL AND (until IS NULL OR until > $1) ORDER BY id`, [now]);
    return rows.map(toHold);
  }

  async countActive(now: Date): Promise<number> {
    return (await this.active(now)).length;
  }
}
