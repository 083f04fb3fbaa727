import type Docker from 'dockerode';
import type { Logger } from 'pino';
import type { Policy, ServiceMatch, ServicePolicy } from '../../config/policy.js';
import type { ReplicaView } from '../../model/replica-view.js';
import { RevertError, type Convergence, type KnownReplica, type PutBack, type Replica, type ReplicaRole, type ServiceTarget, type UpdateState } from '../target.js';
import { SwarmTaskFollower } from './follower.js';
import { dockerMessage, inspectNode, inspectService, inspectTask, listTasks, taskTemplateSchema, type SwarmService, type SwarmTask, type TaskTemplate } from './inspect.js';
import { changedTemplateSettings, imageRef, templateVersion } from './version.js';

/** Labels rollguard gives a task's replica, as Docker gives them to the task's container. */
export const SERVICE_NAME_LABEL = 'com.docker.swarm.service.name';
export const STACK_LABEL = 'com.docker.stack.namespace';

/** A known-good Swarm service: the task template that made it, and its replicas' names and version. */
interface SwarmSnapshot {
  service: string;
  template: TaskTemplate;
  replicas: { name: string; version: string }[];
}

interface TaskSpecOfReplica {
  task: SwarmTask;
  service: string;
}

function parseSnapshot(snapshot: unknown): SwarmSnapshot {
  const s = snapshot as Partial<SwarmSnapshot> | null;
  if (!s || typeof s.service !== 'string' || !Array.isArray(s.replicas)) throw new RevertError('the known-good snapshot is not a Swarm service\'s');
  return { service: s.service, template: taskTemplateSchema.parse(s.template), replicas: s.replicas };
}

/** The template as a version is kept: without the forced-update counter, which is no part of a version. */
function withoutForce(t: TaskTemplate): TaskTemplate {
  const { ForceUpdate: _force, ...rest } = t;
  return rest as TaskTemplate;
}

const swarmMatch = (service: ServicePolicy): Extract<ServiceMatch, { kind: 'swarm' }> => {
  if (service.match.kind !== 'swarm') throw new Error(`${service.name} is not a Swarm service`);
  return service.match;
};

/**
 * Whether Swarm is rolling an update back on its own (its update failure action). Only a rollback
 * under way tells: one asked for through the API (`docker service rollback`, or rollguard's own
 * revert) carries Swarm's message "manually requested rollback", its own one the failure; once
 * done, every rollback reads `rollback_completed` / "rollback completed", so a finished one is
 * never taken for Swarm's.
 */
export function rolledBackByItself(state: string, message: string | undefined): boolean {
  return (state === 'rollback_started' || state === 'rollback_paused') && !/manually requested/i.test(message ?? '');
}

/** How many attempts an update gets when another writer bumps the service's version in between. */
const UPDATE_TRIES = 3;

/**
 * Docker Swarm services, through a manager node's API: a service's replicas are its running
 * tasks (one per slot), a version is the task template (image, env, command, mounts,
 * resources…), and a revert puts the known-good template back on the service — with Swarm's own
 * rollback when the previous spec is the known-good one — and lets Swarm replace the tasks.
 */
export class SwarmServiceTarget implements ServiceTarget {
  readonly kind = 'swarm-service';
  readonly revertBy = 'service';
  readonly matches = ['swarm'] as const;
  private follower?: SwarmTaskFollower;
  private readonly nodes = new Map<string, { hostname: string; addr: string }>();
  private readonly services = new Map<string, { name: string; labels: Record<string, string> }>();

  constructor(private readonly docker: Docker, private readonly log: Logger, private readonly watched: () => readonly ServiceMatch[] = () => []) {}

  follow(onStarted: (id: string) => Promise<void>): void {
    this.follower = new SwarmTaskFollower(this.docker, this.log, (t) => onStarted(t.ID), () => this.watched().some((m) => m.kind === 'swarm'));
    this.follower.start();
  }

  async unfollow(): Promise<void> {
    await this.follower?.stop();
  }

  drained(): Promise<void> {
    return this.follower?.drained() ?? Promise.resolve();
  }

  get connected(): boolean {
    return this.follower?.connected ?? true;
  }

  async replica(id: string): Promise<Replica | undefined> {
    const task = await inspectTask(this.docker, id);
    return task && this.replicaOf(task);
  }

  async running(_policy: Policy, service: ServicePolicy): Promise<Replica[]> {
    const svc = await inspectService(this.docker, swarmMatch(service).service);
    if (!svc) return [];
    this.remember(svc);
    const tasks = await listTasks(this.docker, { service: [svc.ID], 'desired-state': ['running'] });
    const replicas = await Promise.all(tasks.filter((t) => t.Status.State === 'running').map((t) => this.replicaOf(t)));
    return replicas.sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime());
  }

  servicesOf(policy: Policy, replica: Replica): ServicePolicy[] {
    return Object.values(policy.services).filter((s) => s.match.kind === 'swarm' && s.match.service === replica.labels[SERVICE_NAME_LABEL] && (!s.match.stack || replica.labels[STACK_LABEL] === s.match.stack));
  }

  role(_replica: Replica): ReplicaRole {
    return { kind: 'service' };
  }

  /**
   * A task as container signals read it. Its slot is what serves: a task Swarm replaced (it
   * crashed, failed its health check) reads as the slot's newest task, with the tasks started
   * after it as restarts. The container's own state (health, OOM) is read where it runs on this
   * engine; on another node, from the task's status alone.
   */
  async inspectReplica(id: string): Promise<ReplicaView | undefined> {
    let task: SwarmTask | undefined;
    try {
      task = await inspectTask(this.docker, id);
    } catch (err) {
      throw new Error(`cannot inspect Swarm task ${id.slice(0, 12)}: ${dockerMessage(err)}`);
    }
    if (!task) return undefined;
    const sameSlot = (t: SwarmTask): boolean => (task.Slot ? t.Slot === task.Slot : t.NodeID === task.NodeID);
    const slot = (await listTasks(this.docker, { service: [task.ServiceID] })).filter(sameSlot);
    const newer = slot.filter((t) => Date.parse(t.CreatedAt) > Date.parse(task.CreatedAt)).sort((a, b) => Date.parse(b.CreatedAt) - Date.parse(a.CreatedAt));
    const current = newer[0] ?? task;
    const containerId = current.Status.ContainerStatus?.ContainerID;
    const local = containerId ? await this.docker.getContainer(containerId).inspect().catch(() => undefined) as { State?: { OOMKilled?: boolean; Health?: { Status: string } | null } } | undefined : undefined;
    const state = current.Status.State;
    const running = state === 'running' && current.DesiredState === 'running';
    return {
      Id: task.ID,
      RestartCount: newer.length,
      State: {
        Running: running,
        // A slot whose task is being replaced (new, assigned, preparing, starting) is restarting.
        Restarting: !running && ['new', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting'].includes(state),
        OOMKilled: local?.State?.OOMKilled ?? false,
        ExitCode: current.Status.ContainerStatus?.ExitCode ?? (state === 'failed' || state === 'rejected' ? -1 : 0),
        Health: local?.State?.Health ?? null,
      },
    };
  }

  snapshot(replicas: readonly Replica[]): unknown {
    const first = replicas[0]?.spec as TaskSpecOfReplica | undefined;
    if (!first) throw new Error('a known-good snapshot needs at least one task');
    const snapshot: SwarmSnapshot = {
      service: first.service,
      template: withoutForce(first.task.Spec),
      replicas: replicas.map((r) => ({ name: r.name, version: r.version })).sort((a, b) => (a.name < b.name ? -1 : 1)),
    };
    return snapshot;
  }

  knownReplicas(snapshot: unknown): KnownReplica[] {
    const s = parseSnapshot(snapshot);
    return s.replicas.map((r) => ({ ...r, spec: s.template }));
  }

  changedSettings(from: unknown, to: Replica): string[] {
    return changedTemplateSettings(parseSnapshot(from).template, (to.spec as TaskSpecOfReplica).task.Spec);
  }

  /** Swarm's nodes fetch the image themselves (from a registry, or their own store): the task template names it. */
  async resolveImage(imageId: string, _imageRef: string): Promise<string> {
    return imageId;
  }

  async specVersion(service: ServicePolicy): Promise<string | undefined> {
    const svc = await inspectService(this.docker, swarmMatch(service).service);
    return svc && templateVersion(svc.Spec.TaskTemplate);
  }

  async updateState(service: ServicePolicy): Promise<UpdateState | undefined> {
    const svc = await inspectService(this.docker, swarmMatch(service).service);
    const state = svc?.UpdateStatus?.State;
    if (!svc || !state) return undefined;
    const message = svc.UpdateStatus?.Message;
    return { state, message, rolledBack: rolledBackByItself(state, message), paused: state === 'paused' || state === 'rollback_paused' };
  }

  async putBack(service: ServicePolicy, snapshot: unknown, opts: { force: boolean }): Promise<PutBack> {
    const known = parseSnapshot(snapshot);
    const knownVersion = templateVersion(known.template);
    const ref = imageRef(known.template.ContainerSpec.Image);
    for (let tries = 1; ; tries++) {
      const svc = await inspectService(this.docker, swarmMatch(service).service).catch((err: unknown) => {
        throw new RevertError(`cannot inspect the Swarm service ${swarmMatch(service).service}: ${dockerMessage(err)}`);
      });
      if (!svc) throw new RevertError(`the Swarm service ${swarmMatch(service).service} is gone`);
      const name = svc.Spec.Name;
      const update = svc.UpdateStatus?.State;
      if (templateVersion(svc.Spec.TaskTemplate) === knownVersion && !opts.force) {
        return update && rolledBackByItself(update, svc.UpdateStatus?.Message)
          ? { how: 'already', detail: `Swarm rolled the update of ${name} back by itself (${update}${svc.UpdateStatus?.Message ? `: ${svc.UpdateStatus.Message}` : ''}); it runs the known-good spec (${ref}) again, so rollguard changed nothing` }
          : { how: 'already', detail: `${name} already runs the known-good spec (${ref}); nothing was changed` };
      }
      const rollback = !opts.force && svc.PreviousSpec && templateVersion(svc.PreviousSpec.TaskTemplate) === knownVersion;
      const paused = update === 'paused' ? ' (this resumes the update Swarm paused)' : '';
      try {
        await this.update(svc, rollback ? undefined : { ...known.template, ForceUpdate: (svc.Spec.TaskTemplate.ForceUpdate ?? 0) + (opts.force ? 1 : 0) });
      } catch (err) {
        if (tries < UPDATE_TRIES && /out of sequence/i.test(dockerMessage(err))) continue;
        throw new RevertError(`cannot update the Swarm service ${name}: ${dockerMessage(err)}`, { cause: err });
      }
      if (rollback) return { how: 'rollback', detail: `Swarm rollback of ${name} to its previous spec, the known-good one (${ref})${paused}` };
      return {
        how: 'update',
        detail: opts.force ? `${name} updated again to the known-good spec (${ref}), recreating its tasks` : `${name} updated to the saved known-good spec (${ref})${paused}`,
      };
    }
  }

  async converged(service: ServicePolicy, snapshot: unknown): Promise<Convergence> {
    const known = parseSnapshot(snapshot);
    const knownVersion = templateVersion(known.template);
    const svc = await inspectService(this.docker, swarmMatch(service).service);
    if (!svc) return { done: false, replicas: [], detail: `the Swarm service ${swarmMatch(service).service} is gone` };
    const tasks = await listTasks(this.docker, { service: [svc.ID], 'desired-state': ['running'] });
    const good = tasks.filter((t) => t.Status.State === 'running' && templateVersion(t.Spec) === knownVersion);
    const others = tasks.filter((t) => !good.includes(t));
    const want = svc.Spec.Mode?.Replicated?.Replicas ?? tasks.length;
    const replicas = await Promise.all(good.map((t) => this.replicaOf(t)));
    const onSpec = templateVersion(svc.Spec.TaskTemplate) === knownVersion;
    const done = onSpec && good.length >= want && others.length === 0;
    const update = svc.UpdateStatus?.State ? `; Swarm's update: ${svc.UpdateStatus.State}` : '';
    const pending = others.map((t) => `${t.Slot ? `slot ${t.Slot}` : t.ID.slice(0, 12)} ${t.Status.State}${t.Status.Err ? ` (${t.Status.Err})` : ''}`);
    return {
      done,
      replicas,
      detail: done
        ? `all ${good.length} task(s) of ${svc.Spec.Name} run the known-good version (${replicas.map((r) => r.name).join(', ')})${update}`
        : `${good.length} of ${want} task(s) of ${svc.Spec.Name} run the known-good version${pending.length ? `; not yet: ${pending.join(', ')}` : ''}${onSpec ? '' : '; the service is not on the known-good spec'}${update}`,
    };
  }

  /** Sends a service update: the given task template, or (without one) Swarm's rollback to the previous spec. */
  private async update(svc: SwarmService, template: TaskTemplate | undefined): Promise<void> {
    const query = template ? { version: svc.Version.Index } : { version: svc.Version.Index, rollback: 'previous' };
    const body = template ? { ...svc.Spec, TaskTemplate: template } : svc.Spec;
    await this.docker.getService(svc.ID).update({ _query: query, _body: body } as never);
  }

  private remember(svc: SwarmService): { name: string; labels: Record<string, string> } {
    const info = { name: svc.Spec.Name, labels: svc.Spec.Labels ?? {} };
    this.services.set(svc.ID, info);
    if (this.services.size > 10_000) this.services.clear();
    return info;
  }

  private async serviceInfo(id: string): Promise<{ name: string; labels: Record<string, string> }> {
    const svc = await inspectService(this.docker, id);
    if (svc) return this.remember(svc);
    return this.services.get(id) ?? { name: id, labels: {} };
  }

  private async node(id: string | undefined): Promise<{ hostname: string; addr: string }> {
    if (!id) return { hostname: '', addr: '' };
    const cached = this.nodes.get(id);
    if (cached) return cached;
    const n = await inspectNode(this.docker, id).catch(() => undefined);
    const info = { hostname: n?.Description?.Hostname ?? id, addr: n?.Status?.Addr ?? '' };
    if (n) this.nodes.set(id, info);
    return info;
  }

  private async replicaOf(task: SwarmTask): Promise<Replica> {
    const [svc, node] = await Promise.all([this.serviceInfo(task.ServiceID), this.node(task.NodeID)]);
    const image = task.Spec.ContainerSpec.Image;
    const containerLabels = (task.Spec.ContainerSpec as { Labels?: Record<string, string> }).Labels ?? {};
    const labels: Record<string, string> = { ...svc.labels, ...containerLabels, [SERVICE_NAME_LABEL]: svc.name };
    const spec: TaskSpecOfReplica = { task, service: svc.name };
    return {
      id: task.ID,
      name: `${svc.name}.${task.Slot ?? task.NodeID ?? task.ID}`,
      image,
      ref: imageRef(image),
      version: templateVersion(task.Spec),
      startedAt: new Date(Date.parse(task.Status.Timestamp) || 0),
      running: task.Status.State === 'running' && task.DesiredState === 'running',
      labels,
      spec,
      values: { task: task.ID, slot: String(task.Slot ?? ''), node: node.hostname, node_addr: node.addr },
    };
  }
}
