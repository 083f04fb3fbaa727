import type { Policy, ServiceMatch, ServicePolicy } from '../config/policy.js';
import type { KnownGood } from '../model/known-good.js';
import type { ReplicaView } from '../model/replica-view.js';
import type { TemplateValues } from '../config/template.js';

/** A revert step the target refused; the message says what and why. */
export class RevertError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RevertError';
  }
}

/** One running instance of a service: a container, a Swarm task, a checkout. */
export interface Replica {
  id: string;
  name: string;
  /** The image ID (or commit) it runs. */
  image: string;
  /** The reference it was deployed as (tag). */
  ref: string;
  /** Its version: the image and the settings that make it (see the target's versionKey). Equal keys, same version. */
  version: string;
  startedAt: Date;
  running: boolean;
  labels: Record<string, string>;
  /** The target's own description of it, enough to create it again; opaque outside the target. */
  spec: unknown;
  /** Placeholders of this replica for signals addressed per replica (a Swarm task's slot, node). */
  values?: Partial<TemplateValues>;
}

/** What an instance is to rollguard: one of a service's versions, or something to leave alone. */
export type ReplicaRole =
  | { kind: 'service' }
  /** A one-off task (`docker compose run`: a migration, a shell): never a deployment, never known-good. */
  | { kind: 'one-off' }
  /** Owned by an orchestrator that would fight a revert of it (a Swarm task). */
  | { kind: 'orchestrated'; by: string; owner: string };

/** A known-good replica as a revert puts it back. */
export interface KnownReplica {
  name: string;
  /** Its version (see Replica.version). */
  version: string;
  /** Opaque to everything but the target. */
  spec: unknown;
}

/** The result of setting a bad replica aside. */
export type Parked = 'parked' | 'removed';

/** What starting a known-good replica did. */
export interface Started {
  id: string;
  /** Things an operator should know (volumes handed back, a stopped known-good container started). */
  notes: string[];
}

/**
 * What every kind of deploy target does: where services run, how their changes are followed and
 * their replicas listed and snapshotted. The daemon, the store and notify speak only these
 * interfaces; each kind lives in its own folder of targets/.
 */
interface TargetBase {
  readonly kind: string;
  /** The policy's `match` forms this kind serves. */
  readonly matches: readonly ServiceMatch['kind'][];

  /** Follows the target's changes, handing over each started replica's ID, one at a time, in order. */
  follow(onStarted: (id: string) => Promise<void>): void;
  /** Stops following and waits for the replica being handed over. */
  unfollow(): Promise<void>;
  /** Resolves when every change received so far has been handled. */
  drained(): Promise<void>;
  /** Whether the change feed is connected now. */
  readonly connected: boolean;
  /**
   * Looks for a change of the service at once — a deployment announced through the deploy API —
   * and resolves once it was handed over. Absent where changes are pushed (Docker's events).
   */
  announce?(service: ServicePolicy): Promise<void>;

  /** The replica with this ID or name; undefined when it is gone. */
  replica(idOrName: string): Promise<Replica | undefined>;
  /** The running replicas of the policy's services, with their role (one-offs and orchestrated ones included, for the caller to skip). */
  running(policy: Policy, service: ServicePolicy): Promise<Replica[]>;
  /** Which of the policy's services a replica belongs to. */
  servicesOf(policy: Policy, replica: Replica): ServicePolicy[];
  role(replica: Replica): ReplicaRole;
  /** A replica's state as container signals read it (running, restarts, health); undefined when it is gone. Throws when it cannot be read. */
  inspectReplica(id: string): Promise<ReplicaView | undefined>;
  /** The placeholders a per-replica signal fills for this replica now ({{slot}}, {{node_addr}}…); undefined when it has none or is gone. */
  replicaValues(id: string): Promise<Partial<TemplateValues> | undefined>;

  /** The known-good snapshot of a set of replicas of one version (opaque; stored as is). */
  snapshot(replicas: readonly Replica[]): unknown;
  /** The replicas a snapshot puts back, each with its name. */
  knownReplicas(snapshot: unknown): KnownReplica[];
  /** Settings that differ between two snapshots' versions (for logs). */
  changedSettings(from: unknown, to: Replica): string[];

  /** Confirms the known-good version can be created here; returns what to create it from. Throws RevertError naming what is missing. */
  resolveImage(imageId: string, imageRef: string): Promise<string>;
  /**
   * The known-good snapshot run with another image (`rollguard rollback --to IMAGE`): the same
   * settings, `image` (a tag or an image ID, which must be on the host) instead of the known-good
   * image. Throws RevertError naming what is missing or not supported; nothing is changed.
   */
  withImage(known: KnownGood, image: string): Promise<KnownGood>;
  /**
   * Runs a command once in the known-good version — a one-off replica of `image` with the
   * known-good settings — for a down-migration. Resolves with its output when
   * it succeeded; throws RevertError with the exit code and output when not. Absent on targets
   * that cannot (the policy refuses down_migration there).
   */
  runOnce?(known: KnownGood, image: string, command: readonly string[], timeoutMs: number, name: string): Promise<{ output: string; adopted?: boolean }>;
  /**
   * Removes the one-off replica `name` once its result is recorded. Until then it stays, so a
   * restart finds its run (`adopted`) instead of running the command twice.
   */
  removeOnce?(name: string): Promise<void>;
}

/**
 * A target whose replicas rollguard reverts one by one (plain Docker containers). Every revert
 * step is safe to repeat, so a revert cut short can be finished from what the target shows.
 */
export interface ReplicaTarget extends TargetBase {
  readonly revertBy: 'replica';
  /**
   * The replicas of `service` set aside by the revert of a deployment (running or not; named as in
   * parked-names.ts). Another service's replica parked under the same deployment number (another
   * rollguard database on this host, or one started afresh) is not one of them.
   */
  parkedReplicas(service: ServicePolicy, deploymentId: number): Promise<Replica[]>;
  /** Stops a bad replica and sets it aside. */
  park(replica: Replica, parkedName: string, stopTimeoutMs: number): Promise<Parked>;
  /** Creates and starts a known-good replica (`replaced`: the bad replica it takes over from). */
  start(known: KnownReplica, image: string, replaced?: Replica): Promise<Started>;
  /** Puts a bad replica back as it was deployed (created again if it is gone); returns its ID. */
  restore(replica: Replica): Promise<string>;
  remove(id: string): Promise<void>;
}

/** An orchestrator's own account of a service's update (Swarm's UpdateStatus). */
export interface UpdateState {
  /** As the orchestrator names it: updating, paused, completed, rollback_started, rollback_completed… */
  state: string;
  message?: string;
  /** The orchestrator is putting, or has put, the previous version back by itself. */
  rolledBack: boolean;
  /** The update stopped half-way (Swarm's failure_action pause). */
  paused: boolean;
}

/** How a service-level revert put the known-good version back. */
export interface PutBack {
  /** rollback: the orchestrator's own rollback to its previous spec; update: to the saved spec; already: it runs that spec. */
  how: 'rollback' | 'update' | 'already';
  detail: string;
}

/** Whether every replica of a service runs the known-good version. */
export interface Convergence {
  done: boolean;
  /** The replicas of the known-good version running now. */
  replicas: Replica[];
  detail: string;
}

/**
 * A target whose services an orchestrator runs (Swarm): rollguard reverts the service as a
 * whole and the orchestrator replaces the replicas. Each step is safe to repeat: putting back a
 * service that already runs the known-good spec changes nothing.
 */
export interface ServiceTarget extends TargetBase {
  readonly revertBy: 'service';
  /** The version the service's spec makes now (undefined when the service is gone): a replica of another version is being replaced. */
  specVersion(service: ServicePolicy): Promise<string | undefined>;
  /** The service's update as the orchestrator reports it; undefined when it has none. */
  updateState(service: ServicePolicy): Promise<UpdateState | undefined>;
  /**
   * Puts the known-good spec back (`force`: recreates the replicas even if it runs already).
   * `resume`: the first attempt after a restart cut the revert short — what the crash may have
   * left half-done (a git restart command not run) is done again. Throws RevertError.
   */
  putBack(service: ServicePolicy, snapshot: unknown, opts: { force: boolean; resume?: boolean }): Promise<PutBack>;
  /** Whether every replica the service wants runs the known-good version. */
  converged(service: ServicePolicy, snapshot: unknown): Promise<Convergence>;
}

/** A kind of deploy target: reverted replica by replica, or as a whole service by its orchestrator. */
export type DeployTarget = ReplicaTarget | ServiceTarget;
