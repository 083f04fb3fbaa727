import type { Policy, ServicePolicy } from '../../config/policy.js';
import { matches, servicesFor } from '../docker-container/match.js';
import type { KnownGood } from '../../model/known-good.js';
import type { ReplicaView } from '../../model/replica-view.js';
import { RevertError, type ReplicaTarget, type KnownReplica, type Parked, type Replica, type ReplicaRole, type Started } from '../target.js';
import { deployedName, parkedBy } from '../parked-names.js';


/** What a fake replica is made from, and what a snapshot keeps of it (plain JSON, as the store keeps it). */
export interface FakeSpec {
  name: string;
  /** The image; in the fake an image's ID is its tag. */
  image: string;
  /** Settings that make a version besides the image (env, command, …). */
  settings: Record<string, unknown>;
  labels: Record<string, string>;
}

interface FakeReplica {
  id: string;
  spec: FakeSpec;
  running: boolean;
  startedAt: Date;
}

/** A version is the image and its settings, whatever order the settings were written in. */
function versionOf(spec: FakeSpec): string {
  const settings = Object.fromEntries(Object.entries(spec.settings).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return `${spec.image} ${JSON.stringify(settings)}`;
}

/**
 * A deploy target kept in memory, for unit tests of the watch loop without Docker. It follows the
 * Docker container target's semantics: a service is its running replicas matched by the policy
 * (name or labels), a snapshot is `{replicas: [spec, …]}`, a bad replica is parked by stopping it
 * and renaming it `<name>.rollguard-bad.<deploymentId>`, and `start` creates a new running replica
 * under the known-good name. Every start (a test's `deploy`, a revert's `start` or `restore`) is
 * handed to the follower like a Docker start event, one at a time, in order.
 *
 * Test helpers: `deploy` replaces a replica the way `docker compose up` does, `removeImage` makes
 * the known-good image missing, `failStart` makes starting a known-good replica fail, `failRunOnce`
 * makes a down-migration fail, `announceOnly` makes starts wait for an announcement (as a git
 * target's), and `counts` / `history` tell what the revert steps did.
 */
export class FakeTarget implements ReplicaTarget {
  readonly kind = 'fake';
  readonly revertBy = 'replica';
  readonly matches = ['container', 'compose', 'labels'] as const;
  /** How many times each revert step changed something. */
  readonly counts = { created: 0, parked: 0, restored: 0, removed: 0 };
  /** The revert steps carried out, in order, e.g. `park replica-2 as web.rollguard-bad.7`. */
  readonly history: string[] = [];
  /** When set, `start` fails with this message (a RevertError, as Docker's refusals are reported). */
  failStart?: string;
  /** When set, `runOnce` fails with this output (a RevertError, as a non-zero exit is reported). */
  failRunOnce?: string;
  /** What `runOnce` answers as the command's output. */
  runOnceOutput = '';
  /**
   * Present after `announceOnly()`: hands over the service's held-back starts and resolves once
   * they were handled. Absent otherwise, as on targets whose changes are pushed (Docker's events).
   */
  announce?: (service: ServicePolicy) => Promise<void>;

  private readonly replicas = new Map<string, FakeReplica>();
  private readonly images = new Set<string>();
  private onStarted?: (id: string) => Promise<void>;
  private events: Promise<void> = Promise.resolve();
  private nextId = 1;
  private lastStart = 0;
  /** Starts not yet handed to the follower (after `announceOnly()`), oldest first. */
  private held?: string[];

  // ---- test helpers ---------------------------------------------------------------------------

  /**
   * Deploys `image` as `name`: the replica of that name, if any, is removed and a new one started
   * (the follower is told, as by a Docker start event). Returns the new replica.
   */
  deploy(name: string, image: string, opts: { settings?: Record<string, unknown>; labels?: Record<string, string> } = {}): Replica {
    const holder = this.byName(name);
    if (holder) this.replicas.delete(holder.id);
    return this.toReplica(this.create({ name, image, settings: opts.settings ?? {}, labels: opts.labels ?? {} }));
  }

  /** The image is no longer on the host: `resolveImage` refuses it. */
  removeImage(image: string): void {
    this.images.delete(image);
  }

  /** Every replica, running or not. */
  all(): Replica[] {
    return [...this.replicas.values()].map((r) => this.toReplica(r));
  }

  /**
   * From now on starts are held back, as a git target sees a new HEAD only when it reads it, and
   * handed to the follower when the service's deployment is announced (`announce`).
   */
  announceOnly(): void {
    const held: string[] = (this.held = []);
    this.announce = async (service) => {
      const mine = held.filter((id) => {
        const r = this.replicas.get(id);
        return r !== undefined && matches(service.match, deployedName(r.spec.name), r.spec.labels);
      });
      // The rest wait for their own service's announcement; a replica gone meanwhile is forgotten.
      held.splice(0, held.length, ...held.filter((id) => this.replicas.has(id) && !mine.includes(id)));
      for (const id of mine) this.tell(id);
      await this.events;
    };
  }

  resetCounts(): void {
    Object.assign(this.counts, { created: 0, parked: 0, restored: 0, removed: 0 });
    this.history.length = 0;
  }

  // ---- following --------------------------------------------------------------------------------

  follow(onStarted: (id: string) => Promise<void>): void {
    this.onStarted = onStarted;
  }

  async unfollow(): Promise<void> {
    this.onStarted = undefined;
    await this.events;
  }

  drained(): Promise<void> {
    return this.events;
  }

  get connected(): boolean {
    return this.onStarted !== undefined;
  }

  // ---- reading ----------------------------------------------------------------------------------

  async replica(idOrName: string): Promise<Replica | undefined> {
    const r = this.replicas.get(idOrName) ?? this.byName(idOrName);
    return r && this.toReplica(r);
  }

  async running(policy: Policy, service: ServicePolicy): Promise<Replica[]> {
    return this.all()
      .filter((r) => r.running && this.servicesOf(policy, r).some((s) => s.name === service.name))
      .sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime());
  }

  servicesOf(policy: Policy, replica: Replica): ServicePolicy[] {
    return servicesFor(policy, replica.name, replica.labels);
  }

  role(_replica: Replica): ReplicaRole {
    return { kind: 'service' };
  }

  /** Containers have no per-replica placeholders. */
  async replicaValues(_id: string): Promise<undefined> {
    return undefined;
  }

  async inspectReplica(id: string): Promise<ReplicaView | undefined> {
    const r = this.replicas.get(id);
    return r && { Id: r.id, RestartCount: 0, State: { Running: r.running, Restarting: false, OOMKilled: false, ExitCode: r.running ? undefined : 0 } };
  }

  snapshot(replicas: readonly Replica[]): unknown {
    return { replicas: replicas.map((r) => r.spec as FakeSpec).sort((a, b) => (a.name < b.name ? -1 : 1)) };
  }

  knownReplicas(snapshot: unknown): KnownReplica[] {
    return (snapshot as { replicas: FakeSpec[] }).replicas.map((spec) => ({ name: spec.name, version: versionOf(spec), spec }));
  }

  changedSettings(from: unknown, to: Replica): string[] {
    const known = this.knownReplicas(from);
    const before = (known.find((k) => k.name === to.name) ?? known[0])?.spec as FakeSpec | undefined;
    if (!before) return [];
    const after = (to.spec as FakeSpec).settings;
    const keys = new Set([...Object.keys(before.settings), ...Object.keys(after)]);
    return [...keys].filter((k) => JSON.stringify(before.settings[k]) !== JSON.stringify(after[k])).sort();
  }

  // ---- reverting --------------------------------------------------------------------------------

  async resolveImage(imageId: string, imageRef: string): Promise<string> {
    if (!this.images.has(imageId)) throw new RevertError(`known-good image ${imageId} (${imageRef}) is no longer on this host; nothing was changed`);
    return imageRef;
  }


  async withImage(known: KnownGood, image: string): Promise<KnownGood> {
    if (!this.images.has(image)) throw new RevertError(`image ${image} is not on this host; nothing was changed`);
    const snap = known.spec as { replicas: FakeSpec[] };
    return { ...known, image_id: image, image_ref: image, deployment_id: null, spec: { replicas: snap.replicas.map((r) => ({ ...r, image })) } };
  }

  /** Runs nothing: records the one-off (no replica is created or handed over) and answers `runOnceOutput`. */
  async runOnce(known: KnownGood, image: string, command: readonly string[], timeoutMs: number, name: string): Promise<{ output: string }> {
    this.history.push(`run-once ${name} from ${image} (limit ${timeoutMs} ms): ${command.join(' ')}`);
    if (this.failRunOnce) throw new RevertError(`${command.join(' ')} in ${known.image_ref} exited with code 1: ${this.failRunOnce}`);
    return { output: this.runOnceOutput };
  }

  async parkedReplicas(service: ServicePolicy, deploymentId: number): Promise<Replica[]> {
    return this.all().filter((r) => parkedBy(r.name) === deploymentId && matches(service.match, deployedName(r.name), r.labels));
  }

  async park(replica: Replica, parkedName: string, _stopTimeoutMs: number): Promise<Parked> {
    const r = this.replicas.get(replica.id);
    if (!r) throw new RevertError(`cannot stop and set aside ${replica.id}: no such replica`);
    r.spec = { ...r.spec, name: parkedName };
    r.running = false;
    this.counts.parked++;
    this.history.push(`park ${r.id} as ${parkedName}`);
    return 'parked';
  }

  async start(known: KnownReplica, image: string, _replaced?: Replica): Promise<Started> {
    if (this.failStart) throw new RevertError(`cannot start ${known.name} from ${image}: ${this.failStart}`);
    const holder = this.byName(known.name);
    if (holder) {
      // As Docker: a stopped replica of exactly this version is started; any other holder is left alone.
      if (holder.running || versionOf(holder.spec) !== known.version) throw new RevertError(`cannot create ${known.name}: the name is held by ${holder.id}`);
      this.run(holder);
      this.history.push(`start the stopped ${holder.id} as ${known.name}`);
      return { id: holder.id, notes: [`started the stopped known-good ${holder.id}`] };
    }
    const r = this.create({ ...(known.spec as FakeSpec), name: known.name, image });
    this.counts.created++;
    this.history.push(`create ${r.id} as ${known.name} from ${image}`);
    return { id: r.id, notes: [] };
  }

  async restore(replica: Replica): Promise<string> {
    let r = this.replicas.get(replica.id);
    if (r) {
      r.spec = { ...r.spec, name: replica.name };
      this.run(r);
    } else {
      // Gone (removed as it stopped): created again from its spec.
      r = this.create({ ...(replica.spec as FakeSpec), name: replica.name });
    }
    this.counts.restored++;
    this.history.push(`restore ${r.id} as ${replica.name}`);
    return r.id;
  }

  async remove(id: string): Promise<void> {
    if (!this.replicas.delete(id)) return;
    this.counts.removed++;
    this.history.push(`remove ${id}`);
  }

  // ---- internals --------------------------------------------------------------------------------

  private byName(name: string): FakeReplica | undefined {
    return [...this.replicas.values()].find((r) => r.spec.name === name);
  }

  private create(spec: FakeSpec): FakeReplica {
    const r: FakeReplica = { id: `replica-${this.nextId++}`, spec, running: false, startedAt: new Date(0) };
    this.replicas.set(r.id, r);
    this.images.add(spec.image);
    this.run(r);
    return r;
  }

  /** Starts a replica and tells the follower, after the events before it. */
  private run(r: FakeReplica): void {
    // Strictly increasing start times, so "newest first" is never a tie.
    this.lastStart = Math.max(Date.now(), this.lastStart + 1);
    r.running = true;
    r.startedAt = new Date(this.lastStart);
    if (this.held) this.held.push(r.id);
    else this.tell(r.id);
  }

  /** Hands a start to the follower, after the ones before it. */
  private tell(id: string): void {
    const onStarted = this.onStarted;
    if (onStarted) this.events = this.events.then(() => onStarted(id)).catch(() => {});
  }

  private toReplica(r: FakeReplica): Replica {
    const { spec } = r;
    return {
      id: r.id, name: spec.name, image: spec.image, ref: spec.image, version: versionOf(spec),
      startedAt: r.startedAt, running: r.running, labels: spec.labels, spec: { ...spec },
    };
  }
}
