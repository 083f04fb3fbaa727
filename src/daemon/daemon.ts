import type { Logger } from 'pino';
import type { Metrics } from '../api/metrics.js';
import type { Policy, ServicePolicy } from '../config/policy.js';
import type { TemplateValues } from '../config/template.js';
import type { DeployTarget, Replica } from '../targets/target.js';
import { isChange, ofKnownVersion } from '../targets/versions.js';
import { shortId, versionOf } from '../model/image-ref.js';
import { assess, concludeWindow, describeThreshold, emptyTally, valueKey, withBaseline, type SampleResult, type WatchTally } from '../policy/assess.js';
import type { ProviderRegistry } from '../signals/registry.js';
import type { Deployment, KnownGood, Store } from '../store/store.js';
import { enableMaintenance } from '../actions/maintenance.js';
import type { EventKind } from '../notify/event.js';
import type { Announcer } from './announcer.js';
import { buildEvent, type EvidenceInput, type SeenSample } from './evidence.js';
import { Holds, type Hold } from '../store/holds.js';
import { PrometheusProvider, rangeAverage } from '../signals/prometheus.js';
import { renderTemplate } from '../config/template.js';
import { KeyedQueue } from './keyed-queue.js';
import { revertDeployment } from './revert.js';
import { withServingRule } from '../policy/serving.js';
import { ruleSignals, sampleBurnRates, sampleSignals, valuesOf } from './sampling.js';
import { BatchedProviders } from '../signals/batch-prometheus.js';
import type { Writes } from '../store/write-behind.js';
import { noFailpoints, type Failpoint } from './failpoints.js';
import { BadImages } from '../store/bad-images.js';
import { badImageMessage, badImageRule, DEFAULT_MAX_ROLLBACKS, FlapGuard, rollbackLimitMessage } from './flapping.js';

export interface DaemonDeps {
  /** Where the services run: follows their changes, lists their replicas, and carries out reverts. */
  target: DeployTarget;
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
}

interface Watch {
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
  /** The hold whose pause has been announced, so it is told once. */
  announcedHold?: number;
  /** An operator released a migration freeze: revert normally from now on. */
  freezeReleased?: boolean;
  timer?: NodeJS.Timeout;
  ticking?: Promise<void>;
  done: boolean;
}

/** A hold or release that cannot be done; `status` is the HTTP status the API answers with. */
export class HoldError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
    this.name = 'HoldError';
  }
}

/** What rollguard believes runs for a service right now. */
interface ServiceState {
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
function nowRunning(s: ServiceState, replicas: readonly Replica[], merge = false): void {
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

const MAX_HISTORY = 2_000;
/** A deployment carrying DB migrations sets this container label to `true`. */
export const MIGRATIONS_LABEL = 'rollguard.migrations';

/** The watch loop: detects deployments, samples, decides, reverts, records. */
export class Daemon {
  private policy: Policy;
  private readonly state = new Map<string, ServiceState>();
  private readonly queue = new KeyedQueue();
  private readonly ownContainers = new Set<string>();
  /** Swarm task containers already warned about. */
  private readonly warnedSwarmTasks = new Set<string>();
  /** Active holds and freezes by service. */
  private readonly holds = new Map<string, Hold>();
  private readonly holdRepo: Holds;
  /** Images announced by the deploy API as carrying DB migrations, by service, for their next deployment. */
  private readonly pendingMigrations = new Map<string, string>();
  private readonly now: () => Date;
  private readonly log: Logger;
  private stopping = false;
  /** Bad images and the revert history (anti-flapping); made on first use. */
  private flapGuard?: FlapGuard;
  /** The providers the watch loop samples with: Prometheus queries of services sharing a template are batched. */
  private readonly sampling: BatchedProviders;
  private started = false;

  constructor(policy: Policy, private readonly deps: DaemonDeps) {
    this.policy = policy;
    this.now = deps.now ?? (() => new Date());
    this.log = deps.log;
    this.holdRepo = new Holds(deps.store.sql);
    this.sampling = new BatchedProviders(deps.providers, { log: deps.log, registry: deps.metrics.registry });
  }

  get dockerConnected(): boolean {
    return this.deps.target.connected;
  }

  /** Reconciles with what runs now (adopting, resuming, catching up), then follows Docker events. */
  async start(): Promise<void> {
    for (const h of await this.holdRepo.active(this.now())) this.holds.set(h.service, h);
    this.deps.target.follow((id) => this.onReplicaStarted(id));
    this.started = true;
    const led = Object.values(this.policy.services).filter((svc) => this.leads(svc.name));
    await Promise.all(led.map((svc) => this.queue.run(svc.name, () => (this.leads(svc.name) ? this.reconcile(svc) : Promise.resolve()))));
    this.log.info({ services: Object.keys(this.policy.services), dryRun: !!this.deps.dryRun, store: this.deps.store.sql.kind }, 'rollguard watching');
  }

  /** Stops scheduling, lets in-flight work finish (bounded), and leaves open watches to be resumed at the next start. */
  async stop(graceMs = 30_000): Promise<void> {
    this.stopping = true;
    await this.deps.target.unfollow();
    for (const s of this.state.values()) if (s.watch) clearTimeout(s.watch.timer);
    const inflight = Promise.all([...this.state.values()].map((s) => s.watch?.ticking)).then(() => this.queue.idle());
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([inflight.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs)))]);
    clearTimeout(timer);
    if (timedOut) this.log.warn({ graceMs }, 'stopping with work still in flight');
  }

  /** Applies a new policy: new deployments use it; running watches finish under the policy they started with. */
  async reload(next: Policy): Promise<void> {
    const before = new Set(Object.keys(this.policy.services));
    const after = new Set(Object.keys(next.services));
    const added = [...after].filter((s) => !before.has(s));
    const removed = [...before].filter((s) => !after.has(s));
    this.policy = next;
    this.log.info({ added, removed, services: [...after] }, 'policy reloaded');
    await Promise.all(added.filter((name) => this.leads(name)).map((name) => this.queue.run(name, () => this.reconcile(next.services[name] as ServicePolicy))));
  }

  private leads(service: string): boolean {
    return this.deps.leads?.(service) ?? true;
  }

  /**
   * This instance now leads `service` (at start-up, or taking over from an instance that died or
   * let go): catches up through the service's queue — resuming an open watch from its recorded
   * samples, finishing a revert, or detecting a deployment made meanwhile.
   */
  leadershipGained(service: string): void {
    const svc = this.policy.services[service];
    if (!svc || !this.started || this.stopping) return; // before start(), start() reconciles what is led
    void this.queue.run(service, async () => {
      const w = this.state.get(service)?.watch;
      if (!this.leads(service) || this.stopping || (w && !w.done)) return;
      const hold = (await this.holdRepo.active(this.now())).find((h) => h.service === service);
      if (hold) this.holds.set(service, hold);
      else this.holds.delete(service);
      await this.reconcile(svc);
    }).catch((err) => {
      // Led but not caught up (the store failed under the reconcile): try again shortly.
      this.log.error({ err, service }, 'catching up with a service taken over failed; retrying');
      setTimeout(() => this.leadershipGained(service), 2_000).unref();
    });
  }

  /** Another instance leads `service` now: its watch ends here without changing what is recorded, for the new leader to resume. */
  leadershipLost(service: string): void {
    const w = this.state.get(service)?.watch;
    if (!w || w.done) return;
    this.endWatch(w);
    this.log.info({ service, deployment: w.deployment.id }, 'watch handed over to the new leader');
  }

  /** Live view for `rollguard status` and the API. */
  status(): { services: Record<string, unknown>; activeWatches: number; dryRun: boolean; dockerConnected: boolean; policy: string } {
    const services: Record<string, unknown> = {};
    for (const name of Object.keys(this.policy.services)) {
      const s = this.state.get(name);
      const w = s?.watch;
      services[name] = {
        container: s?.containerId?.slice(0, 12) ?? null,
        replicas: s?.replicas.size ?? 0,
        image: s?.image ?? null,
        ref: s?.ref ?? null,
        hold: this.holds.get(name) ?? null,
        watch: w && !w.done
          ? {
              deployment: w.deployment.id,
              state: w.deployment.state,
              to_ref: w.deployment.to_ref,
              samples: w.tally.ticks,
              window_ends_at: w.deployment.window_ends_at,
              streaks: Object.fromEntries(w.service.rules.map((r) => [r.name, w.tally.rules[r.name]?.streak ?? 0])),
            }
          : null,
      };
    }
    return { services, activeWatches: this.activeWatches(), dryRun: !!this.deps.dryRun, dockerConnected: this.dockerConnected, policy: this.policy.source };
  }

  /** Resolves when every Docker event received so far has been handled (for tests and shutdown). */
  async settled(): Promise<void> {
    await this.deps.target.drained();
    await this.queue.idle();
  }

  private activeWatches(): number {
    return [...this.state.values()].filter((s) => s.watch && !s.watch.done).length;
  }

  private serviceState(name: string): ServiceState {
    let s = this.state.get(name);
    if (!s) this.state.set(name, (s = { replicas: new Map(), versions: new Map() }));
    return s;
  }

  // ---- detection ---------------------------------------------------------------------------

  /** The service's running replicas of every version, newest first; one-offs and orchestrated replicas are left out. */
  private async runningReplicas(service: ServicePolicy): Promise<Replica[]> {
    return (await this.deps.target.running(this.policy, service)).filter((r) => this.isServiceReplica(service.name, r));
  }

  /**
   * Whether a container matched by a service is one of its versions: a Compose one-off (`docker
   * compose run`, a migration or a shell) never is; a Swarm task is Swarm's to manage, and a revert
   * of its container would be fought by Swarm, so it is left alone with a warning (once per container).
   */
  private isServiceReplica(service: string, r: Replica): boolean {
    const role = this.deps.target.role(r);
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

  /** Level-triggered catch-up for one service: adopt, resume or detect from what runs now. */
  private async reconcile(service: ServicePolicy): Promise<void> {
    const { store } = this.deps;
    const log = this.log.child({ service: service.name });
    const running = await this.runningReplicas(service);
    const current = running[0];
    /** The replicas of the newest image, the one judged. */
    const ofCurrent = running.filter((r) => r.image === current?.image);
    if (ofCurrent.length < running.length) {
      log.warn({ replicas: running.map((r) => `${r.name} (${r.ref})`) }, 'replicas of several images run; the newest image is the one judged');
    }
    const known = await store.getKnownGood(service.name);
    const open = (await store.openDeployments()).filter((d) => d.service === service.name);
    const s = this.serviceState(service.name);
    s.knownGood = known;

    for (const d of open) {
      if (d.state === 'rolling_back' || (await this.parkedByRevert(d))) {
        // Level-triggered: what Docker shows decides where the revert picks up, not only the recorded phase.
        await this.resumeRevert(service, d);
        return;
      }
      const deployed = running.find((r) => r.id === d.container_id && r.image === d.to_image);
      if (d.state === 'watching' && deployed) {
        log.info({ deployment: d.id }, 'resuming the watch of a deployment');
        const replicas = running.filter((r) => r.image === deployed.image);
        nowRunning(s, replicas);
        await this.beginWatch(service, d, 'replay', deployed, replicas);
        continue;
      }
      const reason = 'the deployed container was no longer running when rollguard started';
      await this.deps.writes.updateDeployment(d.id, { state: 'superseded', reason, decided_at: this.now() });
    }
    if (!current) return;
    if (s.watch && !s.watch.done) return;
    nowRunning(s, ofCurrent);
    const latest = await store.latestDeployment(service.name);
    if (!known && !latest) {
      await this.adopt(service, ofCurrent);
      return;
    }
    const knownReplicas = known ? this.deps.target.knownReplicas(known.spec) : [];
    if (known && running.every((r) => ofKnownVersion(r, knownReplicas))) {
      await this.refreshKnownGood(service, ofCurrent);
      return;
    }
    if (latest && latest.to_image === current.image && ofCurrent.some((r) => r.id === latest.container_id)) return;
    log.info({ container: current.name, image: shortId(current.image) }, 'a deployment happened while rollguard was not watching');
    await this.detect(service, current, known?.image_id ?? null, known?.image_ref ?? null, ofCurrent);
  }

  /** Whether the deployment's container is one a revert set aside (stopped and renamed) before rollguard stopped. */
  private async parkedByRevert(d: Deployment): Promise<boolean> {
    const parked = await this.deps.target.parkedReplicas(d.id).catch(() => []);
    return parked.length > 0;
  }

  /**
   * Finishes a revert that a crash or restart cut short: the decision stands, and each step is
   * picked up from what Docker shows (see revertDeployment), so nothing is done twice and the
   * messages already queued are not queued again.
   */
  private async resumeRevert(policyService: ServicePolicy, d: Deployment): Promise<void> {
    const service = withServingRule(policyService);
    const decided = (await this.deps.store.listDecisions(d.id).catch(() => [])).filter((x) => x.kind === 'rollback').pop();
    const rule = service.rules.find((r) => r.name === decided?.rule) ?? service.rules.find((r) => r.action === 'rollback') ?? service.rules[0];
    const log = this.log.child({ service: service.name, deployment: d.id });
    if (!rule) {
      const reason = 'rollguard stopped during a revert of a service that no longer has rules; check the service and finish by hand';
      await this.deps.writes.updateDeployment(d.id, { state: 'rollback_failed', reason, phase: 'done' });
      log.error({ escalate: true, reason }, 'ROLLBACK FAILED — escalate to a human');
      return;
    }
    log.warn({ phase: d.phase ?? null, attempts: d.attempts, rule: rule.name }, 'rollguard stopped during this revert; finishing it');
    d.state = 'rolling_back';
    if (d.phase === null || d.phase === undefined) await this.deps.writes.updateDeployment(d.id, { state: 'rolling_back', phase: 'decided' });
    const watch = this.watchFor(service, d, emptyTally(service), undefined, []);
    watch.done = true;
    this.serviceState(service.name).watch = watch;
    await this.announce(watch, 'rollback_started', rule.severity, { rule },
      { kind: 'resume', rule: rule.name, severity: rule.severity, detail: `rollguard restarted during the revert (phase ${d.phase ?? 'decided'}); finishing it from what Docker shows` });
    await this.revert(watch, rule, true);
  }

  private async setKnownGood(known: KnownGood): Promise<void> {
    this.serviceState(known.service).knownGood = known;
    await this.deps.writes.setKnownGood(known);
  }

  /** The running replicas of one version become the known-good set (nothing recorded before). */
  private async adopt(service: ServicePolicy, replicas: readonly Replica[]): Promise<void> {
    const first = replicas[0];
    if (!first) return;
    await this.setKnownGood({
      service: service.name, image_id: first.image, image_ref: first.ref, container_name: first.name, spec: this.deps.target.snapshot(replicas), deployment_id: null, since: this.now(),
    });
    this.log.info({ service: service.name, replicas: replicas.map((r) => r.name), image: shortId(first.image), ref: first.ref }, 'adopted the running replicas as known-good');
  }

  /**
   * Replicas of the known-good version came or went (scaled, restarted under another name): the
   * known-good set follows what runs, so a revert puts back as many as ran.
   */
  private async refreshKnownGood(service: ServicePolicy, replicas: readonly Replica[]): Promise<void> {
    const known = this.serviceState(service.name).knownGood;
    if (!known || !replicas.length) return;
    const before = this.deps.target.knownReplicas(known.spec).map((k) => k.name).sort();
    const now = replicas.map((r) => r.name).sort();
    if (JSON.stringify(before) === JSON.stringify(now)) return;
    await this.setKnownGood({ ...known, container_name: replicas[0]?.name ?? known.container_name, spec: this.deps.target.snapshot(replicas) });
    this.log.info({ service: service.name, before, now }, 'the known-good version runs as other replicas now; its set follows');
  }

  private async onReplicaStarted(id: string): Promise<void> {
    if (this.stopping || this.ownContainers.has(id)) return;
    let r: Replica | undefined;
    try {
      r = await this.deps.target.replica(id);
    } catch (err) {
      this.log.warn({ err, container: id.slice(0, 12) }, 'cannot inspect a started container');
      return;
    }
    if (!r) return; // gone already (a one-off run with --rm)
    const services = this.deps.target.servicesOf(this.policy, r);
    if (services.length > 1) this.log.error({ container: r.name, services: services.map((s) => s.name) }, 'a container matches several services; it is not watched');
    const service = services.length === 1 ? services[0] : undefined;
    if (!service || !this.leads(service.name)) return;
    if (!this.isServiceReplica(service.name, r)) return;
    const replica = r;
    void this.queue.run(service.name, () => this.onServiceStart(service, replica)).catch((err) =>
      this.log.error({ err, service: service.name }, 'handling a deployment failed'),
    );
  }

  private async onServiceStart(service: ServicePolicy, r: Replica): Promise<void> {
    if (this.stopping || this.ownContainers.has(r.id) || !this.leads(service.name)) return;
    const s = this.serviceState(service.name);
    const w = s.watch;
    const known = s.knownGood && this.deps.target.knownReplicas(s.knownGood.spec);
    const previous = s.versions.get(r.name) ?? known?.find((k) => k.name === r.name)?.version;
    const changed = isChange(r, previous, s.image ?? s.knownGood?.image_id);
    if (w && !w.done && r.image === w.deployment.to_image && (changed || !w.replicas.has(r.id))) {
      // Another replica of the version being rolled out (replaced one by one, or one more): the same deployment.
      w.replicas.add(r.id);
      nowRunning(s, [r], true);
      this.log.info({ service: service.name, deployment: w.deployment.id, container: r.name, replicas: w.replicas.size }, 'another replica of the deployment started; watching it too');
      return;
    }
    if (!changed && (s.image || s.knownGood)) {
      // A restart, a recreate with the same image and settings, or one more replica: not a deployment.
      s.containerId = r.id;
      s.versions.set(r.name, r.version);
      s.replicas.set(r.name, r.id);
      if (known && r.image === s.knownGood?.image_id && !(w && !w.done)) {
        await this.refreshKnownGood(service, (await this.runningReplicas(service)).filter((x) => x.image === r.image));
      }
      return;
    }
    if (!s.image && !s.knownGood) {
      // First replica ever seen for this service: there is nothing to compare or revert to.
      const replicas = (await this.runningReplicas(service)).filter((x) => x.image === r.image);
      nowRunning(s, replicas.length ? replicas : [r]);
      await this.adopt(service, replicas.length ? replicas : [r]);
      return;
    }
    await this.detect(service, r, s.image ?? null, s.ref ?? null, [r]);
  }

  private async detect(service: ServicePolicy, c: Replica, fromImage: string | null, fromRef: string | null, replicas: readonly Replica[]): Promise<void> {
    const s = this.serviceState(service.name);
    const previous = s.watch;
    if (previous && !previous.done) {
      this.endWatch(previous);
      await this.deps.writes.updateDeployment(previous.deployment.id, { state: 'superseded', reason: `superseded by ${c.ref} (${shortId(c.image)})`, decided_at: this.now() });
    }
    const startedAt = c.startedAt.getTime() > 0 ? c.startedAt : this.now();
    const detectedAt = this.now();
    const deployment = await this.deps.writes.insertDeployment({
      service: service.name,
      container_id: c.id,
      container_name: c.name,
      from_image: fromImage,
      from_ref: fromRef,
      to_image: c.image,
      to_ref: c.ref,
      dry_run: !!this.deps.dryRun,
      started_at: startedAt,
      detected_at: detectedAt,
      window_ends_at: new Date(detectedAt.getTime() + service.windowMs),
    });
    const sameImage = s.knownGood && s.knownGood.image_id === c.image ? { sameImage: true, changed: this.deps.target.changedSettings(s.knownGood.spec, c) } : {};
    nowRunning(s, replicas, true);
    this.deps.metrics.deploymentsSeen.inc({ service: service.name });
    this.log.info(
      { service: service.name, deployment: deployment.id, from: fromRef, fromImage: fromImage && shortId(fromImage), to: c.ref, toImage: shortId(c.image), replicas: replicas.length, ...sameImage },
      'deployment detected',
    );
    await this.beginWatch(service, deployment, emptyTally(service), c, replicas);
    const watch = this.serviceState(service.name).watch as Watch;
    const announced = this.pendingMigrations.get(service.name);
    if (announced === c.ref || announced === c.image) {
      watch.migrations = true;
      this.pendingMigrations.delete(service.name);
    }
    await this.announce(watch, 'deployment_detected', 'P2', {});
    await this.onBadImage(watch);
  }

  private flaps(): FlapGuard {
    const { writes } = this.deps;
    return (this.flapGuard ??= new FlapGuard({ repo: new BadImages(this.deps.store.sql), record: (what, run) => writes.write(what, run), log: this.log }));
  }

  /**
   * A redeploy of an image rollguard reverted away from: reverted at once through the usual
   * revert (counted against max_rollbacks), or with `on_bad_image: warn` told and watched as usual.
   */
  private async onBadImage(watch: Watch): Promise<void> {
    const { service, deployment } = watch;
    const mark = await this.flaps().badImage(service.name, deployment.to_image, this.serviceState(service.name).knownGood, this.now());
    if (!mark || watch.done) return;
    const then = service.onBadImage ?? 'revert';
    const rule = badImageRule(service);
    const message = badImageMessage(mark, then);
    this.log.warn({ service: service.name, deployment: deployment.id, image: shortId(mark.image_id), markedAt: mark.marked_at, markedBy: mark.deployment_id, then }, 'an image reverted away from was redeployed');
    if (then === 'warn') {
      await this.announce(watch, 'rule_breached', rule.severity, { rule: { ...rule, action: 'notify' }, reason: message },
        { kind: 'bad_image', rule: rule.name, severity: rule.severity, detail: message }, 'bad-image');
      return;
    }
    if (await this.paused(watch, rule)) return;
    this.endWatch(watch);
    await this.rollback(watch, rule, null, message);
  }

  // ---- watching ----------------------------------------------------------------------------

  private async replayTally(service: ServicePolicy, d: Deployment): Promise<WatchTally> {
    const samples = (await this.deps.store.listSamples(d.id)).filter((x) => x.stage === 'watch');
    const ticks = new Map<number, Record<string, number | null>>();
    for (const x of samples) {
      const t = x.taken_at.getTime();
      const values = ticks.get(t) ?? {};
      values[x.signal] = x.value;
      ticks.set(t, values);
    }
    let tally = emptyTally(service);
    const floor = service.minRequests;
    for (const t of [...ticks.keys()].sort((a, b) => a - b)) {
      const values = ticks.get(t) ?? {};
      const traffic = floor ? values[floor.signal] ?? null : null;
      tally = assess(service, tally, values, { lowTraffic: floor !== undefined && (traffic === null || traffic < floor.atLeast) }).tally;
    }
    return tally;
  }

  /**
   * Applies baseline-relative rules: each one's threshold comes from the same query's average
   * over its baseline range before the deploy (a range query at deploy time). A baseline that
   * cannot be measured leaves the rule without data — never a guess.
   */
  private async resolveBaselines(service: ServicePolicy, deployment: Deployment, template: TemplateValues): Promise<ServicePolicy> {
    if (!service.rules.some((r) => r.baseline)) return service;
    const prometheus = this.deps.providers.prometheus;
    const rules = await Promise.all(service.rules.map(async (rule) => {
      if (!rule.baseline) return rule;
      const signal = service.signals[rule.signal];
      const measured = signal?.kind === 'prometheus' && prometheus instanceof PrometheusProvider
        ? await rangeAverage(prometheus, renderTemplate(signal.query, template), deployment.started_at, rule.baseline.windowMs, service.intervalMs)
        : { value: null, points: 0, detail: 'no Prometheus configured' };
      const resolved = withBaseline(rule, measured.value);
      const detail = `${rule.name}: baseline ${measured.value ?? 'unknown'} over ${rule.baseline.windowMs / 1000} s before the deploy (${measured.points} points${measured.detail ? `; ${measured.detail}` : ''}); threshold ${describeThreshold(resolved)}`;
      this.log.info({ service: service.name, deployment: deployment.id, rule: rule.name, baseline: measured.value, threshold: resolved.above }, 'baseline measured');
      await this.deps.writes.insertDecision({ deployment_id: deployment.id, decided_at: this.now(), kind: 'baseline', rule: rule.name, severity: rule.severity, detail });
      return resolved;
    }));
    return { ...service, rules };
  }

  /** Starts (or, with 'replay', resumes from its recorded samples) the watch of a deployment. */
  private async beginWatch(policyService: ServicePolicy, deployment: Deployment, start: WatchTally | 'replay', deployed: Replica, replicas: readonly Replica[]): Promise<void> {
    const template = { service: policyService.name, container: deployment.container_name, image: deployment.to_ref, version: versionOf(deployment.to_ref) };
    const service = await this.resolveBaselines(withServingRule(policyService), deployment, template);
    const tally = start === 'replay' ? await this.replayTally(service, deployment) : start;
    const watch = this.watchFor(service, deployment, tally, deployed, replicas);
    this.serviceState(service.name).watch = watch;
    this.deps.metrics.activeWatches.set(this.activeWatches());
    this.schedule(watch);
    void this.checkRevertTarget(watch);
  }

  /**
   * Checks, when the watch begins rather than when a revert needs it, that the known-good image
   * is still on this host, so a missing revert target is known while there is time to act.
   */
  private async checkRevertTarget(watch: Watch): Promise<void> {
    const known = this.serviceState(watch.service.name).knownGood;
    if (!known || this.deps.dryRun) return;
    try {
      await this.deps.target.resolveImage(known.image_id, known.image_ref);
    } catch (err) {
      const detail = `no revert target: ${(err as Error).message}; a revert of this deployment would fail`;
      this.log.error({ service: watch.service.name, deployment: watch.deployment.id, image: shortId(known.image_id), ref: known.image_ref }, 'the known-good image is missing; this deployment cannot be reverted');
      await this.deps.writes.insertDecision({ deployment_id: watch.deployment.id, decided_at: this.now(), kind: 'no_revert_target', detail });
    }
  }

  private watchFor(service: ServicePolicy, deployment: Deployment, tally: WatchTally, deployed: Replica | undefined, replicas: readonly Replica[]): Watch {
    const template = { service: service.name, container: deployment.container_name, image: deployment.to_ref, version: versionOf(deployment.to_ref) };
    return {
      migrations: deployed?.labels[MIGRATIONS_LABEL] === 'true', deployment, replicas: new Set(replicas.map((r) => r.id)),
      service, tally, history: new Map(), done: false, template,
    };
  }

  private endWatch(watch: Watch): void {
    watch.done = true;
    clearTimeout(watch.timer);
    this.deps.metrics.activeWatches.set(this.activeWatches());
  }

  /** Ticks never overlap: the next one is scheduled only after the previous has finished. */
  private schedule(watch: Watch): void {
    if (watch.done || this.stopping) return;
    watch.timer = setTimeout(() => {
      watch.ticking = this.tick(watch)
        .catch((err) => this.log.error({ err, service: watch.service.name, deployment: watch.deployment.id }, 'watch tick failed'))
        .finally(() => {
          watch.ticking = undefined;
          this.schedule(watch);
        });
    }, watch.service.intervalMs);
  }

  private async tick(watch: Watch): Promise<void> {
    if (watch.done || this.stopping) return;
    const { service, deployment } = watch;
    const at = this.now();
    const warmingUp = at.getTime() < deployment.started_at.getTime() + service.warmupMs;
    const floor = service.minRequests;
    const names = warmingUp ? [] : [...new Set([...ruleSignals(service), ...(floor ? [floor.signal] : [])])];
    const probe = { template: watch.template, containerId: deployment.container_id, containerIds: [...watch.replicas], at, intervalMs: service.intervalMs };
    const providers = this.sampling.get();
    const [measurements, burns] = await Promise.all([
      sampleSignals(providers, this.deps.metrics, service, names, probe),
      warmingUp ? {} : sampleBurnRates(providers, service, probe),
    ]);
    Object.assign(measurements, burns);
    await this.queue.run(service.name, async () => {
      if (watch.done || this.stopping) return;
      if (!warmingUp) {
        const traffic = floor ? measurements[floor.signal]?.value ?? null : null;
        const lowTraffic = floor !== undefined && (traffic === null || traffic < floor.atLeast);
        const { tally, results, verdict } = assess(service, watch.tally, valuesOf(measurements), { lowTraffic });
        watch.tally = tally;
        await this.recordSamples(watch, at, measurements, results, lowTraffic ? `traffic ${traffic ?? 'unknown'} below the floor of ${floor?.atLeast}` : undefined);
        for (const rule of verdict.notify) {
          await this.announce(watch, 'rule_breached', rule.severity, { rule }, { kind: 'notify', rule: rule.name, severity: rule.severity, detail: `${rule.name}: ${rule.signal} ${describeThreshold(rule)} for ${rule.for} samples` }, rule.name);
          this.log.warn({ service: service.name, deployment: deployment.id, rule: rule.name, severity: rule.severity }, 'rule breached (notify only)');
        }
        if (verdict.kind === 'rollback') {
          if (await this.paused(watch, verdict.rule)) return;
          this.endWatch(watch);
          await this.rollback(watch, verdict.rule, measurements[valueKey(verdict.rule)]?.value ?? null);
          return;
        }
        if (verdict.noData.length && (await this.onNoData(watch, verdict.noData))) return;
      }
      if (at.getTime() >= deployment.window_ends_at.getTime() && !this.activeHold(watch)) {
        this.endWatch(watch);
        await this.conclude(watch);
      }
    });
  }

  /** The hold or freeze on this watch's deployment, if still in force. */
  private activeHold(watch: Watch): Hold | undefined {
    const h = this.holds.get(watch.service.name);
    if (!h || h.deployment_id !== watch.deployment.id) return undefined;
    if (h.until && h.until.getTime() <= this.now().getTime()) {
      this.holds.delete(watch.service.name);
      this.log.info({ service: h.service, deployment: h.deployment_id, hold: h.id }, 'hold expired; automatic reverts resume');
      return undefined;
    }
    return h;
  }

  /**
   * Whether a revert the rules call for must wait: an operator's hold (fix forward), or a
   * deployment carrying DB migrations (runbook: database rollbacks can cause data loss), which
   * pages and waits for `rollguard release` unless the policy says `on_migrations: revert`.
   * The watch goes on, so when the hold ends and the rule still breaches the revert proceeds.
   */
  private async paused(watch: Watch, rule: ServicePolicy['rules'][number]): Promise<boolean> {
    let hold = this.activeHold(watch);
    if (!hold && watch.migrations && !watch.freezeReleased && watch.service.onMigrations !== 'revert') {
      hold = await this.addHold(watch, 'freeze', null, `deployment carries DB migrations (label ${MIGRATIONS_LABEL}=true); not reverted automatically`);
    }
    if (!hold) return false;
    if (watch.announcedHold !== hold.id) {
      watch.announcedHold = hold.id;
      const what = hold.kind === 'freeze'
        ? `${hold.reason}. Revert by hand, or run \`rollguard release ${hold.service}\` to let rollguard revert.`
        : `Held until ${hold.until?.toISOString()} by an operator: ${hold.reason}. If the rule still breaches then, the revert proceeds.`;
      this.log.warn({ service: hold.service, deployment: hold.deployment_id, rule: rule.name, hold: hold.kind, until: hold.until }, 'revert paused');
      await this.announce(watch, 'rule_breached', hold.kind === 'freeze' ? 'P0' : rule.severity, { rule, reason: what },
        { kind: hold.kind === 'freeze' ? 'frozen' : 'held', rule: rule.name, severity: rule.severity, detail: what }, `${hold.kind}:${hold.id}`);
    }
    return true;
  }

  private async addHold(watch: Watch, kind: Hold['kind'], until: Date | null, reason: string): Promise<Hold> {
    const row = { service: watch.service.name, deployment_id: watch.deployment.id, kind, reason, created_at: this.now(), until };
    const hold = await this.holdRepo.add(row).catch((err) => {
      this.log.error({ err }, 'could not record a hold; it applies in memory');
      return { ...row, id: -Date.now(), released_at: null } as Hold;
    });
    this.holds.set(watch.service.name, hold);
    return hold;
  }

  /**
   * The deploy API's migration flag: the deployment of `image` (tag or image ID) carries DB
   * migrations. Applies to the watch of that image if it runs now, else to the next deployment of
   * it (pipelines call this just before deploying).
   */
  async markMigrations(serviceName: string, image: string): Promise<{ service: string; image: string; applied: 'current' | 'next' }> {
    if (!this.policy.services[serviceName]) throw new HoldError(`unknown service "${serviceName}"`, 404);
    return this.queue.run(serviceName, async () => {
      const watch = this.state.get(serviceName)?.watch;
      if (watch && !watch.done && (watch.deployment.to_ref === image || watch.deployment.to_image === image)) {
        watch.migrations = true;
        this.log.warn({ service: serviceName, deployment: watch.deployment.id, image }, 'deployment marked as carrying DB migrations');
        return { service: serviceName, image, applied: 'current' as const };
      }
      this.pendingMigrations.set(serviceName, image);
      this.log.warn({ service: serviceName, image }, 'the next deployment of this image is marked as carrying DB migrations');
      return { service: serviceName, image, applied: 'next' as const };
    });
  }

  /** `rollguard hold`: pauses automatic reverts of the service's current deployment until `until`. */
  async hold(serviceName: string, forMs: number, reason: string): Promise<Hold> {
    return this.queue.run(serviceName, async () => {
      const watch = this.state.get(serviceName)?.watch;
      if (!this.policy.services[serviceName]) throw new HoldError(`unknown service "${serviceName}"`, 404);
      if (!watch || watch.done) throw new HoldError(`no deployment of ${serviceName} is being watched; nothing to hold`, 409);
      const existing = this.activeHold(watch);
      if (existing) await this.holdRepo.release(existing.id, this.now()).catch(() => {});
      const hold = await this.addHold(watch, 'hold', new Date(this.now().getTime() + forMs), reason);
      this.log.warn({ service: serviceName, deployment: watch.deployment.id, until: hold.until, reason }, 'hold placed: automatic reverts paused');
      return hold;
    });
  }

  /** `rollguard release`: ends a hold or a migration freeze; a rule still breaching reverts at the next sample. */
  async release(serviceName: string): Promise<Hold> {
    return this.queue.run(serviceName, async () => {
      const h = this.holds.get(serviceName);
      if (!h) throw new HoldError(`${serviceName} has no hold or freeze`, 404);
      this.holds.delete(serviceName);
      await this.holdRepo.release(h.id, this.now()).catch((err) => this.log.error({ err }, 'could not record a release'));
      const watch = this.state.get(serviceName)?.watch;
      if (watch && h.kind === 'freeze') watch.freezeReleased = true;
      this.log.warn({ service: serviceName, deployment: h.deployment_id, hold: h.kind }, 'released: automatic reverts resume');
      return { ...h, released_at: this.now() };
    });
  }

  /** `on_no_data`: tell the on-call, or end the watch as inconclusive. Never a revert. Returns whether the watch ended. */
  private async onNoData(watch: Watch, rules: ServicePolicy['rules']): Promise<boolean> {
    const policy = watch.service.onNoData;
    if (!policy) return false;
    const names = rules.map((r) => `"${r.name}"`).join(', ');
    const reason = `no data for ${policy.after} consecutive samples of ${names}`;
    this.log.warn({ service: watch.service.name, deployment: watch.deployment.id, rules: rules.map((r) => r.name), then: policy.then }, 'rule without data');
    if (policy.then === 'inconclusive') {
      this.endWatch(watch);
      await this.inconclusive(watch, `${reason}; the watch ended (on_no_data: inconclusive)`);
      return true;
    }
    const rule = rules[0] as ServicePolicy['rules'][number];
    await this.announce(watch, 'watch_inconclusive', rule.severity, { rule, reason: `${reason}; still watching, no revert without data` },
      { kind: 'no-data', rule: rule.name, severity: rule.severity, detail: reason }, `no-data:${rule.name}:${watch.tally.ticks}`);
    return false;
  }


  private async recordSamples(watch: Watch, at: Date, measurements: Record<string, { value: number | null; detail?: string; latencyMs: number }>, results: Record<string, SampleResult>, note?: string): Promise<void> {
    const { service, deployment } = watch;
    const rows = Object.entries(measurements).map(([signal, m]) => {
      const rules: Record<string, string> = {};
      for (const r of service.rules) if (valueKey(r) === signal) rules[r.name] = results[r.name] ?? 'no-data';
      const outcomes = Object.values(rules);
      // A signal no rule reads (the traffic floor) is ok whenever it has a value.
      const result = !outcomes.length ? (m.value === null ? 'no-data' : 'ok') : outcomes.includes('breach') ? 'breach' : outcomes.includes('ok') ? 'ok' : 'no-data';
      this.deps.metrics.samples.inc({ service: service.name, result });
      const seen = watch.history.get(signal) ?? [];
      seen.push({ t: at.getTime(), v: m.value, result: result as SampleResult });
      if (seen.length > MAX_HISTORY) seen.splice(0, seen.length - MAX_HISTORY);
      watch.history.set(signal, seen);
      const detail = [m.detail, result === 'no-data' ? note : undefined].filter(Boolean).join('; ') || null;
      return { deployment_id: deployment.id, stage: 'watch' as const, signal, taken_at: at, value: m.value, result: result as SampleResult, rules, detail, latency_ms: m.latencyMs };
    });
    await this.deps.writes.insertSamples(rows);
  }

  /**
   * Records a decision (when given) and queues its notifications in one transaction. Without an
   * announcer (tests, tools) the decision alone is recorded.
   */
  private async announce(
    watch: Watch,
    kind: EventKind,
    severity: ServicePolicy['rules'][number]['severity'],
    extra: Partial<EvidenceInput>,
    decision?: { kind: string; rule?: string | null; severity?: string | null; detail: string },
    dedupSuffix?: string,
  ): Promise<void> {
    const d = watch.deployment;
    const record = decision ? { deployment_id: d.id, decided_at: this.now(), kind: decision.kind, rule: decision.rule ?? null, severity: decision.severity ?? null, detail: decision.detail } : undefined;
    const announcer = this.deps.announcer;
    if (!announcer) {
      if (record) await this.deps.writes.insertDecision(record);
      return;
    }
    const rule = extra.rule;
    const event = buildEvent({
      kind, severity, policy: this.policy, service: watch.service, deployment: d, template: watch.template,
      history: rule ? watch.history.get(valueKey(rule)) : undefined, at: this.now(), ...extra,
    });
    await announcer.announce(event, { deploymentId: d.id, decision: record, dedupSuffix });
  }

  /** `because` replaces the rule's breach as the reason (a redeployed bad image). */
  private async rollback(watch: Watch, rule: ServicePolicy['rules'][number], value: number | null, because?: string): Promise<void> {
    const { service, deployment } = watch;
    const reason = because ?? `${rule.name}: ${rule.signal} ${describeThreshold(rule)} for ${rule.for} consecutive samples (last ${value})`;
    if (!this.leads(service.name)) {
      // Leadership moved while this watch decided: the new leader resumes the watch and decides for itself.
      this.log.warn({ service: service.name, deployment: deployment.id, rule: rule.name }, 'not reverting: another instance now leads this service');
      return;
    }
    if (!this.deps.dryRun && !(await this.admitRevert(watch, rule, reason))) return;
    const decidedAt = this.now();
    const decision = { kind: 'rollback', rule: rule.name, severity: rule.severity, detail: this.deps.dryRun ? `dry run: ${reason}` : reason };
    if (this.deps.dryRun) {
      await this.announce(watch, 'rule_breached', rule.severity, { rule, reason: 'Dry run: rollguard would roll back now, and changed nothing.' }, decision, rule.name);
      await this.deps.writes.updateDeployment(deployment.id, { state: 'would_roll_back', reason: `dry run, nothing changed: ${reason}`, decided_at: decidedAt });
      this.deps.metrics.rollbacks.inc({ service: service.name, outcome: 'dry_run' });
      this.log.warn({ service: service.name, deployment: deployment.id, rule: rule.name }, 'would roll back (dry run)');
      return;
    }
    // Recorded before anything is touched, so a crash from here on is finished at the next start.
    await this.deps.writes.updateDeployment(deployment.id, { state: 'rolling_back', reason, decided_at: decidedAt, phase: 'decided' });
    deployment.state = 'rolling_back';
    deployment.reason = reason;
    deployment.phase = 'decided';
    await this.announce(watch, 'rollback_started', rule.severity, { rule, reason: because }, decision);
    await (this.deps.failpoint ?? noFailpoints)('revert.decided', { deployment: deployment.id });
    await this.revert(watch, rule, false);
  }

  /**
   * max_rollbacks: a revert within the limit is counted and its image marked bad (whatever the
   * revert's outcome: rollguard reverted away from it). Beyond the limit nothing is changed: the
   * deployment ends rollback_failed and a P0 page says a human must decide.
   */
  private async admitRevert(watch: Watch, rule: ServicePolicy['rules'][number], reason: string): Promise<boolean> {
    const { service, deployment } = watch;
    const now = this.now();
    const budget = await this.flaps().budget(service.name, service.maxRollbacks ?? DEFAULT_MAX_ROLLBACKS, now);
    if (budget.allowed) {
      // A reconfiguration on the known-good image: the settings were bad, not the image.
      const imageChanged = deployment.to_image !== this.serviceState(service.name).knownGood?.image_id;
      await this.flaps().reverted(service.name, deployment, now, reason, imageChanged);
      return true;
    }
    const why = rollbackLimitMessage(service.name, budget);
    this.log.error({ escalate: true, severity: 'P0', service: service.name, deployment: deployment.id, rule: rule.name, reverts: budget.used, limit: budget.limit }, 'ROLLBACK LIMIT REACHED — not reverting; escalate to a human');
    await this.deps.writes.updateDeployment(deployment.id, { state: 'rollback_failed', reason: why, decided_at: now });
    deployment.state = 'rollback_failed';
    deployment.reason = why;
    this.deps.metrics.rollbacks.inc({ service: service.name, outcome: 'limited' });
    await this.announce(watch, 'rollback_failed', 'P0', { rule, reason: why }, { kind: 'rollback_limit', rule: rule.name, severity: 'P0', detail: `${why}; the breach: ${reason}` });
    return false;
  }

  /**
   * Reverts (or, with `resume`, finishes reverting) the watched deployment to the known-good
   * version, then tells people how it went.
   */
  private async revert(watch: Watch, rule: ServicePolicy['rules'][number], resume: boolean): Promise<void> {
    const { service, deployment } = watch;
    const s = this.serviceState(service.name);
    let outcome;
    try {
      outcome = await revertDeployment(
        { ...this.deps, now: this.now, sleep: (ms) => new Promise((r) => setTimeout(r, ms)), ownContainers: this.ownContainers, running: (svc) => this.runningReplicas(svc) },
        service,
        deployment,
        rule,
        s.knownGood,
        resume,
      );
    } catch (err) {
      this.log.error({ err, escalate: true, service: service.name, deployment: deployment.id }, 'ROLLBACK FAILED — the revert stopped on an unexpected error; escalate to a human');
      await this.deps.writes.updateDeployment(deployment.id, { state: 'rollback_failed', reason: `the revert stopped on an unexpected error: ${String(err)}`, phase: 'done' });
      this.deps.metrics.rollbacks.inc({ service: service.name, outcome: 'failed' });
      deployment.state = 'rollback_failed';
      await this.escalate(watch, rule, `the revert stopped on an unexpected error: ${String(err)}`, {});
      return;
    }
    deployment.state = outcome.state;
    deployment.attempts = outcome.attempts;
    if (outcome.state === 'rolled_back') {
      deployment.recovered_at = outcome.recoveredAt ? new Date(outcome.recoveredAt) : null;
      await this.announce(watch, 'rollback_succeeded', rule.severity, { rule, actions: outcome.actions, criteria: outcome.criteria, revertAt: outcome.revertAt, recoveredAt: outcome.recoveredAt });
    } else {
      await this.escalate(watch, rule, outcome.reason ?? 'rollback failed', { actions: outcome.actions, criteria: outcome.criteria, revertAt: outcome.revertAt });
    }
    const running = await this.runningReplicas(service).catch(() => []);
    const now = running.filter((r) => outcome.containerIds.includes(r.id));
    if (now.length) nowRunning(s, running.filter((r) => r.image === now[0]?.image));
    else {
      s.containerId = outcome.containerIds[0];
      s.image = outcome.image;
      s.ref = outcome.ref;
    }
  }

  /** A window without a verdict: recorded, and the version does not become known-good. */
  private async inconclusive(watch: Watch, reason: string): Promise<void> {
    const { service, deployment } = watch;
    deployment.reason = reason;
    await this.announce(watch, 'watch_inconclusive', 'P1', { reason }, { kind: 'inconclusive', detail: reason });
    await this.deps.writes.updateDeployment(deployment.id, { state: 'inconclusive', reason, decided_at: this.now() });
    deployment.state = 'inconclusive';
    this.log.warn({ service: service.name, deployment: deployment.id, reason }, 'watch inconclusive');
  }

  /** Runbook "Rollback Failed": a P0 message to every P0 route, and the maintenance page if configured. */
  private async escalate(watch: Watch, rule: ServicePolicy['rules'][number], reason: string, extra: Partial<EvidenceInput>): Promise<void> {
    const d = watch.deployment;
    d.reason = reason;
    const maintenance = this.policy.maintenance;
    if (maintenance) {
      const started = this.now();
      let detail: string;
      let ok = true;
      try {
        detail = await enableMaintenance(maintenance, { service: watch.service.name, deployment: d.id });
        this.log.warn({ service: watch.service.name, deployment: d.id, detail }, 'maintenance mode enabled');
      } catch (err) {
        ok = false;
        detail = `maintenance hook failed: ${(err as Error).message}`;
        this.log.error({ service: watch.service.name, deployment: d.id, err }, 'maintenance hook failed');
      }
      await this.deps.writes.insertAction({ deployment_id: d.id, attempt: d.attempts, kind: 'maintenance', started_at: started, finished_at: this.now(), ok, detail });
    }
    await this.announce(watch, 'rollback_failed', 'P0', { rule, reason, ...extra }, { kind: 'escalate', rule: rule.name, severity: 'P0', detail: reason });
  }

  private async conclude(watch: Watch): Promise<void> {
    const { service, deployment } = watch;
    const outcome = concludeWindow(service, watch.tally);
    if (outcome.kind === 'unproven' || (outcome.kind === 'inconclusive' && !service.inconclusiveIsGood)) return this.inconclusive(watch, outcome.reason);
    const decidedAt = this.now();
    let replicas: Replica[];
    try {
      replicas = (await this.runningReplicas(service)).filter((r) => r.image === deployment.to_image);
    } catch (err) {
      // Without their specs the version cannot become a revert target.
      return this.inconclusive(watch, `the window passed but the replicas could not be inspected (${String(err)})`);
    }
    const c = replicas[0];
    if (!c) return this.inconclusive(watch, 'the window passed but no replica of the version runs any more; not known-good');
    await this.setKnownGood({
      service: service.name, image_id: c.image, image_ref: c.ref, container_name: c.name, spec: this.deps.target.snapshot(replicas), deployment_id: deployment.id, since: decidedAt,
    });
    if (outcome.kind === 'inconclusive') {
      // inconclusive_is_good: recorded as inconclusive, but the version becomes the revert target.
      return this.inconclusive(watch, `${outcome.reason}; now known-good (inconclusive_is_good)`);
    }
    await this.deps.writes.updateDeployment(deployment.id, { state: 'passed', reason: 'window survived; now known-good', decided_at: decidedAt });
    deployment.state = 'passed';
    await this.announce(watch, 'deployment_passed', 'P2', {}, { kind: 'pass', detail: `survived ${watch.tally.ticks} samples with no rollback rule breached` });
    this.log.info({ service: service.name, deployment: deployment.id, image: shortId(c.image), ref: c.ref, replicas: replicas.map((r) => r.name) }, 'deployment passed; now known-good');
  }
}
