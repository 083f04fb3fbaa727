import path from 'node:path';
import Docker from 'dockerode';
import type { Logger } from 'pino';
import { createTargets } from '../targets/index.js';
import { createMetrics } from '../api/metrics.js';
import { apiToken } from '../api/auth.js';
import { receiveAlerts } from '../api/alertmanager.js';
import { startApi } from '../api/server.js';
import { loadPolicy } from '../config/load-policy.js';
import type { Policy } from '../config/policy.js';
import { diffPolicies, isUnchanged, summarizeDiff } from '../config/policy-diff.js';
import { ContainerStateProvider } from '../signals/container-state.js';
import { HttpHealthProvider } from '../signals/http-health.js';
import { prometheusProvider } from '../signals/prometheus-client.js';
import { AlertBook } from '../signals/alertmanager/book.js';
import { AlertmanagerProvider } from '../signals/alertmanager/provider.js';
import { DEFAULT_SERVICE_LABEL } from '../config/alertmanager-schema.js';
import type { ProviderRegistry } from '../signals/registry.js';
import { Dispatcher } from '../notify/dispatcher.js';
import { createNotifiers } from '../notify/registry.js';
import { openStore } from '../store/open-store.js';
import { Leases } from '../store/leases.js';
import { Outbox } from '../store/outbox.js';
import { WriteBehind } from '../store/write-behind.js';
import { OPEN_STATES } from '../store/store.js';
import { failpoints, parseFailpoints } from './failpoints.js';
import { Announcer } from './announcer.js';
import { hostProcedures } from './procedures.js';
import { Daemon } from './daemon.js';
import { DigestScheduler } from './digest.js';
import { instanceId, LeaseLeadership, previousInstance, recordInstance, soleLeadership, type Leadership } from './leadership.js';
import { watchPolicyFile } from './policy-watcher.js';
import { claimStateDir } from './state-dir.js';

export interface RunOptions {
  policyFile: string;
  listen: string;
  dryRun: boolean;
  stateDir: string;
  databaseUrl?: string;
  /** This instance's name among several sharing one database (default: host name, pid and a random part). */
  instanceId?: string;
  /** How long a leadership lease lasts without renewal (default 6 s). */
  leaseTtlMs?: number;
  log: Logger;
  docker?: Docker;
}

/** What asked for a reload: the operator's signal, or the policy file changing on disk. */
export type ReloadTrigger = 'SIGHUP' | 'file change';

export interface RunningRollguard {
  apiUrl: string;
  daemon: Daemon;
  /**
   * Re-reads the policy file; a bad file is refused (logged with its problems) and the running
   * policy kept, resolving false. A file change that changes nothing is not applied again.
   */
  reload(trigger?: ReloadTrigger): Promise<boolean>;
  stop(): Promise<void>;
}

function setPrometheus(providers: ProviderRegistry, policy: Policy, log: Logger): void {
  providers.prometheus = policy.prometheus ? prometheusProvider(policy.prometheus, { log }) : undefined;
}

/** alertmanager signals ask alertmanager.url (the loader requires it wherever one is used). */
function setAlertmanager(providers: ProviderRegistry, policy: Policy): void {
  providers.alertmanager = policy.alertmanager?.url ? new AlertmanagerProvider(policy.alertmanager.url) : undefined;
}

/** Composes store, Docker, probes, daemon and API, and starts them. */
export async function runRollguard(opts: RunOptions): Promise<RunningRollguard> {
  const { log } = opts;
  const policy = await loadPolicy(opts.policyFile);
  // Armed before start-up so that an edit made while the store opens is not missed; it is
  // applied once rollguard runs.
  let running: RunningRollguard | undefined;
  let changedDuringStartup = false;
  const policyWatch = watchPolicyFile(opts.policyFile, {
    log,
    onChange: () => {
      if (running) void running.reload('file change');
      else changedDuringStartup = true;
    },
  });
  let started: RunningRollguard;
  try {
    started = await composeAndStart(opts, policy);
  } catch (err) {
    policyWatch.close();
    throw err;
  }
  running = {
    ...started,
    async stop() {
      policyWatch.close();
      await started.stop();
    },
  };
  if (changedDuringStartup) void running.reload('file change');
  return running;
}

async function composeAndStart(opts: RunOptions, policy: Policy): Promise<RunningRollguard> {
  const { log } = opts;
  const failpoint = failpoints(parseFailpoints(process.env.ROLLGUARD_FAILPOINTS), log);
  const stateDir = await claimStateDir(opts.stateDir);
  const store = await openStore({ databaseUrl: opts.databaseUrl, stateDir: opts.stateDir, log }).catch(async (err) => {
    await stateDir.release();
    throw err;
  });
  const docker = opts.docker ?? new Docker();
  const metrics = createMetrics();
  metrics.forPolicy(policy);
  // Alertmanager's notifications (POST /api/v1/alertmanager) are kept to be logged and shown in the
  // status only: alertmanager signals ask Alertmanager's API at every sample.
  const alerts = new AlertBook();
  const providers: ProviderRegistry = { http: new HttpHealthProvider(), container: new ContainerStateProvider(docker) };
  setPrometheus(providers, policy, log);
  setAlertmanager(providers, policy);
  let current = policy;
  const outbox = new Outbox(store.sql);
  const notifiers = createNotifiers();
  const writes = new WriteBehind(store, {
    log,
    onError: () => metrics.storeErrors.inc(),
    onSetAside: () => metrics.storeWritesSetAside.inc(),
    setAsideFile: path.join(opts.stateDir, 'writes-set-aside.jsonl'),
  });
  metrics.writesWaiting.read = () => writes.waiting;
  const announcer: Announcer = new Announcer(store, outbox, writes, () => current, () => dispatcher.kick(), log);
  const dispatcher = new Dispatcher({ outbox, notifiers, policy: () => current, log, metrics, beforeDrain: () => writes.flush(), failpoint });
  const digest = new DigestScheduler(store, announcer, log);
  const id = opts.instanceId ?? instanceId();
  // Several instances can share PostgreSQL; each service is led by one of them at a time. The
  // embedded database belongs to a single process, which leads every service.
  const leases = store.sql.kind === 'postgres' ? new Leases(store.sql) : undefined;
  const leaseLeadership = leases
    ? new LeaseLeadership({ leases, instanceId: id, services: () => Object.keys(current.services), log, gauge: metrics.leader, ttlMs: opts.leaseTtlMs })
    : undefined;
  const leadership: Leadership = leaseLeadership ?? soleLeadership(id);
  // One target per kind (targets/index.ts); each service is served by the one its match names.
  const targets = createTargets({ docker, log, watched: () => Object.values(current.services).map((s) => s.match) });
  const daemon = new Daemon(policy, {
    targets, store, writes, providers, metrics, log, dryRun: opts.dryRun, announcer, failpoint, leads: (service) => leadership.leads(service),
    procedures: hostProcedures(docker, opts.stateDir, log),
  });
  const leaderStatus = (services: Record<string, unknown>): Record<string, unknown> => {
    const lead = leadership.status(Object.keys(services));
    return Object.fromEntries(Object.entries(services).map(([name, s]) => [name, { ...(s as object), leader: lead[name]?.leader ?? false, leader_instance: lead[name]?.holder ?? null, fence: lead[name]?.fence ?? null }]));
  };
  const pageStatus = (): Record<string, unknown> => {
    const now = daemon.status();
    return { ...now, instance: id, services: leaderStatus(now.services) };
  };
  let stopping = false;
  const api = await startApi(
    opts.listen,
    {
      health: () => ({ ok: !stopping, docker: daemon.dockerConnected ? 'connected' : 'reconnecting', store: store.sql.kind }),
      status: async () => ({
        ...pageStatus(),
        notifications: await outbox.deliveryByChannel().catch((err) => ({ error: String(err) })),
        alertmanager_firing: alerts.countBy(current.alertmanager?.serviceLabel ?? DEFAULT_SERVICE_LABEL, Object.keys(current.services), new Date()),
      }),
      // The status page polls every 2 s per open page: it shows no notification counts, so it runs no query over the outbox.
      pageStatus,
      history: (q) => store.listDeployments(q),
      hold: (service, forMs, reason) => daemon.hold(service, forMs, reason),
      markMigrations: (service, image) => daemon.markMigrations(service, image),
      announceDeployment: (service, commit) => daemon.announceDeployment(service, commit),
      release: (service) => daemon.release(service),
      deployment: async (id) => {
        const deployment = await store.getDeployment(id);
        if (!deployment) return undefined;
        const [samples, decisions, actions] = await Promise.all([store.listSamples(id), store.listDecisions(id), store.listActions(id)]);
        const { rules, live } = daemon.rulesOf(deployment.service, id);
        return { deployment, samples, decisions, actions, rules, live: live || OPEN_STATES.includes(deployment.state) };
      },
      rollback: (service, opts) => daemon.rollback(service, opts),
      alertmanager: (payload) => receiveAlerts(alerts, payload, log),
    },
    metrics,
    log,
    apiToken(),
  ).catch(async (err) => {
    await store.sql.close().catch(() => {});
    await stateDir.release();
    throw err;
  });
  await stateDir.publish(api.url);
  if (leases && leaseLeadership) {
    // The previous run in this state directory is gone (the directory is ours now): its leases
    // need not be waited out, so a restart after a crash takes its services back at once.
    const previous = await previousInstance(opts.stateDir);
    if (previous && previous !== id) {
      const freed = await leases.expireHolder(previous).catch(() => []);
      if (freed.length) log.info({ previous, services: freed }, 'leases of the previous run in this state directory ended');
    }
    await recordInstance(opts.stateDir, id).catch((err) => log.warn({ err }, 'could not record the instance id in the state directory'));
    await leaseLeadership.start();
    // A service led again catches up from the store: the writes kept while it was unreachable go first.
    leaseLeadership.follow({ gained: (service) => void writes.flush().finally(() => daemon.leadershipGained(service)), lost: (service) => daemon.leadershipLost(service) });
  }
  await daemon.start();
  const soleGauge = (p: Policy): void => {
    if (leaseLeadership) return;
    metrics.leader.reset();
    for (const service of Object.keys(p.services)) metrics.leader.set({ service }, 1);
  };
  soleGauge(policy);
  dispatcher.start();
  digest.update(policy);
  log.info({ api: api.url, policy: policy.source, instance: id, leading: Object.keys(policy.services).filter((s) => leadership.leads(s)) }, 'rollguard started');

  const apply = async (trigger: ReloadTrigger): Promise<boolean> => {
    let next: Policy;
    try {
      next = await loadPolicy(opts.policyFile);
    } catch (err) {
      const problems = (err as { problems?: unknown }).problems;
      log.error({ trigger, problems, err: problems ? undefined : err }, 'policy reload refused; the running policy is kept');
      return false;
    }
    const changes = diffPolicies(current, next);
    // Editors save more often than they change anything; an explicit SIGHUP is always applied.
    if (trigger === 'file change' && isUnchanged(changes)) {
      log.debug({ trigger }, 'policy file saved without changes');
      return true;
    }
    log.info({ trigger, summary: summarizeDiff(changes), changes }, 'applying policy changes');
    setPrometheus(providers, next, log);
    setAlertmanager(providers, next);
    current = next;
    digest.update(next);
    metrics.forPolicy(next);
    soleGauge(next);
    await daemon.reload(next);
    return true;
  };

  let reloading = Promise.resolve(true);
  return {
    apiUrl: api.url,
    daemon,
    reload(trigger = 'SIGHUP') {
      // Callers do not await (signal and watch handlers): a rejection here would end the process
      // and leave every later reload chained to it.
      reloading = reloading
        .then(() => apply(trigger))
        .catch((err: unknown) => {
          log.error({ err, trigger }, 'policy reload failed part-way');
          return false;
        });
      return reloading;
    },
    async stop() {
      if (stopping) return;
      stopping = true;
      log.info('stopping: finishing in-flight work');
      await daemon.stop();
      // Renewed until in-flight work is done; released now, so another instance takes over at once.
      await leaseLeadership?.stop();
      digest.stop();
      await dispatcher.stop();
      await writes.flush().catch(() => {});
      writes.close();
      notifiers.close();
      await api.close();
      await store.sql.close().catch((err) => log.warn({ err }, 'closing the store failed'));
      await stateDir.release();
      log.info('stopped');
    },
  };
}
