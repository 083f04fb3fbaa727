/** What every channel says about an event (see render.ts): the headline, what rollguard did, the escalation block, the facts. */
import { versionOf } from '../model/image-ref.js';
import type { EventKind, NotificationEvent } from './event.js';
import { formatDate, formatDuration, formatTime, oneLine, shortImage } from './render-format.js';

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

const versionText = (v: Version): string => `${v.ref} (${shortImage(v.image)})`;

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
      return `${svc}: ${c.to.ref} passed its watch${e.deployment?.state === 'passed_early' ? ' early' : ''}`;
  }
}

/** What rollguard did about it, in one sentence. */
export function whatRollguardDid(e: NotificationEvent): string {
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
      return e.deployment?.state === 'passed_early'
        ? 'Every rule held long enough (pass_after): the deployment passed before its watch window ended; rollguard now treats it as known-good.'
        : 'The deployment survived its watch window; rollguard now treats it as known-good.';
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
export function escalationLines(e: NotificationEvent): string[] {
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
export function facts(e: NotificationEvent): [label: string, value: string][] {
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
