import type Docker from 'dockerode';
import type { Logger } from 'pino';
import type { Policy, ServiceMatch, ServicePolicy } from '../../config/policy.js';
import type { KnownGood } from '../../model/known-good.js';
import type { ReplicaView } from '../../model/replica-view.js';
import type { TemplateValues } from '../../config/template.js';
import { RevertError, type Convergence, type KnownReplica, type PutBack, type Replica, type ReplicaRole, type ServiceTarget, type UpdateState } from '../target.js';
import { SwarmTaskFollower } from './follower.js';
import { dockerMessage, inspectNode, inspectService, inspectTask, listTasks, taskTemplateSchema, type SwarmService, type SwarmTask, type TaskTemplate } from './inspect.js';
import { changedTemplateSettings, imageRef, templateVersion } from './version.js';

/** Task states of a task Swarm counts as failed. */
const FAILED = new Set(['failed', 'rejected']);
/** Task states of a task on its way to running. */
const STARTING = new Set(['new', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting']);
/** Exit codes of a process stopped on request (`docker stop`: 0, SIGTERM 143, SIGKILL after the grace 137). */
const ON_REQUEST_CODES = new Set([0, 137, 143]);
/** How long a node's host name and address are trusted before they are read again. */
const NODE_TTL_MS = 30_000;

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
  private readonly nodes = new Map<string, { hostname: string; addr: string; at: number }>();
  private readonly services = new Map<string, { name: string; labels: Record<string, string> }>();

  constructor(private readonly docker: Docker, private readonly log: Logger, private readonly watched: () => readonly ServiceMatch[] = () => []) {}

  follow(onStarted: (id: string) => Promise<void>): void {
    const services = (): string[] => this.watched().flatMap((m) => (m.kind === 'swarm' ? [m.service] : []));
    this.follower = new SwarmTaskFollower(this.docker, this.log, (t) => onStarted(t.ID), services);
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
   * A task as container signals read it: its slot, as that is what serves. A slot whose task
   * failed (exited with an error, failed its health check, was rejected) and was replaced counts
   * a restart for each failure; a slot Swarm is replacing in order (an update, `--force`, a node
   * drain: the task shut down on request) reads as stopped on request, which is no data. The
   * container's own state (health, OOM) is read where it runs on this engine; on another node,
   * from the task's status alone.
   */
  async inspectReplica(id: string): Promise<ReplicaView | undefined> {
    let task: SwarmTask | undefined;
    let slot: SwarmTask[];
    try {
      task = await inspectTask(this.docker, id);
      if (!task) return undefined;
      slot = await this.slotTasks(task);
    } catch (err) {
      throw new Error(`cannot inspect Swarm task ${id.slice(0, 12)}: ${dockerMessage(err)}`);
    }
    const current = slot[0] ?? task;
    const failures = slot.filter((t) => FAILED.has(t.Status.State)).length;
    const state = current.Status.State;
    const running = state === 'running' && current.DesiredState === 'running';
    const containerId = current.Status.ContainerStatus?.ContainerID;
    const local = containerId ? await this.docker.getContainer(containerId).inspect().catch(() => undefined) as { State?: { OOMKilled?: boolean; Health?: { Status: string } | null } } | undefined : undefined;
    const code = current.Status.ContainerStatus?.ExitCode;
    return {
      Id: task.ID,
      RestartCount: failures,
      State: {
        Running: running,
        // A new task after a failure is the slot restarting; after an orderly shutdown it is a replacement.
        Restarting: !running && STARTING.has(state) && failures > 0,
        OOMKilled: local?.State?.OOMKilled ?? false,
        // Swarm failed it (a health check kill exits 137): a failure whatever the code. Anything else not running was stopped on request.
        ExitCode: FAILED.has(state) ? (code && !ON_REQUEST_CODES.has(code) ? code : -1) : running ? undefined : 0,
        Health: local?.State?.Health ?? null,
      },
    };
  }

  /** The tasks of a task's slot (its node, for a global service) from it on, newest first. */
  private async slotTasks(task: SwarmTask): Promise<SwarmTask[]> {
    const sameSlot = (t: SwarmTask): boolean => (task.Slot ? t.Slot === task.Slot : t.NodeID === task.NodeID);
    const since = Date.parse(task.CreatedAt);
    return (await listTasks(this.docker, { service: [task.ServiceID] }))
      .filter((t) => sameSlot(t) && Date.parse(t.CreatedAt) >= since)
      .sort((a, b) => Date.parse(b.CreatedAt) - Date.parse(a.CreatedAt));
  }

  /**
   * Where a task's slot serves now: the placeholders of the slot's newest task Swarm wants
   * running (a task Swarm replaced on another node is addressed where its replacement runs).
   * Undefined when the slot is gone or its node has no known address.
   */
  async replicaValues(id: string): Promise<Partial<TemplateValues> | undefined> {
    const task = await inspectTask(this.docker, id);
    if (!task) return undefined;
    const current = (await this.slotTasks(task)).find((t) => t.DesiredState === 'running');
    if (!current) return undefined;
    const values = (await this.replicaOf(current)).values;
    return values?.node_addr ? values : undefined;
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

  /**
   * The known-good template with `image` as its container image: Swarm's nodes pull or find it
   * when the service is updated, so it is not looked for on this manager. Its replicas get the
   * version of the new template, which is what convergence waits for.
   */
  async withImage(known: KnownGood, image: string): Promise<KnownGood> {
    const s = parseSnapshot(known.spec);
    const template = { ...s.template, ContainerSpec: { ...s.template.ContainerSpec, Image: image } };
    const version = templateVersion(template);
    const spec: SwarmSnapshot = { ...s, template, replicas: s.replicas.map((r) => ({ ...r, version })) };
    return { ...known, image_id: image, image_ref: imageRef(image), spec, deployment_id: null };
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

  async putBack(service: ServicePolicy, snapshot: unknown, opts: { force: boolean; resume?: boolean }): Promise<PutBack> {
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
      // Only what makes the version goes back: placement, networks and restart policy stay as they are now.
      const { Resources: _now, ...rest } = svc.Spec.TaskTemplate as TaskTemplate & { Resources?: unknown };
      const resources = (known.template as { Resources?: unknown }).Resources;
      const template: TaskTemplate = {
        ...rest,
        ContainerSpec: known.template.ContainerSpec,
        ...(resources === undefined ? {} : { Resources: resources }),
        ForceUpdate: (svc.Spec.TaskTemplate.ForceUpdate ?? 0) + (opts.force ? 1 : 0),
      };
      const rollsBack = (svc.Spec as { UpdateConfig?: { FailureAction?: string } }).UpdateConfig?.FailureAction === 'rollback';
      try {
        await this.update(svc, rollback ? undefined : template);
      } catch (err) {
        if (tries < UPDATE_TRIES && /out of sequence/i.test(dockerMessage(err))) continue;
        throw new RevertError(`cannot update the Swarm service ${name}: ${dockerMessage(err)}`, { cause: err });
      }
      if (rollback) return { how: 'rollback', detail: `Swarm rollback of ${name} to its previous spec, the known-good one (${ref})${paused}` };
      const pausing = rollsBack ? '; its update failure action goes from rollback to pause, so that Swarm cannot roll this revert back to the bad version (set it back once the service is stable)' : '';
      return {
        how: 'update',
        detail: `${opts.force ? `${name} updated again to the known-good spec (${ref}), recreating its tasks` : `${name} updated to the saved known-good spec (${ref})${paused}`}${pausing}`,
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
    const spec = svc.Spec as SwarmService['Spec'] & { UpdateConfig?: Record<string, unknown> };
    // Swarm would roll an update of ours that meets a failing task back to the previous spec: the bad one.
    const updateConfig = spec.UpdateConfig?.FailureAction === 'rollback' ? { UpdateConfig: { ...spec.UpdateConfig, FailureAction: 'pause' } } : {};
    const body = template ? { ...spec, ...updateConfig, TaskTemplate: template } : spec;
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
    if (cached && Date.now() - cached.at < NODE_TTL_MS) return cached;
    const n = await inspectNode(this.docker, id).catch(() => undefined);
    if (!n) return cached ?? { hostname: id, addr: '' };
    // A manager may report 0.0.0.0 (or nothing) as its node address; its manager address names the host.
    const reported = n.Status?.Addr ?? '';
    const addr = reported && reported !== '0.0.0.0' ? reported : (n.ManagerStatus?.Addr ?? '').replace(/:\d+$/, '');
    const info = { hostname: n.Description?.Hostname ?? id, addr, at: Date.now() };
    this.nodes.set(id, info);
    if (this.nodes.size > 10_000) this.nodes.clear();
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
