import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import type { Policy } from '../config/policy.js';
import type { NotificationEvent } from '../notify/event.js';
import { Holds } from '../store/holds.js';
import { PASSED_STATES, type Store } from '../store/store.js';
import type { Announcer } from './announcer.js';

const DAY_MS = 24 * 3_600_000;

/** Counts for the digest over [since, until). */
export async function digestEvent(store: Store, since: Date, until: Date): Promise<NotificationEvent> {
  const rows = await store.sql.query<{ state: string; n: string }>(
    'SELECT state, count(*) AS n FROM deployments WHERE detected_at >= $1 AND detected_at < $2 GROUP BY state',
    [since, until],
  );
  const count = (state: string): number => Number(rows.find((r) => r.state === state)?.n ?? 0);
  const watched = rows.reduce((n, r) => n + Number(r.n), 0);
  const digest = {
    since: since.toISOString(), until: until.toISOString(), watched,
    passed: PASSED_STATES.reduce((n, state) => n + count(state), 0), rolledBack: count('rolled_back'), rollbackFailed: count('rollback_failed'), inconclusive: count('inconclusive'),
    pendingHolds: await new Holds(store.sql).countActive(until),
  };
  return {
    kind: 'digest',
    severity: digest.rollbackFailed ? 'P1' : 'P2',
    title: `rollguard daily digest: ${watched} deployment(s), ${digest.rolledBack} rolled back, ${digest.rollbackFailed} failed rollback(s)`,
    summary: `From ${digest.since} to ${digest.until}: ${watched} deployment(s) watched, ${digest.passed} passed, ${digest.rolledBack} rolled back, ${digest.rollbackFailed} rollback(s) failed, ${digest.inconclusive} inconclusive.`,
    at: until.toISOString(),
    digest,
  };
}

/** Schedules the daily digest (node-cron) per the policy; `update` re-schedules after a reload. */
export class DigestScheduler {
  private task?: ScheduledTask;
  private schedule?: string;

  constructor(private readonly store: Store, private readonly announcer: Announcer, private readonly log: Logger, private readonly now: () => Date = () => new Date()) {}

  update(policy: Policy): void {
    const key = policy.digest ? `${policy.digest.schedule}|${policy.digest.timezone ?? ''}|${policy.digest.to.join(',')}` : undefined;
    if (key === this.schedule) return;
    void this.task?.stop();
    this.task = undefined;
    this.schedule = key;
    if (!policy.digest) return;
    this.task = cron.schedule(policy.digest.schedule, () => void this.send(), { timezone: policy.digest.timezone, name: 'rollguard-digest' });
  }

  /** Queues one digest for the last 24 hours; keyed by its end so a repeated run does not send twice. */
  async send(): Promise<void> {
    const until = new Date(Math.floor(this.now().getTime() / 60_000) * 60_000);
    try {
      const event = await digestEvent(this.store, new Date(until.getTime() - DAY_MS), until);
      await this.announcer.announce(event, { dedupSuffix: until.toISOString() });
    } catch (err) {
      this.log.error({ err }, 'could not build the daily digest');
    }
  }

  stop(): void {
    void this.task?.stop();
    this.task = undefined;
  }
}
