import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
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
 * `alternatives` are other engines found on this host (a Docker context, a rootless socket), each
 * as the `export DOCKER_HOST=…` line that selects it.
 */
export function explainUnreachable(err: unknown, endpoint: string, env: NodeJS.ProcessEnv = process.env, alternatives: readonly string[] = []): DockerUnreachableError | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string' || !UNREACHABLE_CODES.has(code)) return undefined;
  const where = `cannot reach the Docker engine at ${endpoint} (${origin(env)}): ${code === 'EACCES' || code === 'EPERM' ? `permission denied (${code})` : `connect ${code}`}.`;
  const socket = endpoint.startsWith('unix://');
  const engine = socket ? 'that the engine is running (systemctl status docker)' : 'that the engine is running and listens at that address';
  const user = 'that your user can use the socket (member of the docker group: sudo usermod -aG docker "$USER", then log in again)';
  const hint = code === 'EACCES' || code === 'EPERM'
    ? `Check ${user} and ${engine}.`
    : socket ? `Check ${engine} and ${user}.` : `Check ${engine}, and DOCKER_HOST.`;
  // One shell line each, to copy: the message ends with them.
  const elsewhere = alternatives.length ? `\nAnother engine is set up for this user; to use it, run rollguard with:\n${alternatives.map((a) => `  ${a}`).join('\n')}` : '';
  return new DockerUnreachableError(endpoint, code, `${where} ${hint}${elsewhere}`);
}

/**
 * Where else an engine may be when DOCKER_HOST is unset: the `docker` CLI's current context (set by
 * `docker context use`, which dockerode does not read) and the rootless engine's socket under
 * $XDG_RUNTIME_DIR. Each as the line that selects it. Reads only those two places; never throws.
 */
export async function otherEngines(env: NodeJS.ProcessEnv = process.env, home = os.homedir()): Promise<string[]> {
  if (env.DOCKER_HOST) return [];
  const found: string[] = [];
  const configDir = env.DOCKER_CONFIG || path.join(home, '.docker');
  try {
    const config = JSON.parse(await readFile(path.join(configDir, 'config.json'), 'utf8')) as { currentContext?: unknown };
    const name = typeof config.currentContext === 'string' ? config.currentContext : '';
    if (name && name !== 'default') {
      // The CLI keeps each context's endpoint under the SHA-256 of its name.
      const digest = createHash('sha256').update(name).digest('hex');
      const meta = JSON.parse(await readFile(path.join(configDir, 'contexts', 'meta', digest, 'meta.json'), 'utf8')) as { Endpoints?: { docker?: { Host?: unknown } } };
      const host = meta.Endpoints?.docker?.Host;
      if (typeof host === 'string' && host) found.push(`export DOCKER_HOST=${host}   # docker context "${name}"`);
    }
  } catch {
    // No config, no context, or one the CLI wrote differently: nothing to suggest from it.
  }
  if (env.XDG_RUNTIME_DIR) {
    const rootless = path.join(env.XDG_RUNTIME_DIR, 'docker.sock');
    const isSocket = await stat(rootless).then((s) => s.isSocket(), () => false);
    const line = `export DOCKER_HOST=unix://${rootless}`;
    if (isSocket && !found.some((f) => f.startsWith(`${line} `))) found.push(`${line}   # rootless Docker`);
  }
  return found;
}

/** Something answered at `endpoint` (or held the connection) but not as a Docker engine answers a ping. */
function notAnEngine(err: unknown, endpoint: string, env: NodeJS.ProcessEnv, timeoutMs: number, timedOut: boolean): DockerUnreachableError {
  const at = `${endpoint} (${origin(env)})`;
  if (timedOut) {
    // A local socket connects at once, so silence there is the engine; over TCP the connection itself may hang.
    const silence = endpoint.startsWith('unix://')
      ? `it accepted the connection but did not answer within ${formatSeconds(timeoutMs)} (engine hung?)`
      : `no answer within ${formatSeconds(timeoutMs)} (engine hung, or the address unreachable?)`;
    return new DockerUnreachableError(endpoint, undefined, `cannot reach the Docker engine at ${at}: ${silence}. Check the engine (systemctl status docker; journalctl -u docker), or point DOCKER_HOST at the right one.`);
  }
  const status = (err as { statusCode?: unknown } | undefined)?.statusCode;
  if (typeof status === 'number' && status >= 500) {
    return new DockerUnreachableError(endpoint, undefined, `the Docker engine at ${at} answered its ping with an error (HTTP ${status}). Check the engine (systemctl status docker; journalctl -u docker).`);
  }
  const what = typeof status === 'number' ? `HTTP ${status}` : err instanceof Error ? err.message : String(err);
  return new DockerUnreachableError(endpoint, undefined, `cannot reach the Docker engine: something answers at ${at} but it is not a Docker engine (${what}). Point DOCKER_HOST at the engine's socket or address, or unset it for the default socket.`);
}

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/** dockerode's ping takes an AbortSignal (docker-modem passes it to the request); its typings omit the option. */
type Pingable = { ping(opts: { abortSignal: AbortSignal }): Promise<unknown> };

/**
 * A Docker client that answered a ping within `timeoutMs`; throws DockerUnreachableError saying
 * where it looked and what to check when the engine cannot be reached, does not answer in time,
 * is not a Docker engine, or DOCKER_HOST is not a URL. The ping is aborted at the deadline, so
 * nothing is left open to keep the process alive.
 */
export async function reachDocker(opts: { docker?: Docker; timeoutMs?: number; env?: NodeJS.ProcessEnv; home?: string } = {}): Promise<Docker> {
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
  const deadline = AbortSignal.timeout(timeoutMs);
  try {
    await (docker as unknown as Pingable).ping({ abortSignal: deadline });
  } catch (err) {
    // An abort at the deadline may surface as a socket error; the deadline is what happened.
    if (deadline.aborted) throw notAnEngine(err, endpoint, env, timeoutMs, true);
    const code = (err as { code?: unknown } | undefined)?.code;
    const missingDefault = !env.DOCKER_HOST && (code === 'ENOENT' || code === 'ECONNREFUSED');
    const unreachable = explainUnreachable(err, endpoint, env, missingDefault ? await otherEngines(env, opts.home) : []);
    throw unreachable ?? notAnEngine(err, endpoint, env, timeoutMs, false);
  }
  return docker;
}
