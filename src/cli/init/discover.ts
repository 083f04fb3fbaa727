import os from 'node:os';
import type Docker from 'dockerode';
import { z } from 'zod';
import { DockerUnreachableError, dockerEndpoint } from '../docker-reachable.js';
import { PORT_ENV_NAME, type DiscoveredContainer, type PublishedPort } from './discovered.js';

/** The part of `docker inspect` that `init` reads, checked where it enters. */
const inspectSchema = z.looseObject({
  Id: z.string(),
  Name: z.string(),
  Config: z.looseObject({
    Image: z.string().default(''),
    Labels: z.record(z.string(), z.string()).nullish(),
    Env: z.array(z.string()).nullish(),
    ExposedPorts: z.record(z.string(), z.unknown()).nullish(),
    Healthcheck: z.looseObject({ Test: z.array(z.string()).nullish() }).nullish(),
    Entrypoint: z.union([z.array(z.string()), z.string()]).nullish(),
    Cmd: z.union([z.array(z.string()), z.string()]).nullish(),
  }),
  HostConfig: z.looseObject({
    NetworkMode: z.string().nullish(),
    // The ports as asked for (`-p`, Compose `ports:`), not as assigned: an assigned port that was
    // not asked for (`-P`, `-p 8080`, `ports: ["8080"]`) changes at every recreate.
    PortBindings: z.record(z.string(), z.array(z.looseObject({ HostIp: z.string().nullish(), HostPort: z.string().nullish() })).nullish()).nullish(),
    PublishAllPorts: z.boolean().nullish(),
  }),
});
type Inspect = z.output<typeof inspectSchema>;

/** `8080/tcp` → 8080; other protocols are not HTTP. */
function tcpPort(key: string): number | undefined {
  const m = /^(\d+)\/tcp$/.exec(key);
  const port = m ? Number(m[1]) : Number.NaN;
  return port > 0 && port < 65536 ? port : undefined;
}

function portEnvOf(env: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const entry of env) {
    const eq = entry.indexOf('=');
    const name = entry.slice(0, eq);
    if (eq < 1 || !PORT_ENV_NAME.test(name)) continue;
    const value = entry.slice(eq + 1);
    const port = /^\d{1,5}$/.test(value) ? Number(value) : 0;
    if (port > 0 && port < 65536) out[name] = port;
  }
  return out;
}

/** A host port asked for by number: not empty, not 0, not a range Docker picks from. */
function fixedHostPort(requested: string | null | undefined): number | undefined {
  const port = /^\d{1,5}$/.test(requested ?? '') ? Number(requested) : 0;
  return port > 0 && port < 65536 ? port : undefined;
}

/**
 * The TCP ports published on a host port fixed in the container's configuration, and those
 * published on one Docker picks at each start (`-P`, `-p 8080`, Compose `ports: ["8080"]`): a URL on
 * the latter stops working at the first recreate, so no readiness URL is guessed from it.
 */
function publishedPorts(info: Inspect): { published: PublishedPort[]; randomlyPublished: number[] } {
  const published: PublishedPort[] = [];
  const random = new Set<number>();
  const bound = new Set<number>();
  for (const [key, bindings] of Object.entries(info.HostConfig.PortBindings ?? {})) {
    const containerPort = tcpPort(key);
    if (containerPort === undefined) continue;
    for (const b of bindings ?? []) {
      bound.add(containerPort);
      const hostPort = fixedHostPort(b.HostPort);
      if (hostPort === undefined) random.add(containerPort);
      // A port published on IPv4 and IPv6 alike is one address for the host's clients.
      else if (!published.some((p) => p.containerPort === containerPort && p.hostPort === hostPort)) published.push({ containerPort, hostIp: b.HostIp ?? '', hostPort });
    }
  }
  // `-P` publishes every exposed port not bound otherwise, each on a port Docker picks.
  if (info.HostConfig.PublishAllPorts) {
    for (const key of Object.keys(info.Config.ExposedPorts ?? {})) {
      const p = tcpPort(key);
      if (p !== undefined && !bound.has(p)) random.add(p);
    }
  }
  const fixed = new Set(published.map((p) => p.containerPort));
  return { published, randomlyPublished: [...random].filter((p) => !fixed.has(p)).sort((a, b) => a - b) };
}

/** A container running `rollguard run` (rollguard's image, or a checkout's `dist/cli/main.js`). */
function runsRollguard(info: Inspect): boolean {
  const argv = [info.Config.Entrypoint ?? [], info.Config.Cmd ?? []].flat().join(' ');
  return /(?:^|[/\s])(?:rollguard|dist\/cli\/main\.js)\s+(?:\S+\s+)*run(?:\s|$)/.test(argv);
}

/** Turns one `docker inspect` answer into what the policy generation reads. */
export function toDiscovered(raw: unknown, selfHostname = os.hostname()): DiscoveredContainer {
  const info = inspectSchema.parse(raw);
  const test = info.Config.Healthcheck?.Test ?? undefined;
  // Inside a container the host name is the container ID's first 12 digits (unless set otherwise).
  const self = /^[0-9a-f]{12}$/.test(selfHostname) && info.Id.startsWith(selfHostname);
  return {
    id: info.Id,
    name: info.Name.replace(/^\//, ''),
    image: info.Config.Image,
    labels: info.Config.Labels ?? {},
    ...(test ? { healthcheck: test } : {}),
    networkMode: info.HostConfig.NetworkMode ?? 'default',
    exposedPorts: Object.keys(info.Config.ExposedPorts ?? {}).map(tcpPort).filter((p): p is number => p !== undefined).sort((a, b) => a - b),
    ...publishedPorts(info),
    portEnv: portEnvOf(info.Config.Env ?? []),
    isRollguard: self || runsRollguard(info),
  };
}

/** How long one list or inspect call of the engine may take. */
export const DISCOVERY_CALL_TIMEOUT_MS = 10_000;

async function bounded<T>(docker: Docker, what: string, timeoutMs: number, call: (abortSignal: AbortSignal) => Promise<T>): Promise<T> {
  const abortSignal = AbortSignal.timeout(timeoutMs);
  try {
    return await call(abortSignal);
  } catch (err) {
    if (!abortSignal.aborted) throw err;
    const endpoint = await dockerEndpoint(docker);
    throw new DockerUnreachableError(endpoint, undefined, `the Docker engine at ${endpoint} did not answer ${what} within ${timeoutMs} ms (engine hung?); nothing was written. Check the engine (systemctl status docker; journalctl -u docker).`);
  }
}

/** The running containers of the engine, inspected (each call bounded); one removed meanwhile is left out. */
export async function discoverContainers(docker: Docker, timeoutMs = DISCOVERY_CALL_TIMEOUT_MS): Promise<DiscoveredContainer[]> {
  const listed = await bounded(docker, 'the list of containers', timeoutMs, (abortSignal) => docker.listContainers({ all: false, abortSignal }));
  const found: DiscoveredContainer[] = [];
  for (const c of listed) {
    let raw: unknown;
    try {
      raw = await bounded(docker, `the inspect of container ${c.Id.slice(0, 12)}`, timeoutMs, (abortSignal) => docker.getContainer(c.Id).inspect({ abortSignal }));
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) continue;
      throw err;
    }
    found.push(toDiscovered(raw));
  }
  return found;
}
