import { parse } from 'yaml';
import type { DraftMatch, InitPlan, ServiceDraft } from './plan.js';

/**
 * Writes a plan as policy YAML with comments. Templated rather than stringified so that comments
 * and commented-out examples sit where an operator reads them; every value that is not a fixed
 * literal goes through `scalar()`, which quotes whatever YAML would read otherwise.
 */

export interface RenderOptions {
  /** Shown in the header; omitted when absent. */
  generatedAt?: Date;
}

/** A string as a YAML scalar that reads back as the same string, in block and in flow context. */
export function scalar(s: string): string {
  if (/^[A-Za-z0-9_][A-Za-z0-9_.:/=&%~+-]*$/.test(s) && parse(s) === s) return s;
  return JSON.stringify(s);
}

/** One comment line's text: never a line break (a name or note cannot end the comment early). */
function text(s: string): string {
  return s.replace(/[\r\n]+/g, ' ');
}

function matchLines(m: DraftMatch): string[] {
  if ('container' in m) return [`container: ${scalar(m.container)}`];
  if ('compose' in m) return [`compose: {project: ${scalar(m.compose.project)}, service: ${scalar(m.compose.service)}}`];
  if ('stack' in m) return [`stack: {name: ${scalar(m.stack.name)}, service: ${scalar(m.stack.service)}}   # Swarm: run rollguard on a manager node`];
  return [`swarm_service: ${scalar(m.swarm_service)}   # Swarm: run rollguard on a manager node`];
}

const ERROR_RATE_QUERY = [
  'sum(rate(http_requests_total{service="{{service}}",code=~"5.."}[1m]))',
  '  / sum(rate(http_requests_total{service="{{service}}"}[1m]))',
];

function serviceLines(s: ServiceDraft): string[] {
  const out: string[] = [`  ${s.key}:`, `    # ${text(s.found)}`, '    match:', ...matchLines(s.match).map((l) => `      ${l}`), '    signals:'];
  const ready = s.readiness.kind === 'http';
  // Only a readiness check that answered 200 when init probed it reverts; a wrong guess that
  // reverted would undo the first healthy deploy and then fail its recovery.
  const reverts = ready && s.verdict?.action === 'rollback';
  if (s.readiness.kind === 'http') {
    out.push('      ready:                   # 1 when the URL answers 200 within the timeout, else 0');
    for (const note of s.readiness.notes) out.push(`        # ${text(note)}`);
    out.push('        http:', `          url: ${scalar(s.readiness.url)}`, '          timeout: 2s', '          status: 200');
  } else {
    out.push('      # No readiness check was guessed, so this service is watched by its container state only:');
    for (const note of s.readiness.notes) out.push(`      #   ${text(note)}`);
    out.push(
      '      # add one when the service has an HTTP endpoint (then the rule and recovery lines below):',
      '      # ready:',
      `      #   http: {url: ${s.swarm ? '"http://{{node_addr}}:8080/health/ready/"' : 'http://127.0.0.1:8080/health/ready/'}, timeout: 2s, status: 200}`,
    );
  }
  if (s.healthcheck) out.push('      health:', '        container: health      # its image\'s HEALTHCHECK: 1 healthy, 0 unhealthy');
  out.push('      restarts:', '        container: restart_count');
  out.push(
    '      # With Prometheus (see prometheus: above), the runbook\'s error rate:',
    '      # error_rate:',
    '      #   prometheus: |',
    ...ERROR_RATE_QUERY.map((l) => `      #     ${l}`),
  );

  out.push(
    '    rules:',
    '      # Runbook "When to Rollback": user-facing features completely broken. 3 failing samples in a row',
    '      # (45 s at the 15s interval) revert, well within the P0 SLA (rollback within 15 minutes).',
  );
  if (reverts) {
    out.push(
      '      # The readiness URL answered 200 when init probed it.',
      '      - {name: readiness failing, signal: ready, below: 1, for: 3, severity: P0, action: rollback}',
    );
  } else if (ready) {
    out.push(
      `      # Notify only, not verified: ${text(s.verdict?.action === 'notify' ? s.verdict.why : 'not probed')}.`,
      '      - {name: readiness failing, signal: ready, below: 1, for: 3, severity: P2, action: notify}',
    );
  } else out.push('      # - {name: readiness failing, signal: ready, below: 1, for: 3, severity: P0, action: rollback}');
  if (s.healthcheck) out.push('      - {name: health check failing, signal: health, below: 1, for: 3, severity: P0, action: rollback}');
  out.push(
    '      # A replica that crashes, is OOM-killed or restarts counts against the version without a rule',
    '      # (rollguard\'s built-in "replicas not serving"). Restarts piling up are told, not reverted.',
    '      - {name: container restarting, signal: restarts, above: 2, for: 1, severity: P1, action: notify}',
    '      # Runbook "ROLLBACK If: error rate >5% after deployment" (needs Prometheus and error_rate above):',
    '      # - {name: error rate above 5%, signal: error_rate, above: 0.05, for: 3, severity: P0, action: rollback}',
  );
  const recovery = [reverts ? '{signal: ready, above: 0}' : undefined, s.healthcheck ? '{signal: health, above: 0}' : undefined].filter((r) => r !== undefined);
  if (recovery.length) {
    out.push('    recovery:                  # runbook success criteria after a revert: health checks pass …');
    for (const r of recovery) out.push(`      - ${r}`);
    if (ready && !reverts) out.push('      # - {signal: ready, above: 0}         # once the readiness check answers 200');
    out.push('      # - {signal: error_rate, below: 0.01}   # … and the error rate is below 1 % (with Prometheus)');
  } else {
    out.push(
      `    # No recovery criteria yet (runbook: health checks pass, error rate below 1 %); with a readiness`,
      `    # check ${ready ? 'that answers 200 ' : ''}or Prometheus:`,
      '    # recovery:',
      '    #   - {signal: ready, above: 0}',
      '    #   - {signal: error_rate, below: 0.01}',
    );
  }
  return out;
}

const HEADER = [
  '# yaml-language-server: $schema=./rollguard.schema.json',
  '# (for completion in editors: rollguard policy schema > rollguard.schema.json)',
  '#',
];

const RUNBOOK = [
  '# Thresholds follow the deployment rollback runbook, "Strategy 2: container revert":',
  '#   roll back when the error rate is above 5 % after a deploy (needs Prometheus, below);',
  '#   a rollback has succeeded when health checks pass and the error rate is below 1 %;',
  '#   escalate after 2 failed attempts.',
  '# Review it, then check it against the running services: rollguard policy check FILE --live',
  'version: 1',
  '',
  '# rollguard works without Prometheus: it judges deployments by their HTTP checks and container',
  '# state. With Prometheus, uncomment this and the error_rate signal, rule and recovery of each service.',
  '# prometheus:',
  '#   url: http://127.0.0.1:9090   # basic auth: "http://rollguard:${PROM_PASSWORD}@prom:9090"',
  '#   timeout: 5s',
  '',
  'defaults:',
  '  window: 10m          # watch each deployment this long; surviving it makes the version known-good',
  '  interval: 15s        # sample every signal this often',
  '  max_attempts: 2      # runbook "Rollback Failed - Escalation": escalate after 2 failed attempts',
  '  stop_timeout: 10s    # grace given to the bad container on revert (Docker\'s default)',
  '  recovery_timeout: 2m # runbook: a container revert takes 2-5 minutes; an attempt must recover within this',
  '  min_data_ratio: 0.8  # below this share of samples with data, the watch ends inconclusive',
  '  max_rollbacks: {count: 3, per: 1h}   # more reverts of a service in an hour: none, a P0 page instead',
  '  on_bad_image: revert # an image rollguard reverted away from, redeployed: revert at once (or warn)',
  '',
];

const TEMPLATE = [
  '# services:',
  '#   web:',
  '#     match:',
  '#       container: web   # or  compose: {project: shop, service: web}  or  labels: {k: v}  or  swarm_service: shop_web',
  '#     signals:',
  '#       ready:',
  '#         http: {url: http://127.0.0.1:8080/health/ready/, timeout: 2s, status: 200}',
  '#       restarts:',
  '#         container: restart_count',
  '#     rules:',
  '#       - {name: readiness failing, signal: ready, below: 1, for: 3, severity: P0, action: rollback}',
  '#       - {name: container restarting, signal: restarts, above: 2, for: 1, severity: P1, action: notify}',
  '#     recovery:',
  '#       - {signal: ready, above: 0}',
];

const NOTIFICATIONS = [
  '',
  '# Who hears of deployments, reverts and failed reverts (optional). Secrets come from the',
  '# environment as ${VAR} or from a file as <field>_file, never written here.',
  '# notifications:',
  '#   oncall-email:',
  '#     email: {smtp_url: "${SMTP_URL}", from: rollguard@example.com, to: [devops-oncall@example.com]}',
  '#   pager:',
  '#     pagerduty: {routing_key: "${PAGERDUTY_ROUTING_KEY}"}',
  '#   chat:',
  '#     slack: {webhook_url: "${SLACK_WEBHOOK_URL}"}',
  '# routes:',
  '#   P0: [pager, oncall-email, chat]',
  '#   P1: [oncall-email, chat]',
  '#   P2: [chat]',
  '# escalation:                      # runbook "Emergency Contacts", named in ROLLBACK FAILED messages',
  '#   contacts: ["DevOps Lead: @devops-oncall (Slack)", "CTO: cto@example.com"]',
  '',
];

/** The starter policy: a commented template when the plan has no service. */
export function renderPolicy(plan: InitPlan, opts: RenderOptions = {}): string {
  const when = opts.generatedAt ? ` on ${opts.generatedAt.toISOString().replace(/\.\d+Z$/, 'Z')}` : '';
  const lines = [...HEADER];
  if (plan.services.length) {
    lines.push(
      `# rollguard policy written by \`rollguard init\`${when} from the containers running then.`,
      '# Readiness URLs are guesses: those marked FIX THE PATH need the service\'s real endpoint. init',
      '# requested each once: only one that answered 200 reverts (action: rollback) and counts for recovery;',
      '# the others only notify, with what they answered, until fixed.',
    );
  } else {
    lines.push(
      `# rollguard policy template written by \`rollguard init\`${when}: no running container was found.`,
      '# Add your services under services: (an example is commented out there).',
    );
  }
  for (const s of plan.skipped) lines.push(`# Not included: ${text(s.name)}, ${text(s.reason)}.`);
  lines.push(...RUNBOOK);
  if (plan.services.length) {
    lines.push('services:');
    plan.services.forEach((s, i) => lines.push(...(i ? [''] : []), ...serviceLines(s)));
  } else {
    lines.push('services: {}   # none found running; replace {} by entries such as:', ...TEMPLATE);
  }
  lines.push(...NOTIFICATIONS);
  return lines.join('\n');
}
