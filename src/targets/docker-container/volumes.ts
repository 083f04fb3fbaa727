import type { ContainerInspect } from './inspect.js';

/** A mount as `docker inspect` reports it at run time. */
interface RuntimeMount {
  Type?: string;
  Name?: string;
  Destination?: string;
  RW?: boolean;
}

const ANONYMOUS_VOLUME = /^[0-9a-f]{64}$/;

function mountsOf(spec: ContainerInspect | undefined): RuntimeMount[] {
  const mounts = (spec as { Mounts?: unknown } | undefined)?.Mounts;
  return Array.isArray(mounts) ? (mounts as RuntimeMount[]) : [];
}

/**
 * How the container's own settings mount each destination: `named` when by name or path (Binds,
 * or a Mounts entry with a Source: recreated as they are), `anonymous` when a Mounts entry asks
 * Docker for a new volume there (its Source is then filled in, as Docker refuses a second mount
 * at one destination).
 */
function declaredTargets(spec: ContainerInspect): Map<string, 'named' | 'anonymous'> {
  const host = spec.HostConfig as { Binds?: unknown; Mounts?: unknown };
  const targets = new Map<string, 'named' | 'anonymous'>();
  if (Array.isArray(host.Binds)) for (const b of host.Binds) if (typeof b === 'string') targets.set(b.split(':')[1] ?? '', 'named');
  if (Array.isArray(host.Mounts)) {
    for (const m of host.Mounts as { Type?: string; Source?: string; Target?: string }[]) {
      if (m.Target) targets.set(m.Target, m.Source || m.Type !== 'volume' ? 'named' : 'anonymous');
    }
  }
  return targets;
}

/** The volumes a recreated container is given back, and what an operator should know about the choice. */
export interface CarriedVolumes {
  /** `name:/destination[:ro]`, added to the container's binds. */
  binds: string[];
  /** Volume names by destination, for the anonymous volume entries of the container's HostConfig.Mounts. */
  mountSources: Record<string, string>;
  notes: string[];
}

/**
 * Anonymous volumes (an image's `VOLUME`, `-v /data`) belong to one container: recreating a
 * container from its settings alone would give it new, empty ones, and the data would be left
 * behind in the old. So each anonymous volume of the container being recreated is handed back by
 * name: its own volume while it still exists, else the one the replaced container had at the
 * same place. Volumes the settings name already (named volumes, and the anonymous volumes Compose
 * passes on by name) are recreated as they are. No volume is ever removed.
 */
export function carryVolumes(target: ContainerInspect, replaced: ContainerInspect | undefined, volumeExists: (name: string) => boolean): CarriedVolumes {
  const declared = declaredTargets(target);
  const replacedAt = new Map(mountsOf(replaced).filter((m) => m.Type === 'volume' && m.Name && m.Destination).map((m) => [m.Destination as string, m.Name as string]));
  const binds: string[] = [];
  const mountSources: Record<string, string> = {};
  const notes: string[] = [];
  for (const m of mountsOf(target)) {
    if (m.Type !== 'volume' || !m.Name || !m.Destination || !ANONYMOUS_VOLUME.test(m.Name) || declared.get(m.Destination) === 'named') continue;
    const mode = m.RW === false ? ':ro' : '';
    const other = replacedAt.get(m.Destination);
    const destination = m.Destination;
    const give = (name: string): void => {
      if (declared.get(destination) === 'anonymous') mountSources[destination] = name;
      else binds.push(`${name}:${destination}${mode}`);
    };
    if (volumeExists(m.Name)) {
      give(m.Name);
      notes.push(other && other !== m.Name
        ? `volume ${m.Name.slice(0, 12)} at ${m.Destination} given back; the replaced container's volume ${other.slice(0, 12)} there is kept`
        : `volume ${m.Name.slice(0, 12)} at ${m.Destination} given back`);
    } else if (other && volumeExists(other)) {
      give(other);
      notes.push(`volume ${m.Name.slice(0, 12)} at ${m.Destination} is gone; the replaced container's volume ${other.slice(0, 12)} is used`);
    } else {
      notes.push(`volume ${m.Name.slice(0, 12)} at ${m.Destination} is gone; a new, empty one is created`);
    }
  }
  return { binds, mountSources, notes };
}

/** Every volume a container mounts, by name (for checking which still exist). */
export function volumeNames(...specs: (ContainerInspect | undefined)[]): string[] {
  return [...new Set(specs.flatMap((s) => mountsOf(s).filter((m) => m.Type === 'volume' && m.Name).map((m) => m.Name as string)))];
}
