import type { DiscoveredContainer } from './discovered.js';

/**
 * A readiness check guessed for a container, with what the operator should know about it (shown
 * as comments next to it). `none` when nothing could be guessed: the service is then watched by
 * its container signals only.
 */
export type ReadinessGuess =
  | { kind: 'http'; url: string; from: 'healthcheck' | 'port'; notes: string[] }
  | { kind: 'none'; notes: string[] };

/** Well-known ports that do not speak HTTP: no readiness URL is guessed on them. */
const NOT_HTTP: Record<number, string> = {
  22: 'SSH', 25: 'SMTP', 53: 'DNS', 110: 'POP3', 143: 'IMAP', 389: 'LDAP', 587: 'SMTP', 1433: 'SQL Server',
  1521: 'Oracle', 1883: 'MQTT', 2181: 'ZooKeeper', 2375: 'Docker', 2376: 'Docker', 3306: 'MySQL',
  4222: 'NATS', 5432: 'PostgreSQL', 5672: 'AMQP', 6379: 'Redis', 9042: 'Cassandra', 9092: 'Kafka',
  11211: 'memcached', 27017: 'MongoDB',
};
const HTTPS_PORTS = new Set([443, 8443]);
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '0.0.0.0', '[::1]', '[::]']);
/** Query parameters that carry credentials; such a URL is not written into the policy. */
const SECRET_PARAM = /token|key|secret|pass|auth|sig/i;

/** The command a HEALTHCHECK runs, as one line, or undefined when it has none. */
function healthcheckCommand(test: string[] | undefined): string | undefined {
  if (!test?.length || test[0] === 'NONE') return undefined;
  if (test[0] === 'CMD-SHELL') return test.slice(1).join(' ');
  if (test[0] === 'CMD') return test.slice(1).join(' ');
  return test.join(' ');
}

/** `$PORT` and `${PORT}` filled from the port-like environment; other variables are left as they are. */
function fillPortVars(text: string, portEnv: Record<string, number>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (whole, braced: string | undefined, bare: string | undefined) => {
    const value = portEnv[braced ?? bare ?? ''];
    return value === undefined ? whole : String(value);
  });
}

function defaultPort(url: URL): number {
  return url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
}

/** Where a published port is reached from the host: a wildcard address is reached on loopback. */
function publishedHost(hostIp: string): string {
  if (!hostIp || hostIp === '0.0.0.0' || hostIp === '::') return '127.0.0.1';
  return hostIp.includes(':') ? `[${hostIp}]` : hostIp;
}

/** The URL a HEALTHCHECK probes, as reached from the host, or why it cannot be used. */
function fromHealthcheck(c: DiscoveredContainer): { url?: string; note?: string } {
  const command = healthcheckCommand(c.healthcheck);
  if (command === undefined) return {};
  const found = /https?:\/\/[^\s'"`|;&<>()\\]+/.exec(fillPortVars(command, c.portEnv))?.[0];
  if (!found) return {};
  if (found.includes('$')) return { note: 'its HEALTHCHECK probes a URL built from environment variables; write that URL here as a readiness check' };
  let url: URL;
  try {
    url = new URL(found);
  } catch {
    return {};
  }
  if (url.username || url.password || [...url.searchParams.keys()].some((k) => SECRET_PARAM.test(k))) {
    return { note: 'its HEALTHCHECK probes a URL with credentials; add it as a readiness check with them as ${ENV_VAR} references, never literally' };
  }
  if (!LOOPBACK_HOSTS.has(url.hostname)) return { note: `its HEALTHCHECK probes ${url.host}, not the container itself; no readiness URL was taken from it` };
  if (url.hostname === '0.0.0.0' || url.hostname === '[::]') url.hostname = '127.0.0.1';
  if (c.networkMode === 'host') return { url: url.toString() };
  const port = defaultPort(url);
  const pub = c.published.find((p) => p.containerPort === port);
  if (!pub && c.randomlyPublished.includes(port)) return { note: `its HEALTHCHECK probes port ${port}, ${RANDOM_PORT(port)}` };
  if (!pub) return { note: `its HEALTHCHECK probes port ${port}, which is not published on the host` };
  url.hostname = publishedHost(pub.hostIp);
  url.port = String(pub.hostPort);
  return { url: url.toString() };
}

/** Why no URL is guessed on a port published on a host port Docker picks at each start, and the fix. */
const RANDOM_PORT = (p: number): string =>
  `published on a host port Docker picks anew at each start (-P, -p ${p}, or Compose ports: ["${p}"]), so a URL on it stops working after the first deploy: publish a fixed one (-p 127.0.0.1:${p}:${p}, or ports: ["127.0.0.1:${p}:${p}"]) and add the readiness check on it`;

interface PortCandidate { port: number; host: string; source: string }

/** Ports the host reaches the container on, with where each was learnt. */
function portCandidates(c: DiscoveredContainer): { candidates: PortCandidate[]; notes: string[] } {
  const notes: string[] = [];
  const raw: PortCandidate[] = [];
  if (c.networkMode === 'host') {
    for (const p of [...c.exposedPorts].sort((a, b) => a - b)) raw.push({ port: p, host: '127.0.0.1', source: `EXPOSE ${p}` });
    for (const [name, p] of Object.entries(c.portEnv).sort(([, a], [, b]) => a - b)) raw.push({ port: p, host: '127.0.0.1', source: `${name}=${p} in its environment` });
  } else {
    for (const p of [...c.published].sort((a, b) => a.hostPort - b.hostPort)) raw.push({ port: p.hostPort, host: publishedHost(p.hostIp), source: `container port ${p.containerPort} published on ${p.hostPort}` });
    for (const p of c.randomlyPublished) notes.push(`port ${p} is ${RANDOM_PORT(p)}`);
    const unpublished = c.exposedPorts.filter((p) => !c.published.some((pub) => pub.containerPort === p) && !c.randomlyPublished.includes(p));
    if (unpublished.length && !c.published.length) {
      notes.push(`port ${unpublished.join(', ')} is exposed but not published: the host cannot reach it at a fixed address (publish it on 127.0.0.1, or use host networking)`);
    }
  }
  // In the order found: EXPOSE (the image's own word) before a variable's hint, each lowest first.
  const seen = new Set<number>();
  const candidates: PortCandidate[] = [];
  for (const cand of raw) {
    if (seen.has(cand.port)) continue;
    seen.add(cand.port);
    const protocol = NOT_HTTP[cand.port];
    if (protocol) notes.push(`port ${cand.port} is ${protocol}, not HTTP`);
    else candidates.push(cand);
  }
  return { candidates, notes };
}

/**
 * Guesses the readiness check of a container: the URL its HEALTHCHECK probes when it probes one
 * (reached from the host), else the root of the port it listens on (host networking: EXPOSE or a
 * PORT variable) or publishes, which the operator must complete with the real path.
 */
export function guessReadiness(c: DiscoveredContainer): ReadinessGuess {
  const hc = fromHealthcheck(c);
  if (hc.url) return { kind: 'http', url: hc.url, from: 'healthcheck', notes: ['the URL its HEALTHCHECK probes'] };
  const notes = hc.note ? [hc.note] : [];
  const { candidates, notes: portNotes } = portCandidates(c);
  notes.push(...portNotes);
  const [best, ...others] = candidates;
  if (!best) {
    if (!portNotes.length) notes.push('no HTTP endpoint could be guessed (no HEALTHCHECK URL, no exposed or published port)');
    return { kind: 'none', notes };
  }
  const scheme = HTTPS_PORTS.has(best.port) ? 'https' : 'http';
  notes.push(`guessed from ${best.source}: FIX THE PATH to the service's readiness endpoint (e.g. /health/ready/)`);
  if (others.length) notes.push(`it also listens on ${others.map((o) => o.port).join(', ')}`);
  return { kind: 'http', url: `${scheme}://${best.host}:${best.port}/`, from: 'port', notes };
}

/** What a guessed readiness URL answered when `init` requested it once, as the check would (GET, 200 expected). */
export interface ProbeResult {
  /** It answered 200 within the check's timeout. */
  ok: boolean;
  /** Otherwise what happened: `HTTP 404, expected 200`, `request failed: ECONNREFUSED: …`, `no complete response within 2000 ms`. */
  detail?: string;
}

/**
 * What a guessed readiness check may do: revert (`rollback`) only when it answered exactly as
 * written when `init` probed it, else only notify, with why and what to fix. A wrong guess that
 * reverts would revert the first healthy deploy and then fail its recovery (ROLLBACK FAILED).
 */
export type ReadinessVerdict = { action: 'rollback' } | { action: 'notify'; why: string };

const LOOPBACK_ADDRESSES = new Set(['localhost', '127.0.0.1', '[::1]']);

/** The verdict for one guessed URL, from its probe result (undefined: not probed). Pure. */
export function readinessVerdict(url: string, from: 'healthcheck' | 'port', probe: ProbeResult | undefined): ReadinessVerdict {
  const then = 'then make it severity: P0, action: rollback';
  const host = new URL(url).hostname;
  if (url.startsWith('https:') && LOOPBACK_ADDRESSES.has(host)) {
    return { action: 'notify', why: `https on ${host} can never verify: a certificate is made for the service's name, not ${host}; write the URL with that name, check it answers 200, ${then}` };
  }
  if (!probe) return { action: 'notify', why: `not probed by init: check that GET ${url} answers 200, ${then}` };
  if (probe.ok) return { action: 'rollback' };
  const fix = from === 'port' ? 'fix the path' : 'check the URL (and that the service is up)';
  return { action: 'notify', why: `GET ${url} → ${probe.detail ?? 'no 200'} now; ${fix}, ${then}` };
}
