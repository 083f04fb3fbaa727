import { z } from 'zod';
import { parseDuration } from './duration.js';
import { channelSchema, digestSchema, escalationSchema, maintenanceSchema, routesSchema, serviceNotifySchema } from './notify-schema.js';
import { checkTemplate, checkUrlTemplate, replicaVarsIn } from './template.js';
import { match } from './match-schema.js';
import { gitPathProblems, runbookProblems } from './runbook-checks.js';
import { runbookServiceKeys } from './runbook-schema.js';
import { prometheusProblems, prometheusSchema } from './prometheus-schema.js';
import { defaultsPassAfter, passAfterProblems, servicePassAfter } from './pass-after-schema.js';
import { alertmanagerPolicySchema, alertmanagerProblems, alertmanagerSignalSchema } from './alertmanager-schema.js';
import { isMap, Problem } from './raw.js';

const duration = z
  .string()
  .refine((text) => parseDuration(text) !== undefined, { message: 'expected a duration such as 500ms, 15s, 10m or 1h' })
  .transform((text) => parseDuration(text) as number);

const positiveDuration = duration.refine((ms) => ms > 0, { message: 'must be greater than 0' });

/** A sampling interval: a timer waits it, and a day is already far longer than any watch needs. */
const interval = positiveDuration.refine((ms) => ms <= 86_400_000, { message: 'at most 1d (samples are taken every interval during the window)' });

const name = z.string().min(1);

/** What each timing key means; the service-level and the `defaults` keys share these words. */
const timingHelp = {
  window: 'Watch each deployment this long (a duration as Prometheus writes it: 500ms, 90s, 10m, 1h30m, 3d, 1w); surviving it makes the version known-good.',
  interval: 'Sample every signal this often (a duration).',
  max_attempts: 'Rollback attempts before escalating (runbook: escalate after 2).',
  stop_timeout: 'Grace given to the bad container on revert before it is killed (a duration).',
  recovery_timeout: 'How long a revert may take to meet the recovery criteria before the attempt counts as failed (a duration).',
  min_data_ratio: 'Share of samples of each rule signal that must carry data for a window to be conclusive; below it the deployment is inconclusive.',
  warmup: 'After the container starts, wait this long before any sample counts (slow starters are not judged while starting).',
  inconclusive_is_good: 'Let a version whose window ended inconclusive become known-good anyway.',
  max_rollbacks: 'At most `count` reverts of a service within `per` (a duration); beyond it rollguard does not revert and pages (P0) for a human to decide.',
  on_bad_image: 'A redeploy of an image rollguard reverted away from: revert reverts it at once; warn tells the on-call and watches it like any other deployment.',
} as const;

const maxRollbacks = z
  .strictObject({
    count: z.number().int().min(1).max(100).describe('Reverts allowed within `per`.'),
    per: positiveDuration.describe('The sliding window the reverts are counted over (a duration: 30m, 1h).'),
  });

const timing = {
  window: positiveDuration.optional().describe(timingHelp.window),
  interval: interval.optional().describe(timingHelp.interval),
  max_attempts: z.number().int().min(1).max(10).optional().describe(timingHelp.max_attempts),
  stop_timeout: duration.optional().describe(timingHelp.stop_timeout),
  recovery_timeout: positiveDuration.optional().describe(timingHelp.recovery_timeout),
  min_data_ratio: z.number().min(0).max(1).optional().describe(timingHelp.min_data_ratio),
  warmup: duration.optional().describe(timingHelp.warmup),
  on_no_data: z
    .strictObject({
      after: z.number().int().min(1).describe('Consecutive no-data samples of a rollback rule before acting.'),
      then: z.enum(['notify', 'inconclusive']).default('notify').describe('notify: tell the on-call once and keep watching; inconclusive: end the watch as inconclusive. Never a revert.'),
    })
    .optional()
    .describe('What to do when a rollback rule keeps getting no data (Prometheus down, no series).'),
  inconclusive_is_good: z.boolean().optional().describe(`${timingHelp.inconclusive_is_good} Default false.`),
  max_rollbacks: maxRollbacks.optional().describe(`${timingHelp.max_rollbacks} Default {count: 3, per: 1h}.`),
  on_bad_image: z.enum(['revert', 'warn']).optional().describe(`${timingHelp.on_bad_image} Default revert.`),
  pass_after: servicePassAfter,
};

const jsonExpectation = z.union([z.string(), z.number(), z.boolean(), z.null()]);

const signal = z
  .strictObject({
    prometheus: z
      .string()
      .min(1)
      .superRefine((query, ctx) => {
        for (const problem of checkTemplate(query)) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional()
      .describe('PromQL instant query; {{service}} {{container}} {{image}} {{version}} are substituted, escaped. For Swarm services also {{task}} {{slot}} {{node}} {{node_addr}}: the query is run once per task and the worst task\'s value is the sample.'),
    http: z
      .strictObject({
        url: z
          .string()
          .superRefine((url, ctx) => {
            for (const problem of checkUrlTemplate(url)) ctx.addIssue({ code: 'custom', message: problem });
          })
          .describe('URL to GET. For Swarm services it may address each task: {{slot}} {{node_addr}} {{node}} {{task}} (e.g. http://{{node_addr}}:808{{slot}}/ready); the check then runs once per task and fails when any task fails.'),
        timeout: positiveDuration.default(2_000).describe('Refused or slower than this is a failure (default 2s).'),
        status: z.number().int().min(100).max(599).default(200).describe('Expected HTTP status.'),
        json: z.record(z.string(), jsonExpectation).default({}).describe('Dot paths into the JSON body and the values they must equal.'),
      })
      .optional()
      .describe('An HTTP check: 1 when every expectation holds, 0 otherwise (refused and timeouts included).'),
    container: z
      .enum(['restart_count', 'oom_killed', 'running', 'health', 'serving'])
      .optional()
      .describe('A field of the service container: restart_count, oom_killed (1/0), running (1/0), health (1 healthy, 0 unhealthy), serving (1, or 0 when it crashed, was OOM-killed, is restarting or restarted since the last sample; a container stopped or removed by an operator is no data).'),
    alertmanager: alertmanagerSignalSchema.optional(),
  })
  .superRefine((s, ctx) => {
    const kinds = [s.prometheus, s.http, s.container, s.alertmanager].filter((v) => v !== undefined).length;
    if (kinds !== 1) ctx.addIssue({ code: 'custom', message: 'set exactly one of prometheus, http, container or alertmanager' });
  })
  .describe('What to measure: exactly one of prometheus, http, container or alertmanager.');

function oneThreshold(t: { above?: number; below?: number }, ctx: z.RefinementCtx): void {
  if ((t.above === undefined) === (t.below === undefined)) {
    ctx.addIssue({ code: 'custom', message: 'set exactly one of above or below' });
  }
}

const rule = z
  .strictObject({
    name: name.describe('Shown in records and alerts.'),
    signal: name.describe('A key of this service\'s signals.'),
    above: z.number().optional().describe('Breached when the value is above this.'),
    below: z.number().optional().describe('Breached when the value is below this.'),
    above_baseline: z.number().positive().optional().describe('Breached when the value is above this multiple of the baseline (e.g. 1.5: 50 % worse than before the deploy).'),
    above_baseline_by: z.number().optional().describe('Breached when the value is above the baseline plus this (e.g. 0.02: two points more error rate than before the deploy).'),
    burn_rate: z
      .strictObject({
        slo: z.number().gt(0).lt(1).describe('The availability objective, e.g. 0.999; the error budget is 1 - slo.'),
        windows: z
          .array(z.tuple([positiveDuration, positiveDuration, z.number().positive()]))
          .min(1)
          .describe('[short, long, factor] pairs, e.g. [[5m, 1h, 14.4], [30m, 6h, 6], [6h, 3d, 1]]: breached when the budget burns faster than factor in both the short and the long window of any pair.'),
      })
      .optional()
      .describe('SLO burn-rate rule (multi-window, multi-burn-rate, as in the SRE workbook). The signal is a Prometheus error ratio written with {{range}}, e.g. sum(rate(errors[{{range}}])) / sum(rate(requests[{{range}}])).'),
    min_series: z.number().int().min(1).optional().describe('Scope rule over a query that returns one series per tenant/route (e.g. sum by (tenant) (...)): breached only when at least this many series cross above/below at once — "single tenant affected: fix forward".'),
    baseline: positiveDuration.default(1_800_000).describe('With above_baseline(_by): the baseline is the average of the same query over this range before the deploy (default 30m).'),
    min_threshold: z.number().optional().describe('With above_baseline(_by): the threshold never goes below this, whatever the baseline (e.g. 0.01: never revert below 1 % errors). Required with above_baseline (and with an above_baseline_by of 0 or less): a service without errors before the deploy has a baseline of 0, and 0 × 1.5 would revert on the first error.'),
    for: z.number().int().min(1).default(1).describe('Consecutive breaching samples before the rule fires.'),
    severity: z.enum(['P0', 'P1', 'P2']).default('P1').describe('P0, P1 or P2: picks the notification routes (default P1).'),
    action: z.enum(['rollback', 'notify']).default('notify').describe('rollback reverts to the known-good version; notify only records and tells.'),
  })
  .superRefine((r, ctx) => {
    const set = [r.above, r.below, r.above_baseline, r.above_baseline_by, r.burn_rate].filter((v) => v !== undefined).length;
    if (set !== 1) ctx.addIssue({ code: 'custom', message: 'set exactly one of above, below, above_baseline, above_baseline_by or burn_rate' });
    const relative = r.above_baseline !== undefined || r.above_baseline_by !== undefined;
    if (r.min_threshold !== undefined && !relative) {
      ctx.addIssue({ code: 'custom', path: ['min_threshold'], message: 'min_threshold goes with above_baseline or above_baseline_by (the floor of a threshold taken from the baseline)' });
    }
    if (set === 1 && r.min_threshold === undefined && r.above_baseline !== undefined) {
      ctx.addIssue({
        code: 'custom', path: ['above_baseline'],
        message: `needs min_threshold, the lowest value that may breach: a service without errors before the deploy has a baseline of 0, and ${r.above_baseline} × 0 = 0 would revert on its first error (e.g. min_threshold: 0.01 for an error ratio)`,
      });
    }
    if (set === 1 && r.min_threshold === undefined && r.above_baseline_by !== undefined && r.above_baseline_by <= 0) {
      ctx.addIssue({
        code: 'custom', path: ['above_baseline_by'],
        message: `needs min_threshold when 0 or less: a baseline of 0 + ${r.above_baseline_by} would revert on the first error`,
      });
    }
  })
  .describe('A threshold on one signal; set exactly one of above, below, above_baseline, above_baseline_by or burn_rate.');

const recovery = z
  .strictObject({
    signal: name.describe('A key of this service\'s signals.'),
    above: z.number().optional().describe('Holds when the value is above this.'),
    below: z.number().optional().describe('Holds when the value is below this.'),
  })
  .superRefine(oneThreshold)
  .describe('A success criterion checked after a revert; set exactly one of above or below.');

const service = z
  .strictObject({
    match,
    ...timing,
    signals: z
      .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]*$/, 'signal names are letters, digits, _ and -'), signal)
      .describe('What rollguard measures, by name (letters, digits, _ and -); rules and recovery refer to these names.'),
    rules: z.array(rule).min(1, 'a watched service needs at least one rule').describe('Thresholds that decide: notify, or roll back to the known-good version.'),
    recovery: z.array(recovery).default([]).describe('Runbook success criteria checked after a revert; all must hold (no data does not hold).'),
    notify: serviceNotifySchema.optional(),
    on_migrations: z
      .enum(['hold', 'revert'])
      .default('hold')
      .describe('A deployment labelled rollguard.migrations=true: hold (default) pages and waits for `rollguard release`; revert reverts it like any other.'),
    min_requests: z
      .strictObject({
        signal: name.describe('A signal of this service measuring traffic, e.g. requests per second.'),
        at_least: z.number().min(0).describe('Below this (or without data) samples of Prometheus-based rules are no-data: too little traffic to judge.'),
      })
      .optional()
      .describe('Traffic floor: error rates over a handful of requests are noise, not evidence.'),
    ...runbookServiceKeys,
  })
  .describe('A watched service; any of the defaults keys may be overridden here.');

/** The policy file as written by operators (snake_case keys). */
export const policyFileSchema = z
  .strictObject({
    version: z.literal(1, { error: 'expected 1 (the only policy version)' }).describe('Policy file format version; always 1.'),
    prometheus: prometheusSchema.optional(),
    defaults: z
      .strictObject({
        window: positiveDuration.default(600_000).describe(`${timingHelp.window} Default 10m.`),
        interval: interval.default(15_000).describe(`${timingHelp.interval} Default 15s.`),
        max_attempts: z.number().int().min(1).max(10).default(2).describe(`${timingHelp.max_attempts} Default 2.`),
        stop_timeout: duration.default(10_000).describe(`${timingHelp.stop_timeout} Default 10s.`),
        recovery_timeout: positiveDuration.default(120_000).describe(`${timingHelp.recovery_timeout} Default 2m.`),
        min_data_ratio: z.number().min(0).max(1).default(0.8).describe(`${timingHelp.min_data_ratio} Default 0.8.`),
        warmup: duration.default(0).describe(`${timingHelp.warmup} Default 0s.`),
        on_no_data: timing.on_no_data,
        inconclusive_is_good: z.boolean().default(false).describe(`${timingHelp.inconclusive_is_good} Default false.`),
        max_rollbacks: maxRollbacks.default({ count: 3, per: 3_600_000 }).describe(`${timingHelp.max_rollbacks} Default {count: 3, per: 1h}.`),
        on_bad_image: z.enum(['revert', 'warn']).default('revert').describe(`${timingHelp.on_bad_image} Default revert.`),
        pass_after: defaultsPassAfter,
      })
      .prefault({})
      .describe('Timings for every service; each service may override any of them.'),
    services: z
      .record(z.string().regex(/^[A-Za-z0-9_.-]+$/, 'service names are letters, digits, _ . and -'), service)
      .describe('The services to watch, by name (letters, digits, _ . and -).'),
    notifications: z
      .record(z.string().regex(/^[A-Za-z0-9_.-]+$/, 'channel names are letters, digits, _ . and -'), channelSchema)
      .default({})
      .describe('Named notification channels; routes refer to these names. Secrets by ${ENV} or <field>_file, never literal.'),
    routes: routesSchema.default({}),
    escalation: escalationSchema.optional(),
    maintenance: maintenanceSchema.optional(),
    digest: digestSchema.optional(),
    alertmanager: alertmanagerPolicySchema.optional(),
  });


function unknownChannel(name: string, channels: Record<string, unknown>): string {
  return `unknown channel "${name}"; defined: ${Object.keys(channels).join(', ') || 'none (add them under notifications:)'}`;
}

function routeProblems(routes: Record<string, unknown>, at: (string | number)[], channels: Record<string, unknown>): Problem[] {
  const problems: Problem[] = [];
  for (const [severity, list] of Object.entries(routes)) {
    if (!Array.isArray(list)) continue;
    list.forEach((c: unknown, i) => {
      if (typeof c === 'string' && !Object.hasOwn(channels, c)) problems.push({ keys: [...at, severity, i], message: unknownChannel(c, channels) });
    });
  }
  return problems;
}

/**
 * Checks that span keys (a rule naming an undefined signal, a Prometheus signal without
 * prometheus.url). Runs on the raw document so that these problems are reported together
 * with the schema's, not only after those are fixed.
 */
/** The text of a signal that placeholders fill: its query or its URL. */
function signalText(sig: unknown): { key: 'prometheus' | 'http'; text: string } | undefined {
  if (!isMap(sig)) return undefined;
  if (typeof sig.prometheus === 'string') return { key: 'prometheus', text: sig.prometheus };
  if (isMap(sig.http) && typeof sig.http.url === 'string') return { key: 'http', text: sig.http.url };
  return undefined;
}

/**
 * Per-task placeholders ({{task}} {{slot}} {{node}} {{node_addr}}) exist only for Swarm services,
 * and a signal measured once per task gives one value per tick: rules that read it over a range
 * of their own (burn rate, baseline, min_series) cannot use it.
 */
function replicaPlaceholderProblems(svcName: string, svc: Record<string, unknown>, signals: Record<string, unknown>): Problem[] {
  const problems: Problem[] = [];
  const m = svc.match;
  const swarm = isMap(m) && (m.swarm_service !== undefined || m.stack !== undefined);
  const perTask = new Set<string>();
  for (const [sigName, sig] of Object.entries(signals)) {
    const t = signalText(sig);
    const vars = t ? replicaVarsIn(t.text) : [];
    if (!t || !vars.length) continue;
    perTask.add(sigName);
    if (!swarm) {
      problems.push({ keys: ['services', svcName, 'signals', sigName, t.key], message: `${vars.map((v) => `{{${v}}}`).join(', ')} ${vars.length > 1 ? 'are' : 'is'} known only for the tasks of a Swarm service (match: swarm_service or stack)` });
    }
  }
  if (Array.isArray(svc.rules)) {
    svc.rules.forEach((r: unknown, i) => {
      if (!isMap(r) || typeof r.signal !== 'string' || !perTask.has(r.signal)) return;
      const own = (['burn_rate', 'above_baseline', 'above_baseline_by', 'min_series'] as const).find((k) => r[k] !== undefined);
      if (own) problems.push({ keys: ['services', svcName, 'rules', i, own], message: `${own} cannot read a signal measured once per task (it uses {{task}}, {{slot}}, {{node}} or {{node_addr}}); use a query over the whole service` });
    });
  }
  return problems;
}

export function crossReferenceProblems(raw: unknown): Problem[] {
  const problems: Problem[] = [];
  if (!isMap(raw)) return problems;
  problems.push(...prometheusProblems(raw.prometheus));
  const channels = isMap(raw.notifications) ? raw.notifications : {};
  if (isMap(raw.routes)) {
    problems.push(...routeProblems(raw.routes, ['routes'], channels));
    const detected = raw.routes.detected;
    if (Array.isArray(detected)) {
      detected.forEach((c: unknown, i) => {
        const ch = typeof c === 'string' && Object.hasOwn(channels, c) ? channels[c] : undefined;
        if (isMap(ch) && ch.slack === undefined && ch.webhook === undefined) {
          problems.push({ keys: ['routes', 'detected', i], message: `"${String(c)}" is not a chat channel; deployment announcements go to slack or webhook channels only` });
        }
      });
    }
  }
  if (isMap(raw.digest) && Array.isArray(raw.digest.to)) {
    raw.digest.to.forEach((c: unknown, i) => {
      const ch = typeof c === 'string' && Object.hasOwn(channels, c) ? channels[c] : undefined;
      if (typeof c === 'string' && !ch) problems.push({ keys: ['digest', 'to', i], message: unknownChannel(c, channels) });
      else if (isMap(ch) && ch.email === undefined) problems.push({ keys: ['digest', 'to', i], message: `"${String(c)}" is not an email channel` });
    });
  }
  problems.push(...passAfterProblems(raw));
  if (!isMap(raw.services)) return problems;
  problems.push(...gitPathProblems(raw.services), ...alertmanagerProblems(raw));
  for (const [svcName, svc] of Object.entries(raw.services)) {
    if (!isMap(svc)) continue;
    const signals = isMap(svc.signals) ? svc.signals : {};
    const defined = Object.keys(signals).join(', ') || 'none';
    problems.push(...replicaPlaceholderProblems(svcName, svc, signals), ...runbookProblems(svcName, svc));
    for (const list of ['rules', 'recovery'] as const) {
      const items = svc[list];
      if (!Array.isArray(items)) continue;
      items.forEach((item: unknown, i) => {
        if (isMap(item) && typeof item.signal === 'string' && !Object.hasOwn(signals, item.signal)) {
          problems.push({ keys: ['services', svcName, list, i, 'signal'], message: `unknown signal "${item.signal}"; defined: ${defined}` });
        }
      });
    }
    if (Array.isArray(svc.rules)) {
      svc.rules.forEach((r: unknown, i) => {
        if (!isMap(r) || (r.above_baseline === undefined && r.above_baseline_by === undefined) || typeof r.signal !== 'string') return;
        const sig = Object.hasOwn(signals, r.signal) ? signals[r.signal] : undefined;
        if (isMap(sig) && sig.prometheus === undefined) {
          problems.push({ keys: ['services', svcName, 'rules', i, r.above_baseline !== undefined ? 'above_baseline' : 'above_baseline_by'], message: 'a baseline needs a prometheus signal (its history before the deploy)' });
        }
      });
      const rangeSignal = (name: unknown): boolean => {
        const sig = typeof name === 'string' && Object.hasOwn(signals, name) ? signals[name] : undefined;
        return isMap(sig) && typeof sig.prometheus === 'string' && /\{\{\s*range\s*\}\}/.test(sig.prometheus);
      };
      svc.rules.forEach((r: unknown, i) => {
        if (!isMap(r)) return;
        if (r.min_series !== undefined) {
          const sig = typeof r.signal === 'string' && Object.hasOwn(signals, r.signal) ? signals[r.signal] : undefined;
          if (isMap(sig) && sig.prometheus === undefined) problems.push({ keys: ['services', svcName, 'rules', i, 'min_series'], message: 'min_series needs a prometheus signal returning one series per tenant or route' });
          if (r.above === undefined && r.below === undefined) problems.push({ keys: ['services', svcName, 'rules', i, 'min_series'], message: 'min_series goes with above or below (the threshold each series is held to)' });
        }
        if (r.burn_rate !== undefined && typeof r.signal === 'string' && Object.hasOwn(signals, r.signal) && !rangeSignal(r.signal)) {
          problems.push({ keys: ['services', svcName, 'rules', i, 'signal'], message: 'a burn_rate rule needs a prometheus signal written with {{range}}, e.g. sum(rate(errors[{{range}}])) / sum(rate(requests[{{range}}]))' });
        }
        if (r.burn_rate === undefined && rangeSignal(r.signal)) {
          problems.push({ keys: ['services', svcName, 'rules', i, 'signal'], message: 'this signal is written with {{range}}, which only burn_rate rules fill in' });
        }
      });
      if (Array.isArray(svc.recovery)) {
        svc.recovery.forEach((c: unknown, i) => {
          if (isMap(c) && rangeSignal(c.signal)) problems.push({ keys: ['services', svcName, 'recovery', i, 'signal'], message: 'this signal is written with {{range}}, which only burn_rate rules fill in' });
        });
      }
      const seen = new Set<string>();
      svc.rules.forEach((r: unknown, i) => {
        if (!isMap(r) || typeof r.name !== 'string') return;
        if (seen.has(r.name)) problems.push({ keys: ['services', svcName, 'rules', i, 'name'], message: `duplicate rule name "${r.name}"` });
        seen.add(r.name);
      });
    }
    if (isMap(svc.notify)) problems.push(...routeProblems(svc.notify, ['services', svcName, 'notify'], channels));
    if (isMap(svc.min_requests) && typeof svc.min_requests.signal === 'string' && !Object.hasOwn(signals, svc.min_requests.signal)) {
      problems.push({ keys: ['services', svcName, 'min_requests', 'signal'], message: `unknown signal "${svc.min_requests.signal}"; defined: ${defined}` });
    }
    const hasPrometheus = isMap(raw.prometheus) && raw.prometheus.url !== undefined;
    for (const [sigName, sig] of Object.entries(signals)) {
      if (!hasPrometheus && isMap(sig) && sig.prometheus !== undefined) {
        problems.push({ keys: ['services', svcName, 'signals', sigName, 'prometheus'], message: 'a prometheus signal needs the top-level prometheus.url' });
      }
    }
  }
  return problems;
}

export type PolicyFile = z.output<typeof policyFileSchema>;
