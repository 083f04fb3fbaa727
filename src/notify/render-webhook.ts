/** NotificationEvent → the generic webhook's JSON body (see render.ts). */
import type { Severity } from '../config/policy.js';
import { jsonNumber, type JsonNumber } from '../model/json-number.js';
import type { EventKind, EvidenceSample, NotificationEvent } from './event.js';
import { graphLink } from './render-format.js';

/** The JSON a generic webhook receives. snake_case; absent evidence is `null` or `[]`, never a missing key. */
export interface WebhookBody {
  version: 1;
  event: EventKind;
  severity: Severity;
  at: string;
  service: string | null;
  /** As recorded: `from_*` is the version before the deployment (the known-good), `to_*` the deployed one. */
  deployment: {
    id: number;
    container: string;
    from_ref: string | null;
    from_image: string | null;
    to_ref: string;
    to_image: string;
    started_at: string;
    state: string;
    attempts: number;
  } | null;
  rule: { name: string; signal: string; threshold: string; for: number; severity: Severity; action: 'rollback' | 'notify' } | null;
  /** A value of +Inf or -Inf (JSON has no Infinity) is the string `"+Inf"` or `"-Inf"`, as Prometheus writes it. */
  samples: { at: string; value: JsonNumber | null; result: EvidenceSample['result'] }[];
  graph_url: string | null;
  actions: { kind: string; attempt: number; started_at: string; duration_ms: number; ok: boolean; detail: string | null }[];
  criteria: { signal: string; threshold: string; measured: JsonNumber | null; holds: boolean }[];
  time_to_recovery_ms: number | null;
  /** Contacts to call; set for rollback_failed only. */
  escalation: string[] | null;
  /** Counts over the period; set for digest only. */
  digest: {
    since: string; until: string; watched: number; passed: number; rolled_back: number; rollback_failed: number; inconclusive: number; pending_holds: number | null;
  } | null;
  title: string;
  summary: string;
}

export function renderWebhook(e: NotificationEvent): WebhookBody {
  const d = e.deployment;
  const g = e.digest;
  return {
    version: 1,
    event: e.kind,
    severity: e.severity,
    at: e.at,
    service: e.service ?? null,
    deployment: d
      ? { id: d.id, container: d.container, from_ref: d.fromRef, from_image: d.fromImage, to_ref: d.toRef, to_image: d.toImage, started_at: d.startedAt, state: d.state, attempts: d.attempts }
      : null,
    rule: e.rule ? { ...e.rule } : null,
    samples: (e.samples ?? []).map((s) => ({ at: s.at, value: jsonNumber(s.value), result: s.result })),
    graph_url: graphLink(e) ?? null,
    actions: (e.actions ?? []).map((a) => ({ kind: a.kind, attempt: a.attempt, started_at: a.startedAt, duration_ms: a.durationMs, ok: a.ok, detail: a.detail })),
    criteria: (e.criteria ?? []).map((c) => ({ signal: c.signal, threshold: c.threshold, measured: jsonNumber(c.measured), holds: c.holds })),
    time_to_recovery_ms: e.timeToRecoveryMs ?? null,
    escalation: e.kind === 'rollback_failed' ? (e.escalation ?? []) : null,
    digest: g
      ? { since: g.since, until: g.until, watched: g.watched, passed: g.passed, rolled_back: g.rolledBack, rollback_failed: g.rollbackFailed, inconclusive: g.inconclusive, pending_holds: g.pendingHolds }
      : null,
    title: e.title,
    summary: e.summary,
  };
}
