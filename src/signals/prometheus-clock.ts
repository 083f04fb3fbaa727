import type { Logger } from 'pino';

/** Prometheus's current time as it answered, or why it did not. */
export type ClockReading = { ok: true; prometheusMs: number } | { ok: false; detail: string };

export interface ClockOptions {
  /** Asks Prometheus for its time (bounded by its own timeout; never rejects). */
  read(): Promise<ClockReading>;
  /** The host's clock, ms since the epoch (default `Date.now`). */
  now?: () => number;
  /** A monotonic clock in ms for round trips and refresh periods (default `performance.now`). */
  monotonic?: () => number;
  log?: Logger;
  /** How often the offset is measured again (default 60 s). */
  refreshMs?: number;
  /** How soon a failed measurement is tried again (default 10 s). */
  retryMs?: number;
}

/**
 * Clocks within this of each other are taken to agree: the measurement itself is only as exact
 * as half a round trip, and a query evaluated a second off reads the same data.
 */
export const CLOCK_TOLERANCE_MS = 1_000;

/**
 * The offset between Prometheus's clock and this host's, so that queries are evaluated at
 * Prometheus's "now" while callers keep passing host time. Rules read ranges ending at the
 * evaluation time: a host running ahead of Prometheus by more than a rule's range asks about a
 * future with no samples (no data), one running behind judges the version deployed before.
 *
 * The offset is Prometheus's `time()` minus the midpoint of the request on the host clock,
 * measured at first use and again every `refreshMs`. The first query waits for the first
 * measurement; later ones use the offset known so far while a new one runs. A failed
 * measurement never holds up a query: the last known offset (0 at first) stays in use.
 * Offsets within CLOCK_TOLERANCE_MS count as 0; a new offset is applied, and warned about,
 * only when it moves by more than that, so a steady skew is logged once, not every tick.
 */
export class PrometheusClock {
  private applied = 0;
  private lastAttempt = Number.NEGATIVE_INFINITY;
  private lastFailed = false;
  private attempted = false;
  private pending?: Promise<void>;
  private readonly now: () => number;
  private readonly monotonic: () => number;
  private readonly refreshMs: number;
  private readonly retryMs: number;

  constructor(private readonly opts: ClockOptions) {
    this.now = opts.now ?? Date.now;
    this.monotonic = opts.monotonic ?? (() => performance.now());
    this.refreshMs = opts.refreshMs ?? 60_000;
    this.retryMs = opts.retryMs ?? 10_000;
  }

  /** The host clock this one is compared with. */
  hostNow(): number {
    return this.now();
  }

  /**
   * Prometheus time minus host time, in ms, as applied to queries now (0 while they agree). The
   * first call waits for the first measurement, at most `waitMs` (the caller's own time budget).
   */
  async offsetMs(waitMs = Number.POSITIVE_INFINITY): Promise<number> {
    const since = this.monotonic() - this.lastAttempt;
    if (!this.pending && since >= (this.lastFailed ? this.retryMs : this.refreshMs)) {
      this.lastAttempt = this.monotonic();
      // Never rejects: a measurement that throws (an absurd time() answer) is a failed one.
      this.pending = this.measure()
        .catch((err: unknown) => {
          this.attempted = true;
          this.lastFailed = true;
          this.opts.log?.debug({ error: String(err), offsetMs: this.applied }, "measuring Prometheus's clock failed; queries keep the last known offset");
        })
        .finally(() => {
          this.pending = undefined;
        });
    }
    if (!this.attempted && this.pending) await within(this.pending, waitMs);
    return this.applied;
  }

  /** A host time as the same moment on Prometheus's clock. */
  async toPrometheus(hostMs: number, waitMs?: number): Promise<number> {
    return hostMs + (await this.offsetMs(waitMs));
  }

  private async measure(): Promise<void> {
    const sentAt = this.now();
    const started = this.monotonic();
    const reading = await this.opts.read();
    const roundTripMs = this.monotonic() - started;
    this.attempted = true;
    if (!reading.ok) {
      this.lastFailed = true;
      this.opts.log?.debug({ error: reading.detail, offsetMs: this.applied }, "measuring Prometheus's clock failed; queries keep the last known offset");
      return;
    }
    this.lastFailed = false;
    const hostMs = sentAt + roundTripMs / 2;
    const measured = Math.round(reading.prometheusMs - hostMs);
    const next = this.next(measured);
    if (next === this.applied) return;
    const before = this.applied;
    this.applied = next;
    const fields = {
      hostTime: new Date(hostMs).toISOString(),
      prometheusTime: new Date(reading.prometheusMs).toISOString(),
      offsetMs: measured,
      roundTripMs: Math.round(roundTripMs),
    };
    if (next !== 0) {
      this.opts.log?.warn(fields, `Prometheus's clock is ${describeOffset(measured)} this host's; queries are evaluated at Prometheus's time`);
    } else {
      this.opts.log?.info({ ...fields, previousOffsetMs: before }, "Prometheus's clock agrees with this host's again");
    }
  }

  /** The offset to apply after measuring `measured`: kept while within the tolerance of the applied one. */
  private next(measured: number): number {
    if (this.applied === 0) return Math.abs(measured) > CLOCK_TOLERANCE_MS ? measured : 0;
    if (Math.abs(measured) <= CLOCK_TOLERANCE_MS / 2) return 0;
    return Math.abs(measured - this.applied) > CLOCK_TOLERANCE_MS ? measured : this.applied;
  }
}

/** Resolves when `p` settles or `ms` have passed, whichever is first. */
async function within(p: Promise<void>, ms: number): Promise<void> {
  if (!Number.isFinite(ms)) return p;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, ms))))]);
  clearTimeout(timer);
}

/** `12.5 s ahead of`, `10 min behind`. */
function describeOffset(ms: number): string {
  const abs = Math.abs(ms);
  const size = abs >= 120_000 ? `${+(abs / 60_000).toFixed(1)} min` : `${+(abs / 1000).toFixed(1)} s`;
  return `${size} ${ms > 0 ? 'ahead of' : 'behind'}`;
}
