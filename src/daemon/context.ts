import type { Logger } from 'pino';
import type { RunbookProcedures } from './procedures.js';
import type { Metrics } from '../api/metrics.js';
import type { Policy, ServicePolicy } from '../config/policy.js';
import type { TemplateValues } from '../config/template.js';
import type { DeployTarget, KnownReplica, Replica } from '../targets/target.js';
import { type WatchTally } from '../policy/assess.js';
import type { ProviderRegistry } from '../signals/registry.js';
import type { Deployment, KnownGood, Store } from '../store/store.js';
import type { Announcer } from './announcer.js';
import { type SeenSample } from './evidence.js';
import { Holds, type Hold } from '../store/holds.js';
import { KeyedQueue } from './keyed-queue.js';
import { BatchedProviders } from '../signals/batch-prometheus.js';
import type { Writes } from '../store/write-behind.js';
import { type Failpoint } from './failpoints.js';
import { BadImages } from '../store/bad-images.js';
import { FlapGuard } from './flapping.js';

export interface DaemonDeps {
  /** Where the services run, one target per kind: each follows its changes, lists its replicas and carries out reverts. */
  targets: readonly DeployTarget[];
  store: Store;
  providers: ProviderRegistry;
  metrics: Metrics;
  log: Logger;
  dryRun?: boolean;
  now?: () => Date;
  /** Queues notifications with the decisions that cause them; without it decisions are only recorded. */
  announcer?: Announcer;
  /** Every record the loop and the revert make goes through here, so a store outage never stops protection. */
  writes: Writes;
  /** Test hook for placing a kill -9 in a given revert phase; a no-op unless armed. */
  failpoint?: Failpoint;
  /** Whether this instance leads a service (several instances share one database); without it, every service. */
  leads?: (service: string) => boolean;
  /** Follow-up steps after a revert and database snapshots before a migration's revert. */
  procedures?: RunbookProcedures;
}

export interface Watch {
  deployment: Deployment;
  /** Its replicas: every one is sampled, and each replica changed to the deployed image later joins (one deployment, not N). */
  replicas: Set<string>;
  service: ServicePolicy;
  template: TemplateValues;
  tally: WatchTally;
  /** Recent samples per signal, for the evidence in messages and the chart. */
  history: Map<string, SeenSample[]>;
  /** The deployed container is labelled rollguard.migrations=true. */
  migrations: boolean;
  /** The deployed version (see Replica.version), when the deployed replica was seen. */
  version?: string;
  /** The orchestrator's update state last recorded (Swarm's UpdateStatus), so each change is recorded once. */
  updateState?: string;
  /** The hold whose pause has been announced, so it is told once. */
  announcedHold?: number;
  /** An operator released a migration freeze: revert normally from now on. */
  freezeReleased?: boolean;
  timer?: NodeJS.Timeout;
  /** When the next tick is due (epoch ms, the context's clock). */
  dueAt?: number;
  /** When the current tick sampled (see watch.ts sampleTime); the next is timed from it. */
  sampledAt?: number;
  ticking?: Promise<void>;
  done: boolean;
}


/** What rollguard believes runs for a service right now. */
export interface ServiceState {
  /** The revert target, kept in memory so a revert does not depend on the store being up. */
  knownGood?: KnownGood;
  containerId?: string;
  image?: string;
  ref?: string;
  /** The version each replica runs, by replica name: a replica starting with another one is a deployment. */
  versions: Map<string, string>;
  /** Running replicas: the ID of each, by name. */
  replicas: Map<string, string>;
  watch?: Watch;
}

/**
 * Records that `replicas` (of one image, newest first) run for the service now: all of them, or
 * with `merge` these besides the others already known.
 */
export function nowRunning(s: ServiceState, replicas: readonly Replica[], merge = false): void {
  const first = replicas[0];
  if (!first) return;
  s.containerId = first.id;
  s.image = first.image;
  s.ref = first.ref;
  if (!merge) {
    s.versions = new Map();
    s.replicas = new Map();
  }
  for (const r of replicas) {
    s.versions.set(r.name, r.version);
    s.replicas.set(r.name, r.id);
  }
}

export const MAX_HISTORY = 2_000;
/** A deployment carrying DB migrations sets this container label to `true`. */
export const MIGRATIONS_LABEL = 'rollguard.migrations';

/**
 * What every concern of the watch loop shares: the policy, what runs per service, the per-service
 * queue, holds, and the injected clients. The concerns (reconcile, watch, outcomes, holds, record)
 * are functions over it; the Daemon composes them.
 */
export class WatchContext {
  policy: Policy;
  readonly state = new Map<string, ServiceState>();
  readonly queue = new KeyedQueue();
  /** Replicas rollguard created itself (reverts), so their start events are not taken for deployments. */
  readonly ownContainers = new Set<string>();
  /** Swarm task containers already warned about. */
  readonly warnedSwarmTasks = new Set<string>();
  /** Active holds and freezes by service. */
  readonly holds = new Map<string, Hold>();
  /** Services whose revert is running now (a rollback by hand is refused meanwhile). */
  readonly reverting = new Set<string>();
  readonly holdRepo: Holds;
  /** Images announced by the deploy API as carrying DB migrations, by service, for their next deployment. */
  readonly pendingMigrations = new Map<string, string>();
  readonly now: () => Date;
  readonly log: Logger;
  stopping = false;
  started = false;
  /** Bad images and the revert history (anti-flapping); made on first use. */
  flapGuard?: FlapGuard;
  /** The providers the watch loop samples with: Prometheus queries of services sharing a template are batched. */
  readonly sampling: BatchedProviders;

  constructor(policy: Policy, readonly deps: DaemonDeps) {
    this.policy = policy;
    this.now = deps.now ?? (() => new Date());
    this.log = deps.log;
    this.holdRepo = new Holds(deps.store.sql);
    this.sampling = new BatchedProviders(deps.providers, { log: deps.log, registry: deps.metrics.registry });
  }

  leads(service: string): boolean {
    return this.deps.leads?.(service) ?? true;
  }


  activeWatches(): number {
    return [...this.state.values()].filter((s) => s.watch && !s.watch.done).length;
  }


  serviceState(name: string): ServiceState {
    let s = this.state.get(name);
    if (!s) this.state.set(name, (s = { replicas: new Map(), versions: new Map() }));
    return s;
  }


  /** The target that runs a service, by its match (a Swarm service, or Docker containers). */
  targetFor(service: ServicePolicy): DeployTarget {
    const target = this.deps.targets.find((t) => (t.matches as readonly string[]).includes(service.match.kind));
    if (!target) throw new Error(`no deploy target serves match kind "${service.match.kind}" of ${service.name}; targets: ${this.deps.targets.map((t) => `${t.kind} (${t.matches.join(', ')})`).join('; ')}`);
    return target;
  }

  /**
   * The replicas of a known-good snapshot, as the service's target reads them; none when it was
   * recorded on another kind of target (a service moved from Compose to a Swarm stack), which
   * cannot put it back.
   */
  knownReplicas(service: ServicePolicy, known: KnownGood | undefined): KnownReplica[] {
    const target = this.targetFor(service);
    return known && known.target === target.kind ? target.knownReplicas(known.spec) : [];
  }

  /** The service's running replicas of every version, newest first; one-offs and orchestrated replicas are left out. */
  async runningReplicas(service: ServicePolicy): Promise<Replica[]> {
    return (await this.targetFor(service).running(this.policy, service)).filter((r) => this.isServiceReplica(service, r));
  }


  /**
   * Whether a container matched by a service is one of its versions: a Compose one-off (`docker
   * compose run`, a migration or a shell) never is; a Swarm task is Swarm's to manage, and a revert
   * of its container would be fought by Swarm, so it is left alone with a warning (once per container).
   */
  isServiceReplica(policyService: ServicePolicy, r: Replica): boolean {
    const service = policyService.name;
    const role = this.targetFor(policyService).role(r);
    if (role.kind === 'service') return true;
    if (role.kind === 'orchestrated' && !this.warnedSwarmTasks.has(r.id)) {
      this.warnedSwarmTasks.add(r.id);
      if (this.warnedSwarmTasks.size > 10_000) this.warnedSwarmTasks.clear();
      this.log.warn({ service, container: r.name, swarmService: role.owner },
        'this container is a task of a Swarm service: rollguard does not watch or revert a Swarm task as a plain container, since Swarm would undo the revert; it is left alone (Swarm services need a Swarm match)');
    }
    if (role.kind === 'one-off') this.log.debug({ service, container: r.name }, 'a Compose one-off container (compose run); not a deployment');
    return false;
  }


  async setKnownGood(known: KnownGood): Promise<void> {
    this.serviceState(known.service).knownGood = known;
    await this.deps.writes.setKnownGood(known);
  }


  flaps(): FlapGuard {
    const { writes } = this.deps;
    return (this.flapGuard ??= new FlapGuard({ repo: new BadImages(this.deps.store.sql), record: (what, run, record) => writes.write(what, run, record), log: this.log }));
  }


  endWatch(watch: Watch): void {
    watch.done = true;
    clearTimeout(watch.timer);
    this.deps.metrics.activeWatches.set(this.activeWatches());
  }
}
