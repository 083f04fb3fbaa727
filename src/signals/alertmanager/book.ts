/** An alert as one Alertmanager notification tells it (webhook payload version 4), already validated. */
export interface ReceivedAlert {
  status: 'firing' | 'resolved';
  fingerprint: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** RFC 3339 times; Alertmanager sends Go's zero time (`0001-01-01T00:00:00Z`) as the end of a firing alert. */
  startsAt: string;
  endsAt: string;
}

/** A firing alert kept in the book. */
export interface FiringAlert {
  fingerprint: string;
  labels: Readonly<Record<string, string>>;
  /** The alert's `summary` annotation, if any, for the sample's detail. */
  summary?: string;
  startsAt: Date;
  /** When the alert stops counting as firing; undefined while Alertmanager gives no end. */
  endsAt?: Date;
}

/** The most alerts kept; past it the one heard of longest ago is dropped, so a flood cannot exhaust memory. */
export const MAX_ALERTS = 10_000;

/** Epoch milliseconds of an RFC 3339 time; Go's zero time (year 1) and unparsable text are no time at all. */
function instant(text: string): Date | undefined {
  const ms = Date.parse(text);
  return Number.isFinite(ms) && ms > 0 ? new Date(ms) : undefined;
}

/**
 * The alerts Alertmanager's notifications told firing, by fingerprint, in memory — to be logged
 * and shown in the status, never to decide a sample: a silence, an inhibition or `send_resolved:
 * false` swallows the resolved notification, a restart empties the book, and each instance has its
 * own. The alertmanager signals ask Alertmanager's API instead. A notification's firing alerts
 * are added (or refreshed), its resolved ones removed, and an alert whose `endsAt` has passed
 * counts as resolved even when no resolved notification came.
 */
export class AlertBook {
  private readonly alerts = new Map<string, FiringAlert>();

  constructor(private readonly maxAlerts = MAX_ALERTS) {}

  /** Takes in the alerts of one notification; returns how many of them fire and how many resolved. */
  record(alerts: readonly ReceivedAlert[], now: Date): { firing: number; resolved: number } {
    let firing = 0;
    let resolved = 0;
    for (const a of alerts) {
      const endsAt = instant(a.endsAt);
      // Re-inserted, so that the Map's order is the order in which alerts were last heard of.
      this.alerts.delete(a.fingerprint);
      if (a.status === 'resolved' || (endsAt && endsAt <= now)) {
        resolved += 1;
        continue;
      }
      firing += 1;
      const summary = a.annotations.summary;
      this.alerts.set(a.fingerprint, { fingerprint: a.fingerprint, labels: { ...a.labels }, summary, startsAt: instant(a.startsAt) ?? now, endsAt });
      if (this.alerts.size > this.maxAlerts) this.alerts.delete(this.alerts.keys().next().value as string);
    }
    return { firing, resolved };
  }

  /** The alerts firing at `now` that carry every one of `labels` with exactly that value, oldest first. */
  firing(labels: Readonly<Record<string, string>>, now: Date): FiringAlert[] {
    const wanted = Object.entries(labels);
    const out: FiringAlert[] = [];
    for (const [fingerprint, a] of this.alerts) {
      if (a.endsAt && a.endsAt <= now) {
        this.alerts.delete(fingerprint);
        continue;
      }
      if (wanted.every(([k, v]) => a.labels[k] === v)) out.push(a);
    }
    return out.sort((x, y) => x.startsAt.getTime() - y.startsAt.getTime());
  }

  /** How many alerts told firing each of `services` has, by the value of its `label` (for the status). */
  countBy(label: string, services: readonly string[], now: Date): Record<string, number> {
    return Object.fromEntries(services.map((service) => [service, this.firing({ [label]: service }, now).length]));
  }

  /** How many alerts are kept (firing, or past their end but not yet looked at). */
  get size(): number {
    return this.alerts.size;
  }
}
