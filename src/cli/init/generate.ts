import type { DiscoveredContainer } from './discovered.js';
import { planServices, type InitPlan } from './plan.js';
import { renderPolicy, type RenderOptions } from './render.js';

/** The starter policy for these running containers: its plan (services, skipped containers) and its YAML text. */
export function generatePolicy(containers: readonly DiscoveredContainer[], opts: RenderOptions = {}): { plan: InitPlan; text: string } {
  const plan = planServices(containers);
  return { plan, text: renderPolicy(plan, opts) };
}
