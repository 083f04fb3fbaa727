import type { Severity } from '../config/policy.js';
import { fromJsonNumber, jsonNumber } from './json-number.js';

// What a notification says, shared by notify/ (which renders and sends it), store/ (whose outbox
// keeps it until it is delivered) and daemon/ (which captures it). A domain type, so it lives
// here rather than in notify/: store/ may import model/, never notify/.

/** What rollguard tells people about. One incident per deployment: each kind at most once per deployment and channel. */
export type EventKind =
  | 'deployment_detected'
  | 'rule_breached'
  | 'rollback_started'
  | 'rollback_succeeded'
  | 'rollback_failed'
  | 'watch_inconclusive'
  | 'deployment_passed'
  | 'digest'
  | 'test';

/** One sample as shown in a message. */
export interface EvidenceSample {
  /** ISO time the sample was taken. */
  at: string;
  value: number | null;
  result: 'ok' | 'breach' | 'no-data';
}

/** A step of the revert, with its timing. */
export interface EvidenceAction {
  kind: string;
  attempt: number;
  startedAt: string;
  durationMs: number;
  ok: boolean;
  detail: string | null;
}

/** A runbook success criterion and what was measured for it. */
export interface EvidenceCriterion {
  signal: string;
  /** e.g. `below 0.01` */
  threshold: string;
  measured: number | null;
  holds: boolean;
}

/**
 * Everything a message says, captured when the event happens and stored with it in the outbox,
 * so a message sent later (after an outage of the channel) still tells what was true then.
 */
export interface NotificationEvent {
  kind: EventKind;
  severity: Severity;
  /** Short human title, e.g. `web: rolled back v1.5.3 → v1.5.2`. */
  title: string;
  /** One-paragraph summary. */
  summary: string;
  /** ISO time of the event. */
  at: string;
  service?: string;
  deployment?: {
    id: number;
    fromRef: string | null;
    fromImage: string | null;
    toRef: string;
    toImage: string;
    container: string;
    startedAt: string;
    state: string;
    attempts: number;
  };
  rule?: { name: string; signal: string; threshold: string; for: number; severity: Severity; action: 'rollback' | 'notify' };
  /** The last samples of the rule's signal, oldest first. */
  samples?: EvidenceSample[];
  /** Link to the Prometheus graph of the rule's query over the window, when the signal is a Prometheus query. */
  graphUrl?: string;
  actions?: EvidenceAction[];
  criteria?: EvidenceCriterion[];
  /** Bad container start → recovery verified, for rollback_succeeded. */
  timeToRecoveryMs?: number;
  /** For rollback_failed: who to call (the policy's `escalation.contacts`). */
  escalation?: string[];
  /** For the chart: the breaching signal over the window, the threshold, and the moments marked on it. */
  chart?: {
    signal: string;
    threshold: number;
    direction: 'above' | 'below';
    points: { t: number; v: number | null }[];
    deployAt: number;
    revertAt?: number;
    /** What the revert marker says before its time (default `revert`): `would revert (dry run)`, `revert (failed)`. */
    revertLabel?: string;
  };
  /** For digest events: counts over the period. */
  digest?: { since: string; until: string; watched: number; passed: number; rolledBack: number; rollbackFailed: number; inconclusive: number; pendingHolds: number | null };
}

/**
 * The event as stored JSON. JSON has no Infinity: `JSON.stringify` writes a +Inf sample (an error
 * ratio over zero successes) as null, which would read back as no data in the very message about
 * its breach. ±Infinity is written `"+Inf"` / `"-Inf"` and read back by `eventFromJson`.
 */
export function eventToJson(e: NotificationEvent): string {
  return JSON.stringify(e, (_key, v: unknown) => jsonNumber(v));
}

/** The stored JSON of an event (parsed) as the event, its samples, chart and criteria with ±Infinity again. */
export function eventFromJson(stored: unknown): NotificationEvent {
  const e = stored as NotificationEvent;
  for (const s of e.samples ?? []) s.value = fromJsonNumber(s.value) as number | null;
  for (const c of e.criteria ?? []) c.measured = fromJsonNumber(c.measured) as number | null;
  if (e.chart) {
    e.chart.threshold = fromJsonNumber(e.chart.threshold) as number;
    for (const p of e.chart.points ?? []) p.v = fromJsonNumber(p.v) as number | null;
  }
  return e;
}
