import type { ImageDefaults } from './rebase.js';
import type Docker from 'dockerode';
import { dockerMessage } from '../docker-message.js';
import { RevertError } from '../target.js';
import { containerName, inspectContainer, type ContainerInspect } from './inspect.js';
import { versionKey } from './version.js';
import { carryVolumes, volumeNames, type CarriedVolumes } from './volumes.js';


type EndpointSettings = { IPAMConfig?: unknown; Links?: unknown; Aliases?: string[] | null; DriverOpts?: unknown };


/**
 * Builds the create options that reproduce a container from its inspect output: same name,
 * config, labels (so Compose still recognises it), env, mounts, restart policy, health check
 * and networks — on the given image.
 */
export function recreateOptions(spec: ContainerInspect, image: string, volumes: Pick<CarriedVolumes, 'binds' | 'mountSources'> = { binds: [], mountSources: {} }): { create: Docker.ContainerCreateOptions; extraNetworks: [string, EndpointSettings][] } {
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
      HostConfig: withVolumes(spec.HostConfig as Docker.HostConfig, volumes),
      NetworkingConfig: first ? { EndpointsConfig: { [first[0]]: first[1] as Docker.EndpointSettings } } : undefined,
    },
    extraNetworks: rest,
  };
}

/** The host config with the volumes handed back: extra binds, and names for anonymous Mounts entries. */
function withVolumes(host: Docker.HostConfig, volumes: Pick<CarriedVolumes, 'binds' | 'mountSources'>): Docker.HostConfig {
  if (!volumes.binds.length && !Object.keys(volumes.mountSources).length) return host;
  const mounts = (host.Mounts as { Type?: string; Source?: string; Target?: string }[] | undefined)?.map((m) =>
    m.Type === 'volume' && !m.Source && m.Target && volumes.mountSources[m.Target] ? { ...m, Source: volumes.mountSources[m.Target] } : m);
  return { ...host, Binds: [...(host.Binds ?? []), ...volumes.binds], ...(mounts ? { Mounts: mounts as Docker.HostConfig['Mounts'] } : {}) };
}

/** The only code that changes containers. Each method is one recorded step of a revert. */
export class ContainerReverter {
  constructor(private readonly docker: Docker) {}

  /** An image by tag or ID, for a rollback by hand to it; RevertError when it is not on the host. */
  async findImage(image: string): Promise<{ Id: string; RepoTags?: string[]; Config?: ImageDefaults }> {
    try {
      return (await this.docker.getImage(image).inspect()) as { Id: string; RepoTags?: string[]; Config?: ImageDefaults };
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) throw new RevertError(`image ${image} is not on this host (pull or build it first); nothing was changed`);
      throw new RevertError(`cannot inspect image ${image}: ${dockerMessage(err)}`, { cause: err });
    }
  }

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
   * of the way. Safe to repeat: a container already stopped or already under `parkedName` is left
   * so. A container run with `--rm` is removed by Docker as it stops: that is reported as
   * `removed`, and its spec is what can put it back.
   */
  async park(containerId: string, parkedName: string, stopTimeoutMs: number): Promise<'parked' | 'removed'> {
    const container = this.docker.getContainer(containerId);
    try {
      const before = await inspectContainer(this.docker, containerId);
      const autoRemove = (before.HostConfig as { AutoRemove?: boolean }).AutoRemove === true;
      // Docker refuses a restart policy on an --rm container, which never restarts anyway.
      if (!autoRemove) await container.update({ RestartPolicy: { Name: 'no', MaximumRetryCount: 0 } });
      // Stopped first: Docker cannot rename a container caught restarting in a crash loop.
      await this.stop(containerId, stopTimeoutMs, autoRemove);
      if (autoRemove && (await this.waitGone(containerId, 10_000))) return 'removed';
      if (containerName(before) !== parkedName) await container.rename({ name: parkedName });
      return 'parked';
    } catch (err) {
      throw new RevertError(`cannot stop and set aside container ${containerId.slice(0, 12)}: ${dockerMessage(err)}`, { cause: err });
    }
  }

  /**
   * Stops a container with the grace. One caught between two restarts of a crash loop can make
   * Docker fail the stop (its network sandbox is gone): with its restart policy already `no`, it
   * settles stopped within a moment, so the stop is retried until it is not running.
   */
  private async stop(containerId: string, stopTimeoutMs: number, autoRemove: boolean): Promise<void> {
    const container = this.docker.getContainer(containerId);
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await container.stop({ t: Math.ceil(stopTimeoutMs / 1000) });
        return;
      } catch (err) {
        const code = (err as { statusCode?: number }).statusCode;
        if (code === 304 || (autoRemove && code === 404)) return; // 304: already stopped
        const now = await this.find(containerId);
        if (!now) {
          if (autoRemove) return;
          throw err;
        }
        if (!now.State.Running && !now.State.Restarting) return;
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** Waits until Docker has removed an --rm container it stopped. */
  private async waitGone(containerId: string, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!(await this.find(containerId))) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  }

  /**
   * Creates and starts a container from `spec` on `image` — the known-good version, or a removed
   * bad one put back — giving back the anonymous volumes it had (see carryVolumes; `replaced` is
   * the container it takes over from). A container that fails to start is removed. When the name
   * is held by a stopped container of exactly this version, that one is started instead; a name
   * held by anything else is left alone and reported.
   */
  async startFrom(spec: ContainerInspect, image: string, replaced?: ContainerInspect): Promise<{ id: string; notes: string[] }> {
    const existing = new Set<string>();
    for (const name of volumeNames(spec, replaced)) {
      if (await this.docker.getVolume(name).inspect().then(() => true, () => false)) existing.add(name);
    }
    const volumes = carryVolumes(spec, replaced, (name) => existing.has(name));
    const { create, extraNetworks } = recreateOptions(spec, image, volumes);
    let created: Docker.Container;
    try {
      created = await this.docker.createContainer(create);
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 409) return { id: await this.startNameHolder(spec, create.name as string), notes: volumes.notes };
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
    return { id: created.id, notes: volumes.notes };
  }

  /** The name is taken: a stopped container of the wanted version is started; anything else is not rollguard's to remove. */
  private async startNameHolder(spec: ContainerInspect, name: string): Promise<string> {
    const holder = await this.find(name);
    if (!holder) throw new RevertError(`cannot create ${name}: the name was taken, and then freed, while reverting`);
    const what = `container ${holder.Id.slice(0, 12)} (${holder.Config.Image}, ${holder.State.Running ? 'running' : 'stopped'})`;
    if (holder.State.Running || versionKey(holder) !== versionKey(spec)) {
      throw new RevertError(`cannot create ${name}: the name is held by ${what}, which rollguard did not create; it was left alone`);
    }
    try {
      await this.docker.getContainer(holder.Id).start();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 304) throw new RevertError(`cannot start the stopped known-good ${what}: ${dockerMessage(err)}`, { cause: err });
    }
    return holder.Id;
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

  /**
   * Puts a parked container back under its own name with its own restart policy and starts it. A
   * container Docker removed as it stopped (`--rm`) is created again from its spec. Returns the
   * ID of the container now running.
   */
  async restore(containerId: string, spec: ContainerInspect): Promise<string> {
    if (!(await this.find(containerId))) {
      const { id } = await this.startFrom(spec, spec.Image);
      return id;
    }
    const container = this.docker.getContainer(containerId);
    const host = spec.HostConfig as { RestartPolicy?: { Name: string; MaximumRetryCount?: number }; AutoRemove?: boolean };
    try {
      await container.rename({ name: containerName(spec) });
      if (host.RestartPolicy && !host.AutoRemove) await container.update({ RestartPolicy: host.RestartPolicy });
      await container.start().catch((err: { statusCode?: number }) => {
        if (err.statusCode !== 304) throw err;
      });
    } catch (err) {
      throw new RevertError(`cannot restore container ${containerId.slice(0, 12)}: ${dockerMessage(err)}`, { cause: err });
    }
    return containerId;
  }
}
