import type { Sql } from './sql.js';

/**
 * The outcome of one claim on a service's lease, with the database's clock: either this instance
 * holds the lease (`mine`), or another one does and `holder` names it.
 */
export interface LeaseClaim {
  service: string;
  mine: boolean;
  /** Who holds the lease after the claim. */
  holder: string;
  /** Incremented by every acquisition that does not continue the claimant's own term. */
  fence: number;
  expiresAt: Date;
  /** The database's `now()` when the claim was made: `expiresAt - now` is how long the lease has left. */
  now: Date;
}

interface ClaimRow { holder: string; fence: string | number; expires_at: Date | string; now: Date | string; mine: boolean }

/**
 * Per-service leadership leases (table `leases`, migration 6). Every time is the database's
 * `now()`, so the hosts' clocks never decide who leads. A lease is taken, renewed or given up in
 * one statement each, so two instances racing for one service cannot both win: PostgreSQL
 * serialises `INSERT … ON CONFLICT DO UPDATE` on the row and re-checks the `WHERE` against the
 * latest version. PostgreSQL only: instances share nothing but PostgreSQL, and the embedded
 * SQLite store belongs to one process, which leads every service (daemon/runtime.ts); these
 * statements are PostgreSQL's (interval arithmetic, a data-modifying WITH) and SQLite is refused.
 */
export class Leases {
  constructor(private readonly sql: Sql) {
    if (sql.kind === 'sqlite') throw new TypeError('leases are kept in PostgreSQL only; the embedded store has a single instance');
  }

  /**
   * Takes the lease of `service` for `holder` until `now() + ttlMs`, or renews it. It is granted
   * when nobody holds it, when the current lease has expired, or when `holder` holds it already.
   * `knownFence` is the fence the claimant believes it holds (null when it believes it holds
   * nothing): a renewal that matches it keeps the fence, so an unchanged fence proves nobody
   * else led in between; any other grant increments it.
   */
  async claim(service: string, holder: string, knownFence: number | null, ttlMs: number): Promise<LeaseClaim> {
    // No row at all means another instance inserted the lease concurrently: the insert waited for
    // it and lost, but the statement's snapshot predates it. The next statement sees it.
    for (let attempt = 0; attempt < 3; attempt++) {
      const row = (await this.claimOnce(service, holder, knownFence, ttlMs))[0];
      if (row) return { service, mine: row.mine, holder: row.holder, fence: Number(row.fence), expiresAt: new Date(row.expires_at), now: new Date(row.now) };
    }
    throw new Error(`claiming the lease of ${service} returned no row`);
  }

  private claimOnce(service: string, holder: string, knownFence: number | null, ttlMs: number): Promise<ClaimRow[]> {
    return this.sql.query<ClaimRow>(
      `WITH claimed AS (
         INSERT INTO leases AS l (service, holder, fence, acquired_at, expires_at)
         VALUES ($1, $2, 1, now(), now() + $4::double precision * interval '1 millisecond')
         ON CONFLICT (service) DO UPDATE SET
           holder = EXCLUDED.holder,
           fence = CASE WHEN l.holder = EXCLUDED.holder AND l.fence = $3::bigint THEN l.fence ELSE l.fence + 1 END,
           acquired_at = CASE WHEN l.holder = EXCLUDED.holder AND l.fence = $3::bigint THEN l.acquired_at ELSE now() END,
           expires_at = EXCLUDED.expires_at
         WHERE l.holder = EXCLUDED.holder OR l.expires_at <= now()
         RETURNING holder, fence, expires_at
       )
       SELECT holder, fence, expires_at, now() AS now, true AS mine FROM claimed
       UNION ALL
       SELECT holder, fence, expires_at, now() AS now, false AS mine FROM leases WHERE service = $1 AND NOT EXISTS (SELECT 1 FROM claimed)`,
      [service, holder, knownFence, ttlMs],
    );
  }

  /** Gives the lease up (clean shutdown) so another instance can take it at once; the fence is kept. */
  async release(service: string, holder: string, fence: number): Promise<void> {
    await this.sql.query('UPDATE leases SET expires_at = now() WHERE service = $1 AND holder = $2 AND fence = $3', [service, holder, fence]);
  }

  /**
   * Ends every lease `holder` still has; for a holder known to be dead (the previous run in this
   * state directory, killed), so a restart does not wait out its leases. Returns the services.
   */
  async expireHolder(holder: string): Promise<string[]> {
    const rows = await this.sql.query<{ service: string }>('UPDATE leases SET expires_at = now() WHERE holder = $1 AND expires_at > now() RETURNING service', [holder]);
    return rows.map((r) => r.service);
  }

  /** Every lease, for status. */
  async list(): Promise<{ service: string; holder: string; fence: number; acquiredAt: Date; expiresAt: Date }[]> {
    const rows = await this.sql.query<{ service: string; holder: string; fence: string; acquired_at: Date; expires_at: Date }>(
      'SELECT service, holder, fence, acquired_at, expires_at FROM leases ORDER BY service',
    );
    return rows.map((r) => ({ service: r.service, holder: r.holder, fence: Number(r.fence), acquiredAt: new Date(r.acquired_at), expiresAt: new Date(r.expires_at) }));
  }
}
