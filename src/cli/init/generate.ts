import type { DiscoveredContainer } from './discovered.js';
import { planServices, type InitPlan } from './plan.js';
import type { ProbeResult } from './readiness.js';
import { renderPolicy, type RenderOptions } from './render.js';

/**
 * The starter policy for these running containers: its plan (services, skipped containers) and its
 * YAML text. `probes` is what each guessed readiness URL answered (see probe.ts); only one that
 * answered 200 becomes a rule that reverts.
 */
export function generatePolicy(containers: readonly DiscoveredContainer[], opts: RenderOptions & { probes?: ReadonlyMap<string, ProbeResult> } = {}): { plan: InitPlan; text: string } {
  const plan = planServices(containers, opts.probes);
  return { plan, text: renderPolicy(plan, opts) };
}
