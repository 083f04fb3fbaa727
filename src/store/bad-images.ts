import type { BadImage } from '../model/bad-image.js';
import type { Sql } from './sql.js';

export type { BadImage } from '../model/bad-image.js';

/** A revert rollguard decided (dry runs excluded): which deployment, and when. */
export interface RevertRecord {
  deployment_id: number;
  /** The deployed container, which names the deployment whatever ID the store gave it. */
  container_id: string;
  decided_at: Date;
}

const COLUMNS = 'service, image_id, image_ref, deployment_id, marked_at, reason';
const toBadImage = (r: Record<string, unknown>): BadImage => ({
  ...(r as unknown as BadImage),
  deployment_id: r.deployment_id === null ? null : Number(r.deployment_id),
  marked_at: new Date(r.marked_at as string | Date),
});

/** Images reverted away from, and the revert history the rollback limit is counted over. */
export class BadImages {
  constructor(private readonly sql: Sql) {}

  /** Marks an image bad; marking it again (reverted away from once more) keeps the latest revert. */
  async mark(b: BadImage): Promise<void> {
    await this.sql.query(
      `INSERT INTO bad_images (${COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6)
       ON CONFLICT (service, image_id) DO UPDATE SET image_ref = EXCLUDED.image_ref, deployment_id = EXCLUDED.deployment_id, marked_at = EXCLUDED.marked_at, reason = EXCLUDED.reason`,
      [b.service, b.image_id, b.image_ref, b.deployment_id, b.marked_at, b.reason],
    );
  }

  /** Clears the mark when it is not newer than `upTo` (the image became known-good after it). */
  async unmark(service: string, imageId: string, upTo: Date): Promise<void> {
    await this.sql.query('DELETE FROM bad_images WHERE service = $1 AND image_id = $2 AND marked_at <= $3', [service, imageId, upTo]);
  }

  async forService(service: string): Promise<BadImage[]> {
    const rows = await this.sql.query(`SELECT ${COLUMNS} FROM bad_images WHERE service = $1 ORDER BY marked_at`, [service]);
    return rows.map(toBadImage);
  }

  /** Reverts of `service` decided at or after `since`: one per deployment, from its `rollback` decision. */
  async revertsSince(service: string, since: Date): Promise<RevertRecord[]> {
    const rows = await this.sql.query<{ deployment_id: unknown; container_id: string; decided_at: string | number | Date }>(
      `SELECT d.id AS deployment_id, d.container_id, min(x.decided_at) AS decided_at
         FROM decisions x JOIN deployments d ON d.id = x.deployment_id
        WHERE d.service = $1 AND x.kind = 'rollback' AND NOT d.dry_run AND x.decided_at >= $2
        GROUP BY d.id, d.container_id ORDER BY 3`,
      [service, since],
    );
    return rows.map((r) => ({ deployment_id: Number(r.deployment_id), container_id: r.container_id, decided_at: new Date(r.decided_at) }));
  }
}
