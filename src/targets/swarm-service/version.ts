import { createHash } from 'node:crypto';
import type { TaskTemplate } from './inspect.js';

/** JSON with object keys sorted, so equal values give equal text. */
function stable(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stable).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stable(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

/** What makes a version of a Swarm service: the container (image, env, command, mounts…) and its resources. A forced update is no new version. */
function versionParts(t: TaskTemplate): unknown {
  return { container: t.ContainerSpec, resources: (t as { Resources?: unknown }).Resources ?? null };
}

/** The version of a task template: equal keys, same version. */
export function templateVersion(t: TaskTemplate): string {
  return createHash('sha256').update(stable(versionParts(t))).digest('hex').slice(0, 24);
}

/** The image reference without its digest (`app:v2@sha256:…` → `app:v2`), as operators name it. */
export function imageRef(image: string): string {
  return image.replace(/@sha256:[0-9a-f]+$/, '');
}

/** The container settings that differ between two task templates, for the logs. */
export function changedTemplateSettings(from: TaskTemplate, to: TaskTemplate): string[] {
  const a = from.ContainerSpec as Record<string, unknown>;
  const b = to.ContainerSpec as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  const changed = keys.filter((k) => stable(a[k]) !== stable(b[k])).map((k) => `ContainerSpec.${k}`);
  const resources = (t: TaskTemplate): string => stable((t as { Resources?: unknown }).Resources ?? null);
  if (resources(from) !== resources(to)) changed.push('Resources');
  return changed;
}
