/** The evidence as lines and rows, shared by every channel (see render.ts): actions, recovery criteria, samples, digest counts. */
import type { EvidenceAction, EvidenceCriterion, EvidenceSample, NotificationEvent } from './event.js';
import { formatDuration, formatTime, formatValue, oneLine } from './render-format.js';

export const resultText = (r: EvidenceSample['result']): string => (r === 'breach' ? 'BREACH' : r === 'no-data' ? 'no data' : 'ok');

/** Steps before the first attempt (check-image, stop-bad) carry attempt 0 and show no number. */
export const attemptLabel = (a: EvidenceAction): string => (a.attempt > 0 ? `#${a.attempt}` : '–');

export const actionLine = (a: EvidenceAction): string =>
  `${attemptLabel(a)} ${a.kind} ${a.ok ? 'ok' : 'FAILED'} in ${formatDuration(a.durationMs)} at ${formatTime(a.startedAt)}${a.detail ? `: ${oneLine(a.detail)}` : ''}`;

export const criterionLine = (c: EvidenceCriterion): string => `${c.holds ? '✓' : '✗'} ${c.signal} ${c.threshold}: measured ${formatValue(c.measured)}`;

export const sampleLine = (s: EvidenceSample): string => `${formatTime(s.at)}  ${formatValue(s.value).padStart(10)}  ${resultText(s.result)}`;

export const samplesTitle = (e: NotificationEvent): string => `Last samples${e.rule ? ` of ${e.rule.signal} (${e.rule.threshold})` : ''}`;

export function digestRows(d: NonNullable<NotificationEvent['digest']>): [string, string][] {
  return [
    ['Period', `${formatTime(d.since)} → ${formatTime(d.until)}`],
    ['Deployments watched', String(d.watched)],
    ['Passed', String(d.passed)],
    ['Rolled back', String(d.rolledBack)],
    ['Rollback failed', String(d.rollbackFailed)],
    ['Inconclusive', String(d.inconclusive)],
    ['Pending holds', d.pendingHolds === null ? 'unknown' : String(d.pendingHolds)],
  ];
}
