import type { Policy, ServiceMatch, ServicePolicy } from '../../config/policy.js';

const COMPOSE_PROJECT = 'com.docker.compose.project';
const COMPOSE_SERVICE = 'com.docker.compose.service';

export function matches(match: ServiceMatch, name: string, labels: Record<string, string>): boolean {
  switch (match.kind) {
    case 'container':
      return name === match.name;
    case 'compose':
      return labels[COMPOSE_PROJECT] === match.project && labels[COMPOSE_SERVICE] === match.service;
    case 'labels':
      return Object.entries(match.labels).every(([k, v]) => labels[k] === v);
    case 'swarm':
    case 'git':
      // A Swarm service's tasks are the Swarm target's, a work tree the git target's: never matched as plain containers.
      return false;
  }
}

/** The services of the policy a container belongs to (normally one; more is a policy mistake the caller reports). */
export function servicesFor(policy: Policy, name: string, labels: Record<string, string>): ServicePolicy[] {
  return Object.values(policy.services).filter((svc) => matches(svc.match, name, labels));
}
