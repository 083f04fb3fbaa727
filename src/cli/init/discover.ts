import os from 'node:os';
import type Docker from 'dockerode';
import { z } from 'zod';
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
  HostConfig: z.looseObject({ NetworkMode: z.string().nullish() }),
  NetworkSettings: z.looseObject({
    Ports: z.record(z.string(), z.array(z.looseObject({ HostIp: z.string().default(''), HostPort: z.string() })).nullish()).nullish(),
  }).nullish(),
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

function published(info: Inspect): PublishedPort[] {
  const out: PublishedPort[] = [];
  for (const [key, bindings] of Object.entries(info.NetworkSettings?.Ports ?? {})) {
    const containerPort = tcpPort(key);
    if (containerPort === undefined) continue;
    for (const b of bindings ?? []) {
      const hostPort = Number(b.HostPort);
      // Docker lists a port published on every address twice, for IPv4 and IPv6.
      if (hostPort > 0 && !out.some((p) => p.containerPort === containerPort && p.hostPort === hostPort)) out.push({ containerPort, hostIp: b.HostIp, hostPort });
    }
  }
  return out;
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
    published: published(info),
    portEnv: portEnvOf(info.Config.Env ?? []),
    isRollguard: self || runsRollguard(info),
  };
}

/** The running containers of the engine, inspected; one removed meanwhile is left out. */
export async function discoverContainers(docker: Docker): Promise<DiscoveredContainer[]> {
  const listed = await docker.listContainers({ all: false });
  const found: DiscoveredContainer[] = [];
  for (const c of listed) {
    let raw: unknown;
    try {
      raw = await docker.getContainer(c.Id).inspect();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) continue;
      throw err;
    }
    found.push(toDiscovered(raw));
  }
  return found;
}
