import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Gauge } from 'prom-client';
import type { Logger } from 'pino';
import type { LeaseClaim } from '../store/leases.js';

/** Who acts for which service: every instance asks before it reconciles, adopts, detects, watches or reverts. */
export interface Leadership {
  /** This instance's name in the lease table and the logs. */
  readonly instanceId: string;
  /** Whether this instance leads `service` now. */
  leads(service: string): boolean;
  /** Per service: whether this instance leads it, and who does (as last seen). */
  status(services: readonly string[]): Record<string, LeaderStatus>;
}

/** What `status` and the API show per service. */
export interface LeaderStatus {
  leader: boolean;
  /** The instance holding the lease as last seen; null when not known. */
  holder: string | null;
  fence: number | null;
}

/** The lease operations leadership needs (src/store/leases.ts over PostgreSQL). */
export interface LeaseStore {
  claim(service: string, holder: string, knownFence: number | null, ttlMs: number): Promise<LeaseClaim>;
  release(service: string, holder: string, fence: number): Promise<void>;
}

/** What happens when leadership of a service changes hands. */
export interface LeadershipEvents {
  /** This instance now leads `service`: catch up with it (reconcile, resume its open watch). */
  gained(service: string): void;
  /** Another instance leads `service` now: stop acting for it, changing nothing recorded. */
  lost(service: string): void;
}

export const DEFAULT_LEASE_TTL_MS = 6_000;

/** `ROLLGUARD_INSTANCE_ID`, else host name, pid and a random part (a restarted process is a new holder). */
export function instanceId(env: NodeJS.ProcessEnv = process.env): string {
  const given = env.ROLLGUARD_INSTANCE_ID?.trim();
  if (given) return given;
  return `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

/** A single process owns every service: the embedded database cannot be shared, so there is nobody to agree with. */
export function soleLeadership(id: string): Leadership {
  return {
    instanceId: id,
    leads: () => true,
    status: (services) => Object.fromEntries(services.map((s) => [s, { leader: true, holder: id, fence: null }])),
  };
}

export interface LeaseLeadershipOptions {
  leases: LeaseStore;
  instanceId: string;
  /** The services to lead; read every round, so a policy reload adds and drops services. */
  services: () => readonly string[];
  log: Logger;
  /** rollguard_leader{service}: 1 while this instance leads the service. */
  gauge?: Gauge<'service'>;
  /** How long a lease lasts without renewal (default 6 s); a killed leader's services are taken over within about this. */
  ttlMs?: number;
  /** How often leases are renewed and free ones tried (default a third of the TTL). */
  renewMs?: number;
}

/**
 * Per-service leadership over the `leases` table: every `renewMs` this instance renews the
 * leases it holds and tries to take the others; a lease not renewed for `ttlMs` (its holder was
 * killed, or cannot reach the database) can be taken by another instance.
 *
 * When the store cannot be reached, nothing changes here: a leader keeps acting for its
 * services (another instance cannot take a lease without the store either, and a watch must not
 * stop because PostgreSQL is down), and an instance that leads nothing keeps waiting. A service
 * is given up as soon as the store answers that another instance holds it — and also when this
 * instance's own renewal comes back with a different fence, which means another instance led it
 * in between (for example while this one was cut off from the database): what this instance
 * remembers of the service is then stale, so it lets go and catches up again from the store.
 */
export class LeaseLeadership implements Leadership {
  readonly instanceId: string;
  /** Fence per service this instance leads. */
  private readonly held = new Map<string, number>();
  /** The other holder per service this instance does not lead, as last seen. */
  private readonly others = new Map<string, { holder: string; fence: number }>();
  private readonly ttlMs: number;
  private readonly renewMs: number;
  private events: LeadershipEvents = { gained: () => {}, lost: () => {} };
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;
  private unreachableSince?: number;

  constructor(private readonly o: LeaseLeadershipOptions) {
    this.instanceId = o.instanceId;
    this.ttlMs = o.ttlMs ?? DEFAULT_LEASE_TTL_MS;
    this.renewMs = o.renewMs ?? Math.max(50, Math.floor(this.ttlMs / 3));
  }

  leads(service: string): boolean {
    return this.held.has(service);
  }

  status(services: readonly string[]): Record<string, LeaderStatus> {
    return Object.fromEntries(services.map((s) => {
      const fence = this.held.get(s);
      if (fence !== undefined) return [s, { leader: true, holder: this.instanceId, fence }];
      const other = this.others.get(s);
      return [s, { leader: false, holder: other?.holder ?? null, fence: other?.fence ?? null }];
    }));
  }

  /**
   * Claims every service once (so a single instance leads everything before it starts watching,
   * with no added delay), then renews in the background. `events` are told of changes after
   * this first round.
   */
  async start(): Promise<void> {
    await this.round();
  }

  /** Starts telling `events` of leadership changes and keeps renewing. */
  follow(events: LeadershipEvents): void {
    this.events = events;
    this.schedule(this.renewMs);
  }

  /** Stops renewing and gives up every lease held, so another instance takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    await Promise.all([...this.held].map(async ([service, fence]) => {
      try {
        await this.o.leases.release(service, this.instanceId, fence);
        this.o.log.info({ service, holder: this.instanceId, fence }, 'leadership released');
      } catch (err) {
        this.o.log.warn({ err, service }, 'could not release a lease; it expires on its own');
      }
    }));
    for (const service of this.held.keys()) this.o.gauge?.set({ service }, 0);
    this.held.clear();
  }

  /**
   * One pass: claims (or renews) the lease of every service and reports what changed. Returns
   * how long until the next pass is due — sooner than `renewMs` when a lease held by another
   * instance expires before then, so a dead leader is replaced as soon as its lease runs out.
   */
  async round(): Promise<number> {
    const wanted = new Set(this.o.services());
    let next = this.renewMs;
    for (const service of wanted) {
      if (this.stopped) break;
      const known = this.held.get(service) ?? null;
      let claim: LeaseClaim;
      try {
        claim = await withTimeout(this.o.leases.claim(service, this.instanceId, known, this.ttlMs), this.renewMs);
      } catch (err) {
        this.storeUnreachable(err);
        return this.renewMs;
      }
      this.storeBack();
      this.apply(service, known, claim);
      if (!claim.mine) next = Math.min(next, Math.max(50, claim.expiresAt.getTime() - claim.now.getTime() + 50));
    }
    // A service dropped from the policy: give its lease back.
    for (const [service, fence] of [...this.held]) {
      if (wanted.has(service)) continue;
      this.held.delete(service);
      this.o.gauge?.set({ service }, 0);
      await this.o.leases.release(service, this.instanceId, fence).catch(() => {});
    }
    return next;
  }

  private apply(service: string, known: number | null, claim: LeaseClaim): void {
    const log = this.o.log;
    if (claim.mine) {
      this.others.delete(service);
      if (known === claim.fence) return;
      if (known !== null) {
        // Our renewal came back with a new fence: someone else led in between.
        this.held.delete(service);
        log.warn({ service, holder: this.instanceId, fence: known, newFence: claim.fence }, 'leadership lost');
        this.events.lost(service);
      }
      this.held.set(service, claim.fence);
      this.o.gauge?.set({ service }, 1);
      log.info({ service, holder: this.instanceId, fence: claim.fence }, 'leadership acquired');
      this.events.gained(service);
      return;
    }
    this.others.set(service, { holder: claim.holder, fence: claim.fence });
    this.o.gauge?.set({ service }, 0);
    if (known === null) return;
    this.held.delete(service);
    log.warn({ service, holder: claim.holder, fence: claim.fence, was: this.instanceId }, 'leadership lost');
    this.events.lost(service);
  }

  private storeUnreachable(err: unknown): void {
    if (this.unreachableSince !== undefined) return;
    this.unreachableSince = Date.now();
    this.o.log.warn({ err, leading: [...this.held.keys()] }, 'cannot renew leases: store unreachable; acting on for the services led');
  }

  private storeBack(): void {
    if (this.unreachableSince === undefined) return;
    this.o.log.info({ forMs: Date.now() - this.unreachableSince }, 'leases renewed again');
    this.unreachableSince = undefined;
  }

  /** Passes never overlap: the next is scheduled when the previous has finished. */
  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      let next = this.renewMs;
      this.running = this.round()
        .then((n) => { next = n; })
        .catch((err) => this.o.log.error({ err }, 'lease round failed'))
        .finally(() => {
          this.running = undefined;
          this.schedule(next);
        });
    }, ms);
    this.timer.unref();
  }
}

/** Rejects when `p` has not settled within `ms`; a renewal that hangs counts as the store being unreachable. */
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from the store within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

const INSTANCE_FILE = 'instance.json';

/**
 * The instance id the previous run in this state directory used, when it ran on this host. Call
 * it only once the state directory is claimed (see state-dir.ts): that run is then known to be
 * gone, so its leases can be ended instead of waited out.
 */
export async function previousInstance(stateDir: string): Promise<string | undefined> {
  try {
    const info = JSON.parse(await readFile(path.join(stateDir, INSTANCE_FILE), 'utf8')) as { instance?: unknown; hostname?: unknown };
    return typeof info.instance === 'string' && info.hostname === os.hostname() ? info.instance : undefined;
  } catch {
    return undefined;
  }
}

/** Remembers this run's instance id in the state directory, for the next run's `previousInstance`. */
export async function recordInstance(stateDir: string, id: string): Promise<void> {
  await writeFile(path.join(stateDir, INSTANCE_FILE), JSON.stringify({ instance: id, hostname: os.hostname(), pid: process.pid }));
}
