/**
 * NotificationEvent → each channel's message. Pure: no I/O, no clock; the same event always renders
 * the same bytes, so a message sent from the outbox hours later says what was true when it happened.
 *
 * Every message leads with what happened and what rollguard did, then the evidence. Container names,
 * refs and action details come from Docker and are untrusted: HTML is escaped for email, `& < >` for
 * Slack mrkdwn (so a name cannot ping `<!channel>` or forge a link).
 */
import type { Severity } from '../config/policy.js';
import { shortId, versionOf } from '../model/image-ref.js';
import type { EvidenceAction, EvidenceCriterion, EvidenceSample, EventKind, NotificationEvent } from './event.js';

/** `sha256:0123456789abcdef…` → `0123456789ab`; no image (no previous version) → `unknown`. */
export function shortImage(id: string | null | undefined): string {
  return id ? shortId(id) : 'unknown';
}

// ---------------------------------------------------------------------------------------------
// Shared wording
// ---------------------------------------------------------------------------------------------

const ROLLBACK_KINDS: readonly EventKind[] = ['rollback_started', 'rollback_succeeded', 'rollback_failed'];

interface Version { ref: string; image: string | null }

/**
 * The change a message talks about. For a rollback it runs bad → known-good (the deployment's `to`
 * → its `from`, as in the runbook's "Deployment: v1.5.3 → v1.5.2"); otherwise previous → deployed.
 */
function change(e: NotificationEvent): { from: Version; to: Version; fromRole: string; toRole: string } | undefined {
  const d = e.deployment;
  if (!d) return undefined;
  const previous: Version = { ref: d.fromRef ?? 'no known-good version', image: d.fromImage };
  const deployed: Version = { ref: d.toRef, image: d.toImage };
  return ROLLBACK_KINDS.includes(e.kind)
    ? { from: deployed, to: previous, fromRole: 'bad', toRole: 'known-good' }
    : { from: previous, to: deployed, fromRole: 'previous', toRole: 'deployed' };
}

const repositoryOf = (ref: string): string => {
  const at = ref.indexOf('@');
  if (at >= 0) return ref.slice(0, at);
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  return colon > slash ? ref.slice(0, colon) : ref;
};

/** `app:v2 → v1` when both are tags of one repository, else both refs in full. */
function arrow(from: Version, to: Version): string {
  const same = repositoryOf(from.ref) === repositoryOf(to.ref);
  return `${from.ref} → ${same ? versionOf(to.ref) : to.ref}`;
}

const oneLine = (s: string): string => s.replace(/[\r\n]+/g, ' ');

const versionText = (v: Version): string => `${v.ref} (${shortImage(v.image)})`;

/** `850 ms`, `3.4 s`, `2 min 05 s`, `1 h 02 min`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return 'unknown';
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  const s = Math.round(ms / 1_000);
  if (s < 3_600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3_600)} h ${String(Math.floor((s % 3_600) / 60)).padStart(2, '0')} min`;
}

/** `2024-05-01T03:00:15.123Z` → `2024-05-01 03:00:15 UTC`; anything unparsable is shown as given. */
function formatTime(iso: string): string {
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? iso : `${t.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

const formatDate = (iso: string): string => formatTime(iso).slice(0, 10);

function formatValue(v: number | null): string {
  if (v === null || Number.isNaN(v)) return 'no data';
  return Number.isInteger(v) || !Number.isFinite(v) ? String(v) : String(Number(v.toPrecision(6)));
}

const resultText = (r: EvidenceSample['result']): string => (r === 'breach' ? 'BREACH' : r === 'no-data' ? 'no data' : 'ok');

function attemptsOf(e: NotificationEvent): number {
  return e.deployment?.attempts ?? Math.max(0, ...(e.actions ?? []).map((a) => a.attempt));
}

function digestLine(d: NonNullable<NotificationEvent['digest']>): string {
  return `${d.watched} watched, ${d.passed} passed, ${d.rolledBack} rolled back, ${d.rollbackFailed} rollback failed, ${d.inconclusive} inconclusive`;
}

/** One line saying what happened, e.g. `web: rolled back app:v2 → v1 (3.4 s)`. Falls back to the event's title. */
export function headline(e: NotificationEvent): string {
  const c = change(e);
  const svc = e.service ?? 'rollguard';
  if (e.kind === 'test') return `test: ${e.title}`;
  if (e.kind === 'digest') return e.digest ? `digest ${formatDate(e.digest.since)} → ${formatDate(e.digest.until)}: ${digestLine(e.digest)}` : `digest: ${e.title}`;
  if (!c) return e.title;
  switch (e.kind) {
    case 'deployment_detected':
      return `${svc}: watching ${c.from.image === null ? c.to.ref : arrow(c.from, c.to)}`;
    case 'rule_breached':
      return `${svc}: ${e.rule ? `rule "${e.rule.name}" breached` : 'rule breached'} on ${c.to.ref}`;
    case 'rollback_started':
      return `${svc}: rolling back ${arrow(c.from, c.to)}${e.rule ? ` (${e.rule.name})` : ''}`;
    case 'rollback_succeeded':
      return `${svc}: rolled back ${arrow(c.from, c.to)}${e.timeToRecoveryMs === undefined ? '' : ` (${formatDuration(e.timeToRecoveryMs)})`}`;
    case 'rollback_failed': {
      const n = attemptsOf(e);
      // No attempt: rollguard refused to act (no revert target, the rollback limit) and changed nothing.
      return `ROLLBACK FAILED ${svc}: ${arrow(c.from, c.to)} ${n === 0 ? 'not attempted' : `after ${n} attempt${n === 1 ? '' : 's'}`}`;
    }
    case 'watch_inconclusive':
      return `${svc}: watch of ${c.to.ref} inconclusive`;
    case 'deployment_passed':
      return `${svc}: ${c.to.ref} passed its watch`;
  }
}

/** What rollguard did about it, in one sentence. */
function whatRollguardDid(e: NotificationEvent): string {
  const c = change(e);
  const svc = e.service ?? 'the service';
  switch (e.kind) {
    case 'deployment_detected':
      return c ? `rollguard is watching ${c.to.ref} against the policy.` : 'rollguard is watching the deployment.';
    case 'rule_breached':
      return e.rule?.action === 'rollback'
        ? 'The rule asks for a rollback; rollguard is acting on it.'
        : 'The rule only notifies: rollguard changed nothing.';
    case 'rollback_started':
      return c ? `rollguard is stopping ${c.from.ref} and starting the known-good ${c.to.ref}.` : 'rollguard is rolling back.';
    case 'rollback_succeeded':
      return `rollguard reverted ${svc}${c ? ` to ${c.to.ref}` : ''} and the recovery criteria hold${e.timeToRecoveryMs === undefined ? '' : `; time to recovery ${formatDuration(e.timeToRecoveryMs)}`}.`;
    case 'rollback_failed':
      return attemptsOf(e) === 0
        ? `rollguard did not revert ${svc} and changed nothing (see why below). A human is needed now.`
        : `rollguard could not recover ${svc} after ${attemptsOf(e)} attempt(s). A human is needed now.`;
    case 'watch_inconclusive':
      return 'rollguard could not judge the deployment, left it running and did not make it known-good.';
    case 'deployment_passed':
      return 'The deployment survived its watch window; rollguard now treats it as known-good.';
    case 'digest':
      return 'Daily summary; nothing to do unless a rollback failed or a watch was inconclusive.';
    case 'test':
      return 'This is a test message from rollguard; no deployment is affected.';
  }
}

/**
 * The runbook's "Current State" line for a failed rollback, read from the revert's own steps
 * (daemon/revert.ts); the summary when the steps do not tell.
 */
function currentState(e: NotificationEvent): string {
  const c = change(e);
  const actions = e.actions ?? [];
  const bad = c?.from.ref ?? 'the deployed version';
  const good = c?.to.ref ?? 'the known-good version';
  if (actions.some((a) => a.kind === 'restore-bad' && a.ok)) return `the known-good version could not be started; ${bad} was put back (degraded)`;
  const verify = actions.filter((a) => a.kind === 'verify').at(-1);
  if (verify && !verify.ok) return `${good} is running but the recovery criteria are not met; ${bad} is kept stopped`;
  if (!actions.some((a) => a.kind === 'stop-bad' && a.ok)) return `nothing was changed; ${bad} is still running`;
  return e.summary || e.deployment?.state || 'unknown';
}

/** The runbook's "🚨 ROLLBACK FAILED 🚨" block, as lines. */
function escalationLines(e: NotificationEvent): string[] {
  const c = change(e);
  const contacts = e.escalation?.length ? e.escalation.join(', ') : 'no contacts configured (policy escalation.contacts)';
  return [
    '🚨 ROLLBACK FAILED 🚨',
    `Deployment: ${c ? arrow(c.from, c.to) : e.title}`,
    `Attempts: ${attemptsOf(e)}`,
    `Current State: ${currentState(e)}`,
    `Escalation: ${contacts}`,
  ].map(oneLine);
}

function ruleText(e: NotificationEvent): string | undefined {
  const r = e.rule;
  return r && `${r.name}: ${r.signal} ${r.threshold} for ${r.for} consecutive sample${r.for === 1 ? '' : 's'} (${r.severity}, ${r.action})`;
}

/** Label/value pairs every channel shows, most important first. */
function facts(e: NotificationEvent): [label: string, value: string][] {
  const out: [string, string][] = [];
  const c = change(e);
  const d = e.deployment;
  if (e.service) out.push(['Service', e.service]);
  if (c) {
    out.push([`From (${c.fromRole})`, versionText(c.from)]);
    out.push([`To (${c.toRole})`, versionText(c.to)]);
  }
  if (e.kind === 'rollback_succeeded' && e.timeToRecoveryMs !== undefined) out.push(['Time to recovery', formatDuration(e.timeToRecoveryMs)]);
  const rule = ruleText(e);
  if (rule) out.push(['Rule', rule]);
  out.push(['Severity', e.severity]);
  if (d) {
    out.push(['Container', d.container]);
    out.push(['Deployed at', formatTime(d.startedAt)]);
    out.push(['Deployment', `#${d.id}, ${d.state}${ROLLBACK_KINDS.includes(e.kind) ? `, ${d.attempts} attempt(s)` : ''}`]);
  }
  return out.map(([k, v]) => [k, oneLine(v)]);
}

/** Steps before the first attempt (check-image, stop-bad) carry attempt 0 and show no number. */
const attemptLabel = (a: EvidenceAction): string => (a.attempt > 0 ? `#${a.attempt}` : '–');

const actionLine = (a: EvidenceAction): string =>
  `${attemptLabel(a)} ${a.kind} ${a.ok ? 'ok' : 'FAILED'} in ${formatDuration(a.durationMs)} at ${formatTime(a.startedAt)}${a.detail ? `: ${oneLine(a.detail)}` : ''}`;

const criterionLine = (c: EvidenceCriterion): string => `${c.holds ? '✓' : '✗'} ${c.signal} ${c.threshold}: measured ${formatValue(c.measured)}`;

const sampleLine = (s: EvidenceSample): string => `${formatTime(s.at)}  ${formatValue(s.value).padStart(10)}  ${resultText(s.result)}`;

const samplesTitle = (e: NotificationEvent): string => `Last samples${e.rule ? ` of ${e.rule.signal} (${e.rule.threshold})` : ''}`;

/** Cuts `s` to at most `max` UTF-16 units, ending in `…`, never inside a surrogate pair. */
function clip(s: string, max: number): string {
  if (s.length <= max) return s;
  let cut = s.slice(0, Math.max(0, max - 1));
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}

const isHttpUrl = (u: string): boolean => /^https?:\/\//i.test(u);

// ---------------------------------------------------------------------------------------------
// Email
// ---------------------------------------------------------------------------------------------

export interface EmailMessage { subject: string; text: string; html: string }

/** Content-ID the email channel must give the chart PNG attachment. */
export const CHART_CID = 'chart@rollguard';

export function emailSubject(e: NotificationEvent): string {
  const sev = e.kind === 'digest' || e.kind === 'test' ? '' : `${e.severity} `;
  return clip(oneLine(`[rollguard] ${sev}${headline(e)}`), 250);
}

export function renderEmail(e: NotificationEvent): EmailMessage {
  return { subject: emailSubject(e), text: emailText(e), html: emailHtml(e) };
}

function emailText(e: NotificationEvent): string {
  const out: string[] = [headline(e), whatRollguardDid(e), ''];
  if (e.kind === 'rollback_failed') out.push(...escalationLines(e), '');
  if (e.summary) out.push(e.summary, '');
  const f = facts(e);
  const width = Math.max(0, ...f.map(([k]) => k.length)) + 1;
  for (const [k, v] of f) out.push(`${`${k}:`.padEnd(width)} ${v}`);
  if (e.digest) out.push('', ...digestRows(e.digest).map(([k, v]) => `${k}: ${v}`));
  if (e.samples?.length) out.push('', `${samplesTitle(e)}:`, ...e.samples.map((s) => `  ${sampleLine(s)}`));
  if (e.graphUrl) out.push('', `Prometheus graph: ${e.graphUrl}`);
  if (e.chart) out.push('', `Chart attached: ${chartLegend(e.chart)}`);
  if (e.actions?.length) out.push('', 'Actions:', ...e.actions.map((a) => `  ${actionLine(a)}`));
  if (e.criteria?.length) out.push('', 'Recovery criteria:', ...e.criteria.map((c) => `  ${criterionLine(c)}`));
  out.push('', `— rollguard, ${e.kind} at ${formatTime(e.at)}`);
  return `${out.join('\n')}\n`;
}

function digestRows(d: NonNullable<NotificationEvent['digest']>): [string, string][] {
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

function chartLegend(chart: NonNullable<NotificationEvent['chart']>): string {
  return `blue = signal, red dashed = threshold, gray = deploy${chart.revertAt === undefined ? '' : ', green = revert'}`;
}

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch] as string);
}

const CELL = 'style="padding:2px 10px 2px 0;text-align:left;vertical-align:top"';

function htmlTable(head: string[] | undefined, rows: string[][]): string {
  const th = head ? `<tr>${head.map((h) => `<th ${CELL}>${escapeHtml(h)}</th>`).join('')}</tr>` : '';
  const body = rows.map((r) => `<tr>${r.map((c) => `<td ${CELL}>${c}</td>`).join('')}</tr>`).join('');
  return `<table style="border-collapse:collapse;font-size:14px">${th}${body}</table>`;
}

function emailHtml(e: NotificationEvent): string {
  const h = escapeHtml;
  const color = e.kind === 'rollback_failed' ? '#b00020' : e.kind === 'rollback_succeeded' || e.kind === 'deployment_passed' ? '#1b7f3b' : '#222';
  const parts: string[] = [
    `<h2 style="color:${color};margin:0 0 8px">${h(headline(e))}</h2>`,
    `<p style="margin:0 0 12px"><strong>${h(whatRollguardDid(e))}</strong></p>`,
  ];
  if (e.kind === 'rollback_failed') {
    parts.push(`<pre style="border:2px solid #b00020;background:#fdecea;padding:8px;font-size:14px">${h(escalationLines(e).join('\n'))}</pre>`);
  }
  if (e.summary) parts.push(`<p>${h(e.summary)}</p>`);
  parts.push(htmlTable(undefined, facts(e).map(([k, v]) => [`<strong>${h(k)}</strong>`, h(v)])));
  if (e.digest) parts.push(`<h3>Counts</h3>`, htmlTable(undefined, digestRows(e.digest).map(([k, v]) => [h(k), h(v)])));
  if (e.chart) {
    const alt = `${e.chart.signal} over the watch window; breach ${e.chart.direction} ${formatValue(e.chart.threshold)}`;
    parts.push(`<p><img src="cid:${CHART_CID}" alt="${h(alt)}" style="max-width:100%"><br><small>${h(chartLegend(e.chart))}</small></p>`);
  }
  if (e.samples?.length) {
    const rows = e.samples.map((s) => {
      const style = s.result === 'breach' ? ' style="color:#b00020;font-weight:bold"' : '';
      return [h(formatTime(s.at)), h(formatValue(s.value)), `<span${style}>${h(resultText(s.result))}</span>`];
    });
    parts.push(`<h3>${h(samplesTitle(e))}</h3>`, htmlTable(['Time', 'Value', 'Result'], rows));
  }
  if (e.graphUrl) {
    parts.push(isHttpUrl(e.graphUrl)
      ? `<p><a href="${h(e.graphUrl)}">Prometheus graph</a></p>`
      : `<p>Prometheus graph: ${h(e.graphUrl)}</p>`);
  }
  if (e.actions?.length) {
    const rows = e.actions.map((a) => [h(attemptLabel(a)), h(a.kind), a.ok ? 'ok' : '<strong style="color:#b00020">FAILED</strong>', h(formatDuration(a.durationMs)), h(formatTime(a.startedAt)), h(a.detail ?? '')]);
    parts.push('<h3>Actions</h3>', htmlTable(['Attempt', 'Step', 'Result', 'Took', 'Started', 'Detail'], rows));
  }
  if (e.criteria?.length) {
    const rows = e.criteria.map((c) => [c.holds ? '<span style="color:#1b7f3b">✓</span>' : '<span style="color:#b00020">✗</span>', h(c.signal), h(c.threshold), h(formatValue(c.measured))]);
    parts.push('<h3>Recovery criteria</h3>', htmlTable(['', 'Signal', 'Criterion', 'Measured'], rows));
  }
  parts.push(`<p style="color:#666;font-size:12px">rollguard · ${h(e.kind)} at ${h(formatTime(e.at))}</p>`);
  return `<!doctype html>\n<html><head><meta charset="utf-8"><title>${h(emailSubject(e))}</title></head>\n<body style="font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:14px">\n${parts.join('\n')}\n</body></html>\n`;
}

// ---------------------------------------------------------------------------------------------
// PagerDuty Events API v2
// ---------------------------------------------------------------------------------------------

export type PagerDutySeverity = 'critical' | 'error' | 'warning' | 'info';

export interface PagerDutyTrigger {
  routing_key: string;
  event_action: 'trigger';
  dedup_key: string;
  payload: {
    /** ≤ 1024 characters (PagerDuty's limit). */
    summary: string;
    source: string;
    severity: PagerDutySeverity;
    timestamp: string;
    component?: string;
    group?: string;
    class: string;
    custom_details: Record<string, unknown>;
  };
  links?: { href: string; text: string }[];
}

export interface PagerDutyResolve { routing_key: string; event_action: 'resolve'; dedup_key: string }

export const PAGERDUTY_SEVERITY: Record<Severity, PagerDutySeverity> = { P0: 'critical', P1: 'error', P2: 'warning' };

/** PagerDuty caps `summary` at 1024 characters and `dedup_key` at 255. */
export const PAGERDUTY_SUMMARY_MAX = 1024;
const DEDUP_KEY_MAX = 255;

/** The Events API v2 body. A resolve carries only the keys; a trigger carries the evidence in `custom_details`. */
export function renderPagerDuty(e: NotificationEvent, routingKey: string, dedupKey: string, action: 'trigger'): PagerDutyTrigger;
export function renderPagerDuty(e: NotificationEvent, routingKey: string, dedupKey: string, action: 'resolve'): PagerDutyResolve;
export function renderPagerDuty(e: NotificationEvent, routingKey: string, dedupKey: string, action: 'trigger' | 'resolve'): PagerDutyTrigger | PagerDutyResolve;
export function renderPagerDuty(e: NotificationEvent, routingKey: string, dedupKey: string, action: 'trigger' | 'resolve'): PagerDutyTrigger | PagerDutyResolve {
  const keys = { routing_key: routingKey, dedup_key: dedupKey.slice(0, DEDUP_KEY_MAX) };
  if (action === 'resolve') return { routing_key: keys.routing_key, event_action: 'resolve', dedup_key: keys.dedup_key };
  const body: PagerDutyTrigger = {
    routing_key: keys.routing_key,
    event_action: 'trigger',
    dedup_key: keys.dedup_key,
    payload: {
      summary: clip(oneLine(e.summary ? `${headline(e)} — ${e.summary}` : headline(e)), PAGERDUTY_SUMMARY_MAX),
      source: e.service ?? 'rollguard',
      severity: PAGERDUTY_SEVERITY[e.severity],
      timestamp: e.at,
      ...(e.deployment ? { component: e.deployment.container } : {}),
      ...(e.service ? { group: e.service } : {}),
      class: e.kind,
      custom_details: pagerDutyDetails(e),
    },
  };
  if (e.graphUrl) body.links = [{ href: e.graphUrl, text: `Prometheus graph${e.rule ? ` of ${e.rule.signal}` : ''}` }];
  return body;
}

/** The evidence as readable strings: PagerDuty shows custom_details as a key/value list. */
function pagerDutyDetails(e: NotificationEvent): Record<string, unknown> {
  const details: Record<string, unknown> = { what_happened: headline(e), what_rollguard_did: whatRollguardDid(e) };
  if (e.kind === 'rollback_failed') details.escalation = escalationLines(e).join('\n');
  for (const [k, v] of facts(e)) details[k.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/_$/, '')] = v;
  if (e.samples?.length) details.samples = e.samples.map(sampleLine);
  if (e.graphUrl) details.graph_url = e.graphUrl;
  if (e.actions?.length) details.actions = e.actions.map(actionLine);
  if (e.criteria?.length) details.recovery_criteria = e.criteria.map(criterionLine);
  if (e.digest) details.digest = Object.fromEntries(digestRows(e.digest));
  if (e.summary) details.summary = e.summary;
  return details;
}

// ---------------------------------------------------------------------------------------------
// Slack incoming webhook (Block Kit)
// ---------------------------------------------------------------------------------------------

type PlainText = { type: 'plain_text'; text: string; emoji?: boolean };
type Mrkdwn = { type: 'mrkdwn'; text: string };
export type SlackBlock =
  | { type: 'header'; text: PlainText }
  | { type: 'section'; text: Mrkdwn; fields?: undefined }
  | { type: 'section'; fields: Mrkdwn[]; text?: undefined }
  | { type: 'context'; elements: Mrkdwn[] }
  | { type: 'actions'; elements: { type: 'button'; text: PlainText; url: string; action_id: string }[] }
  | { type: 'divider' };

export interface SlackMessage { text: string; blocks: SlackBlock[] }

/** Block Kit limits (docs.slack.dev/reference/block-kit). */
export const SLACK_LIMITS = { blocks: 50, headerText: 150, sectionText: 3000, fields: 10, fieldText: 2000, buttonText: 75, url: 3000, contextElements: 10 } as const;

/** Slack's control characters; escaping them keeps untrusted names from forming mentions or links. */
export function escapeSlack(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Clips already-escaped mrkdwn without leaving half an entity behind. */
function clipMrkdwn(s: string, max: number): string {
  if (s.length <= max) return s;
  return `${clip(s, max).slice(0, -1).replace(/&[a-z]*$/, '')}…`;
}

/** A titled code block of lines that keeps the newest lines that fit in one section. */
function codeSection(title: string, lines: string[]): SlackBlock {
  const head = `*${escapeSlack(title)}*\n`;
  const budget = SLACK_LIMITS.sectionText - head.length - 8;
  const kept: string[] = [];
  let used = 0;
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = escapeSlack((lines[i] as string).replace(/`/g, "'"));
    const omitted = `… ${i + 1} earlier omitted`;
    if (used + line.length + 1 + omitted.length + 1 > budget) {
      kept.unshift(omitted);
      break;
    }
    kept.unshift(line);
    used += line.length + 1;
  }
  return { type: 'section', text: { type: 'mrkdwn', text: clipMrkdwn(`${head}\`\`\`${kept.join('\n')}\`\`\``, SLACK_LIMITS.sectionText) } };
}

function mrkdwnSection(text: string): SlackBlock {
  return { type: 'section', text: { type: 'mrkdwn', text: clipMrkdwn(text, SLACK_LIMITS.sectionText) } };
}

export function renderSlack(e: NotificationEvent): SlackMessage {
  const blocks: SlackBlock[] = [];
  const icon = e.kind === 'rollback_failed' ? '🚨 ' : e.kind === 'rollback_succeeded' || e.kind === 'deployment_passed' ? '✅ ' : e.kind === 'rollback_started' ? '⏪ ' : '';
  blocks.push({ type: 'header', text: { type: 'plain_text', text: clip(oneLine(`${icon}${headline(e)}`), SLACK_LIMITS.headerText), emoji: true } });
  if (e.kind === 'rollback_failed') {
    const [first, ...rest] = escalationLines(e);
    // The runbook's block: first line bold, then its fields as `*Label:* value`.
    blocks.push(mrkdwnSection([`*${escapeSlack(first as string)}*`, ...rest.map((l) => l.replace(/^([^:]+):(.*)$/, (_m, k: string, v: string) => `*${escapeSlack(k)}:*${escapeSlack(v)}`))].join('\n')));
  }
  blocks.push(mrkdwnSection([`*${escapeSlack(whatRollguardDid(e))}*`, e.summary ? escapeSlack(e.summary) : ''].filter(Boolean).join('\n')));
  const fields = facts(e)
    .filter(([k]) => k !== 'Deployed at')
    .slice(0, SLACK_LIMITS.fields)
    .map(([k, v]): Mrkdwn => ({ type: 'mrkdwn', text: clipMrkdwn(`*${escapeSlack(k)}*\n${escapeSlack(v)}`, SLACK_LIMITS.fieldText) }));
  if (fields.length) blocks.push({ type: 'section', fields });
  if (e.digest) {
    blocks.push({ type: 'section', fields: digestRows(e.digest).slice(0, SLACK_LIMITS.fields).map(([k, v]) => ({ type: 'mrkdwn', text: `*${escapeSlack(k)}*\n${escapeSlack(v)}` })) });
  }
  if (e.samples?.length) blocks.push(codeSection(samplesTitle(e), e.samples.map(sampleLine)));
  if (e.actions?.length) blocks.push(codeSection('Actions', e.actions.map(actionLine)));
  if (e.criteria?.length) blocks.push(codeSection('Recovery criteria', e.criteria.map(criterionLine)));
  if (e.graphUrl && isHttpUrl(e.graphUrl) && e.graphUrl.length <= SLACK_LIMITS.url) {
    blocks.push({ type: 'actions', elements: [{ type: 'button', text: { type: 'plain_text', text: 'Prometheus graph' }, url: e.graphUrl, action_id: 'rollguard-graph' }] });
  }
  const context = [`${escapeSlack(formatTime(e.at))} · ${e.severity} · ${e.kind}`];
  if (e.deployment) context.push(`deployment #${e.deployment.id} · ${escapeSlack(e.deployment.container)}`);
  blocks.push({ type: 'context', elements: context.slice(0, SLACK_LIMITS.contextElements).map((text) => ({ type: 'mrkdwn', text: clipMrkdwn(text, SLACK_LIMITS.sectionText) })) });

  const fallback = e.kind === 'rollback_failed' && e.escalation?.length ? `${headline(e)} — escalate: ${e.escalation.join(', ')}` : headline(e);
  return { text: clipMrkdwn(escapeSlack(`[rollguard] ${e.severity} ${oneLine(fallback)}`), SLACK_LIMITS.sectionText), blocks: capBlocks(blocks) };
}

/** Keeps the first blocks (what happened comes first) and says how many were dropped. */
function capBlocks(blocks: SlackBlock[]): SlackBlock[] {
  if (blocks.length <= SLACK_LIMITS.blocks) return blocks;
  const kept = blocks.slice(0, SLACK_LIMITS.blocks - 1);
  return [...kept, { type: 'context', elements: [{ type: 'mrkdwn', text: `… ${blocks.length - kept.length} more blocks omitted` }] }];
}

// ---------------------------------------------------------------------------------------------
// Generic webhook
// ---------------------------------------------------------------------------------------------

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
  samples: { at: string; value: number | null; result: EvidenceSample['result'] }[];
  graph_url: string | null;
  actions: { kind: string; attempt: number; started_at: string; duration_ms: number; ok: boolean; detail: string | null }[];
  criteria: { signal: string; threshold: string; measured: number | null; holds: boolean }[];
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
    samples: (e.samples ?? []).map((s) => ({ at: s.at, value: s.value, result: s.result })),
    graph_url: e.graphUrl ?? null,
    actions: (e.actions ?? []).map((a) => ({ kind: a.kind, attempt: a.attempt, started_at: a.startedAt, duration_ms: a.durationMs, ok: a.ok, detail: a.detail })),
    criteria: (e.criteria ?? []).map((c) => ({ signal: c.signal, threshold: c.threshold, measured: c.measured, holds: c.holds })),
    time_to_recovery_ms: e.timeToRecoveryMs ?? null,
    escalation: e.kind === 'rollback_failed' ? (e.escalation ?? []) : null,
    digest: g
      ? { since: g.since, until: g.until, watched: g.watched, passed: g.passed, rolled_back: g.rolledBack, rollback_failed: g.rollbackFailed, inconclusive: g.inconclusive, pending_holds: g.pendingHolds }
      : null,
    title: e.title,
    summary: e.summary,
  };
}
