import type Docker from 'dockerode';
import { DEMO_LABEL } from './cleanup.js';

/** The demo will not run here; the message says why, and nothing was changed. */
export class DemoRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DemoRefused';
  }
}

/**
 * Why the demo cannot work against this engine, or undefined when it can. The demo's app runs
 * with host networking and is probed at 127.0.0.1: that is this host's loopback only when the
 * engine runs here, as root, behind a local socket. A rootless engine's host network is its own
 * namespace, and a remote engine's (tcp://, ssh://) is another machine's.
 */
export function engineRefusal(engine: { endpoint: string; securityOptions?: readonly string[] | null }): string | undefined {
  const rootless = (engine.securityOptions ?? []).some((o) => o.split(',').includes('name=rootless'));
  if (rootless) {
    return `the Docker engine at ${engine.endpoint} runs rootless: its host network is a namespace of its own, so the demo app could not be reached at 127.0.0.1 from here. Run the demo against a rootful engine (e.g. DOCKER_HOST=unix:///var/run/docker.sock).`;
  }
  if (!engine.endpoint.startsWith('unix://')) {
    return `the Docker engine at ${engine.endpoint} is not reached through a local socket: the demo app runs on the engine's host network and is probed at 127.0.0.1, which is only this machine's when the engine runs here. Run the demo on the Docker host itself (unset DOCKER_HOST or point it at unix:///var/run/docker.sock).`;
  }
  return undefined;
}

/** Refuses an engine the demo cannot work against (see engineRefusal). */
export async function checkEngine(docker: Docker, endpoint: string): Promise<void> {
  const info = (await docker.info()) as { SecurityOptions?: string[] | null };
  const why = engineRefusal({ endpoint, securityOptions: info.SecurityOptions });
  if (why) throw new DemoRefused(why);
}

/** The labels of what `inspect` finds, null when nothing has that name. */
async function labelsOf(inspect: () => Promise<{ Config?: { Labels?: Record<string, string> | null } | null }>): Promise<Record<string, string> | null> {
  try {
    return (await inspect()).Config?.Labels ?? {};
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return null;
    throw err;
  }
}

/**
 * Refuses when the container `name`, or an image tag the demo moves (`name:v1`, `name:v2`),
 * exists and is not this demo's (no `io.rollguard.demo=<prefix>` label): the demo force-removes
 * that container and retags those images, so they would be destroyed.
 */
export async function checkNamesFree(docker: Docker, name: string, prefix: string): Promise<void> {
  const foreign: string[] = [];
  const container = await labelsOf(() => docker.getContainer(name).inspect());
  if (container && container[DEMO_LABEL] !== prefix) foreign.push(`container ${name}`);
  for (const tag of [`${name}:v1`, `${name}:v2`]) {
    const image = await labelsOf(() => docker.getImage(tag).inspect());
    if (image && image[DEMO_LABEL] !== prefix) foreign.push(`image ${tag}`);
  }
  if (foreign.length) {
    throw new DemoRefused(`${foreign.join(' and ')} already exist${foreign.length === 1 ? 's' : ''} and ${foreign.length === 1 ? 'is' : 'are'} not the demo's (no label ${DEMO_LABEL}=${prefix}); the demo would replace ${foreign.length === 1 ? 'it' : 'them'}. Nothing was changed; choose another name prefix with --prefix.`);
  }
}
