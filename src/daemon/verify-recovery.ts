import type { Logger } from 'pino';
import type { Metrics } from '../api/metrics.js';
import type { RecoveryCheck, ServicePolicy } from '../config/policy.js';
import type { EvidenceCriterion } from '../model/notification.js';
import { describeThreshold, recoveryStatus } from '../policy/assess.js';
import { settledCriteria } from '../policy/recovery.js';
import { SERVING_SIGNAL } from '../policy/serving.js';
import { measure, type ProviderRegistry } from '../signals/registry.js';
import type { Deployment } from '../store/store.js';
import type { Writes } from '../store/write-behind.js';
import type { DeployTarget } from '../targets/target.js';
import { recoverySignals, replicaReaders, sampleSignals, valuesOf } from './sampling.js';

/** What verifying a recovery uses of the revert's dependencies. */
export interface VerifyDeps {
  target: Pick<DeployTarget, 'replica' | 'inspectReplica' | 'replicaValues'>;
  providers: ProviderRegistry;
  metrics: Metrics;
  writes: Pick<Writes, 'insertSamples'>;
  log: Logger;
  now: () => Date;
  sleep: (ms: number) => Promise<void>;
}

/** The built-in `serving` signal, read per restored replica during verification. */
const SERVING = { kind: 'container', name: SERVING_SIGNAL, field: 'serving' } as const;

/**
 * Waits, up to the recovery timeout, for the recovery criteria to hold across the restored
 * replicas. A criterion over a range (`rate(…[5m])`) is judged only on samples whose range no
 * longer reaches back before the restore (`restoredAt`): until then its value still mixes in the
 * replaced version and says nothing about the restored one, so the timeout counts from then.
 * Each replica's `serving` state is read along the way; the ones that served throughout are
 * returned, so a failed attempt does not recreate them.
 */
export async function verifyRecovery(
  deps: VerifyDeps,
  service: ServicePolicy,
  deployment: Deployment,
  attempt: number,
  containerIds: string[],
  template: { service: string; container: string; image: string; version: string },
  restoredAt: number,
): Promise<{ met: boolean; detail: string; started: Date; criteria: EvidenceCriterion[]; serving: Set<string> }> {
  const started = deps.now();
  const marginMs = Math.max(service.intervalMs, 1_000);
  const { allSettledAt } = settledCriteria(service.recovery, service.signals, restoredAt, marginMs, started.getTime());
  const deadline = Math.max(started.getTime(), allSettledAt) + service.recoveryTimeoutMs;
  if (allSettledAt > started.getTime()) {
    deps.log.info({ service: service.name, deployment: deployment.id, judgedFrom: new Date(allSettledAt).toISOString() }, 'recovery criteria read over a range: judged once their data describes the restored version alone');
  }
  const signals = recoverySignals(service);
  let detail = `no recovery criteria configured; ${containerIds.length > 1 ? `${containerIds.length} containers` : 'container'} started`;
  let criteria: EvidenceCriterion[] = [];
  const notServing = new Set<string>();
  const out = (met: boolean): { met: boolean; detail: string; started: Date; criteria: EvidenceCriterion[]; serving: Set<string> } =>
    ({ met, detail, started, criteria, serving: new Set(containerIds.filter((id) => !notServing.has(id))) });
  for (;;) {
    for (const id of containerIds) {
      const running = await deps.target.replica(id).then((r) => r?.running === true, () => false);
      if (!running) {
        notServing.add(id);
        detail = `the known-good container ${id.slice(0, 12)} is not running`;
        return out(false);
      }
    }
    if (!signals.length) return out(true);
    const at = deps.now();
    const ctx = { template, containerId: containerIds[0] ?? '', containerIds, at, ...replicaReaders(deps.target) };
    const [measurements, servingNow] = await Promise.all([
      sampleSignals(deps.providers, deps.metrics, service, signals, ctx),
      Promise.all(containerIds.map(async (id) => ({ id, m: await measure(deps.providers, SERVING, { ...ctx, containerId: id, containerIds: [id] }) }))),
    ]);
    for (const { id, m } of servingNow) if (m.value === 0) notServing.add(id);
    const { settled, waiting } = settledCriteria(service.recovery, service.signals, restoredAt, marginMs, at.getTime());
    const status = recoveryStatus(settled, valuesOf(measurements));
    const holds = (c: RecoveryCheck): boolean => settled.includes(c) && !status.unmet.some((u) => u.check === c);
    const waitingFor = (name: string): number | undefined => waiting.find((w) => w.check.signal === name)?.from;
    criteria = service.recovery.map((c) => ({ signal: c.signal, threshold: describeThreshold(c), measured: measurements[c.signal]?.value ?? null, holds: holds(c) }));
    await deps.writes
      .insertSamples(signals.map((name) => {
        const m = measurements[name] as { value: number | null; detail?: string; latencyMs: number };
        const from = waitingFor(name);
        if (from !== undefined) {
          const why = `its range still reaches back before the restore; judged from ${new Date(from).toISOString()}`;
          return { deployment_id: deployment.id, stage: 'recovery', signal: name, taken_at: at, value: m.value, result: 'no-data', rules: {}, detail: m.detail ? `${m.detail}; ${why}` : why, latency_ms: m.latencyMs };
        }
        const ok = !status.unmet.some((u) => u.check.signal === name);
        return { deployment_id: deployment.id, stage: 'recovery', signal: name, taken_at: at, value: m.value, result: m.value === null ? 'no-data' : ok ? 'ok' : 'breach', rules: {}, detail: m.detail ?? null, latency_ms: m.latencyMs };
      }));
    const met = status.met && waiting.length === 0;
    const unmet = [
      ...status.unmet.map((u) => `${u.check.signal} ${describeThreshold(u.check)} (got ${u.value ?? 'no data'})`),
      ...waiting.map((w) => `${w.check.signal} ${describeThreshold(w.check)} (not judged yet: its range reaches back before the restore until ${new Date(w.from).toISOString()})`),
    ];
    detail = met
      ? `recovered: ${service.recovery.map((c) => `${c.signal} ${describeThreshold(c)} (${measurements[c.signal]?.value})`).join(', ')}`
      : `attempt ${attempt}: not met: ${unmet.join(', ')}`;
    if (met) return out(true);
    if (deps.now().getTime() + service.intervalMs > deadline) return out(false);
    await deps.sleep(service.intervalMs);
  }
}
