import { isDeepStrictEqual } from 'node:util';
import type { Policy, ServicePolicy } from './policy.js';

/** Rules of one service, compared by name. */
export interface RuleChanges {
  added: string[];
  removed: string[];
  /** Same name, different threshold, signal, `for`, severity or action. */
  edited: string[];
  /** The rules that stayed are in a different order. */
  reordered: boolean;
}

/** What changed in a service present in both policies. */
export interface ServiceChanges {
  rules: RuleChanges;
  /** Other keys of the service, as the policy file names them (`window`, `signals`, `match`…). */
  settings: string[];
}

/** What a reload changes. Values are never included: they may hold secrets. */
export interface PolicyDiff {
  services: {
    added: string[];
    removed: string[];
    /** Only services present in both policies whose effective settings differ. */
    edited: Record<string, ServiceChanges>;
  };
  /** Top-level sections that changed: prometheus, notifications, routes, escalation, maintenance, digest. */
  settings: string[];
}

/** The policy file's name for each key of the typed service (defaults are already applied to it). */
const SERVICE_FILE_KEYS: Record<Exclude<keyof ServicePolicy, 'name' | 'rules'>, string> = {
  match: 'match',
  windowMs: 'window',
  intervalMs: 'interval',
  maxAttempts: 'max_attempts',
  stopTimeoutMs: 'stop_timeout',
  recoveryTimeoutMs: 'recovery_timeout',
  minDataRatio: 'min_data_ratio',
  warmupMs: 'warmup',
  onNoData: 'on_no_data',
  inconclusiveIsGood: 'inconclusive_is_good',
  onMigrations: 'on_migrations',
  maxRollbacks: 'max_rollbacks',
  onBadImage: 'on_bad_image',
  passAfter: 'pass_after',
  minRequests: 'min_requests',
  signals: 'signals',
  recovery: 'recovery',
  notify: 'notify',
  afterRollback: 'after_rollback',
  database: 'database',
  downMigration: 'down_migration',
  restart: 'restart',
};

const POLICY_FILE_KEYS: Record<Exclude<keyof Policy, 'version' | 'source' | 'services'>, string> = {
  prometheus: 'prometheus',
  notifications: 'notifications',
  routes: 'routes',
  escalation: 'escalation',
  maintenance: 'maintenance',
  digest: 'digest',
  alertmanager: 'alertmanager',
};

function byName<T extends { name: string }>(items: readonly T[]): Map<string, T> {
  return new Map(items.map((item) => [item.name, item]));
}

function diffRules(a: ServicePolicy['rules'], b: ServicePolicy['rules']): RuleChanges {
  const before = byName(a);
  const after = byName(b);
  const kept = (rules: ServicePolicy['rules'], other: Map<string, unknown>): string[] => rules.map((r) => r.name).filter((n) => other.has(n));
  return {
    added: b.filter((r) => !before.has(r.name)).map((r) => r.name),
    removed: a.filter((r) => !after.has(r.name)).map((r) => r.name),
    edited: b.filter((r) => before.has(r.name) && !isDeepStrictEqual(before.get(r.name), r)).map((r) => r.name),
    reordered: !isDeepStrictEqual(kept(a, after), kept(b, before)),
  };
}

function diffService(a: ServicePolicy, b: ServicePolicy): ServiceChanges {
  const settings = (Object.keys(SERVICE_FILE_KEYS) as (keyof typeof SERVICE_FILE_KEYS)[])
    .filter((key) => !isDeepStrictEqual(a[key], b[key]))
    .map((key) => SERVICE_FILE_KEYS[key]);
  return { rules: diffRules(a.rules, b.rules), settings };
}

/** What changes when policy `b` replaces policy `a`: services and their rules by name, the rest by deep equality. */
export function diffPolicies(a: Policy, b: Policy): PolicyDiff {
  const edited: Record<string, ServiceChanges> = {};
  for (const [name, next] of Object.entries(b.services)) {
    const prev = a.services[name];
    if (prev && !isDeepStrictEqual(prev, next)) edited[name] = diffService(prev, next);
  }
  return {
    services: {
      added: Object.keys(b.services).filter((name) => !Object.hasOwn(a.services, name)),
      removed: Object.keys(a.services).filter((name) => !Object.hasOwn(b.services, name)),
      edited,
    },
    settings: (Object.keys(POLICY_FILE_KEYS) as (keyof typeof POLICY_FILE_KEYS)[])
      .filter((key) => !isDeepStrictEqual(a[key], b[key]))
      .map((key) => POLICY_FILE_KEYS[key]),
  };
}

/** True when applying the new policy would change nothing. */
export function isUnchanged(diff: PolicyDiff): boolean {
  const { added, removed, edited } = diff.services;
  return added.length === 0 && removed.length === 0 && Object.keys(edited).length === 0 && diff.settings.length === 0;
}

const list = (names: string[]): string => names.map((n) => JSON.stringify(n)).join(', ');

/** One line for people: `added services: "api"; edited "web" (rules added: "latency"; window)`. */
export function summarizeDiff(diff: PolicyDiff): string {
  const parts: string[] = [];
  if (diff.services.added.length) parts.push(`added services: ${list(diff.services.added)}`);
  if (diff.services.removed.length) parts.push(`removed services: ${list(diff.services.removed)}`);
  for (const [name, changes] of Object.entries(diff.services.edited)) {
    const { added, removed, edited, reordered } = changes.rules;
    const what = [
      added.length ? `rules added: ${list(added)}` : '',
      removed.length ? `rules removed: ${list(removed)}` : '',
      edited.length ? `rules edited: ${list(edited)}` : '',
      reordered ? 'rules reordered' : '',
      changes.settings.join(', '),
    ].filter(Boolean);
    parts.push(`edited ${JSON.stringify(name)} (${what.join('; ')})`);
  }
  if (diff.settings.length) parts.push(`changed ${diff.settings.join(', ')}`);
  return parts.length ? parts.join('; ') : 'no changes';
}
