import type Docker from 'dockerode';
import { z } from 'zod';

/** A Swarm task template (a service's `Spec.TaskTemplate`, a task's `Spec`); unknown fields are kept, as they are put back. */
export const taskTemplateSchema = z.looseObject({
  ContainerSpec: z.looseObject({ Image: z.string() }),
  ForceUpdate: z.number().optional(),
});
export type TaskTemplate = z.output<typeof taskTemplateSchema>;

/** The part of a Swarm service rollguard reads; the whole spec is kept, since an update sends it back. */
export const serviceSchema = z.looseObject({
  ID: z.string(),
  Version: z.looseObject({ Index: z.number() }),
  Spec: z.looseObject({
    Name: z.string(),
    Labels: z.record(z.string(), z.string()).nullable().optional(),
    TaskTemplate: taskTemplateSchema,
    Mode: z.looseObject({
      Replicated: z.looseObject({ Replicas: z.number().optional() }).optional(),
      Global: z.looseObject({}).optional(),
    }).optional(),
  }),
  PreviousSpec: z.looseObject({ TaskTemplate: taskTemplateSchema }).optional().nullable(),
  UpdateStatus: z.looseObject({ State: z.string().optional(), Message: z.string().optional() }).optional().nullable(),
});
export type SwarmService = z.output<typeof serviceSchema>;

export const taskSchema = z.looseObject({
  ID: z.string(),
  ServiceID: z.string(),
  NodeID: z.string().optional(),
  Slot: z.number().optional(),
  CreatedAt: z.string(),
  Spec: taskTemplateSchema,
  DesiredState: z.string(),
  Status: z.looseObject({
    Timestamp: z.string(),
    State: z.string(),
    Message: z.string().optional(),
    Err: z.string().optional(),
    ContainerStatus: z.looseObject({ ContainerID: z.string().optional(), ExitCode: z.number().optional() }).optional(),
  }),
});
export type SwarmTask = z.output<typeof taskSchema>;

export const nodeSchema = z.looseObject({
  ID: z.string(),
  Description: z.looseObject({ Hostname: z.string().optional() }).optional(),
  Status: z.looseObject({ State: z.string().optional(), Addr: z.string().optional() }).optional(),
  ManagerStatus: z.looseObject({ Addr: z.string().optional() }).optional().nullable(),
});
export type SwarmNode = z.output<typeof nodeSchema>;

const notFound = (err: unknown): boolean => (err as { statusCode?: number }).statusCode === 404;


/** What `read` returns, validated at the edge by `schema`; undefined when Docker answers 404. */
async function unlessMissing<T>(read: () => Promise<unknown>, schema: z.ZodType<T>): Promise<T | undefined> {
  try {
    return schema.parse(await read());
  } catch (err) {
    if (notFound(err)) return undefined;
    throw err;
  }
}

/** The service by name or ID; undefined when there is none. */
export function inspectService(docker: Docker, nameOrId: string): Promise<SwarmService | undefined> {
  return unlessMissing(() => docker.getService(nameOrId).inspect(), serviceSchema);
}

export function inspectTask(docker: Docker, id: string): Promise<SwarmTask | undefined> {
  return unlessMissing(() => docker.getTask(id).inspect(), taskSchema);
}

/** Tasks by filter (`service`, `desired-state`, …), validated. */
export async function listTasks(docker: Docker, filters: Record<string, string[]>): Promise<SwarmTask[]> {
  const raw = (await docker.listTasks({ filters: JSON.stringify(filters) } as never)) as unknown as unknown[];
  return raw.map((t) => taskSchema.parse(t));
}

export function inspectNode(docker: Docker, id: string): Promise<SwarmNode | undefined> {
  return unlessMissing(() => docker.getNode(id).inspect(), nodeSchema);
}

export { dockerMessage } from '../docker-message.js';
