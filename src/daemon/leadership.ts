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
  /**
   * Whether this instance leads `service` at this moment, on its own monotonic clock (a lease
   * not confirmed in time has lapsed even before the store says so). Synchronous and cheap: ask
   * it right before every step that changes a container or a record.
   */
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
  /**
   * Stop acting for `service`, changing nothing recorded: another instance leads it now, or this
   * instance's lease lapsed (a `gained` follows if a renewal confirms it again).
   */
  lost(service: string): void;
}

export const DEFAULT_LEASE_TTL_MS = 6_000;

/** Lease claims sent at once in a round (the PostgreSQL pool holds five connections). */
const CLAIMS_AT_ONCE = 4;

/** `ROLLGUARD_INSTANCE_ID`, else host name, pid and a random part (a restarted process is a new holder). */
export function instanceId(env: NodeJS.ProcessEnv = process.env): string {
  const given = env.ROLLGUARD_INSTANCE_ID?.trim();
  if (given) return given;
  return `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

/** A single process owns every service: the embedded database is not shared between instances, so there is nobody to agree with. */
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
  /**
   * How long before its lease runs out a leader stops acting (default a sixth of the TTL): room
   * for the hosts' clocks running at slightly different rates and for a step begun just before.
   */
  marginMs?: number;
  /** A monotonic clock in milliseconds (default `performance.now`); never the wall clock, which can be set back. */
  clock?: () => number;
}

/** A lease this instance holds, as last confirmed by the store. */
interface HeldLease {
  fence: number;
  /** Until when, on this instance's monotonic clock, the last confirmation lets it act. */
  until: number;
  /** Whether `events` were told `gained` for it (and not `lost` since). */
  acting: boolean;
  /** Whether this instance acted on this fence before: a later confirmation is a comeback, not a new term. */
  acted: boolean;
}

/**
 * Per-service leadership over the `leases` table: every `renewMs` this instance renews the
 * leases it holds and tries to take the others; a lease not renewed for `ttlMs` (its holder was
 * killed, paused or cannot reach the database) can be taken by another instance.
 *
 * Leadership also runs out on this instance's own monotonic clock: `leads()` is true only until
 * `ttlMs - marginMs` after the renewal that last confirmed the lease was *sent* (the store
 * started the lease's new term after that, so the instance's time is up before the store's is).
 * An instance that was paused past its lease (SIGSTOP, a VM frozen) therefore stops acting the
 * moment it runs again, before any renewal has answered: work in flight that asks `leads()`
 * before it changes anything stops there. The lapse is logged (`leadership lapsed`) and
 * `events.lost` ends what the instance was doing for the service, changing nothing recorded.
 * When a later renewal confirms the lease with the same fence, nobody led in between, so what is
 * recorded is the whole story: `events.gained` catches up from the store (resuming an open watch
 * from its recorded samples) as a takeover would. A different fence means another instance led
 * meanwhile; the instance catches up the same way, from what that one recorded.
 *
 * When the store cannot be reached, a leader keeps acting for its services as long as it keeps
 * running and trying to renew on schedule: each renewal the store does not answer carries the
 * leases on as if it had been confirmed (another instance cannot take a lease without the store
 * either, and a watch or a revert must not stop because PostgreSQL is down). A pause is not an
 * outage: no renewal is sent while the process is stopped, so the lease runs out on the
 * monotonic clock and the instance acts on nothing when it runs again. Limit: if the network
 * splits so that the leader cannot reach the store but another instance can, that one takes the
 * lease after the TTL and both act until the split heals. An instance that leads nothing keeps
 * waiting. A service is given up as soon as the store answers that another instance holds it.
 */
export class LeaseLeadership implements Leadership {
  readonly instanceId: string;
  /** The leases this instance holds, by service, including one whose time is up (its fence is renewed). */
  private readonly held = new Map<string, HeldLease>();
  /** The other holder per service this instance does not lead, as last seen. */
  private readonly others = new Map<string, { holder: string; fence: number }>();
  private readonly ttlMs: number;
  private readonly renewMs: number;
  private readonly marginMs: number;
  private readonly clock: () => number;
  private events: LeadershipEvents = { gained: () => {}, lost: () => {} };
  private timer?: NodeJS.Timeout;
  /** Fires when the earliest lease this instance acts on runs out. */
  private lapseTimer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;
  private unreachableSince?: number;

  constructor(private readonly o: LeaseLeadershipOptions) {
    this.instanceId = o.instanceId;
    this.ttlMs = o.ttlMs ?? DEFAULT_LEASE_TTL_MS;
    this.renewMs = o.renewMs ?? Math.max(50, Math.floor(this.ttlMs / 3));
    this.marginMs = o.marginMs ?? Math.floor(this.ttlMs / 6);
    this.clock = o.clock ?? (() => performance.now());
  }

  leads(service: string): boolean {
    const lease = this.held.get(service);
    return lease !== undefined && this.clock() < lease.until;
  }

  status(services: readonly string[]): Record<string, LeaderStatus> {
    return Object.fromEntries(services.map((s) => {
      const lease = this.held.get(s);
      if (lease) return [s, { leader: this.leads(s), holder: this.instanceId, fence: lease.fence }];
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
    clearTimeout(this.lapseTimer);
    await this.running;
    await Promise.all([...this.held].map(async ([service, { fence }]) => {
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
   * instance expires before then, so a dead leader is replaced as soon as its lease runs out, and
   * when the store did not answer, so one lost renewal does not end a lease.
   */
  async round(): Promise<number> {
    this.lapseExpired();
    const wanted = new Set(this.o.services());
    let next = this.renewMs;
    let failed = false;
    // A few claims at a time (the pool's size), each timed from its own sending: with many
    // services a round stays short, so no lease runs out between two rounds.
    const queue = [...wanted];
    const worker = async (): Promise<void> => {
      for (let service = queue.shift(); service !== undefined && !this.stopped && !failed; service = queue.shift()) {
        const known = this.held.get(service)?.fence ?? null;
        const sentAt = this.clock();
        let claim: LeaseClaim;
        try {
          claim = await withTimeout(this.o.leases.claim(service, this.instanceId, known, this.ttlMs), this.renewMs);
        } catch (err) {
          failed = true;
          this.storeUnreachable(err);
          this.carryThroughOutage(sentAt);
          return;
        }
        this.storeBack();
        this.apply(service, claim, sentAt);
        if (!claim.mine) next = Math.min(next, Math.max(50, claim.expiresAt.getTime() - claim.now.getTime() + 50));
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(CLAIMS_AT_ONCE, Math.max(1, queue.length)) }, worker));
    } finally {
      this.armLapse();
    }
    if (failed) return Math.max(50, Math.floor(this.renewMs / 4));
    // A service dropped from the policy: give its lease back. Its rollguard_leader series goes
    // (on every instance), so an alert on no instance leading a service does not fire for it.
    for (const service of [...this.others.keys()]) {
      if (wanted.has(service)) continue;
      this.others.delete(service);
      this.o.gauge?.remove({ service });
    }
    for (const [service, { fence, acting }] of [...this.held]) {
      if (wanted.has(service)) continue;
      this.held.delete(service);
      this.o.gauge?.remove({ service });
      this.o.log.info({ service, holder: this.instanceId, fence }, 'leadership released: the service left the policy');
      if (acting) this.events.lost(service);
      await this.o.leases.release(service, this.instanceId, fence).catch(() => {});
    }
    return next;
  }

  /** What the store answered for `service`, to a claim sent at `sentAt` on the monotonic clock. */
  private apply(service: string, claim: LeaseClaim, sentAt: number): void {
    const log = this.o.log;
    // A lapse that happened before this answer counts, even when the answer renews the lease:
    // `leads()` was false meanwhile, so work may have stopped, and `gained` must bring it back.
    this.lapseExpired();
    const was = this.held.get(service);
    if (!claim.mine) {
      this.others.set(service, { holder: claim.holder, fence: claim.fence });
      this.o.gauge?.set({ service }, 0);
      if (!was) return;
      this.held.delete(service);
      log.warn({ service, holder: claim.holder, fence: claim.fence, was: this.instanceId }, 'leadership lost');
      if (was.acting) this.events.lost(service);
      return;
    }
    this.others.delete(service);
    const until = sentAt + this.ttlMs - this.marginMs;
    if (was && was.fence !== claim.fence) {
      // Our renewal came back with a new fence: someone else led in between.
      log.warn({ service, holder: this.instanceId, fence: was.fence, newFence: claim.fence }, 'leadership lost');
      if (was.acting) this.events.lost(service);
    }
    const lease: HeldLease = was && was.fence === claim.fence ? was : { fence: claim.fence, until, acting: false, acted: false };
    lease.until = until;
    this.held.set(service, lease);
    if (lease.acting) return; // renewed in time: no change
    if (this.clock() >= until) {
      // Answered too late to act on (this instance was paused while it waited); the next renewal may confirm it.
      log.warn({ service, holder: this.instanceId, fence: claim.fence, answeredAfterMs: Math.round(this.clock() - sentAt) }, 'lease renewed too late to act on; waiting for the next renewal');
      return;
    }
    lease.acting = true;
    this.o.gauge?.set({ service }, 1);
    if (lease.acted) log.info({ service, holder: this.instanceId, fence: claim.fence }, 'leadership confirmed again; catching up from the store');
    else log.info({ service, holder: this.instanceId, fence: claim.fence }, 'leadership acquired');
    lease.acted = true;
    this.events.gained(service);
  }

  /** Every lease acted on whose time is up on this instance's clock stops being acted on. */
  private lapseExpired(): void {
    const now = this.clock();
    for (const [service, lease] of this.held) {
      if (!lease.acting || now < lease.until) continue;
      lease.acting = false;
      this.o.gauge?.set({ service }, 0);
      this.o.log.warn({ service, holder: this.instanceId, fence: lease.fence, ttlMs: this.ttlMs, overdueMs: Math.round(now - lease.until), then: 'acting on nothing for the service until a renewal confirms the lease' },
        'leadership lapsed');
      this.events.lost(service);
    }
  }

  /** Wakes up when the earliest lease acted on runs out, so its lapse is told even between rounds. */
  private armLapse(): void {
    clearTimeout(this.lapseTimer);
    if (this.stopped) return;
    const untils = [...this.held.values()].filter((l) => l.acting).map((l) => l.until);
    if (!untils.length) return;
    this.lapseTimer = setTimeout(() => {
      this.lapseExpired();
      this.armLapse();
    }, Math.max(0, Math.min(...untils) - this.clock()));
    this.lapseTimer.unref();
  }

  /**
   * A renewal sent at `sentAt` that the store did not answer: while this instance keeps running
   * and keeps trying on schedule, the leases it acts on last as if that renewal had been
   * confirmed. Nobody else can take a lease without the store either, and protection must not
   * stop because PostgreSQL is down. A pause is still a lapse: no renewal is sent while the
   * process is stopped, so its time runs out on the monotonic clock as before.
   */
  private carryThroughOutage(sentAt: number): void {
    for (const lease of this.held.values()) {
      if (lease.acting) lease.until = Math.max(lease.until, sentAt + this.ttlMs - this.marginMs);
    }
  }

  private storeUnreachable(err: unknown): void {
    if (this.unreachableSince !== undefined) return;
    this.unreachableSince = this.clock();
    const leading = [...this.held].filter(([, l]) => l.acting).map(([s]) => s);
    this.o.log.warn({ err, leading, ttlMs: this.ttlMs }, 'cannot renew leases: store unreachable; still leading what this instance led while it keeps trying (nobody can take a lease without the store)');
  }

  private storeBack(): void {
    if (this.unreachableSince === undefined) return;
    this.o.log.info({ forMs: Math.round(this.clock() - this.unreachableSince) }, 'leases renewed again');
    this.unreachableSince = undefined;
  }

  /** Passes never overlap: the next is scheduled when the previous has finished. */
  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      let next = this.renewMs;
      const started = this.clock();
      this.running = this.round()
        .then((n) => { next = n; })
        .catch((err) => this.o.log.error({ err }, 'lease round failed'))
        .finally(() => {
          this.running = undefined;
          // Rounds start every `next` ms, however long one took (never overlapping).
          this.schedule(Math.max(0, next - (this.clock() - started)));
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
