import type { ServicePolicy } from '../config/policy.js';
import type { TemplateValues } from '../config/template.js';
import { versionOf } from '../model/image-ref.js';

/** Template values for running a service's queries outside a deployment, and which of them are stand-ins. */
export interface ProbeTemplate { values: TemplateValues; placeholders: (keyof TemplateValues)[] }

/**
 * `{{service}}` is the service's name; `{{container}}` the container name the service matches
 * by, when it matches by name; `{{image}}`/`{{version}}` come from `image` when given. Anything
 * else is a placeholder, so queries that filter on it will find no series.
 */
export function probeTemplate(service: ServicePolicy, given: { image?: string; container?: string } = {}): ProbeTemplate {
  const placeholders: (keyof TemplateValues)[] = [];
  const container = given.container ?? (service.match.kind === 'container' ? service.match.name : undefined);
  if (container === undefined) placeholders.push('container');
  if (given.image === undefined) placeholders.push('image', 'version');
  const image = given.image ?? `${service.name}:placeholder`;
  return {
    values: { service: service.name, container: container ?? `${service.name}-placeholder`, image, version: given.image === undefined ? 'placeholder' : versionOf(image) },
    placeholders,
  };
}

/** `service="web" container="himalytix-web" image="web:placeholder"* version="placeholder"* (* placeholder)` */
export function describeTemplate(t: ProbeTemplate): string {
  const parts = Object.entries(t.values).map(([k, v]) => `${k}=${JSON.stringify(v)}${t.placeholders.includes(k as keyof TemplateValues) ? '*' : ''}`);
  return `${parts.join(' ')}${t.placeholders.length ? ' (* placeholder: pass --image/--container for real values)' : ''}`;
}
