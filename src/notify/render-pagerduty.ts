/** NotificationEvent → PagerDuty Events API v2 body (see render.ts). */
import type { Severity } from '../config/policy.js';
import type { NotificationEvent } from './event.js';
import { actionLine, criterionLine, digestRows, sampleLine } from './render-evidence.js';
import { clip, graphLink, oneLine } from './render-format.js';
import { escalationLines, facts, headline, whatRollguardDid } from './render-wording.js';

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
  const graph = graphLink(e);
  if (graph) body.links = [{ href: graph, text: `Prometheus graph${e.rule ? ` of ${e.rule.signal}` : ''}` }];
  return body;
}

/** The evidence as readable strings: PagerDuty shows custom_details as a key/value list. */
function pagerDutyDetails(e: NotificationEvent): Record<string, unknown> {
  const details: Record<string, unknown> = { what_happened: headline(e), what_rollguard_did: whatRollguardDid(e) };
  if (e.kind === 'rollback_failed') details.escalation = escalationLines(e).join('\n');
  for (const [k, v] of facts(e)) details[k.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/_$/, '')] = v;
  if (e.samples?.length) details.samples = e.samples.map(sampleLine);
  const graph = graphLink(e);
  if (graph) details.graph_url = graph;
  if (e.actions?.length) details.actions = e.actions.map(actionLine);
  if (e.criteria?.length) details.recovery_criteria = e.criteria.map(criterionLine);
  if (e.digest) details.digest = Object.fromEntries(digestRows(e.digest));
  if (e.summary) details.summary = e.summary;
  return details;
}
