import type Docker from 'dockerode';
import type { Logger } from 'pino';
import type { Policy, ServicePolicy } from '../../config/policy.js';
import { RevertError, type KnownReplica, type Parked, type Replica, type ReplicaRole, type ReplicaTarget, type Started } from '../target.js';
import { removeOneOff, runOneOff } from './one-off.js';
import type { KnownGood } from '../../model/known-good.js';
import type { ReplicaView } from '../../model/replica-view.js';
import { deployedName, parkedBy } from '../parked-names.js';
import { rebaseConfig } from './rebase.js';
import { DockerEventFollower } from './events.js';
import { containerInspectSchema, containerName, type ContainerInspect } from './inspect.js';
import { matches, servicesFor } from './match.js';
import { ContainerReverter } from './revert-steps.js';
import { changedSettings, containerRole, versionKey } from './version.js';


/** A container as a replica of a service. */
export function replicaOf(c: ContainerInspect): Replica {
  return {
    id: c.Id,
    name: containerName(c),
    image: c.Image,
    ref: c.Config.Image,
    version: versionKey(c),
    startedAt: new Date(Date.parse(c.State.StartedAt) || 0),
    running: c.State.Running,
    labels: c.Config.Labels ?? {},
    spec: c,
  };
}

/** The containers of a known-good snapshot: `{replicas: [...]}`, or a single container as recorded before replicas. */
function snapshotContainers(snapshot: unknown): ContainerInspect[] {
  const many = (snapshot as { replicas?: unknown } | null)?.replicas;
  return Array.isArray(many) ? many.map((c) => containerInspectSchema.parse(c)) : [containerInspectSchema.parse(snapshot)];
}

function specOf(replica: Replica): ContainerInspect {
  return replica.spec as ContainerInspect;
}

/**
 * Plain Docker containers on one engine: a service is the set of its running containers (matched
 * by name, Compose project and service, or labels); a revert stops and renames the bad ones and
 * recreates the known-good ones from their `docker inspect`.
 */
export class DockerContainerTarget implements ReplicaTarget {
  readonly kind = 'docker-container';
  readonly revertBy = 'replica';
  readonly matches = ['container', 'compose', 'labels'] as const;
  private readonly steps: ContainerReverter;
  private events?: DockerEventFollower;

  constructor(private readonly docker: Docker, private readonly log: Logger) {
    this.steps = new ContainerReverter(docker);
  }

  follow(onStarted: (id: string) => Promise<void>): void {
    this.events = new DockerEventFollower(this.docker, this.log, (ev) => onStarted(ev.containerId));
    this.events.start();
  }

  async unfollow(): Promise<void> {
    await this.events?.stop();
  }

  drained(): Promise<void> {
    return this.events?.drained() ?? Promise.resolve();
  }

  get connected(): boolean {
    return this.events?.connected ?? false;
  }

  async replica(idOrName: string): Promise<Replica | undefined> {
    const c = await this.steps.find(idOrName);
    return c && replicaOf(c);
  }

  /** Containers have no per-replica placeholders. */
  async replicaValues(_id: string): Promise<undefined> {
    return undefined;
  }

  inspectReplica(id: string): Promise<ReplicaView | undefined> {
    return this.steps.find(id);
  }

  async running(policy: Policy, service: ServicePolicy): Promise<Replica[]> {
    const list = await this.docker.listContainers({ all: false });
    const found: Replica[] = [];
    for (const c of list) {
      const name = (c.Names[0] ?? '').replace(/^\//, '');
      if (!servicesFor(policy, name, c.Labels ?? {}).some((s) => s.name === service.name)) continue;
      const inspected = await this.steps.find(c.Id);
      if (inspected?.State.Running) found.push(replicaOf(inspected));
    }
    return found.sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime());
  }

  servicesOf(policy: Policy, replica: Replica): ServicePolicy[] {
    return servicesFor(policy, replica.name, replica.labels);
  }

  role(replica: Replica): ReplicaRole {
    const role = containerRole(replica.labels);
    return role.kind === 'swarm-task' ? { kind: 'orchestrated', by: 'Swarm', owner: role.service } : role;
  }

  snapshot(replicas: readonly Replica[]): unknown {
    return { replicas: replicas.map(specOf).sort((a, b) => (containerName(a) < containerName(b) ? -1 : 1)) };
  }

  knownReplicas(snapshot: unknown): KnownReplica[] {
    return snapshotContainers(snapshot).map((c) => ({ name: containerName(c), version: versionKey(c), spec: c }));
  }

  changedSettings(from: unknown, to: Replica): string[] {
    const known = snapshotContainers(from);
    const before = known.find((c) => containerName(c) === to.name) ?? known[0];
    return before ? changedSettings(before, specOf(to)) : [];
  }

  resolveImage(imageId: string, imageRef: string): Promise<string> {
    return this.steps.resolveImage(imageId, imageRef);
  }

  async withImage(known: KnownGood, image: string): Promise<KnownGood> {
    const found = await this.steps.findImage(image);
    // The known-good image's own defaults (command, environment…) give way to the new image's; when
    // the known-good image is gone from the host they cannot be told apart and are kept.
    const old = await this.steps.findImage(known.image_id).catch(() => undefined);
    // A tag is kept as the reference; an image ID is named by its first tag when it has one.
    const ref = /^(sha256:)?[0-9a-f]{12,64}$/.test(image) ? (found.RepoTags?.[0] ?? found.Id) : image;
    const swap = (c: Record<string, unknown>): Record<string, unknown> => ({
      ...c, Image: found.Id, Config: { ...rebaseConfig((c.Config ?? {}) as Record<string, unknown>, old?.Config ?? {}), Image: ref },
    });
    const raw = known.spec as { replicas?: Record<string, unknown>[] } & Record<string, unknown>;
    const spec = Array.isArray(raw.replicas) ? { ...raw, replicas: raw.replicas.map(swap) } : swap(raw);
    return { ...known, image_id: found.Id, image_ref: ref, spec, deployment_id: null };
  }


  runOnce(known: KnownGood, image: string, command: readonly string[], timeoutMs: number, name: string): Promise<{ output: string; adopted: boolean }> {
    const spec = snapshotContainers(known.spec)[0];
    if (!spec) throw new RevertError(`the known-good snapshot of ${known.service} holds no container to run ${command.join(' ')} like`);
    return runOneOff(this.docker, spec, image, command, timeoutMs, name);
  }

  removeOnce(name: string): Promise<void> {
    return removeOneOff(this.docker, name);
  }

  async parkedReplicas(service: ServicePolicy, deploymentId: number): Promise<Replica[]> {
    const list = await this.docker.listContainers({ all: true, filters: JSON.stringify({ name: [`\\.rollguard-bad\\.${deploymentId}$`] }) as never });
    const found: Replica[] = [];
    for (const c of list) {
      const inspected = await this.steps.find(c.Id);
      const name = inspected && containerName(inspected);
      if (inspected && name && parkedBy(name) === deploymentId && matches(service.match, deployedName(name), inspected.Config.Labels ?? {})) found.push(replicaOf(inspected));
    }
    return found;
  }

  park(replica: Replica, parkedName: string, stopTimeoutMs: number): Promise<Parked> {
    return this.steps.park(replica.id, parkedName, stopTimeoutMs);
  }

  start(known: KnownReplica, image: string, replaced?: Replica): Promise<Started> {
    return this.steps.startFrom(known.spec as ContainerInspect, image, replaced && specOf(replaced));
  }

  restore(replica: Replica): Promise<string> {
    return this.steps.restore(replica.id, { ...specOf(replica), Name: `/${replica.name}` } as ContainerInspect);
  }

  remove(id: string): Promise<void> {
    return this.steps.remove(id);
  }
}
