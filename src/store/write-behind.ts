import { appendFileSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { jsonNumber } from '../model/json-number.js';
import { classifyWriteFailure, sqlState, UnrecordedDeployment, type WriteFailure } from './write-failure.js';
import type { ActionRecord, DecisionRecord, Deployment, KnownGood, NewDeployment, SampleRecord, Store } from './store.js';

/** The writes the watch loop and the revert make; each one reaches the store in the order made. None of them throws. */
export interface Writes {
  insertDeployment(d: NewDeployment): Promise<Deployment>;
  updateDeployment(id: number, patch: DeploymentPatch): Promise<void>;
  insertSamples(rows: readonly SampleRecord[]): Promise<void>;
  insertDecision(d: DecisionRecord): Promise<void>;
  insertAction(a: ActionRecord): Promise<void>;
  setKnownGood(k: KnownGood): Promise<void>;
  /**
   * Any other write, in the same order; `run` gets the resolver for the deployment IDs it names.
   * `record` is what the write records, kept with it if it is ever set aside. Never throws.
   */
  write(what: string, run: (resolve: ResolveId) => Promise<void>, record?: unknown): Promise<void>;
}

export type DeploymentPatch = Parameters<Store['updateDeployment']>[1];

/** Maps a provisional deployment ID (given while the store did not take writes) to the one the store assigned. */
export type ResolveId = (id: number) => number;

export interface WriteBehindOptions {
  log: Logger;
  /** Counts each attempt at a write that failed. */
  onError?: () => void;
  /** Counts each write set aside (see `setAsideFile`). */
  onSetAside?: () => void;
  /**
   * JSON-lines file (in the state directory) that keeps each write set aside — one the store
   * rejected every time, and what is still kept when rollguard stops — with its record and the
   * error. Without it such a write is lost; the error log names it either way (never its record,
   * which can hold a container's environment).
   */
  setAsideFile?: string;
  /** How often to retry while writes are waiting (default 2 s); a rejected write backs off from it. */
  retryMs?: number;
  /** How long a caller waits for its write before going on without it (default 1 s). */
  waitMs?: number;
  /** Attempts at a rejected write before it is set aside (default 3). */
  rejectedAttempts?: number;
}

interface PendingWrite {
  what: string;
  run: (resolve: ResolveId) => Promise<void>;
  /** What the write records, for the set-aside file. */
  record?: unknown;
  /** The provisional ID of the deployment this write records, when it records one. */
  provisional?: number;
  /** Failed attempts the store rejected. */
  rejections: number;
  /** A rejected write is not tried again before this (epoch ms), however often the queue is flushed. */
  notBefore?: number;
  /** Lets the callers waiting on this write go on (it is written, kept or set aside). */
  waiters: (() => void)[];
  /**
   * A samples write: the rows of each caller, made in one statement. Callers join the last
   * queued samples write while it has not started, so the samples of every watch that ticked
   * together reach the store in one statement rather than one each.
   */
  samples?: SampleRecord[][];
  /** Rows in `samples`. */
  rows?: number;
  /** The first attempt was made: nothing joins it any more. */
  started?: boolean;
}

/** Rows one samples statement takes at most; more start another. */
export const MAX_SAMPLES_PER_STATEMENT = 5_000;

function settle(w: PendingWrite): void {
  for (const resolve of w.waiters.splice(0)) resolve();
}

/**
 * Keeps rollguard protecting whatever happens to its store: every write goes through one
 * ordered queue, and a write the store does not take — it is unreachable, or answers but refuses
 * writes (read-only after a failover, disk full, a statement timeout) — is kept in memory, in
 * order, and retried until it does. The watch loop and the revert never wait on it: a caller
 * waits for its write at most `waitMs`, and not at all while the store is not taking writes.
 * A deployment not recorded in time gets a provisional (negative) ID; when its row is written,
 * the object is given the real ID and every kept write that named the provisional one is made
 * with the real one.
 *
 * A write the store rejects as wrong in itself (a constraint, bad data: a bug) would fail the
 * same way forever, so it must not hold up every write behind it: it is retried a few times
 * with backoff (in case the rejection was a race), then set aside — appended with its error to
 * `setAsideFile`, logged at error and counted — and the writes behind it go on; so, at once,
 * is every later write that names a deployment set aside. Nothing is dropped unseen.
 *
 * What is kept lives in memory: it survives a store outage, not a crash of rollguard during one
 * (a clean stop sets it aside in `setAsideFile`).
 */
export class WriteBehind implements Writes {
  private readonly pending: PendingWrite[] = [];
  private readonly ids = new Map<number, number>();
  /** Provisional IDs of deployments whose record was set aside. */
  private readonly unrecorded = new Set<number>();
  private nextProvisional = -1;
  private flushing?: Promise<void>;
  private timer?: NodeJS.Timeout;
  /** While the store does not take writes: since when, and why (logged once per outage, and when the reason changes). */
  private outage?: { since: number; kind: WriteFailure };
  /** A write took longer than `waitMs`: callers stop waiting until the queue is empty again. */
  private slow = false;
  private setAsideCount = 0;
  private readonly log: Logger;
  private readonly resolve: ResolveId = (id) => {
    if (this.unrecorded.has(id)) throw new UnrecordedDeployment(id);
    return this.ids.get(id) ?? id;
  };

  constructor(private readonly store: Store, private readonly opts: WriteBehindOptions) {
    this.log = opts.log;
  }

  /** Writes kept in memory, waiting for the store. */
  get waiting(): number {
    return this.pending.length;
  }

  /** Writes set aside since start (rejected every time, or kept at a stop). */
  get setAside(): number {
    return this.setAsideCount;
  }

  async insertDeployment(d: NewDeployment): Promise<Deployment> {
    const provisional: Deployment = { ...d, id: this.nextProvisional--, state: d.state ?? 'watching', reason: d.reason ?? null, attempts: 0, decided_at: null, recovered_at: null };
    const made: { row?: Deployment; handedOut?: boolean } = {};
    await this.enqueue({
      what: 'deployment',
      record: { provisional_id: provisional.id, ...d },
      provisional: provisional.id,
      rejections: 0,
      waiters: [],
      run: async () => {
        const row = await this.store.insertDeployment(d);
        if (made.handedOut) {
          this.ids.set(provisional.id, row.id);
          this.log.info({ provisional: provisional.id, deployment: row.id, service: d.service }, 'deployment recorded late; its real ID replaces the provisional one');
        }
        provisional.id = row.id;
        made.row = row;
      },
    });
    if (made.row) return made.row;
    made.handedOut = true;
    return provisional;
  }

  updateDeployment(id: number, patch: DeploymentPatch): Promise<void> {
    return this.write('deployment state', (r) => this.store.updateDeployment(r(id), patch), { deployment_id: id, ...patch });
  }

  /**
   * Queues the samples of one tick. They join the samples write at the end of the queue when it
   * has not started yet and has room (`MAX_SAMPLES_PER_STATEMENT`), so every watch answered by one
   * batched query is recorded in one statement.
   */
  insertSamples(rows: readonly SampleRecord[]): Promise<void> {
    if (!rows.length) return Promise.resolve();
    const tail = this.pending[this.pending.length - 1];
    if (tail?.samples && !tail.started && (tail.rows ?? 0) + rows.length <= MAX_SAMPLES_PER_STATEMENT) {
      tail.samples.push([...rows]);
      tail.rows = (tail.rows ?? 0) + rows.length;
      return this.await(tail);
    }
    return this.enqueue(this.samplesWrite([[...rows]]));
  }

  private samplesWrite(parts: SampleRecord[][]): PendingWrite {
    const w: PendingWrite = {
      what: 'samples',
      samples: parts,
      rows: parts.reduce((n, p) => n + p.length, 0),
      rejections: 0,
      waiters: [],
      get record() {
        return parts.flat();
      },
      run: (r) => this.store.insertSamples(parts.flat().map((s) => ({ ...s, deployment_id: r(s.deployment_id) }))),
    };
    return w;
  }

  insertDecision(d: DecisionRecord): Promise<void> {
    return this.write(`decision ${d.kind}`, (r) => this.store.insertDecision({ ...d, deployment_id: r(d.deployment_id) }), d);
  }

  insertAction(a: ActionRecord): Promise<void> {
    return this.write(`action ${a.kind}`, (r) => this.store.insertAction({ ...a, deployment_id: r(a.deployment_id) }), a);
  }

  setKnownGood(k: KnownGood): Promise<void> {
    return this.write('known-good', (r) => this.store.setKnownGood({ ...k, deployment_id: k.deployment_id === null ? null : r(k.deployment_id) }), k);
  }

  /**
   * Queues `run` behind what waits and makes it as soon as the store takes it. Never throws;
   * resolves when it is written, or kept because the store does not take writes now, or after
   * `waitMs` — whichever comes first. `run` gets the ID resolver for deployment IDs it names.
   */
  write(what: string, run: (resolve: ResolveId) => Promise<void>, record?: unknown): Promise<void> {
    return this.enqueue({ what, run, record, rejections: 0, waiters: [] });
  }

  /** Makes every kept write, oldest first; stops at the first the store still does not take. */
  flush(): Promise<void> {
    this.flushing ??= this.drain();
    return this.flushing;
  }

  /** Stops retrying (at shutdown); what is still kept is set aside, so it is not lost. */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.pending.length) return;
    const kept = this.pending.splice(0);
    for (const w of kept) settle(w);
    const error = { message: 'rollguard stopped before the store took this write' };
    let file = this.settingAside(kept.length);
    try {
      if (file) appendFileSync(file, kept.map((w) => this.entry(w, error)).join(''), { mode: 0o600 });
    } catch (err) {
      this.log.error({ err, file }, 'cannot write the set-aside file');
      file = undefined;
    }
    const fields = { kept: kept.length, writes: [...new Set(kept.map((p) => p.what))], file };
    if (file) this.log.error(fields, 'stopping with writes the store never took; they are set aside in the file');
    else this.log.error(fields, 'stopping with writes the store never took; they are lost (no set-aside file)');
  }

  private enqueue(w: PendingWrite): Promise<void> {
    this.pending.push(w);
    return this.await(w);
  }

  /** Waits for a queued write (see `write`). */
  private async await(w: PendingWrite): Promise<void> {
    // The store is not taking writes now: the write waits its turn, and nobody waits on it.
    if (this.outage || this.timer || this.slow) return;
    const settled = new Promise<void>((resolve) => w.waiters.push(resolve));
    void this.flush();
    let timer: NodeJS.Timeout | undefined;
    const inTime = await Promise.race([settled.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), this.opts.waitMs ?? 1_000)))]);
    clearTimeout(timer);
    if (!inTime && !this.slow) {
      this.slow = true;
      this.log.debug({ what: w.what, waitMs: this.opts.waitMs ?? 1_000 }, 'the store is slow to take a write; going on without waiting for it');
    }
  }

  private async drain(): Promise<void> {
    // Not before `flushing` is set: the check that the queue is empty and the clearing of
    // `flushing` must happen together, or a write queued in between would wait for the timer.
    await null;
    // Samples arrive in bursts (every watch a batched query answered, in the same turn of the
    // event loop): let the whole burst join the queued samples write before it starts.
    if (this.pending[0]?.samples && !this.pending[0].started) await new Promise((r) => setImmediate(r));
    let written = 0;
    try {
      while (this.pending.length) {
        const next = this.pending[0] as PendingWrite;
        if (next.notBefore !== undefined && Date.now() < next.notBefore) {
          this.arm(next.notBefore - Date.now());
          return;
        }
        next.started = true;
        try {
          await next.run(this.resolve);
          written++;
        } catch (err) {
          if (!(await this.failed(next, err))) return;
        }
        if (this.pending[0] === next) this.pending.shift();
        settle(next);
      }
      this.back(written);
    } finally {
      this.flushing = undefined;
    }
  }

  /**
   * Handles a failed attempt: true when the queue goes on (the write was set aside, or split into
   * its callers' writes in its place), false when it is kept (retry later).
   */
  private async failed(w: PendingWrite, err: unknown): Promise<boolean> {
    this.opts.onError?.();
    const kind = classifyWriteFailure(err);
    if (kind === 'rejected' && w.samples && w.samples.length > 1) {
      if (this.pending[0] !== w) return true; // close() took it meanwhile: it is set aside already
      // One caller's rows must not cost every other watch its samples: each is tried on its own.
      this.log.warn({ err, rows: w.rows, parts: w.samples.length }, 'the store rejected a batch of samples; writing each watch\'s samples on its own');
      this.pending.splice(0, 1, ...w.samples.map((part) => ({ ...this.samplesWrite([part]), started: true })));
      settle(w);
      return true;
    }
    if (kind === 'rejected') {
      w.rejections++;
      if (err instanceof UnrecordedDeployment || w.rejections >= (this.opts.rejectedAttempts ?? 3)) {
        await this.setAsideWrite(w, err);
        return true;
      }
      const backoffMs = (this.opts.retryMs ?? 2_000) * 2 ** (w.rejections - 1);
      w.notBefore = Date.now() + backoffMs;
      this.log.warn({ err, what: w.what, attempt: w.rejections, retryInMs: backoffMs }, 'the store rejected a write; retrying it before setting it aside');
      this.stall(backoffMs);
      return false;
    }
    const code = sqlState(err) ?? (err as { code?: string })?.code;
    if (this.outage?.kind !== kind) {
      const message = kind === 'unreachable' ? 'store unreachable; keeping writes in memory and protecting on' : 'the store refuses writes; keeping them in memory and protecting on';
      this.log.warn({ err, code, what: w.what, waiting: this.pending.length }, message);
      this.outage = { since: this.outage?.since ?? Date.now(), kind };
    } else {
      this.log.debug({ error: (err as Error)?.message, code, what: w.what, waiting: this.pending.length }, 'the store still does not take writes; retrying');
    }
    this.stall(this.opts.retryMs ?? 2_000);
    return false;
  }

  /** The queue waits: retry after `ms`, and let every caller still waiting go on. */
  private stall(ms: number): void {
    for (const p of this.pending) settle(p);
    this.arm(ms);
  }

  private arm(ms: number): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, ms);
    this.timer.unref();
  }

  /** The queue is empty again. */
  private back(written: number): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.slow = false;
    if (!this.outage) return;
    this.log.info({ written, forMs: Date.now() - this.outage.since }, 'store is back; every write kept during the outage is recorded');
    this.outage = undefined;
  }

  private async setAsideWrite(w: PendingWrite, err: unknown): Promise<void> {
    if (w.provisional !== undefined) this.unrecorded.add(w.provisional);
    let file = this.settingAside(1);
    try {
      if (file) await appendFile(file, this.entry(w, { message: (err as Error)?.message ?? String(err), code: sqlState(err) }), { mode: 0o600 });
    } catch (fileErr) {
      this.log.error({ err: fileErr, file }, 'cannot write the set-aside file');
      file = undefined;
    }
    const fields = { err, what: w.what, attempts: w.rejections, deployment: w.provisional, file };
    if (file) this.log.error(fields, 'the store rejected a write every time; it is set aside in the file and the writes behind it go on');
    else this.log.error(fields, 'the store rejected a write every time; it is lost (no set-aside file) and the writes behind it go on');
  }

  /** Counts `n` writes as set aside; returns the file they go to, if there is one. */
  private settingAside(n: number): string | undefined {
    this.setAsideCount += n;
    for (let i = 0; i < n; i++) this.opts.onSetAside?.();
    return this.opts.setAsideFile;
  }

  /** One line of the set-aside file. */
  private entry(w: PendingWrite, error: { message: string; code?: string }): string {
    const at = new Date().toISOString();
    try {
      // ±Infinity (a +Inf sample) is written as "+Inf"/"-Inf": JSON would turn it into null.
      return `${JSON.stringify({ set_aside_at: at, what: w.what, error, record: w.record ?? null }, (_key, value: unknown) => jsonNumber(value))}\n`;
    } catch (err) {
      return `${JSON.stringify({ set_aside_at: at, what: w.what, error, record: null, record_error: `cannot be written as JSON: ${(err as Error).message}` })}\n`;
    }
  }
}
