import type Docker from 'dockerode';
import { z } from 'zod';

/**
 * The part of `docker inspect` rollguard reads. Unknown fields are kept (`looseObject`) so the
 * full spec survives into the known-good snapshot.
 */
export const containerInspectSchema = z.looseObject({
  Id: z.string(),
  Name: z.string(),
  Image: z.string(),
  Created: z.string(),
  RestartCount: z.number().default(0),
  State: z.looseObject({
    Running: z.boolean(),
    Restarting: z.boolean().default(false),
    OOMKilled: z.boolean().default(false),
    StartedAt: z.string(),
    Health: z.looseObject({ Status: z.string() }).optional().nullable(),
  }),
  Config: z.looseObject({
    Image: z.string(),
    Labels: z.record(z.string(), z.string()).nullable().default({}),
    Hostname: z.string().optional(),
  }),
  HostConfig: z.looseObject({}),
  NetworkSettings: z.looseObject({
    Networks: z.record(z.string(), z.looseObject({})).nullable().default({}),
  }),
});

export type ContainerInspect = z.output<typeof containerInspectSchema>;

/** The name without Docker's leading slash. */
export function containerName(c: Pick<ContainerInspect, 'Name'>): string {
  return c.Name.replace(/^\//, '');
}

/** Inspects a container and validates the answer at the edge. */
export async function inspectContainer(docker: Docker, id: string): Promise<ContainerInspect> {
  const raw: unknown = await docker.getContainer(id).inspect();
  return containerInspectSchema.parse(raw);
}
