import type Docker from 'dockerode';
import type { FollowUpStep } from '../../config/policy.js';
import { errorText, isNotFound, remainingMs, type FollowUpKind, type StepContext, type StepOutcome } from './kind.js';

type RestartStep = Extract<FollowUpStep, { kind: 'restart' }>;

/** Docker's own default stop timeout: no container is given longer than it would be by `docker restart`. */
const MAX_GRACE_S = 10;
/** Kept back from each container's share of the time for starting it again after the stop. */
const START_ALLOWANCE_MS = 2_000;

/**
 * Seconds a container may take to stop before Docker kills it (`docker restart -t`), chosen so that
 * it and the containers after it still fit in the step's time: an equal share of what is left,
 * less the time to start, at most Docker's default of 10 s.
 */
export function graceSeconds(remaining: number, containersLeft: number): number {
  const share = remaining / Math.max(1, containersLeft);
  return Math.min(MAX_GRACE_S, Math.max(0, Math.floor((share - START_ALLOWANCE_MS) / 1000)));
}

interface Resolved { id: string; name: string }

/** Docker's name of a container (`/web` → `web`). */
function bare(name: string | undefined, fallback: string): string {
  return (name ?? fallback).replace(/^\//, '');
}

/**
 * Every container the step names, in the order given: each named container, then each Compose
 * service's containers by name (one-off `compose run` containers left out). All are looked up
 * before any is restarted, so a misspelt name fails the step without leaving it half done.
 */
async function resolveTargets(step: RestartStep, docker: Docker, signal: AbortSignal): Promise<{ targets: Resolved[]; missing: string[] }> {
  const targets: Resolved[] = [];
  const missing: string[] = [];
  const add = (c: Resolved): void => {
    if (!targets.some((t) => t.id === c.id)) targets.push(c);
  };
  for (const name of step.containers) {
    try {
      const c = await docker.getContainer(name).inspect({ abortSignal: signal });
      add({ id: c.Id, name: bare(c.Name, name) });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      missing.push(`no container named ${name}`);
    }
  }
  for (const { project, service } of step.composeServices) {
    const list = await docker.listContainers({
      all: true,
      abortSignal: signal,
      filters: { label: [`com.docker.compose.project=${project}`, `com.docker.compose.service=${service}`] },
    });
    const found = list
      .filter((c) => c.Labels?.['com.docker.compose.oneoff'] !== 'True')
      .map((c) => ({ id: c.Id, name: bare(c.Names[0], c.Id.slice(0, 12)) }))
      .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
    if (!found.length) missing.push(`no container of Compose service ${project}/${service}`);
    found.forEach(add);
  }
  return { targets, missing };
}

/** `docker restart` of containers by name and of every container of Compose services, one after the other. */
export const restart: FollowUpKind<RestartStep> = {
  label(step) {
    const names = [...step.containers, ...step.composeServices.map((s) => `compose ${s.project}/${s.service}`)];
    return `restart ${names.join(', ')}`;
  },

  async run(step, ctx: StepContext): Promise<StepOutcome> {
    const { targets, missing } = await resolveTargets(step, ctx.docker, ctx.signal);
    if (missing.length) return { ok: false, summary: `${missing.join('; ')}; nothing was restarted` };
    if (!targets.length) return { ok: false, summary: 'no container to restart' };
    const done: string[] = [];
    for (const [i, c] of targets.entries()) {
      const t = graceSeconds(remainingMs(ctx.deadline), targets.length - i);
      try {
        await ctx.docker.getContainer(c.id).restart({ t, abortSignal: ctx.signal });
      } catch (err) {
        const before = done.length ? `; restarted before it: ${done.join(', ')}` : '';
        return { ok: false, summary: `restarting ${c.name} failed: ${errorText(err)}${before}` };
      }
      done.push(c.name);
      ctx.log.debug({ container: c.name, graceS: t }, 'follow-up restarted a container');
    }
    return { ok: true, summary: `restarted ${done.join(', ')}` };
  },

  timeoutNote() {
    return 'a container being restarted then may still be stopping or starting';
  },
};
