import { ONE_OFF_LABEL } from './one-off.js';
import { createHash } from 'node:crypto';
import type { ContainerInspect } from './inspect.js';

/**
 * Labels an engine, an orchestrator or rollguard sets by itself. They change on every recreate
 * (Compose's container number, config hash, the container it replaced) or are instructions to
 * rollguard, so they never make a new version.
 */
const SELF_SET_LABEL_PREFIXES = ['com.docker.compose.', 'com.docker.swarm.', 'com.docker.stack.', 'rollguard.'];

/** Docker names an anonymous volume by 64 hex digits; the name changes with every container, the data with it. */
const ANONYMOUS_VOLUME = /^[0-9a-f]{64}$/;

type Loose = Record<string, unknown>;

function configOf(spec: Pick<ContainerInspect, 'Config' | 'HostConfig'>): { config: Loose; host: Loose } {
  return { config: spec.Config as Loose, host: spec.HostConfig as Loose };
}

function sortedKeys(value: unknown): string[] {
  return value && typeof value === 'object' ? Object.keys(value).sort() : [];
}

/** Binds as `source:target[:mode]`, without anonymous volumes (rollguard may hand one back under its name). */
function stableBinds(binds: unknown): string[] {
  if (!Array.isArray(binds)) return [];
  return binds.filter((b): b is string => typeof b === 'string' && !ANONYMOUS_VOLUME.test(b.split(':')[0] ?? '')).sort();
}

function stableMounts(mounts: unknown): string[] {
  if (!Array.isArray(mounts)) return [];
  return mounts
    .map((m) => m as { Type?: string; Source?: string; Target?: string; ReadOnly?: boolean })
    .filter((m) => !(m.Type === 'volume' && (!m.Source || ANONYMOUS_VOLUME.test(m.Source))))
    .map((m) => `${m.Type ?? 'bind'}:${m.Source ?? ''}:${m.Target ?? ''}:${m.ReadOnly ? 'ro' : 'rw'}`)
    .sort();
}

/**
 * What makes a version of a container besides its image: the settings an operator changes to
 * reconfigure a service — environment, command, entrypoint, user, working directory, labels
 * (not those set by Docker, Compose or Swarm themselves), mounts and ports. Same image, other
 * settings: another version. The name, host name and anything Docker fills in at run time are
 * left out.
 */
export function versionSettings(spec: Pick<ContainerInspect, 'Config' | 'HostConfig'>): Record<string, unknown> {
  const { config, host } = configOf(spec);
  const labels = Object.fromEntries(
    Object.entries((config.Labels as Record<string, string> | null) ?? {})
      .filter(([k]) => !SELF_SET_LABEL_PREFIXES.some((p) => k.startsWith(p)))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
  const portBindings = Object.fromEntries(sortedKeys(host.PortBindings).map((k) => [k, (host.PortBindings as Loose)[k]]));
  return {
    // Compose builds Env from a map, so its order can change between two recreates of one version.
    env: [...((config.Env as string[] | null) ?? [])].sort(),
    cmd: config.Cmd ?? null,
    entrypoint: config.Entrypoint ?? null,
    user: config.User ?? '',
    workingDir: config.WorkingDir ?? '',
    labels,
    volumes: sortedKeys(config.Volumes),
    exposedPorts: sortedKeys(config.ExposedPorts),
    binds: stableBinds(host.Binds),
    mounts: stableMounts(host.Mounts),
    portBindings,
  };
}

/**
 * The version a container runs: its image ID and a digest of its settings. Two containers of one
 * service run the same version exactly when their version keys are equal; a new key is a
 * deployment.
 */
export function versionKey(spec: Pick<ContainerInspect, 'Image' | 'Config' | 'HostConfig'>): string {
  const digest = createHash('sha256').update(JSON.stringify(versionSettings(spec))).digest('hex').slice(0, 12);
  return `${spec.Image}+${digest}`;
}

/** The settings that differ between two versions, by name (for logs and messages). */
export function changedSettings(from: Pick<ContainerInspect, 'Config' | 'HostConfig'>, to: Pick<ContainerInspect, 'Config' | 'HostConfig'>): string[] {
  const a = versionSettings(from);
  const b = versionSettings(to);
  return Object.keys(b).filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
}

/** What a container is to rollguard, from its labels. */
export type ContainerRole =
  | { kind: 'service' }
  /** `docker compose run`: a one-off task (a migration, a shell) — never a deployment, never known-good. */
  | { kind: 'one-off' }
  /** A Swarm task: Swarm owns it and would fight a revert of the container. */
  | { kind: 'swarm-task'; service: string };

export function containerRole(labels: Record<string, string>): ContainerRole {
  const swarmService = labels['com.docker.swarm.service.name'];
  if (swarmService !== undefined || labels['com.docker.swarm.task.id'] !== undefined) {
    return { kind: 'swarm-task', service: swarmService ?? labels['com.docker.swarm.task.name'] ?? 'unknown' };
  }
  if ((labels['com.docker.compose.oneoff'] ?? '').toLowerCase() === 'true' || labels[ONE_OFF_LABEL] === 'true') return { kind: 'one-off' };
  return { kind: 'service' };
}
