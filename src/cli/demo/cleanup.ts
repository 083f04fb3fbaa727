import type Docker from 'dockerode';

/** The label on every container and image the demo creates; its value is the demo's name prefix. */
export const DEMO_LABEL = 'io.rollguard.demo';

/** What a clean-up removed. */
export interface Removed {
  containers: string[];
  images: string[];
  volumes: string[];
}

/**
 * Removes everything a demo with `prefix` created: its containers (the app, the one rollguard set
 * aside, the one it restored — all carry the label) with their anonymous volumes, its images
 * (children before parents) and any volume with the label. Errors of single removals are collected
 * and thrown at the end, so one failure does not leave the rest behind.
 */
export async function removeDemoResources(docker: Docker, prefix: string): Promise<Removed> {
  const filter = { label: [`${DEMO_LABEL}=${prefix}`] };
  const removed: Removed = { containers: [], images: [], volumes: [] };
  const problems: string[] = [];
  for (const c of await docker.listContainers({ all: true, filters: filter })) {
    try {
      await docker.getContainer(c.Id).remove({ force: true, v: true });
      removed.containers.push(c.Names[0]?.replace(/^\//, '') ?? c.Id.slice(0, 12));
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) problems.push(`container ${c.Names[0] ?? c.Id}: ${(err as Error).message}`);
    }
  }
  // v2 is built on v1: a parent cannot go before its child, so removal is repeated until nothing more goes.
  let images = await docker.listImages({ filters: filter });
  for (let pass = 0; images.length && pass < 5; pass++) {
    const left: typeof images = [];
    for (const image of images) {
      try {
        await docker.getImage(image.Id).remove({ force: true });
        removed.images.push(image.RepoTags?.find((t) => t !== '<none>:<none>') ?? image.Id.slice(7, 19));
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode !== 404) left.push(image);
      }
    }
    images = left;
  }
  for (const image of images) problems.push(`image ${image.RepoTags?.[0] ?? image.Id}: still present`);
  const { Volumes } = await docker.listVolumes({ filters: filter });
  for (const v of Volumes ?? []) {
    try {
      await docker.getVolume(v.Name).remove();
      removed.volumes.push(v.Name);
    } catch (err) {
      problems.push(`volume ${v.Name}: ${(err as Error).message}`);
    }
  }
  if (problems.length) throw new Error(`could not remove everything the demo created: ${problems.join('; ')}`);
  return removed;
}

/**
 * removeDemoResources, repeated (up to `passes` times, `waitMs` apart) until nothing with the
 * demo's label is left: a revert finishing while the first pass runs can start a container
 * after it. Resolves everything removed; throws the last pass's problems, or what is still left.
 */
export async function removeAllDemoResources(docker: Docker, prefix: string, opts: { passes?: number; waitMs?: number } = {}): Promise<Removed> {
  const passes = opts.passes ?? 3;
  const filter = { label: [`${DEMO_LABEL}=${prefix}`] };
  const all: Removed = { containers: [], images: [], volumes: [] };
  let problem: Error | undefined;
  for (let pass = 1; pass <= passes; pass++) {
    problem = undefined;
    try {
      const removed = await removeDemoResources(docker, prefix);
      all.containers.push(...removed.containers);
      all.images.push(...removed.images);
      all.volumes.push(...removed.volumes);
    } catch (err) {
      problem = err as Error;
    }
    const left = [
      ...(await docker.listContainers({ all: true, filters: filter })).map((c) => `container ${c.Names[0]?.replace(/^\//, '') ?? c.Id.slice(0, 12)}`),
      ...(await docker.listImages({ filters: filter })).map((i) => `image ${i.RepoTags?.find((t) => t !== '<none>:<none>') ?? i.Id.slice(7, 19)}`),
      ...((await docker.listVolumes({ filters: filter })).Volumes ?? []).map((v) => `volume ${v.Name}`),
    ];
    if (!left.length) return all;
    if (pass === passes) throw problem ?? new Error(`could not remove everything the demo created: still left: ${left.join(', ')}`);
    await new Promise((r) => setTimeout(r, opts.waitMs ?? 1_000));
  }
  return all;
}
