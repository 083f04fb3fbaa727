// The shape of a rule as the daemon reports it to the status page (status and deployment views):
// shared by daemon/, which builds it, and api/, which parses and shows it.

import type { JsonNumber } from './json-number.js';

/** How a rule's latest sample compares to its threshold; `null` before its first sample. */
export type RuleResult = 'ok' | 'breach' | 'no-data';

/** A rule of a watch as the page and the deployment chart need it (the daemon's status and deployment views give these). */
export interface RuleInfo {
  name: string;
  signal: string;
  /** Where the rule's samples are recorded: the signal's name, or `burn:`/`scope:` + the rule's name. */
  key: string;
  action: string;
  severity: string;
  for: number;
  /** The threshold in words (`above 0.05`, a baseline's formula). */
  threshold: string;
  /** The number the value is compared with; null when unresolved (a baseline that could not be measured). */
  limit: number | null;
  direction: 'above' | 'below';
}

/** A rule of an active watch with its latest sample. */
export interface RuleState extends RuleInfo {
  streak: number;
  /** ±Infinity as `'+Inf'` / `'-Inf'` (the status goes out as JSON); null when no data. */
  last: { at: string; value: JsonNumber | null } | null;
  result: RuleResult | null;
}
