import { packageVersion } from '../model/version.js';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Policy, Signal } from '../config/policy.js';
import type { EventKind } from '../model/notification.js';

// Every label value comes from a small fixed set (the outcomes, results, kinds and events below)
// or from names the operator gives in the policy (services, channels): never a deployment, an
// image, an error message or a rule's text, so the number of series stays bounded.

/** How a rollback ended: rollguard_rollbacks_total{outcome}. */
export const ROLLBACK_OUTCOMES = ['succeeded', 'failed', 'dry_run', 'limited', 'orchestrator'] as const;
export type RollbackOutcome = (typeof ROLLBACK_OUTCOMES)[number];
/** What a sample said: rollguard_samples_total{result}. */
export const SAMPLE_RESULTS = ['ok', 'breach', 'no-data'] as const;
/** What a delivery attempt did: rollguard_notifications_total{result}. */
export const NOTIFICATION_RESULTS = ['sent', 'retry', 'failed'] as const;
/** Every event a channel can be sent (a missing one is a compile error). */
const EVENT_KINDS = Object.keys({
  deployment_detected: 1, rule_breached: 1, rollback_started: 1, rollback_succeeded: 1, rollback_failed: 1,
  watch_inconclusive: 1, deployment_passed: 1, digest: 1, test: 1,
} satisfies Record<EventKind, 1>) as EventKind[];
/** Every signal kind: rollguard_probe_duration_seconds{kind}. */
const SIGNAL_KINDS = Object.keys({ prometheus: 1, http: 1, container: 1, alertmanager: 1 } satisfies Record<Signal['kind'], 1>) as Signal['kind'][];

/** Time to recovery, from the deploy to the revert's recovery: 5 s to 30 min. */
const RECOVERY_BUCKETS = [5, 10, 15, 30, 45, 60, 90, 120, 180, 300, 600, 900, 1200, 1800];

/** rollguard's own metrics, served on /metrics. */
export interface Metrics {
  registry: Registry;
  deploymentsSeen: Counter<'service'>;
  rollbacks: Counter<'service' | 'outcome'>;
  samples: Counter<'service' | 'result'>;
  probeDuration: Histogram<'kind'>;
  /** Seconds from a deploy to the recovery of the revert that undid it. */
  timeToRecovery: Histogram<'service'>;
  activeWatches: Gauge;
  storeErrors: Counter;
  /** Writes set aside because the store rejected them as wrong in themselves (see writes-set-aside.jsonl). */
  storeWritesSetAside: Counter;
  /** rollguard_store_writes_waiting reads this at each scrape: the writes kept in memory (store unreachable or refusing). */
  writesWaiting: { read: () => number };
  notifications: Counter<'channel' | 'event' | 'result'>;
  outboxPending: Gauge<'channel'>;
  /** Age of the oldest message still waiting to be delivered, by channel (0 when none waits): an outbox that is stuck grows it. */
  outboxOldestPending: Gauge<'channel'>;
  /** 1 while this instance leads the service (samples and acts for it), 0 while another instance does. */
  leader: Gauge<'service'>;
  /**
   * Creates at 0 every series the policy's services and channels can have, so a scrape shows them
   * before the first event (a rate or an `increase` alert sees the first one). Called at start and
   * on each reload; values already counted are kept, and so are the series of a service that left.
   */
  forPolicy(policy: Pick<Policy, 'services' | 'notifications'>): void;
}


export function createMetrics(): Metrics {
  const registry = new Registry();
  const writesWaiting = { read: (): number => 0 };
  new Gauge({ name: 'rollguard_store_writes_waiting', help: 'Writes kept in memory because the store is unreachable or refuses writes.', registers: [registry], collect() { this.set(writesWaiting.read()); } });
  // The standard process_* and nodejs_* names, without a prefix, so the usual dashboards and alerts work.
  collectDefaultMetrics({ register: registry });
  new Gauge({ name: 'rollguard_build_info', help: 'Always 1; the labels tell the version of rollguard and of Node.js.', labelNames: ['version', 'node_version'], registers: [registry] })
    .set({ version: packageVersion(), node_version: process.version }, 1);
  /** Services whose time-to-recovery series exist (a histogram's `zero` would clear what it counted). */
  const recoverySeries = new Set<string>();
  const m: Metrics = {
    registry,
    deploymentsSeen: new Counter({ name: 'rollguard_deployments_seen_total', help: 'Deployments detected, by service.', labelNames: ['service'], registers: [registry] }),
    rollbacks: new Counter({ name: 'rollguard_rollbacks_total', help: 'Rollbacks by outcome (succeeded, failed, dry_run, limited: refused by max_rollbacks, orchestrator: Swarm rolled back by itself).', labelNames: ['service', 'outcome'], registers: [registry] }),
    samples: new Counter({ name: 'rollguard_samples_total', help: 'Signal samples by result (ok, breach, no-data).', labelNames: ['service', 'result'], registers: [registry] }),
    probeDuration: new Histogram({
      name: 'rollguard_probe_duration_seconds',
      help: 'Latency of signal probes, by signal kind.',
      labelNames: ['kind'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    timeToRecovery: new Histogram({
      name: 'rollguard_time_to_recovery_seconds',
      help: 'Time from a deploy to the recovery of the revert that undid it, by service.',
      labelNames: ['service'],
      buckets: RECOVERY_BUCKETS,
      registers: [registry],
    }),
    activeWatches: new Gauge({ name: 'rollguard_active_watches', help: 'Deployments currently inside their watch window.', registers: [registry] }),
    storeErrors: new Counter({ name: 'rollguard_store_errors_total', help: 'Attempts at a store write that failed (each retry counts).', registers: [registry] }),
    storeWritesSetAside: new Counter({ name: 'rollguard_store_writes_set_aside_total', help: 'Writes the store rejected as wrong in themselves, set aside in writes-set-aside.jsonl in the state directory.', registers: [registry] }),
    writesWaiting,
    notifications: new Counter({ name: 'rollguard_notifications_total', help: 'Notification delivery attempts by channel, event and result (sent, retry, failed).', labelNames: ['channel', 'event', 'result'], registers: [registry] }),
    outboxPending: new Gauge({ name: 'rollguard_outbox_pending', help: 'Notifications waiting to be delivered, by channel.', labelNames: ['channel'], registers: [registry] }),
    outboxOldestPending: new Gauge({ name: 'rollguard_outbox_oldest_pending_age_seconds', help: 'Age of the oldest notification waiting to be delivered, by channel (0 when none waits).', labelNames: ['channel'], registers: [registry] }),
    leader: new Gauge({ name: 'rollguard_leader', help: 'Whether this instance leads the service (1) or another instance does (0).', labelNames: ['service'], registers: [registry] }),
    forPolicy(policy) {
      for (const service of Object.keys(policy.services)) {
        m.deploymentsSeen.inc({ service }, 0);
        for (const outcome of ROLLBACK_OUTCOMES) m.rollbacks.inc({ service, outcome }, 0);
        for (const result of SAMPLE_RESULTS) m.samples.inc({ service, result }, 0);
        if (!recoverySeries.has(service)) m.timeToRecovery.zero({ service });
        recoverySeries.add(service);
        m.leader.inc({ service }, 0);
      }
      for (const channel of Object.keys(policy.notifications)) {
        for (const event of EVENT_KINDS) for (const result of NOTIFICATION_RESULTS) m.notifications.inc({ channel, event, result }, 0);
        m.outboxPending.inc({ channel }, 0);
        m.outboxOldestPending.inc({ channel }, 0);
      }
    },
  };
  for (const kind of SIGNAL_KINDS) m.probeDuration.zero({ kind });
  m.activeWatches.set(0);
  return m;
}
