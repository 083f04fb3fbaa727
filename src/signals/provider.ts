import type { Signal } from '../config/policy.js';
import type { TemplateValues } from '../config/template.js';
import type { ReplicaView } from '../model/replica-view.js';

/** What a probe knows about the deployment it measures. */
export interface ProbeContext {
  template: TemplateValues;
  /** The service's current container, for container-state signals. */
  containerId: string;
  /** Every replica of the version being judged; container-state signals read each (default: containerId alone). */
  containerIds?: readonly string[];
  /** Reads a replica's state through its deploy target (a Swarm task); without it, Docker inspects the container. */
  inspectReplica?: (id: string) => Promise<ReplicaView | undefined>;
  /** A replica's own placeholders ({{slot}}, {{node_addr}}…), for signals measured once per replica. */
  replicaValues?: (id: string) => Promise<Partial<TemplateValues> | undefined>;
  /** Evaluation time on this host's clock; the Prometheus provider asks for the same moment on Prometheus's clock. */
  at: Date;
  /**
   * When the tick was due (epoch ms, same clock as `at`). Thousands of watches due at once run
   * one after another, so the last ones start later than they were due: they still join the
   * batch of their due time rather than wait for the next.
   */
  dueAt?: number;
  /** Fills `{{range}}` in burn-rate queries. */
  range?: string;
  /** The watch's interval: lets the watch loop batch the queries of services whose ticks share a slot. */
  intervalMs?: number;
  /**
   * When the deployment under watch started (epoch ms): an alertmanager signal counts only alerts
   * that started at or after it. Absent (recovery verification, the live check): every active alert counts.
   */
  deployedAt?: number;
}

/**
 * One measurement. `value: null` is no data (the source is down, timed out or returned
 * nothing): it is counted apart from a breach and never causes a revert by itself.
 */
export interface Measurement {
  value: number | null;
  /** Why there is no data, or what did not match; shown in records and alerts. */
  detail?: string;
  latencyMs: number;
  /**
   * When the value was evaluated (epoch ms), when not at the tick's own time: a batched query is
   * evaluated at its batch's time, which can be later than the tick that joined it.
   */
  takenAt?: number;
}

/** Measures one kind of signal. `measure` never rejects: failures are measurements too. */
export interface SignalProvider<S extends Signal = Signal> {
  readonly kind: S['kind'];
  measure(signal: S, ctx: ProbeContext): Promise<Measurement>;
}

export function errorText(err: unknown): string {
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; message?: unknown };
    const message = typeof e.message === 'string' ? e.message : String(err);
    return typeof e.code === 'string' && !message.includes(e.code) ? `${e.code}: ${message}` : message;
  }
  return String(err);
}
