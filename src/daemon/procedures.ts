import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { listSnapshots, takeSnapshot } from '../actions/db-snapshot/index.js';
import { runFollowUps, type FollowUpResult } from '../actions/follow-up/run.js';
import type { FollowUpStep, ServicePolicy } from '../config/policy.js';

/** One follow-up step as it ran (or was skipped after an earlier failure): its kind, label, result and output. */
export type StepOutcome = Omit<FollowUpResult, 'index'>;

/** A pg_dump safety snapshot of a service's application database. */
export interface SafetySnapshot {
  id: string;
  path: string;
  size: number;
  /** The database's URL without its password. */
  database: string;
}

/**
 * The runbook's procedures around a revert that reach beyond the deploy target: the follow-up
 * steps after a verified revert and the database's safety snapshot before a migration is
 * reverted. Injected (runtime.ts makes them with the Docker client and the state directory), so
 * the revert's own tests run without them.
 */
export interface RunbookProcedures {
  /** Runs the steps in order; never throws: a failure is an outcome. `onStep` is called as each ends. */
  followUps(steps: readonly FollowUpStep[], onStep: (outcome: StepOutcome) => Promise<void>): Promise<StepOutcome[]>;
  /** Takes the snapshot (and applies the retention); throws with pg_dump's reason when it fails. */
  snapshot(service: ServicePolicy, deploymentId: number): Promise<SafetySnapshot>;
  /** The newest snapshot taken for a deployment's revert, if any (a revert resumed after a crash). */
  snapshotOf?(service: ServicePolicy, deploymentId: number): Promise<SafetySnapshot | undefined>;
}

/** The procedures on this host: follow-up steps through its Docker engine, snapshots into its state directory. */
export function hostProcedures(docker: Docker, stateDir: string, log: Logger): RunbookProcedures {
  return {
    followUps: (steps, onStep) => runFollowUps(steps, { docker, log }, onStep),
    snapshot: (service, deploymentId) => {
      const database = service.database;
      if (!database) return Promise.reject(new Error(`${service.name} names no database`));
      return takeSnapshot({ url: database.url, stateDir, service: service.name, deploymentId, now: new Date(), timeoutMs: database.timeoutMs, keep: database.keep, log });
    },
    snapshotOf: async (service, deploymentId) => (await listSnapshots(stateDir, service.name)).find((s) => s.deployment === deploymentId),
  };
}
