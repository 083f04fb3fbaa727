import Docker from 'dockerode';

/** The Docker engine did not answer where dockerode looked for it; the message says where and what to check. */
export class DockerUnreachableError extends Error {
  constructor(
    /** Where the engine was looked for: `unix:///var/run/docker.sock`, `tcp://host:2375`. */
    readonly endpoint: string,
    /** The system error code (ENOENT, ECONNREFUSED, EACCES, …) when there was one. */
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'DockerUnreachableError';
  }
}

/** Codes that mean the engine could not be reached at all, as opposed to an engine that answered with an error. */
const UNREACHABLE_CODES = new Set(['ENOENT', 'ECONNREFUSED', 'EACCES', 'EPERM', 'ENOTSOCK', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

interface ModemView {
  socketPath?: string | (() => string | Promise<string>);
  protocol?: string;
  host?: string;
  port?: string | number;
}

/** Where `docker` connects, as a URL: the socket (DOCKER_HOST's or the default one) or DOCKER_HOST's address. */
export async function dockerEndpoint(docker: Docker): Promise<string> {
  const modem = docker.modem as unknown as ModemView;
  if (modem.socketPath) {
    const socket = typeof modem.socketPath === 'function' ? await modem.socketPath() : modem.socketPath;
    return `unix://${socket}`;
  }
  return `${modem.protocol ?? 'http'}://${modem.host ?? 'localhost'}${modem.port ? `:${modem.port}` : ''}`;
}

/** Where the endpoint came from, for the message: the operator set DOCKER_HOST, or the default was used. */
function origin(env: NodeJS.ProcessEnv): string {
  return env.DOCKER_HOST ? `DOCKER_HOST=${env.DOCKER_HOST}` : 'DOCKER_HOST not set';
}

/**
 * The plain explanation of a failure to reach the engine at `endpoint`, or undefined when `err` is
 * something else (the engine answered). A permission error leads with the docker group.
 */
export function explainUnreachable(err: unknown, endpoint: string, env: NodeJS.ProcessEnv = process.env): DockerUnreachableError | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string' || !UNREACHABLE_CODES.has(code)) return undefined;
  const where = `cannot reach the Docker engine at ${endpoint} (${origin(env)}): ${code === 'EACCES' || code === 'EPERM' ? `permission denied (${code})` : `connect ${code}`}.`;
  const socket = endpoint.startsWith('unix://');
  const engine = socket ? 'that the engine is running (systemctl status docker)' : 'that the engine is running and listens at that address';
  const user = 'that your user can use the socket (member of the docker group: sudo usermod -aG docker "$USER", then log in again)';
  const hint = code === 'EACCES' || code === 'EPERM'
    ? `Check ${user} and ${engine}.`
    : socket ? `Check ${engine} and ${user}.` : `Check ${engine}, and DOCKER_HOST.`;
  return new DockerUnreachableError(endpoint, code, `${where} ${hint}`);
}

/**
 * A Docker client that answered a ping within `timeoutMs`; throws DockerUnreachableError saying
 * where it looked and what to check when the engine cannot be reached (or DOCKER_HOST is not a
 * URL). Any other failure is thrown as it is.
 */
export async function reachDocker(opts: { docker?: Docker; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Docker> {
  const env = opts.env ?? process.env;
  let docker: Docker;
  try {
    docker = opts.docker ?? new Docker();
  } catch (err) {
    // dockerode rejects a DOCKER_HOST it cannot parse while constructing the client.
    throw new DockerUnreachableError(env.DOCKER_HOST ?? '', undefined, `cannot reach the Docker engine: DOCKER_HOST=${env.DOCKER_HOST ?? ''} is not an address (${err instanceof Error ? err.message : String(err)}). Use unix:///path/to/docker.sock or tcp://host:2375, or unset it for the default socket.`);
  }
  const endpoint = await dockerEndpoint(docker);
  const timeoutMs = opts.timeoutMs ?? 5_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      docker.ping(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })), timeoutMs);
      }),
    ]);
  } catch (err) {
    throw explainUnreachable(err, endpoint, env) ?? err;
  } finally {
    clearTimeout(timer);
  }
  return docker;
}
