import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, Scalar, visit, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { defaultWritesSecret, expandEnv, isWholeEnvReference, yamlTyped } from './env-reference.js';
import { ConfigError, type ConfigProblem } from './errors.js';
import { SECRET_FIELDS, standardWebhookSecretProblem } from './notify-schema.js';
import type { Channel, FollowUpStep, Policy, ServiceMatch, ServicePolicy, Signal } from './policy.js';
import { runbookUrlPlaces } from './runbook-checks.js';
import { prometheusSecretProblems, toPrometheusSettings } from './prometheus-policy.js';
import { DEFAULT_SERVICE_LABEL } from './alertmanager-schema.js';
import { crossReferenceProblems, policyFileSchema, type PolicyFile } from './schema.js';

type Env = Record<string, string | undefined>;
type PathKey = string | number;

/** The line of the first alias in the document, for errors the YAML library raises without a position. */
function aliasLine(doc: Document, lines: LineCounter): number | undefined {
  let line: number | undefined;
  visit(doc, {
    Alias(_key, node) {
      if (line === undefined && node.range) line = lines.linePos(node.range[0]).line;
    },
  });
  return line;
}

/** `services.web.rules[0].above`; a key that is not a plain name is quoted: `signals["up now"]`. */
export function formatPath(keys: readonly PropertyKey[]): string {
  let out = '';
  for (const key of keys) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (/^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/.test(String(key))) out += out ? `.${String(key)}` : String(key);
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out;
}

/** The line of the key a path ends in (for a mapping entry) or of the item (for a list entry). */
function lineOf(doc: Document, lines: LineCounter, keys: readonly PathKey[]): number | undefined {
  for (let depth = keys.length; depth >= 0; depth--) {
    const parent = depth > 0 ? (doc.getIn(keys.slice(0, depth - 1), true) as unknown) : undefined;
    const last = keys[depth - 1];
    if (isMap(parent)) {
      const pair = parent.items.find((p) => isPair(p) && (isScalar(p.key) ? p.key.value : p.key) === last);
      const keyNode = pair && (pair.key as Node | null);
      if (keyNode && typeof keyNode === 'object' && keyNode.range) return lines.linePos(keyNode.range[0]).line;
    }
    const node = (depth === 0 ? doc.contents : isSeq(parent) ? parent.get(last as number, true) : undefined) as Node | undefined;
    if (node && typeof node === 'object' && node.range) return lines.linePos(node.range[0]).line;
  }
  return undefined;
}

function describeIssue(issue: z.core.$ZodIssue): { keys: PathKey[]; message: string }[] {
  const keys = issue.path.filter((k): k is PathKey => typeof k !== 'symbol');
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return [{ keys, message: 'required' }];
      return [{ keys, message: `expected ${article(issue.expected)}` }];
    case 'unrecognized_keys':
      return issue.keys.map((key) => ({ keys: [...keys, key], message: 'unknown key' }));
    case 'invalid_key':
      return [{ keys, message: issue.issues[0]?.message ?? issue.message }];
    case 'invalid_value':
      return [{ keys, message: issue.message.startsWith('Invalid option') ? `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}` : issue.message }];
    default:
      return [{ keys, message: issue.message }];
  }
}

function article(expected: string): string {
  const noun = expected === 'record' || expected === 'object' ? 'mapping' : expected === 'array' ? 'list' : expected;
  return /^[aeiou]/.test(noun) ? `an ${noun}` : `a ${noun}`;
}

/**
 * Replaces `${VAR}` and `${VAR:-default}` in every string scalar; a reference to an unset variable
 * without a default is a problem, reported on the line of the reference. A plain scalar that is only
 * a reference takes the YAML type of its value, so `above: ${THRESHOLD:-0.05}` can be a number.
 * Returns each substituted scalar with its text as written, for the checks on secrets.
 */
function substituteEnv(doc: Document, env: Env, lines: LineCounter, report: (line: number | undefined, message: string) => void): Map<Node, string> {
  const substituted = new Map<Node, string>();
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value !== 'string' || !node.value.includes('${')) return;
      const original = node.value;
      substituted.set(node, original);
      const startLine = node.range ? lines.linePos(node.range[0]).line : undefined;
      const block = node.type === Scalar.BLOCK_LITERAL || node.type === Scalar.BLOCK_FOLDED ? 1 : 0;
      const replaced = expandEnv(original, env, (name, offset) => {
        const newlines = original.slice(0, offset).split('\n').length - 1;
        report(startLine === undefined ? undefined : startLine + block + newlines, `environment variable ${name} is not set`);
      });
      node.value = node.type === Scalar.PLAIN && isWholeEnvReference(original) ? yamlTyped(replaced) : replaced;
    },
  });
  return substituted;
}

/** Parses and validates policy text. Throws ConfigError listing every problem. */
export function parsePolicy(text: string, file: string, env: Env = process.env): Policy {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const problems: ConfigProblem[] = [];
  for (const err of doc.errors) {
    problems.push({ file, line: lines.linePos(err.pos[0]).line, path: '', message: err.message.split('\n')[0] ?? err.message });
  }
  if (problems.length) throw new ConfigError(problems);

  const fromEnv = substituteEnv(doc, env, lines, (line, message) => problems.push({ file, line, path: '', message }));
  problems.push(...literalSecretProblems(doc, lines, fromEnv, file), ...literalUrlPasswordProblems(doc, lines, fromEnv, file));
  for (const { keys, message } of prometheusSecretProblems(doc, fromEnv)) problems.push({ file, line: lineOf(doc, lines, keys), path: formatPath(keys), message });

  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // The YAML library reports some problems only when the document is resolved: an alias
    // without its anchor, or an alias explosion ("billion laughs").
    problems.push({ file, line: aliasLine(doc, lines), path: '', message: (err as Error).message.split('\n')[0] ?? String(err) });
    throw new ConfigError(problems);
  }
  const parsed = policyFileSchema.safeParse(raw ?? {}, { reportInput: true });
  for (const { keys, message } of crossReferenceProblems(raw)) {
    problems.push({ file, line: lineOf(doc, lines, keys), path: formatPath(keys), message });
  }
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      for (const { keys, message } of describeIssue(issue)) {
        problems.push({ file, line: lineOf(doc, lines, keys), path: formatPath(keys), message });
      }
    }
  }
  if (problems.length || !parsed.success) {
    problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    throw new ConfigError(problems);
  }
  const secrets = readSecretFiles(parsed.data, file, (keys, message) => problems.push({ file, line: lineOf(doc, lines, keys), path: formatPath(keys), message }));
  for (const [name, channel] of Object.entries(parsed.data.notifications)) {
    const problem = channel.webhook?.signature === 'standard' ? standardWebhookSecretProblem(secrets[name]?.secret ?? '') : undefined;
    if (problem) problems.push({ file, line: lineOf(doc, lines, ['notifications', name, 'webhook']), path: formatPath(['notifications', name, 'webhook', 'secret']), message: problem });
  }
  const prometheus = parsed.data.prometheus && toPrometheusSettings(parsed.data.prometheus, file, (keys, message) => problems.push({ file, line: lineOf(doc, lines, keys), path: formatPath(keys), message }));
  if (problems.length) throw new ConfigError(problems);
  return toPolicy(parsed.data, file, secrets, prometheus);
}

/** Secrets written literally in the policy are refused: they would end up in version control and backups. */
function literalSecretProblems(doc: Document, lines: LineCounter, fromEnv: ReadonlyMap<Node, string>, file: string): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const channels = doc.get('notifications', true);
  if (!isMap(channels)) return problems;
  for (const pair of channels.items) {
    const channelName = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
    for (const [kind, fields] of Object.entries(SECRET_FIELDS)) {
      for (const field of fields) {
        const keys = ['notifications', channelName, kind, field];
        const node = doc.getIn(keys, true) as Node | undefined;
        if (!isScalar(node)) continue;
        const written = fromEnv.get(node);
        if (written !== undefined) {
          if (defaultWritesSecret(written, field === 'smtp_url')) problems.push(secretDefaultProblem(doc, lines, keys, file, `"\${ENV_VAR}" (or "\${ENV_VAR:-}") or ${field}_file`));
          continue;
        }
        const literal = String(node.value);
        // An SMTP URL without credentials is not a secret.
        if (field === 'smtp_url' && !/^[a-z]+:\/\/[^/@]*:[^/@]*@/i.test(literal)) continue;
        problems.push({
          file, line: lineOf(doc, lines, keys), path: formatPath(keys),
          message: `a secret must not be written in the policy; use "\${ENV_VAR}" or ${field}_file`,
        });
      }
    }
  }
  return problems;
}

/** `scheme://user:password@` — a URL that carries a password. */
const URL_WITH_PASSWORD = /^[a-z][a-z0-9+.-]*:\/\/[^/?#@]*:[^/?#]*@/i;

/**
 * The URLs that may carry credentials outside the channel secrets — Prometheus, HTTP checks, the
 * PagerDuty and webhook endpoints — with a password written literally are refused like the other
 * secrets. From the environment, whole or in part (`http://rollguard:${PROM_PASSWORD}@prom:9090`),
 * they are accepted; rollguard never shows them with their credentials.
 */
function literalUrlPasswordProblems(doc: Document, lines: LineCounter, fromEnv: ReadonlyMap<Node, string>, file: string): ConfigProblem[] {
  const places: PathKey[][] = [['prometheus', 'url'], ['alertmanager', 'url']];
  const entries = (keys: PathKey[]): string[] => {
    const node = doc.getIn(keys, true) as unknown;
    return isMap(node) ? node.items.map((p) => String(isScalar(p.key) ? p.key.value : p.key)) : [];
  };
  for (const svc of entries(['services'])) {
    for (const sig of entries(['services', svc, 'signals'])) places.push(['services', svc, 'signals', sig, 'http', 'url']);
    const steps = doc.getIn(['services', svc, 'after_rollback'], true) as unknown;
    places.push(...runbookUrlPlaces(svc, isSeq(steps) ? steps.items.length : 0));
  }
  for (const channel of entries(['notifications'])) {
    places.push(['notifications', channel, 'pagerduty', 'url'], ['notifications', channel, 'webhook', 'url']);
  }
  const problems: ConfigProblem[] = [];
  for (const keys of places) {
    const node = doc.getIn(keys, true) as Node | undefined;
    const written = isScalar(node) ? fromEnv.get(node) : undefined;
    if (written !== undefined && defaultWritesSecret(written, true)) problems.push(secretDefaultProblem(doc, lines, keys, file, 'a password from "${ENV_VAR}" without a default'));
    if (!isScalar(node) || written !== undefined || !URL_WITH_PASSWORD.test(String(node.value))) continue;
    problems.push({
      file, line: lineOf(doc, lines, keys), path: formatPath(keys),
      message: 'a password in a URL is a secret and must not be written in the policy; use "${ENV_VAR}" for the URL or its password',
    });
  }
  return problems;
}

/** `${VAR:-default}` in a secret: the default is written in the policy, whether or not VAR is set. */
function secretDefaultProblem(doc: Document, lines: LineCounter, keys: PathKey[], file: string, instead: string): ConfigProblem {
  return { file, line: lineOf(doc, lines, keys), path: formatPath(keys), message: `a default for a secret would write it in the policy; use ${instead}` };
}

type SecretValues = Record<string, Record<string, string>>;

/** Reads every `<secret>_file`, relative to the policy file; the value is the file's content without trailing newlines. */
function readSecretFiles(data: PolicyFile, file: string, report: (keys: PathKey[], message: string) => void): SecretValues {
  const out: SecretValues = {};
  const base = path.dirname(path.resolve(file));
  for (const [channelName, channel] of Object.entries(data.notifications)) {
    for (const [kind, fields] of Object.entries(SECRET_FIELDS)) {
      const body = (channel as Record<string, Record<string, unknown> | undefined>)[kind];
      if (!body) continue;
      for (const field of fields) {
        const inline = body[field];
        const ref = body[`${field}_file`];
        if (typeof inline === 'string') {
          (out[channelName] ??= {})[field] = inline;
        } else if (typeof ref === 'string') {
          try {
            (out[channelName] ??= {})[field] = readFileSync(path.resolve(base, ref), 'utf8').replace(/[\r\n]+$/, '');
          } catch (err) {
            report(['notifications', channelName, kind, `${field}_file`], `cannot read ${ref}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
          }
        }
      }
    }
  }
  return out;
}

/** Reads and validates a policy file. Throws ConfigError listing every problem. */
export async function loadPolicy(file: string, env: Env = process.env): Promise<Policy> {
  const absolute = path.resolve(file);
  let text: string;
  try {
    text = await readFile(absolute, 'utf8');
  } catch (err) {
    throw new ConfigError([{ file, path: '', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }]);
  }
  return parsePolicy(text, file, env);
}

function toChannel(name: string, c: PolicyFile['notifications'][string], secret: Record<string, string>): Channel {
  if (c.email) return { kind: 'email', name, smtpUrl: secret.smtp_url ?? '', from: c.email.from, to: c.email.to };
  if (c.pagerduty) return { kind: 'pagerduty', name, routingKey: secret.routing_key ?? '', url: c.pagerduty.url };
  if (c.slack) return { kind: 'slack', name, webhookUrl: secret.webhook_url ?? '' };
  const w = c.webhook as NonNullable<typeof c.webhook>;
  return { kind: 'webhook', name, url: w.url, secret: secret.secret ?? '', signature: w.signature };
}

function toPolicy(file: PolicyFile, source: string, secrets: SecretValues, prometheus: Policy['prometheus']): Policy {
  const services: Record<string, ServicePolicy> = {};
  for (const [name, svc] of Object.entries(file.services)) {
    const d = file.defaults;
    const signals: Record<string, Signal> = {};
    for (const [sigName, s] of Object.entries(svc.signals)) {
      if (s.prometheus !== undefined) signals[sigName] = { kind: 'prometheus', name: sigName, query: s.prometheus };
      else if (s.http) signals[sigName] = { kind: 'http', name: sigName, url: s.http.url, timeoutMs: s.http.timeout, status: s.http.status, json: s.http.json };
      else if (s.container) signals[sigName] = { kind: 'container', name: sigName, field: s.container };
      else if (s.alertmanager) signals[sigName] = { kind: 'alertmanager', name: sigName, ...s.alertmanager, serviceLabel: file.alertmanager?.service_label ?? DEFAULT_SERVICE_LABEL };
    }
    const m = svc.match;
    services[name] = {
      name,
      match: toMatch(m),
      windowMs: svc.window ?? d.window,
      intervalMs: svc.interval ?? d.interval,
      maxAttempts: svc.max_attempts ?? d.max_attempts,
      stopTimeoutMs: svc.stop_timeout ?? d.stop_timeout,
      recoveryTimeoutMs: svc.recovery_timeout ?? d.recovery_timeout,
      minDataRatio: svc.min_data_ratio ?? d.min_data_ratio,
      warmupMs: svc.warmup ?? d.warmup,
      onNoData: svc.on_no_data ?? d.on_no_data,
      inconclusiveIsGood: svc.inconclusive_is_good ?? d.inconclusive_is_good,
      onMigrations: svc.on_migrations,
      maxRollbacks: (({ count, per }) => ({ count, perMs: per }))(svc.max_rollbacks ?? d.max_rollbacks),
      onBadImage: svc.on_bad_image ?? d.on_bad_image,
      ...toPassAfter(svc.pass_after === undefined ? d.pass_after : svc.pass_after),
      minRequests: svc.min_requests ? { signal: svc.min_requests.signal, atLeast: svc.min_requests.at_least } : undefined,
      afterRollback: svc.after_rollback.map((step) => toFollowUp(step, m)),
      database: svc.database ? { url: svc.database.url, keep: svc.database.keep, timeoutMs: svc.database.timeout } : undefined,
      downMigration: svc.down_migration ? { command: svc.down_migration.command, timeoutMs: svc.down_migration.timeout } : undefined,
      restart: svc.restart ? { command: svc.restart, timeoutMs: svc.restart_timeout } : undefined,
      signals,
      rules: svc.rules.map((r) => ({
        ...(r.burn_rate
          ? { above: 1, burnRate: { slo: r.burn_rate.slo, windows: r.burn_rate.windows.map(([shortMs, longMs, factor]) => ({ shortMs, longMs, factor })) } }
          : r.min_series !== undefined
            ? { above: r.min_series - 0.5, scope: { minSeries: r.min_series, perSeries: threshold(r) } }
          : r.above_baseline !== undefined || r.above_baseline_by !== undefined
            ? { above: Number.NaN, baseline: { windowMs: r.baseline, ...(r.above_baseline !== undefined ? { ratio: r.above_baseline } : { delta: r.above_baseline_by }), ...(r.min_threshold !== undefined ? { minThreshold: r.min_threshold } : {}) } }
            : threshold(r)),
        name: r.name, signal: r.signal, for: r.for, severity: r.severity, action: r.action,
      })),
      recovery: svc.recovery.map((r) => ({ ...threshold(r), signal: r.signal })),
      notify: svc.notify ?? {},
    };
  }
  return {
    version: 1,
    source: path.resolve(source),
    prometheus,
    services,
    notifications: Object.fromEntries(Object.entries(file.notifications).map(([n, c]) => [n, toChannel(n, c, secrets[n] ?? {})])),
    routes: file.routes,
    escalation: file.escalation?.contacts ?? [],
    maintenance: file.maintenance
      ? file.maintenance.file
        ? { kind: 'file', path: file.maintenance.file.path, content: file.maintenance.file.content, timeoutMs: file.maintenance.timeout }
        : { kind: 'command', argv: file.maintenance.command ?? [], timeoutMs: file.maintenance.timeout }
      : undefined,
    digest: file.digest,
    alertmanager: file.alertmanager
      ? { ...(file.alertmanager.url ? { url: file.alertmanager.url.replace(/\/+$/, '') } : {}), serviceLabel: file.alertmanager.service_label, silence: file.alertmanager.silence && { forMs: file.alertmanager.silence.for } }
      : undefined,
  };
}

function toMatch(m: PolicyFile['services'][string]['match']): ServiceMatch {
  if (m.container !== undefined) return { kind: 'container', name: m.container };
  if (m.git) return { kind: 'git', path: path.resolve(m.git.path), branch: m.git.branch, pollMs: m.git.poll, mode: m.git.mode };
  if (m.compose) return { kind: 'compose', ...m.compose };
  if (m.swarm_service !== undefined) return { kind: 'swarm', service: m.swarm_service };
  if (m.stack) return { kind: 'swarm', service: `${m.stack.name}_${m.stack.service}`, stack: m.stack.name };
  return { kind: 'labels', labels: m.labels ?? {} };
}

function toFollowUp(s: PolicyFile['services'][string]['after_rollback'][number], m: PolicyFile['services'][string]['match']): FollowUpStep {
  if (s.restart) {
    const { containers, compose_services: services, timeout, continue_on_error: continueOnError } = s.restart;
    // The cross-checks refuse compose_services unless the service is matched by compose.
    const project = m.compose?.project ?? '';
    return { kind: 'restart', containers, composeServices: services.map((service) => ({ project, service })), timeoutMs: timeout, continueOnError };
  }
  if (s.redis_flush) return { kind: 'redis_flush', url: s.redis_flush.url, pattern: s.redis_flush.pattern, timeoutMs: s.redis_flush.timeout, continueOnError: s.redis_flush.continue_on_error };
  if (s.exec) return { kind: 'exec', container: s.exec.container, command: s.exec.command, timeoutMs: s.exec.timeout, continueOnError: s.exec.continue_on_error };
  const h = s.http as NonNullable<typeof s.http>;
  return { kind: 'http', method: h.method, url: h.url, status: h.status, timeoutMs: h.timeout, continueOnError: h.continue_on_error };
}

/** `pass_after` as written (null: turned off for this service) as ServicePolicy.passAfter; no key when off. */
function toPassAfter(p: { ok: number; min: number } | null | undefined): Pick<ServicePolicy, 'passAfter'> {
  return p ? { passAfter: { ok: p.ok, minMs: p.min } } : {};
}

function threshold(t: { above?: number; below?: number }): { above: number } | { below: number } {
  return t.above !== undefined ? { above: t.above } : { below: t.below as number };
}
