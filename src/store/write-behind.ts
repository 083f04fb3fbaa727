import type { Logger } from 'pino';
import type { ActionRecord, DecisionRecord, Deployment, KnownGood, NewDeployment, SampleRecord, Store } from './store.js';

/** The writes the watch loop and the revert make; each one reaches the store in the order made. */
export interface Writes {
  insertDeployment(d: NewDeployment): Promise<Deployment>;
  updateDeployment(id: number, patch: DeploymentPatch): Promise<void>;
  insertSamples(rows: readonly SampleRecord[]): Promise<void>;
  insertDecision(d: DecisionRecord): Promise<void>;
  insertAction(a: ActionRecord): Promise<void>;
  setKnownGood(k: KnownGood): Promise<void>;
  /** Any other write, in the same order; `run` gets the resolver for the deployment IDs it names. Never throws. */
  write(what: string, run: (resolve: ResolveId) => Promise<void>): Promise<void>;
}

export type DeploymentPatch = Parameters<Store['updateDeployment']>[1];

/** Maps a provisional deployment ID (given while the store was down) to the one the store assigned. */
export type ResolveId = (id: number) => number;

interface PendingWrite {
  what: string;
  run: (resolve: ResolveId) => Promise<void>;
}

/**
 * Whether an error means the store could not be reached (retry later) rather than a refused
 * statement (retrying would fail the same way). PostgreSQL classes 08 (connection) and 57P
 * (shutdown, cannot connect now), and socket errors.
 */
export function isUnreachable(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : '';
  if (code.startsWith('08') || code.startsWith('57P') || code === '53300') return true;
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'EAI_AGAIN'].includes(code)) return true;
  const message = typeof e?.message === 'string' ? e.message : '';
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|the database system is (starting up|shutting down)|Query read timeout/i.test(message);
}

export interface WriteBehindOptions {
  log: Logger;
  /** Counts each write that could not be made at once. */
  onError?: () => void;
  /** How often to retry while writes are waiting (default 2 s). */
  retryMs?: number;
}

/**
 * Keeps rollguard protecting while its store is down: a write the store cannot take is kept in
 * memory, in order, and made as soon as the store is back — the watch loop and the revert never
 * wait on an outage. A deployment detected during an outage gets a provisional (negative) ID;
 * when its row is written, the object is given the real ID and every kept write that named the
 * provisional one is made with the real one. A write the store refuses for another reason
 * (a constraint, bad data) is logged with what it was and dropped, so it cannot block the rest.
 * What is kept lives in memory: it survives a store outage, not a crash of rollguard during one.
 */
export class WriteBehind implements Writes {
  private readonly pending: PendingWrite[] = [];
  private readonly ids = new Map<number, number>();
  private nextProvisional = -1;
  private flushing?: Promise<void>;
  private timer?: NodeJS.Timeout;
  private readonly log: Logger;
  private readonly resolve: ResolveId = (id) => this.ids.get(id) ?? id;

  constructor(private readonly store: Store, private readonly opts: WriteBehindOptions) {
    this.log = opts.log;
  }

  /** Writes kept in memory, waiting for the store. */
  get waiting(): number {
    return this.pending.length;
  }

  async insertDeployment(d: NewDeployment): Promise<Deployment> {
    if (!this.pending.length) {
      try {
        return await this.store.insertDeployment(d);
      } catch (err) {
        if (!isUnreachable(err)) throw err;
        this.failed(err, 'deployment');
      }
    }
    const provisional: Deployment = { ...d, id: this.nextProvisional--, state: d.state ?? 'watching', reason: d.reason ?? null, attempts: 0, decided_at: null, recovered_at: null };
    this.keep({
      what: 'deployment',
      run: async () => {
        const row = await this.store.insertDeployment(d);
        this.ids.set(provisional.id, row.id);
        this.log.info({ provisional: provisional.id, deployment: row.id, service: d.service }, 'deployment recorded after the store came back');
        provisional.id = row.id;
      },
    });
    return provisional;
  }

  updateDeployment(id: number, patch: DeploymentPatch): Promise<void> {
    return this.write('deployment state', (r) => this.store.updateDeployment(r(id), patch));
  }

  insertSamples(rows: readonly SampleRecord[]): Promise<void> {
    return this.write('samples', (r) => this.store.insertSamples(rows.map((s) => ({ ...s, deployment_id: r(s.deployment_id) }))));
  }

  insertDecision(d: DecisionRecord): Promise<void> {
    return this.write(`decision ${d.kind}`, (r) => this.store.insertDecision({ ...d, deployment_id: r(d.deployment_id) }));
  }

  insertAction(a: ActionRecord): Promise<void> {
    return this.write(`action ${a.kind}`, (r) => this.store.insertAction({ ...a, deployment_id: r(a.deployment_id) }));
  }

  setKnownGood(k: KnownGood): Promise<void> {
    return this.write('known-good', (r) => this.store.setKnownGood({ ...k, deployment_id: k.deployment_id === null ? null : r(k.deployment_id) }));
  }

  /**
   * Makes `run` now if nothing is waiting, else keeps it behind what is. Never throws: a refused
   * write is logged and dropped. `run` gets the ID resolver for deployment IDs it names.
   */
  async write(what: string, run: (resolve: ResolveId) => Promise<void>): Promise<void> {
    if (this.pending.length) {
      this.keep({ what, run });
      return;
    }
    try {
      await run(this.resolve);
    } catch (err) {
      if (!isUnreachable(err)) {
        this.refused(err, what);
        return;
      }
      this.failed(err, what);
      this.keep({ what, run });
    }
  }

  /** Makes every kept write, oldest first; stops at the first the store still cannot take. */
  flush(): Promise<void> {
    this.flushing ??= this.drain().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  /** Stops retrying (at shutdown); what is still kept is reported. */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length) this.log.error({ lost: this.pending.length, writes: [...new Set(this.pending.map((p) => p.what))] }, 'stopping with writes the store never took');
  }

  private async drain(): Promise<void> {
    const before = this.pending.length;
    while (this.pending.length) {
      const next = this.pending[0] as PendingWrite;
      try {
        await next.run(this.resolve);
      } catch (err) {
        if (isUnreachable(err)) {
          this.arm();
          return;
        }
        this.refused(err, next.what);
      }
      this.pending.shift();
    }
    clearTimeout(this.timer);
    this.timer = undefined;
    if (before) this.log.warn({ written: before }, 'store is back; every write kept during the outage is recorded');
  }

  private keep(w: PendingWrite): void {
    this.pending.push(w);
    this.arm();
  }

  private arm(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.opts.retryMs ?? 2_000);
    this.timer.unref();
  }

  private failed(err: unknown, what: string): void {
    this.opts.onError?.();
    if (this.pending.length === 0) this.log.error({ err, what }, 'store unreachable; keeping writes in memory and protecting on');
  }

  private refused(err: unknown, what: string): void {
    this.opts.onError?.();
    this.log.error({ err, what }, 'the store refused a write; it is dropped');
  }
}
