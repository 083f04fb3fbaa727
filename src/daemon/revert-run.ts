import type { Logger } from 'pino';
import type { Metrics } from '../api/metrics.js';
import type { ServicePolicy } from '../config/policy.js';
import { shortId } from '../model/image-ref.js';
import type { EvidenceAction, EvidenceCriterion } from '../model/notification.js';
import type { ProviderRegistry } from '../signals/registry.js';
import type { ActionRecord, Deployment, RevertPhase } from '../store/store.js';
import type { Writes } from '../store/write-behind.js';
import type { DeployTarget, Replica } from '../targets/target.js';
import { noFailpoints, type Failpoint } from './failpoints.js';
import type { RunbookProcedures } from './procedures.js';

export interface RevertDeps {
  writes: Writes;
  target: DeployTarget;
  /** The service's running replicas of any version (one-offs and orchestrated ones left out). */
  running: (service: ServicePolicy) => Promise<Replica[]>;
  providers: ProviderRegistry;
  metrics: Metrics;
  log: Logger;
  now: () => Date;
  sleep: (ms: number) => Promise<void>;
  /** Replicas this revert creates, so their start events are not taken for deployments. */
  ownContainers: Set<string>;
  failpoint?: Failpoint;
  /**
   * Whether this instance still leads the service, asked before every step that changes a
   * replica: an instance paused past its lease (SIGSTOP, a VM freeze) stops there and leaves the
   * revert, as recorded, to the instance that leads now. Without it, always.
   */
  leads?: () => boolean;
  /** Follow-up steps and database snapshots (runtime.ts); without them those steps are reported as not run. */
  procedures?: RunbookProcedures;
}

/** Thrown inside a revert when this instance no longer leads the service; nothing more is changed or recorded. */
export class LeadershipLapsed extends Error {
  constructor(service: string) {
    super(`this instance no longer leads ${service}`);
    this.name = 'LeadershipLapsed';
  }
}

export const rethrowLapse = (err: unknown): void => {
  if (err instanceof LeadershipLapsed) throw err;
};

/** Where the service stands after a revert, for the daemon's bookkeeping and the messages. */
export interface RevertOutcome {
  /**
   * handed_over: leadership lapsed mid-way; the instance that leads now finishes the revert.
   * superseded: the service was updated again before anything was changed; nothing was.
   */
  state: 'rolled_back' | 'rollback_failed' | 'handed_over' | 'superseded';
  /** The replicas running for the service afterwards, as far as the revert knows. */
  containerIds: string[];
  image: string;
  ref: string;
  /** Why it failed, for rollback_failed. */
  reason?: string;
  attempts: number;
  /** Every step with its timing. */
  actions: EvidenceAction[];
  /** The recovery criteria as last measured. */
  criteria: EvidenceCriterion[];
  /** When the good replicas were started (last attempt), and when recovery was verified. */
  revertAt?: number;
  recoveredAt?: number;
}

/** Where a failed revert leaves the service. */
export type FailedAt = Omit<RevertOutcome, 'attempts' | 'actions' | 'criteria'>;

/**
 * One revert as it runs: its attempt, the steps recorded so far, and the helpers every kind of
 * revert records its steps with. A step is recorded (with its timing and outcome) before the
 * next begins, so a crash leaves an accurate account.
 */
export class RevertRun {
  attempt: number;
  readonly actions: EvidenceAction[] = [];
  criteria: EvidenceCriterion[] = [];
  revertAt?: number;
  readonly log: Logger;
  readonly failpoint: Failpoint;

  constructor(readonly deps: RevertDeps, readonly service: ServicePolicy, readonly deployment: Deployment, resume: boolean) {
    this.attempt = resume ? deployment.attempts : 0;
    this.log = deps.log.child({ service: service.name, deployment: deployment.id });
    this.failpoint = deps.failpoint ?? noFailpoints;
  }

  /** Called before every change to a replica (and before recording a failure). */
  readonly guard = (): void => {
    if (this.deps.leads && !this.deps.leads()) throw new LeadershipLapsed(this.service.name);
  };

  readonly record = (a: ActionRecord): Promise<void> => {
    this.actions.push({ kind: a.kind, attempt: a.attempt, startedAt: a.started_at.toISOString(), durationMs: a.finished_at.getTime() - a.started_at.getTime(), ok: a.ok, detail: a.detail ?? null });
    // A store outage never stops a revert half-way: the write queue keeps what the store cannot take.
    return this.deps.writes.insertAction(a);
  };

  /** Runs one step and records it, ok or failed (a failure is rethrown). */
  readonly step = async <T>(kind: string, detail: string | ((out: T) => string), fn: () => Promise<T>): Promise<T> => {
    const { deps, deployment } = this;
    const started = deps.now();
    const text = (out?: T): string => (typeof detail === 'string' ? detail : detail(out as T));
    try {
      const out = await fn();
      await this.record({ deployment_id: deployment.id, attempt: this.attempt, kind, started_at: started, finished_at: deps.now(), ok: true, detail: text(out) });
      return out;
    } catch (err) {
      rethrowLapse(err);
      const message = err instanceof Error ? err.message : String(err);
      await this.record({ deployment_id: deployment.id, attempt: this.attempt, kind, started_at: started, finished_at: deps.now(), ok: false, detail: `${typeof detail === 'string' ? detail : kind}: ${message}` });
      throw err;
    }
  };

  readonly phase = (p: RevertPhase): Promise<void> => {
    this.deployment.phase = p;
    return this.deps.writes.updateDeployment(this.deployment.id, { phase: p });
  };

  /** Ends the revert as failed: recorded, counted and logged for escalation. */
  readonly fail = async (because: string, where: FailedAt): Promise<RevertOutcome> => {
    this.guard();
    const m = this.migratedDown;
    const reason = m ? `${because}. The schema WAS MIGRATED DOWN for the known-good version before this; the safety snapshot taken before it: ${m.path} (\`rollguard restore-hint ${m.id}\`)` : because;
    this.log.error({ escalate: true, severity: 'P0', reason, attempts: this.attempt }, 'ROLLBACK FAILED — escalate to a human');
    await this.deps.writes.updateDeployment(this.deployment.id, { state: 'rollback_failed', reason, attempts: this.attempt, phase: 'done' });
    this.deps.metrics.rollbacks.inc({ service: this.service.name, outcome: 'failed' });
    return { ...where, reason, attempts: this.attempt, actions: this.actions, criteria: this.criteria, revertAt: this.revertAt };
  };

  /** Ends the revert as recovered. */
  /** The down-migration ran (with the snapshot taken before it): the schema is the known-good version's now. */
  migratedDown?: { path: string; id: string };

  /**
   * Run once the recovery is verified, before the revert is recorded as done: the follow-up
   * steps. A crash during them leaves the revert open, so the restart verifies and runs them again.
   */
  onVerified?: () => Promise<void>;

  readonly succeed = async (where: { containerIds: string[]; image: string; ref: string; replicas: number }): Promise<RevertOutcome> => {
    // Recovered at verification: the follow-up steps after it do not count against the time to recovery.
    const recoveredAt = this.deps.now();
    await this.onVerified?.();
    await this.deps.writes.updateDeployment(this.deployment.id, { state: 'rolled_back', recovered_at: recoveredAt, attempts: this.attempt, phase: 'done' });
    this.deps.metrics.rollbacks.inc({ service: this.service.name, outcome: 'succeeded' });
    const recoveryMs = recoveredAt.getTime() - this.deployment.started_at.getTime();
    this.deps.metrics.timeToRecovery.observe({ service: this.service.name }, Math.max(0, recoveryMs) / 1000);
    this.log.info({ attempts: this.attempt, recoveryMs, image: shortId(where.image), replicas: where.replicas }, 'rolled back and recovered');
    return { state: 'rolled_back', containerIds: where.containerIds, image: where.image, ref: where.ref, attempts: this.attempt, actions: this.actions, criteria: this.criteria, revertAt: this.revertAt, recoveredAt: recoveredAt.getTime() };
  };
}
