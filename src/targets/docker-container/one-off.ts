import type Docker from 'dockerode';
import { dockerMessage } from '../docker-message.js';
import { RevertError } from '../target.js';
import { demuxLog } from './demux.js';
import type { ContainerInspect } from './inspect.js';

/** Marks a container rollguard runs once (a down-migration): never a replica of a service. */
export const ONE_OFF_LABEL = 'io.rollguard.one-off';

/** What a one-off run printed, the tail kept when it is long. */
const OUTPUT_LIMIT = 4_000;


type Existing = { Id: string; Config: { Cmd?: string[] | null; Labels?: Record<string, string> | null }; Image: string; State: { Running: boolean; ExitCode: number } };

/**
 * Runs `command` once in a container named `name`, of `image` with the settings of `spec` (a
 * known-good replica): its entrypoint, environment, user, working directory, network mode and
 * mounts — as `docker compose run` would — but none of its labels, ports or restart policy, so it
 * is never taken for a replica and cannot clash with the running one. No shell: `command` is the
 * argv given to the entrypoint. Waits at most `timeoutMs` (then kills it).
 *
 * The container is left in place for `removeOneOff` once the caller has recorded the result: a
 * restart that cut the caller short finds it and takes its run — waiting for it when it still
 * runs — instead of starting the command a second time (a migration killed half-way and run
 * again could leave the schema in neither state). Resolves with the output when it exits 0;
 * throws RevertError with the exit code (or the timeout) and the output otherwise.
 */
export async function runOneOff(docker: Docker, spec: ContainerInspect, image: string, command: readonly string[], timeoutMs: number, name: string): Promise<{ output: string; adopted: boolean }> {
  const existing = (await docker.getContainer(name).inspect().catch(() => undefined)) as Existing | undefined;
  const same = existing && existing.Config.Labels?.[ONE_OFF_LABEL] === 'true' && JSON.stringify(existing.Config.Cmd ?? []) === JSON.stringify(command);
  if (existing && !same) {
    if (existing.State.Running) throw new RevertError(`a container named ${name} runs something else (${(existing.Config.Cmd ?? []).join(' ')}); remove it, or let it finish, and retry`);
    await docker.getContainer(existing.Id).remove({ force: true }).catch(() => {});
  }
  let container: Docker.Container;
  if (existing && same) {
    container = docker.getContainer(existing.Id);
  } else {
    const config = spec.Config as Record<string, unknown>;
    const host = (spec.HostConfig ?? {}) as Record<string, unknown>;
    const mounts = (host.Mounts as { Type?: string; Source?: string }[] | undefined)?.filter((m) => m.Type !== 'volume' || m.Source);
    try {
      container = await docker.createContainer({
        name,
        Image: image,
        Cmd: [...command],
        Entrypoint: config.Entrypoint as string[] | undefined,
        Env: config.Env as string[] | undefined,
        User: config.User as string | undefined,
        WorkingDir: config.WorkingDir as string | undefined,
        Labels: { [ONE_OFF_LABEL]: 'true' },
        HostConfig: {
          NetworkMode: host.NetworkMode as string | undefined,
          Binds: host.Binds as string[] | undefined,
          Mounts: mounts as Docker.HostConfig['Mounts'],
          ExtraHosts: host.ExtraHosts as string[] | undefined,
          Dns: host.Dns as string[] | undefined,
        },
      });
      await container.start();
    } catch (err) {
      throw new RevertError(`cannot run ${command.join(' ')} in a one-off container ${name} of ${image}: ${dockerMessage(err)}`, { cause: err });
    }
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    // A container that has exited already answers at once, with its exit code.
    const waited = container.wait() as Promise<{ StatusCode: number }>;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
    const result = await Promise.race([waited, timedOut]);
    if (result === 'timeout') await container.kill().catch(() => {});
    const raw = await container.logs({ stdout: true, stderr: true, follow: false }).catch(() => Buffer.alloc(0));
    const text = demuxLog(Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw))).trimEnd();
    const output = text.length > OUTPUT_LIMIT ? `…${text.slice(-OUTPUT_LIMIT)}` : text;
    const run = `${command.join(' ')}${same ? ' (started before rollguard restarted; its run is taken, not repeated)' : ''}`;
    if (result === 'timeout') throw new RevertError(`${run} did not finish within ${timeoutMs} ms and was killed${output ? `; its output:\n${output}` : ''}`);
    if (result.StatusCode !== 0) throw new RevertError(`${run} exited with code ${result.StatusCode}${output ? `; its output:\n${output}` : ' and printed nothing'}`);
    return { output, adopted: !!same };
  } catch (err) {
    if (err instanceof RevertError) throw err;
    throw new RevertError(`running ${command.join(' ')} in ${image} failed: ${dockerMessage(err)}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

/** Removes a one-off container once its result is recorded; gone already is fine. */
export async function removeOneOff(docker: Docker, name: string): Promise<void> {
  const found = (await docker.getContainer(name).inspect().catch(() => undefined)) as Existing | undefined;
  if (found?.Config.Labels?.[ONE_OFF_LABEL] === 'true') await docker.getContainer(found.Id).remove({ force: true }).catch(() => {});
}
