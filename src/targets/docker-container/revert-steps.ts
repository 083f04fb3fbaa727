import type Docker from 'dockerode';
import { containerName, inspectContainer, type ContainerInspect } from './inspect.js';

/** A revert step that Docker refused; the message says what and why. */
export class RevertError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RevertError';
  }
}

type EndpointSettings = { IPAMConfig?: unknown; Links?: unknown; Aliases?: string[] | null; DriverOpts?: unknown };

function dockerMessage(err: unknown): string {
  const e = err as { json?: { message?: string }; message?: string };
  return e?.json?.message ?? e?.message ?? String(err);
}

/**
 * Builds the create options that reproduce a container from its inspect output: same name,
 * config, labels (so Compose still recognises it), env, mounts, restart policy, health check
 * and networks — on the given image.
 */
export function recreateOptions(spec: ContainerInspect, image: string): { create: Docker.ContainerCreateOptions; extraNetworks: [string, EndpointSettings][] } {
  const shortOldId = spec.Id.slice(0, 12);
  const config: Record<string, unknown> = { ...spec.Config };
  if (config.Hostname === shortOldId) delete config.Hostname;
  const networks = Object.entries(spec.NetworkSettings.Networks ?? {}).map(([name, raw]): [string, EndpointSettings] => {
    const ep = raw as EndpointSettings;
    return [name, { IPAMConfig: ep.IPAMConfig ?? undefined, Links: ep.Links ?? undefined, DriverOpts: ep.DriverOpts ?? undefined, Aliases: (ep.Aliases ?? []).filter((a) => a !== shortOldId) }];
  });
  const [first, ...rest] = networks;
  return {
    create: {
      ...(config as Docker.ContainerCreateOptions),
      name: containerName(spec),
      Image: image,
      HostConfig: spec.HostConfig as Docker.HostConfig,
      NetworkingConfig: first ? { EndpointsConfig: { [first[0]]: first[1] as Docker.EndpointSettings } } : undefined,
    },
    extraNetworks: rest,
  };
}

/** The only code that changes containers. Each method is one recorded step of a revert. */
export class ContainerReverter {
  constructor(private readonly docker: Docker) {}

  /**
   * Confirms the known-good image is still on this host and returns what to create the container
   * from: its tag when the tag still points at that image, else the image ID itself.
   */
  async resolveImage(imageId: string, imageRef: string): Promise<string> {
    try {
      await this.docker.getImage(imageId).inspect();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) {
        throw new RevertError(`known-good image ${imageId} (${imageRef}) is no longer on this host; nothing was changed`);
      }
      throw new RevertError(`cannot inspect known-good image ${imageId}: ${dockerMessage(err)}`, { cause: err });
    }
    try {
      const tagged = (await this.docker.getImage(imageRef).inspect()) as { Id: string };
      if (tagged.Id === imageId) return imageRef;
    } catch {
      // The tag is gone or points elsewhere: the image ID is the exact known-good version.
    }
    return imageId;
  }

  /**
   * Stops the bad container with the policy's grace, keeps it from restarting, and renames it out
   * of the way. Safe to repeat: a container already stopped or already under `parkedName` is left so.
   */
  async park(containerId: string, parkedName: string, stopTimeoutMs: number): Promise<void> {
    const container = this.docker.getContainer(containerId);
    try {
      await container.update({ RestartPolicy: { Name: 'no', MaximumRetryCount: 0 } });
      await container.stop({ t: Math.ceil(stopTimeoutMs / 1000) }).catch((err: { statusCode?: number }) => {
        if (err.statusCode !== 304) throw err; // 304: already stopped
      });
      const current = containerName(await inspectContainer(this.docker, containerId));
      if (current !== parkedName) await container.rename({ name: parkedName });
    } catch (err) {
      throw new RevertError(`cannot stop and set aside container ${containerId.slice(0, 12)}: ${dockerMessage(err)}`, { cause: err });
    }
  }

  /** Creates and starts the known-good container; returns its ID. A container that fails to start is removed. */
  async startFrom(spec: ContainerInspect, image: string): Promise<string> {
    const { create, extraNetworks } = recreateOptions(spec, image);
    let created: Docker.Container;
    try {
      created = await this.docker.createContainer(create);
    } catch (err) {
      throw new RevertError(`cannot create ${create.name} from ${image}: ${dockerMessage(err)}`, { cause: err });
    }
    try {
      for (const [network, endpoint] of extraNetworks) {
        await this.docker.getNetwork(network).connect({ Container: created.id, EndpointConfig: endpoint as Docker.EndpointSettings });
      }
      await created.start();
    } catch (err) {
      await created.remove({ force: true }).catch(() => {});
      throw new RevertError(`cannot start ${create.name} from ${image}: ${dockerMessage(err)}`, { cause: err });
    }
    return created.id;
  }

  async inspect(containerId: string): Promise<ContainerInspect> {
    return inspectContainer(this.docker, containerId);
  }

  /** The container with this ID or name, or undefined when there is none. */
  async find(idOrName: string): Promise<ContainerInspect | undefined> {
    try {
      return await inspectContainer(this.docker, idOrName);
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return undefined;
      throw new RevertError(`cannot inspect container ${idOrName}: ${dockerMessage(err)}`, { cause: err });
    }
  }

  async remove(containerId: string): Promise<void> {
    try {
      await this.docker.getContainer(containerId).remove({ force: true });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return;
      throw new RevertError(`cannot remove container ${containerId.slice(0, 12)}: ${dockerMessage(err)}`, { cause: err });
    }
  }

  /** Puts a parked container back under its own name with its own restart policy and starts it. */
  async restore(containerId: string, spec: ContainerInspect): Promise<void> {
    const container = this.docker.getContainer(containerId);
    const restartPolicy = (spec.HostConfig as { RestartPolicy?: { Name: string; MaximumRetryCount?: number } }).RestartPolicy;
    try {
      await container.rename({ name: containerName(spec) });
      if (restartPolicy) await container.update({ RestartPolicy: restartPolicy });
      await container.start().catch((err: { statusCode?: number }) => {
        if (err.statusCode !== 304) throw err;
      });
    } catch (err) {
      throw new RevertError(`cannot restore container ${containerId.slice(0, 12)}: ${dockerMessage(err)}`, { cause: err });
    }
  }
}
