import { z } from 'zod';

/**
 * What the status page shows, parsed from the daemon's `/api/v1/status` body at the page's edge:
 * the page renders only typed views, and a field the daemon leaves out shows as unknown rather
 * than breaking the page.
 */

import type { RuleInfo, RuleResult } from '../../model/rule-view.js';

export type { RuleInfo, RuleResult };

const when = z.union([z.string(), z.date()]).transform((v) => (typeof v === 'string' ? v : v.toISOString()));
const text = z.string().nullish().transform((v) => v ?? null);
/** A measured value: JSON has no Infinity, so the daemon writes ±Infinity as `'+Inf'` / `'-Inf'`. */
const measured = z.union([z.number(), z.literal('+Inf').transform(() => Number.POSITIVE_INFINITY), z.literal('-Inf').transform(() => Number.NEGATIVE_INFINITY)]).nullable();

const ruleInfo = z.object({
  name: z.string(),
  signal: z.string(),
  key: z.string(),
  action: z.string(),
  severity: z.string(),
  for: z.number(),
  threshold: z.string(),
  limit: z.number().nullable(),
  direction: z.enum(['above', 'below']),
});

const ruleState = ruleInfo.extend({
  streak: z.number().catch(0),
  last: z.object({ at: when, value: measured.catch(null) }).nullable().catch(null),
  result: z.enum(['ok', 'breach', 'no-data']).nullable().catch(null),
});

const watchView = z.object({
  deployment: z.number(),
  state: z.string(),
  to_ref: z.string(),
  from_ref: text.catch(null),
  samples: z.number().catch(0),
  started_at: when.nullish().catch(null),
  window_ends_at: when.nullish().catch(null),
  window_ms: z.number().nullish().catch(null),
  rules: z.array(ruleState).catch([]),
});

/** A revert running now (the watch has ended while it runs). */
const revertView = z.object({
  deployment: z.number(),
  to_ref: z.string().catch(''),
  from_ref: text.catch(null),
  phase: z.string().catch('decided'),
  attempts: z.number().catch(0),
});

const holdView = z.object({
  kind: z.enum(['hold', 'freeze']).catch('hold'),
  reason: z.string().catch(''),
  until: when.nullish().catch(null),
  created_at: when.nullish().catch(null),
  deployment_id: z.number().nullish().catch(null),
});

const serviceView = z.object({
  image: text.catch(null),
  ref: text.catch(null),
  replicas: z.number().catch(0),
  known_good: z.object({ ref: z.string(), image: z.string(), since: when.nullish().catch(null) }).nullish().catch(null),
  hold: holdView.nullish().catch(null),
  leader: z.boolean().nullish().catch(null),
  leader_instance: text.catch(null),
  watch: watchView.nullish().catch(null),
  revert: revertView.nullish().catch(null),
});

export const statusView = z.object({
  instance: text.catch(null),
  policy: text.catch(null),
  dryRun: z.boolean().catch(false),
  dockerConnected: z.boolean().catch(false),
  activeWatches: z.number().catch(0),
  services: z.record(z.string(), serviceView).catch({}),
});

export type StatusView = z.output<typeof statusView>;
export type ServiceView = z.output<typeof serviceView>;
export type WatchView = z.output<typeof watchView>;
export type RevertView = z.output<typeof revertView>;
/** A rule of an active watch with its latest sample (±Infinity parsed back to numbers). */
export type RuleState = z.output<typeof ruleState>;

/** A recorded deployment as the page lists it. */
export interface DeploymentRow {
  id: number;
  service: string;
  from_ref: string | null;
  from_image: string | null;
  to_ref: string;
  to_image: string;
  state: string;
  reason: string | null;
  dry_run: boolean;
  attempts: number;
  started_at: Date;
  detected_at: Date;
  window_ends_at: Date;
  decided_at: Date | null;
  recovered_at: Date | null;
}

/** One deployment with everything recorded about it, for its page and `/api/v1/deployments/:id`. */
export interface DeploymentDetail {
  deployment: DeploymentRow;
  samples: { stage: string; signal: string; taken_at: Date; value: number | null; result: string; rules: Record<string, string>; detail: string | null }[];
  decisions: { decided_at: Date; kind: string; rule?: string | null; severity?: string | null; detail?: string | null }[];
  actions: { attempt: number; kind: string; started_at: Date; finished_at: Date; ok: boolean; detail?: string | null }[];
  /** The rules the deployment was judged by (with resolved baselines while it is watched). */
  rules: RuleInfo[];
  /** Whether the deployment is being watched now (the page keeps updating). */
  live: boolean;
}
