import type { DiscoveredContainer } from './discovered.js';
import { guessReadiness, readinessVerdict, type ProbeResult, type ReadinessGuess, type ReadinessVerdict } from './readiness.js';

/** How a generated service matches its replicas; the same forms as the policy's `match:`. */
export type DraftMatch =
  | { container: string }
  | { compose: { project: string; service: string } }
  | { swarm_service: string }
  | { stack: { name: string; service: string } };

/** One service of the starter policy, before it is written out. */
export interface ServiceDraft {
  /** The key under `services:` (letters, digits, _ . and -). */
  key: string;
  match: DraftMatch;
  /** What was found, for a comment: `Compose project "shop", service "web": 2 replicas (shop_web_1, shop_web_2)`. */
  found: string;
  readiness: ReadinessGuess;
  /** For an HTTP readiness guess: whether its rule reverts (it answered 200 when probed) or only notifies, and why. */
  verdict?: ReadinessVerdict;
  /** The image has a HEALTHCHECK: its result is a container signal of its own. */
  healthcheck: boolean;
  swarm: boolean;
}

export interface InitPlan {
  services: ServiceDraft[];
  /** Running containers that get no service, and why. */
  skipped: { name: string; reason: string }[];
}

const COMPOSE_PROJECT = 'com.docker.compose.project';
const COMPOSE_SERVICE = 'com.docker.compose.service';
const SWARM_SERVICE = 'com.docker.swarm.service.name';
const STACK = 'com.docker.stack.namespace';

/** A service key the policy accepts: anything but letters, digits, _ . and - becomes `-`. */
export function serviceKey(raw: string): string {
  const key = raw.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^[-.]+|[-.]+$/g, '');
  return key || 'service';
}

interface Group { kind: 'container' | 'compose' | 'swarm'; preferredKey: string; match: DraftMatch; members: DiscoveredContainer[]; what: string }

function replicaList(members: DiscoveredContainer[], noun: 'replica' | 'task'): string {
  const names = members.map((m) => m.name);
  const shown = names.length > 5 ? [...names.slice(0, 5), `… ${names.length - 5} more`] : names;
  return `${members.length} ${noun}${members.length === 1 ? '' : 's'} here (${shown.join(', ')})`;
}

/** Compose numbers its replicas; the first one stands for the service. */
function byReplicaNumber(a: DiscoveredContainer, b: DiscoveredContainer): number {
  const n = (c: DiscoveredContainer): number => Number(c.labels['com.docker.compose.container-number'] ?? Number.NaN);
  const [na, nb] = [n(a), n(b)];
  if (!Number.isNaN(na) && !Number.isNaN(nb) && na !== nb) return na - nb;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function hasHealthcheck(c: DiscoveredContainer): boolean {
  return Boolean(c.healthcheck?.length) && c.healthcheck?.[0] !== 'NONE';
}

/**
 * Groups running containers into the services of a starter policy: one per Compose service
 * (its replicas together), one per Swarm service (its tasks together), one per other container
 * (by name). Compose one-offs (`docker-compose run`) and rollguard itself get none. `probes`
 * holds what each guessed readiness URL answered when probed (by URL); a URL without one is not
 * trusted to revert.
 */
export function planServices(containers: readonly DiscoveredContainer[], probes: ReadonlyMap<string, ProbeResult> = new Map()): InitPlan {
  const groups = new Map<string, Group>();
  const skipped: InitPlan['skipped'] = [];
  for (const c of [...containers].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const l = c.labels;
    if (c.isRollguard) {
      skipped.push({ name: c.name, reason: 'rollguard itself' });
      continue;
    }
    if ((l['com.docker.compose.oneoff'] ?? '').toLowerCase() === 'true') {
      skipped.push({ name: c.name, reason: 'a Compose one-off container (docker-compose run)' });
      continue;
    }
    let id: string;
    let make: () => Omit<Group, 'members'>;
    const swarmService = l[SWARM_SERVICE];
    const project = l[COMPOSE_PROJECT];
    const composeService = l[COMPOSE_SERVICE];
    if (swarmService) {
      id = `swarm:${swarmService}`;
      const ns = l[STACK];
      const inStack = ns && swarmService.startsWith(`${ns}_`) ? swarmService.slice(ns.length + 1) : undefined;
      make = () => ({
        kind: 'swarm', preferredKey: swarmService,
        match: ns && inStack ? { stack: { name: ns, service: inStack } } : { swarm_service: swarmService },
        what: ns && inStack ? `Swarm service "${swarmService}" of stack "${ns}"` : `Swarm service "${swarmService}"`,
      });
    } else if (Object.keys(l).some((k) => k.startsWith('com.docker.swarm.'))) {
      skipped.push({ name: c.name, reason: 'a Swarm task without its service name' });
      continue;
    } else if (project && composeService) {
      id = `compose:${project}/${composeService}`;
      make = () => ({ kind: 'compose', preferredKey: composeService, match: { compose: { project, service: composeService } }, what: `Compose project "${project}", service "${composeService}"` });
    } else {
      id = `container:${c.name}`;
      make = () => ({ kind: 'container', preferredKey: c.name, match: { container: c.name }, what: `container "${c.name}" (image ${c.image.replace(/^sha256:([0-9a-f]{12})[0-9a-f]*$/, '$1')})` });
    }
    const group = groups.get(id) ?? { ...make(), members: [] };
    group.members.push(c);
    groups.set(id, group);
  }

  // A Compose service name found in several projects is told apart by its project.
  const composeNames = new Map<string, number>();
  for (const g of groups.values()) if (g.kind === 'compose') composeNames.set(g.preferredKey, (composeNames.get(g.preferredKey) ?? 0) + 1);
  const taken = new Set<string>();
  const services: ServiceDraft[] = [];
  const ordered = [...groups.values()].sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'compose' ? -1 : b.kind === 'compose' ? 1 : a.kind === 'container' ? -1 : 1));
  for (const g of ordered) {
    const raw = g.kind === 'compose' && (composeNames.get(g.preferredKey) ?? 0) > 1 && 'compose' in g.match
      ? `${g.match.compose.project}-${g.preferredKey}`
      : g.preferredKey;
    const base = serviceKey(raw);
    let key = base;
    for (let n = 2; taken.has(key); n++) key = `${base}-${n}`;
    taken.add(key);
    const members = [...g.members].sort(byReplicaNumber);
    const first = members[0] as DiscoveredContainer;
    const readiness: ReadinessGuess = g.kind === 'swarm'
      ? { kind: 'none', notes: ['a Swarm service\'s tasks run on any node: address each task with {{node_addr}} (and {{slot}}), e.g. http://{{node_addr}}:8080/ready'] }
      : guessReadiness(first);
    services.push({
      key, match: g.match, readiness,
      ...(readiness.kind === 'http' ? { verdict: readinessVerdict(readiness.url, readiness.from, probes.get(readiness.url)) } : {}),
      healthcheck: hasHealthcheck(first), swarm: g.kind === 'swarm',
      found: g.kind === 'container' ? g.what : `${g.what}: ${replicaList(members, g.kind === 'swarm' ? 'task' : 'replica')}`,
    });
  }
  services.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { services, skipped };
}

/** The readiness URLs a plan guessed, each once: what `init` probes before writing the policy. */
export function guessedUrls(plan: InitPlan): string[] {
  return [...new Set(plan.services.flatMap((s) => (s.readiness.kind === 'http' ? [s.readiness.url] : [])))];
}
