import type Docker from 'dockerode';
import type { ContainerSignal } from '../config/policy.js';
import { inspectContainer } from '../targets/docker-container/inspect.js';
import { errorText, type Measurement, type ProbeContext, type SignalProvider } from './provider.js';

/** Reads the service container's state from Docker: restart_count, oom_killed, running, health. */
export class ContainerStateProvider implements SignalProvider<ContainerSignal> {
  readonly kind = 'container';

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

  async measure(signal: ContainerSignal, ctx: ProbeContext): Promise<Measurement> {
    const started = performance.now();
    const done = (value: number | null, detail?: string): Measurement => ({ value, detail, latencyMs: performance.now() - started });
    let c;
    try {
      c = await inspectContainer(this.docker, ctx.containerId);
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) {
        return signal.field === 'running' ? done(0, 'container is gone') : done(null, 'container is gone');
      }
      return done(null, `Docker inspect failed: ${errorText(err)}`);
    }
    switch (signal.field) {
      case 'restart_count':
        return done(c.RestartCount);
      case 'oom_killed':
        return done(c.State.OOMKilled ? 1 : 0);
      case 'running':
        return done(c.State.Running && !c.State.Restarting ? 1 : 0, c.State.Running ? undefined : 'container is not running');
      case 'health': {
        const status = c.State.Health?.Status;
        if (!status || status === 'none') return done(null, 'container has no HEALTHCHECK');
        if (status === 'starting') return done(null, 'health check still starting');
        return done(status === 'healthy' ? 1 : 0, `health is ${status}`);
      }
    }
  }
}
