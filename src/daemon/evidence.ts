import type { Policy, Rule, ServicePolicy, Severity } from '../config/policy.js';
import { shortId } from '../model/image-ref.js';
import { BY_HAND_SIGNAL } from './by-hand.js';
import { redactUrl } from '../model/redact-url.js';
import type { EventKind, EvidenceAction, EvidenceCriterion, EvidenceSample, NotificationEvent } from '../notify/event.js';
import { describeThreshold } from '../policy/assess.js';
import { formatDuration } from '../config/duration.js';
import { renderTemplate, type TemplateValues } from '../config/template.js';
import type { Deployment } from '../store/store.js';

/** A sample kept in memory for messages and charts. */
export interface SeenSample { t: number; v: number | null; result: EvidenceSample['result'] }

export interface EvidenceInput {
  kind: EventKind;
  severity: Severity;
  policy: Policy;
  service: ServicePolicy;
  deployment: Deployment;
  template: TemplateValues;
  rule?: Rule;
  /** Samples of the rule's signal over the window, oldest first. */
  history?: readonly SeenSample[];
  actions?: EvidenceAction[];
  criteria?: EvidenceCriterion[];
  revertAt?: number;
  recoveredAt?: number;
  reason?: string;
  at: Date;
}

const LAST_SAMPLES = 10;
const CHART_POINTS = 600;

function ref(r: string | null, image: string | null): string {
  return `${r ?? 'unknown'}${image ? ` (${shortId(image)})` : ''}`;
}

function titleFor(i: EvidenceInput): string {
  const d = i.deployment;
  const to = d.to_ref;
  const from = d.from_ref ?? 'the previous version';
  switch (i.kind) {
    case 'deployment_detected': return `${d.service}: deploying ${to}`;
    case 'rule_breached': return `${d.service}: ${i.rule?.name ?? 'rule breached'} after deploying ${to}`;
    case 'rollback_started': return `${d.service}: rolling back ${to} → ${from}`;
    case 'rollback_succeeded': return `${d.service}: rolled back ${to} → ${from}${i.recoveredAt ? ` in ${((i.recoveredAt - d.started_at.getTime()) / 1000).toFixed(1)} s` : ''}`;
    case 'rollback_failed': return `ROLLBACK FAILED ${d.service}: ${to} → ${from}`;
    case 'watch_inconclusive': return `${d.service}: ${to} watch inconclusive (not enough data)`;
    case 'deployment_passed': return `${d.service}: ${to} passed its watch${d.state === 'passed_early' ? ' early' : ''} and is now known-good`;
    default: return `${d.service}: ${i.kind}`;
  }
}

/** The follow-up steps after a revert, in a sentence; loud when one failed or was skipped (they need a human, the revert stands). */
function followUpSentence(actions: readonly EvidenceAction[]): string {
  const steps = actions.filter((a) => a.kind.startsWith('follow-up'));
  const failed = steps.filter((a) => !a.ok);
  const n = `${steps.length} follow-up step${steps.length === 1 ? '' : 's'}`;
  if (!failed.length) return steps.length ? ` The ${n} ran.` : '';
  const which = failed.map((a) => a.detail ?? a.kind).join('; ');
  return ` FOLLOW-UP NEEDED: ${failed.length} of ${n} did not run through (${which.length > 600 ? `${which.slice(0, 600)}…` : which}); the revert itself stands.`;
}

function summaryFor(i: EvidenceInput): string {
  const d = i.deployment;
  const rule = i.rule ? `"${i.rule.name}" (${i.rule.signal} ${describeThreshold(i.rule)} for ${i.rule.for} samples)` : '';
  switch (i.kind) {
    case 'deployment_detected': return `rollguard detected ${d.to_ref} (${shortId(d.to_image)}) replacing ${ref(d.from_ref, d.from_image)} and watches it until ${d.window_ends_at.toISOString()}.`;
    case 'rule_breached': return `${rule} breached after deploying ${d.to_ref}. ${i.rule?.action === 'rollback' ? '' : 'This rule only notifies; nothing was changed.'} ${i.reason ?? ''}`.trim();
    case 'rollback_started': return `${i.reason ?? `${rule} breached after deploying ${d.to_ref}`}; rollguard is reverting ${d.container_name} to the last known-good version.`;
    case 'rollback_succeeded': return `${i.reason ?? `rollguard reverted ${d.container_name} from ${d.to_ref} to the known-good version and the recovery criteria hold.`}${followUpSentence(i.actions ?? [])}`;
    case 'rollback_failed': return d.attempts === 0
      ? `rollguard did not revert ${d.container_name}: ${i.reason ?? d.reason ?? 'unknown reason'}. A human must take over.`
      : `rollguard could not revert ${d.container_name} after ${d.attempts} attempt(s): ${i.reason ?? d.reason ?? 'unknown reason'}. A human must take over.`;
    case 'watch_inconclusive': return `${d.to_ref} was not judged: ${i.reason ?? d.reason ?? 'too little data'}. It was not reverted and does not become known-good.`;
    case 'deployment_passed': return d.state === 'passed_early'
      ? `${d.to_ref} ${i.reason ?? 'passed early (pass_after)'}; now known-good.`
      : `${d.to_ref} survived its ${Math.round((d.window_ends_at.getTime() - d.detected_at.getTime()) / 1000)} s window with no rollback rule breached.`;
    default: return i.reason ?? '';
  }
}

/** The Prometheus graph of the rule's query over the window. */
function graphUrl(i: EvidenceInput): string | undefined {
  const signal = i.rule ? i.service.signals[i.rule.signal] : undefined;
  if (!signal || signal.kind !== 'prometheus' || !i.policy.prometheus) return undefined;
  const end = Math.max(i.at.getTime(), i.deployment.window_ends_at.getTime());
  const rangeS = Math.max(60, Math.ceil((end - i.deployment.started_at.getTime()) / 1000) + 60);
  const params = new URLSearchParams({
    'g0.expr': renderTemplate(signal.query, i.template, i.rule?.burnRate?.windows[0] ? formatDuration(i.rule.burnRate.windows[0].shortMs) : undefined),
    'g0.tab': '0',
    'g0.range_input': `${rangeS}s`,
    'g0.end_input': new Date(end + 30_000).toISOString().replace(/\.\d+Z$/, 'Z'),
  });
  // The query URL is often loopback, which a phone cannot open: links go to external_url when set.
  return `${redactUrl(i.policy.prometheus.externalUrl ?? i.policy.prometheus.url)}/graph?${params.toString()}`;
}

/** Everything a message about this deployment says, captured now. */
export function buildEvent(input: EvidenceInput): NotificationEvent {
  const i = input.rule?.signal === BY_HAND_SIGNAL ? { ...input, rule: undefined } : input;
  const d = i.deployment;
  const history = i.history ?? [];
  const rule = i.rule;
  const event: NotificationEvent = {
    kind: i.kind,
    severity: i.severity,
    title: titleFor(i),
    summary: summaryFor(i),
    at: i.at.toISOString(),
    service: d.service,
    deployment: {
      id: d.id, fromRef: d.from_ref, fromImage: d.from_image, toRef: d.to_ref, toImage: d.to_image,
      container: d.container_name, startedAt: d.started_at.toISOString(), state: d.state, attempts: d.attempts,
    },
  };
  if (rule) {
    event.rule = { name: rule.name, signal: rule.signal, threshold: describeThreshold(rule), for: rule.for, severity: rule.severity, action: rule.action };
    event.samples = history.slice(-LAST_SAMPLES).map((s) => ({ at: new Date(s.t).toISOString(), value: s.v, result: s.result }));
    event.graphUrl = graphUrl(i);
    const step = Math.max(1, Math.ceil(history.length / CHART_POINTS));
    event.chart = {
      signal: rule.signal,
      threshold: rule.above ?? (rule.below as number),
      direction: rule.above !== undefined ? 'above' : 'below',
      points: history.filter((_, n) => n % step === 0).map((s) => ({ t: s.t, v: s.v })),
      deployAt: d.started_at.getTime(),
      revertAt: i.revertAt,
    };
  }
  if (i.actions) event.actions = i.actions;
  if (i.criteria) event.criteria = i.criteria;
  if (i.recoveredAt) event.timeToRecoveryMs = i.recoveredAt - d.started_at.getTime();
  if (i.kind === 'rollback_failed') event.escalation = i.policy.escalation;
  return event;
}
