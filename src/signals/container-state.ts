import type Docker from 'dockerode';
import type { ContainerSignal } from '../config/policy.js';
import { inspectContainer } from '../targets/docker-container/inspect.js';
import type { ReplicaView } from '../model/replica-view.js';
import { errorText, type Measurement, type ProbeContext, type SignalProvider } from './provider.js';

/** Exit codes of a container stopped on request (`docker stop`): 0 or 143 (SIGTERM), or 137 when killed after the grace. */
const STOPPED_ON_REQUEST = new Set([0, 137, 143]);

/**
 * Whether a container serves: running, not restarting, not OOM-killed, and not restarted since
 * `restartsBefore`. A container that exited with a crash's code does not; one that exited as
 * `docker stop` leaves it (an operator's stop, not a failure of the version) is no data.
 */
export function servingVerdict(c: Pick<ReplicaView, 'RestartCount' | 'State'>, restartsBefore: number): { value: number | null; detail?: string } {
  const state = c.State;
  if (state.OOMKilled) return { value: 0, detail: 'OOM-killed' };
  if ((state as { Paused?: boolean }).Paused) return { value: null, detail: 'paused (docker pause); not counted' };
  if (state.Restarting) return { value: 0, detail: `restarting (restarted ${c.RestartCount} times)` };
  if (!state.Running) {
    const code = state.ExitCode ?? -1;
    return STOPPED_ON_REQUEST.has(code) ? { value: null, detail: `stopped (exit code ${code}, as on docker stop); not counted` } : { value: 0, detail: `exited with code ${code}` };
  }
  if (c.RestartCount > restartsBefore) return { value: 0, detail: `restarted ${c.RestartCount - restartsBefore} time(s) since the last sample` };
  return { value: 1 };
}

/** Reads the service container's state from Docker: restart_count, oom_killed, running, health, serving. */
export class ContainerStateProvider implements SignalProvider<ContainerSignal> {
  readonly kind = 'container';
  /** Each container's restart count at its last `serving` sample: a higher count is a restart since. */
  private readonly restarts = new Map<string, number>();

  constructor(private readonly docker: Docker) {}

  /** Whether the Docker engine answers `/_ping` within `timeoutMs`; when it does not, why. */
  async engineReachable(timeoutMs = 1_000): Promise<true | string> {
    try {
      // dockerode takes an abortSignal here; its types do not say so.
      const ping = this.docker.ping.bind(this.docker) as unknown as (opts: { abortSignal: AbortSignal }) => Promise<unknown>;
      await ping({ abortSignal: AbortSignal.timeout(timeoutMs) });
      return true;
    } catch (err) {
      return errorText(err);
    }
  }

  /**
   * Reads the field of every replica (`ctx.containerIds`, else the one container) and keeps the
   * worst: the lowest of running, health and serving, the highest of restart_count and oom_killed.
   * Replicas without data are passed over; none with data is no data.
   */
  async measure(signal: ContainerSignal, ctx: ProbeContext): Promise<Measurement> {
    const ids = ctx.containerIds?.length ? ctx.containerIds : [ctx.containerId];
    const read = ctx.inspectReplica ?? ((id: string) => this.inspect(id));
    if (ids.length === 1) return this.measureOne(signal, ids[0] as string, read);
    const started = performance.now();
    const all = await Promise.all(ids.map(async (id) => ({ id, m: await this.measureOne(signal, id, read) })));
    const higherIsWorse = signal.field === 'restart_count' || signal.field === 'oom_killed';
    let worst: { id: string; m: Measurement } | undefined;
    for (const x of all) {
      if (x.m.value === null) continue;
      if (!worst || (higherIsWorse ? x.m.value > (worst.m.value as number) : x.m.value < (worst.m.value as number))) worst = x;
    }
    const latencyMs = performance.now() - started;
    if (!worst) return { value: null, detail: `no replica has data (${all.map((x) => `${x.id.slice(0, 12)}: ${x.m.detail ?? 'no data'}`).join('; ')})`, latencyMs };
    return { value: worst.m.value, detail: worst.m.detail ? `${worst.id.slice(0, 12)}: ${worst.m.detail}` : undefined, latencyMs };
  }

  /** A container's state as Docker reports it; undefined when it is gone. */
  private async inspect(id: string): Promise<ReplicaView | undefined> {
    try {
      return await inspectContainer(this.docker, id);
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return undefined;
      throw err;
    }
  }

  private async measureOne(signal: ContainerSignal, containerId: string, read: (id: string) => Promise<ReplicaView | undefined>): Promise<Measurement> {
    const started = performance.now();
    const done = (value: number | null, detail?: string): Measurement => ({ value, detail, latencyMs: performance.now() - started });
    let c;
    try {
      c = await read(containerId);
    } catch (err) {
      return done(null, `Docker inspect failed: ${errorText(err)}`);
    }
    if (!c) {
      this.restarts.delete(containerId);
      return signal.field === 'running' ? done(0, 'container is gone') : done(null, 'container is gone');
    }
    switch (signal.field) {
      case 'restart_count':
        return done(c.RestartCount);
      case 'oom_killed':
        return done(c.State.OOMKilled ? 1 : 0);
      case 'running':
        return done(c.State.Running && !c.State.Restarting ? 1 : 0, c.State.Running ? undefined : 'container is not running');
      case 'serving': {
        const verdict = servingVerdict(c, this.restarts.get(c.Id) ?? 0);
        if (this.restarts.size > 10_000) this.restarts.clear();
        this.restarts.set(c.Id, c.RestartCount);
        return done(verdict.value, verdict.detail);
      }
      case 'health': {
        const status = c.State.Health?.Status;
        if (!status || status === 'none') return done(null, 'container has no HEALTHCHECK');
        if (status === 'starting') return done(null, 'health check still starting');
        return done(status === 'healthy' ? 1 : 0, `health is ${status}`);
      }
    }
  }
}
