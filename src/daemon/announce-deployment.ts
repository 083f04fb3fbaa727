import { shortId } from '../model/image-ref.js';
import { WatchContext } from './context.js';
import { HoldError } from './holds.js';

/**
 * The deploy API's `POST /api/v1/deployments`: a pipeline says it has just deployed `service`
 * (git services, whose HEAD is otherwise read every `poll`). The target looks at once and the
 * deployment, if any, is handed over before this answers; the answer says what runs now and which
 * deployment watches it. A commit that is not HEAD is a 409: the pipeline's deploy did not land.
 */
export async function announceDeployment(ctx: WatchContext, serviceName: string, commit?: string): Promise<{ service: string; running: string; ref: string; deployment: number | null }> {
  const service = ctx.policy.services[serviceName];
  if (!service) throw new HoldError(`unknown service "${serviceName}"`, 404);
  const target = ctx.targetFor(service);
  if (!target.announce) {
    throw new HoldError(`deployments of ${serviceName} (${target.kind}) are seen as they start, from the engine's events; there is nothing to announce`, 409);
  }
  await target.announce(service);
  await target.drained();
  // The deployment is handled in the service's queue: wait for it, then read what runs.
  await ctx.queue.run(serviceName, () => Promise.resolve());
  const now = (await ctx.runningReplicas(service).catch(() => []))[0];
  if (!now) throw new HoldError(`${serviceName} runs nothing rollguard can see (${JSON.stringify(service.match)})`, 409);
  if (commit && !now.image.startsWith(commit)) {
    throw new HoldError(`${serviceName} runs ${shortId(now.image)} (${now.ref}), not ${commit}: the deploy has not landed`, 409);
  }
  const watch = ctx.serviceState(serviceName).watch;
  const deployment = watch && !watch.done && watch.deployment.to_image === now.image ? watch.deployment.id : null;
  return { service: serviceName, running: now.image, ref: now.ref, deployment };
}
