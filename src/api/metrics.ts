import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** rollguard's own metrics, served on /metrics. */
export interface Metrics {
  registry: Registry;
  deploymentsSeen: Counter<'service'>;
  rollbacks: Counter<'service' | 'outcome'>;
  samples: Counter<'service' | 'result'>;
  probeDuration: Histogram<'kind'>;
  activeWatches: Gauge;
  storeErrors: Counter;
  /** Writes set aside because the store rejected them as wrong in themselves (see writes-set-aside.jsonl). */
  storeWritesSetAside: Counter;
  /** rollguard_store_writes_waiting reads this at each scrape: the writes kept in memory (store unreachable or refusing). */
  writesWaiting: { read: () => number };
  notifications: Counter<'channel' | 'event' | 'result'>;
  outboxPending: Gauge<'channel'>;
  /** 1 while this instance leads the service (samples and acts for it), 0 while another instance does. */
  leader: Gauge<'service'>;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  const writesWaiting = { read: (): number => 0 };
  new Gauge({ name: 'rollguard_store_writes_waiting', help: 'Writes kept in memory because the store is unreachable or refuses writes.', registers: [registry], collect() { this.set(writesWaiting.read()); } });
  collectDefaultMetrics({ register: registry, prefix: 'rollguard_' });
  return {
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
    activeWatches: new Gauge({ name: 'rollguard_active_watches', help: 'Deployments currently inside their watch window.', registers: [registry] }),
    storeErrors: new Counter({ name: 'rollguard_store_errors_total', help: 'Attempts at a store write that failed (each retry counts).', registers: [registry] }),
    storeWritesSetAside: new Counter({ name: 'rollguard_store_writes_set_aside_total', help: 'Writes the store rejected as wrong in themselves, set aside in writes-set-aside.jsonl in the state directory.', registers: [registry] }),
    writesWaiting,
    notifications: new Counter({ name: 'rollguard_notifications_total', help: 'Notification delivery attempts by channel, event and result (sent, retry, failed).', labelNames: ['channel', 'event', 'result'], registers: [registry] }),
    outboxPending: new Gauge({ name: 'rollguard_outbox_pending', help: 'Notifications waiting to be delivered, by channel.', labelNames: ['channel'], registers: [registry] }),
    leader: new Gauge({ name: 'rollguard_leader', help: 'Whether this instance leads the service (1) or another instance does (0).', labelNames: ['service'], registers: [registry] }),
  };
}
