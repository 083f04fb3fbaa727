/**
 * A second Docker engine joined as a Swarm worker to the machine's engine (the manager), for tests of
 * services whose tasks run on more than one node.
 *
 * The worker is a `dockerd` of its own (data root, exec root, socket, pidfile, its own supervised
 * containerd, cgroup parent `<name>-worker`) started inside a network namespace made here, with its own
 * hostname and its own mount namespace (so its mounts go away with it). The namespace is joined to the
 * root one by a veth pair addressed from 198.18.89.0/30: the root end (the manager's address) is
 * 198.18.89.1, the worker's end 198.18.89.2. Nothing else is routed there.
 *
 * A worker cannot reach a manager advertising 127.0.0.1 (that is its own loopback): it joins, but the
 * manager list it is handed says 127.0.0.1:2377, so it never comes back after its session breaks
 * (an engine restart, say). So while a worker runs, the manager's swarm is re-created advertising the
 * root end of the veth pair; `stop()` re-creates the usual single-node swarm advertising 127.0.0.1.
 * Re-creating a swarm drops every service, network, secret and config in it: only one test file at a
 * time may use this (the integration suite runs with --test-concurrency=1).
 *
 * There is no registry: images go over with `docker save | docker load` (`loadImage`), and services
 * are created with `--no-resolve-image`. Name the image by its ID (`sha256:…`) so neither engine tries
 * to pull it; the worker engine is also started with DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1, so it
 * never pulls. A task with `--network host` placed on the worker runs in the worker's namespace: a
 * server there listening on `addr` is reachable from the root namespace, one on 127.0.0.1 is not.
 * Likewise a manager task is reachable at `managerAddr` only if it listens there.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { docker, waitFor } from './harness.js';

const run = promisify(execFile);

export interface SwarmWorkerOptions {
  /** Prefix of every name the worker uses (netns, veth ends, hostname `<name>-worker`, paths); at most 10 characters. Default `rg-sw`. */
  name?: string;
  /** The root end of the veth pair, which the manager advertises. Default 198.18.89.1. */
  managerAddr?: string;
  /** The worker's end of the veth pair, its node address. Default 198.18.89.2. */
  addr?: string;
  /** Prefix length of the veth pair's subnet. Default 30. */
  prefixLength?: number;
  /** Images of the main engine (tags or IDs) loaded into the worker before it joins. */
  images?: string[];
}

export interface SwarmWorker {
  /** The worker's swarm node ID. */
  nodeId: string;
  /** The worker's hostname, as `docker node ls` and `docker service ps` show it. */
  hostname: string;
  /** The worker's node address, reachable from the root namespace. */
  addr: string;
  /** The manager's node address (the root end of the veth pair). */
  managerAddr: string;
  /** `unix://…` socket of the worker engine, for `docker -H`. */
  dockerHost: string;
  /** Where the worker engine's output goes. */
  logFile: string;
  /** Runs the docker CLI against the worker engine; resolves to its trimmed stdout. */
  docker(...args: string[]): Promise<string>;
  /** Copies an image of the main engine (tag or ID) into the worker engine. */
  loadImage(image: string): Promise<void>;
  /** Leaves the swarm, removes the node, stops the engine, deletes the namespace and veth pair, and re-creates the single-node swarm advertising 127.0.0.1. Safe to call twice. */
  stop(): Promise<void>;
}

const DEFAULT_NAME = 'rg-sw';
const DEFAULT_MANAGER_ADDR = '198.18.89.1';
const DEFAULT_WORKER_ADDR = '198.18.89.2';
const SINGLE_NODE_ADDR = '127.0.0.1';
const LOG_DIR = path.join(process.env.ROLLGUARD_TEST_LOGS ?? '/tmp/rollguard-test', 'swarm-worker');

interface Layout {
  netns: string;
  rootIf: string;
  peerIf: string;
  hostname: string;
  dataRoot: string;
  execRoot: string;
  socket: string;
  pidfile: string;
  configFile: string;
  cgroupParent: string;
  logFile: string;
}

function layout(name: string): Layout {
  if (!/^[a-z][a-z0-9-]{0,9}$/.test(name)) throw new Error(`swarm worker name ${JSON.stringify(name)}: use at most 10 of a-z, 0-9 and -, starting with a letter (interface names are limited to 15 characters)`);
  return {
    netns: name,
    rootIf: `${name}-root`,
    peerIf: `${name}-peer`,
    hostname: `${name}-worker`,
    dataRoot: `/var/lib/${name}-worker`,
    execRoot: `/run/${name}-worker`,
    socket: `/run/${name}-worker.sock`,
    pidfile: `/run/${name}-worker.pid`,
    configFile: `/run/${name}-worker.json`,
    cgroupParent: `${name}-worker`,
    logFile: path.join(LOG_DIR, `${name}-worker-dockerd.log`),
  };
}

/** Runs a command; a failure's message names the command and carries its stderr. */
async function cmd(file: string, args: string[], timeoutMs = 30_000): Promise<string> {
  try {
    const { stdout } = await run(file, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
    return stdout.trim();
  } catch (err) {
    const e = err as { stderr?: string; message: string; killed?: boolean };
    const why = e.killed ? `timed out after ${timeoutMs} ms` : (e.stderr?.trim() || e.message);
    throw new Error(`\`${[file, ...args].join(' ')}\` failed: ${why}`);
  }
}

async function attempt(file: string, args: string[], timeoutMs = 30_000): Promise<void> {
  await cmd(file, args, timeoutMs).catch(() => undefined);
}

let availability: Promise<string | undefined> | undefined;

/**
 * Undefined when this machine can run a swarm worker; otherwise the reason it cannot (the command
 * that failed and what it said), for a test to skip with. Checks once per process.
 */
export function swarmWorkerUnavailable(): Promise<string | undefined> {
  availability ??= probe();
  return availability;
}

async function probe(): Promise<string | undefined> {
  if (process.platform !== 'linux') return `a swarm worker needs Linux network namespaces; this is ${process.platform}`;
  if (process.getuid?.() !== 0) return 'a swarm worker needs root (ip netns, a second dockerd)';
  const tools: [string, string][] = [['ip', 'iproute2'], ['nsenter', 'util-linux'], ['unshare', 'util-linux'], ['hostname', 'hostname'], ['mount', 'mount'], ['dockerd', 'docker.io'], ['docker', 'docker.io']];
  for (const [tool, pkg] of tools) {
    try {
      await cmd('sh', ['-c', `command -v ${tool}`]);
    } catch {
      return `\`${tool}\` not found (Debian package ${pkg})`;
    }
  }
  let state: string;
  try {
    state = await cmd('docker', ['info', '--format', '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}']);
  } catch (err) {
    return (err as Error).message;
  }
  if (state.startsWith('active ') && !state.endsWith('true')) return `the main engine is a swarm worker, not a manager (docker info: ${state})`;
  const ns = 'rg-sw-probe';
  const [a, b] = ['rg-sw-pr0', 'rg-sw-pr1'];
  await attempt('ip', ['netns', 'del', ns]);
  await attempt('ip', ['link', 'del', a]);
  try {
    await cmd('ip', ['netns', 'add', ns]);
    await cmd('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
    await cmd('ip', ['link', 'set', b, 'netns', ns]);
    await cmd('nsenter', [`--net=/run/netns/${ns}`, '--', 'unshare', '--uts', '--mount', '--propagation', 'private', '--',
      'sh', '-ec', `hostname rg-sw-probe; mount -t sysfs sysfs /sys; test -e /sys/class/net/${b}`]);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await attempt('ip', ['netns', 'del', ns]);
    await attempt('ip', ['link', 'del', a]);
  }
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function pidFromFile(file: string, comm: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === comm ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Every cgroup directory named `name` under /sys/fs/cgroup (one per v1 hierarchy, or the v2 one), with all below it, deepest first. */
async function cgroupDirs(name: string): Promise<string[]> {
  const roots = ['/sys/fs/cgroup', ...(await readdir('/sys/fs/cgroup').catch(() => [])).map((d) => path.join('/sys/fs/cgroup', d))];
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory()) await walk(path.join(dir, e.name));
    found.push(dir);
  };
  for (const root of roots) {
    const dir = path.join(root, name);
    if (existsSync(path.join(dir, 'cgroup.procs'))) await walk(dir);
  }
  return found;
}

/** Processes of a worker: its engine, everything in its network namespace, everything in its cgroups. */
async function workerPids(l: Layout): Promise<number[]> {
  const pids = new Set<number>();
  const engine = pidFromFile(l.pidfile, 'dockerd');
  if (engine) pids.add(engine);
  if (existsSync(`/run/netns/${l.netns}`)) {
    const out = await cmd('ip', ['netns', 'pids', l.netns]).catch(() => '');
    for (const p of out.split('\n')) if (Number(p) > 0) pids.add(Number(p));
  }
  for (const dir of await cgroupDirs(l.cgroupParent)) {
    const procs = await readFile(path.join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
    for (const p of procs.split('\n')) if (Number(p) > 0) pids.add(Number(p));
  }
  pids.delete(process.pid);
  return [...pids];
}

/** Removes every trace of a worker named by `l`, whether it stopped cleanly or its test crashed: processes, mounts, namespace, veth pair, files, cgroups. */
async function removeWorker(l: Layout): Promise<void> {
  for (let round = 0; round < 3; round++) {
    const pids = (await workerPids(l)).filter(alive);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch { /* already gone */ }
    }
    await waitFor(`worker processes ${pids.join(' ')} to exit`, () => pids.every((p) => !alive(p)), 10_000, 50).catch(() => undefined);
  }
  // Mounts live in the engine's own mount namespace; any left in the root one come from an engine started some other way.
  const mounts = (await cmd('findmnt', ['-rn', '-o', 'TARGET']).catch(() => '')).split('\n')
    .filter((m) => m.startsWith(`${l.dataRoot}`) || m.startsWith(`${l.execRoot}`))
    .sort((x, y) => y.length - x.length);
  for (const m of mounts) await attempt('umount', ['-l', m]);
  await attempt('ip', ['netns', 'del', l.netns]);
  await attempt('ip', ['link', 'del', l.rootIf]);
  for (const p of [l.dataRoot, l.execRoot, l.socket, l.pidfile, l.configFile]) await rm(p, { recursive: true, force: true });
  for (const dir of await cgroupDirs(l.cgroupParent)) await rmdir(dir).catch(() => undefined);
}

/** Makes the main engine a single-node swarm manager advertising 127.0.0.1, unless it already is exactly that. */
export async function restoreSingleNodeSwarm(): Promise<void> {
  const swarm = JSON.parse(await docker('info', '--format', '{{json .Swarm}}')) as { LocalNodeState?: string; NodeAddr?: string; ControlAvailable?: boolean; Nodes?: number };
  if (swarm.LocalNodeState === 'active' && swarm.NodeAddr === SINGLE_NODE_ADDR && swarm.ControlAvailable && swarm.Nodes === 1) return;
  if (swarm.LocalNodeState !== 'inactive') await cmd('docker', ['swarm', 'leave', '--force'], 60_000);
  await cmd('docker', ['swarm', 'init', '--advertise-addr', SINGLE_NODE_ADDR], 60_000);
}

async function tail(file: string, lines = 20): Promise<string> {
  return (await readFile(file, 'utf8').catch(() => '')).trimEnd().split('\n').slice(-lines).join('\n');
}

/** `docker save image | docker -H host load`. */
async function copyImage(image: string, host: string): Promise<void> {
  const save = spawn('docker', ['save', image], { stdio: ['ignore', 'pipe', 'pipe'] });
  const load = spawn('docker', ['-H', host, 'load', '-q'], { stdio: ['pipe', 'ignore', 'pipe'] });
  save.stdout.pipe(load.stdin);
  let errors = '';
  save.stderr.on('data', (d) => { errors += d; });
  load.stderr.on('data', (d) => { errors += d; });
  const exit = (c: ChildProcess): Promise<number | null> => new Promise((resolve) => {
    c.once('error', () => resolve(-1));
    c.once('close', (code) => resolve(code));
  });
  const [saved, loaded] = await Promise.all([exit(save), exit(load)]);
  if (saved !== 0 || loaded !== 0) throw new Error(`copying image ${image} into the swarm worker failed (save exit ${saved}, load exit ${loaded}): ${errors.trim()}`);
}

/** The engine runs in the worker's namespace with its own hostname, and its own mount namespace whose /sys shows that network namespace's interfaces (cgroups stay those of the machine). */
function engineScript(l: Layout): string {
  const cgroups = `${l.execRoot}.cgroup`;
  return [
    'set -e',
    `hostname ${l.hostname}`,
    `mkdir -p ${cgroups}`,
    `mount --rbind /sys/fs/cgroup ${cgroups}`,
    'mount -t sysfs sysfs /sys',
    `mount --move ${cgroups} /sys/fs/cgroup`,
    `rmdir ${cgroups} || true`,
    ['exec env DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 dockerd', `--config-file=${l.configFile}`, '--bridge=none', '--iptables=false', '--ip-masq=false',
      '--shutdown-timeout=2', `--data-root=${l.dataRoot}`, `--exec-root=${l.execRoot}`, `--host=unix://${l.socket}`, `--pidfile=${l.pidfile}`,
      `--cgroup-parent=${l.cgroupParent}`].join(' '),
  ].join('\n');
}

/**
 * Starts a Docker engine in a network namespace of its own and joins it to the main engine's swarm
 * as a worker, after removing whatever a crashed earlier run left behind. The main engine's swarm is
 * re-created advertising `managerAddr` (see the module comment); `stop()` puts back the single-node
 * one advertising 127.0.0.1. Throws with the reason when this machine cannot do it; see
 * `swarmWorkerUnavailable()` to skip instead.
 */
export async function startSwarmWorker(opts: SwarmWorkerOptions = {}): Promise<SwarmWorker> {
  const unavailable = await swarmWorkerUnavailable();
  if (unavailable) throw new Error(`no swarm worker on this machine: ${unavailable}`);
  const l = layout(opts.name ?? DEFAULT_NAME);
  const managerAddr = opts.managerAddr ?? DEFAULT_MANAGER_ADDR;
  const addr = opts.addr ?? DEFAULT_WORKER_ADDR;
  const prefix = opts.prefixLength ?? 30;
  const dockerHost = `unix://${l.socket}`;
  const workerDocker = (...args: string[]): Promise<string> => cmd('docker', ['-H', dockerHost, ...args], 120_000);

  await removeWorker(l);
  for (const a of [managerAddr, addr]) {
    const holder = await cmd('ip', ['-o', 'addr', 'show', 'to', a]);
    if (holder) throw new Error(`the swarm worker's address ${a} is already on this machine: ${holder}`);
  }
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      const problems: string[] = [];
      const step = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
        try {
          await fn();
        } catch (err) {
          problems.push(`${what}: ${(err as Error).message}`);
        }
      };
      const engine = pidFromFile(l.pidfile, 'dockerd');
      if (engine) {
        await attempt('docker', ['-H', dockerHost, 'swarm', 'leave', '--force'], 20_000);
        const ids = (await workerDocker('ps', '-aq').catch(() => '')).split('\n').filter(Boolean);
        if (ids.length) await attempt('docker', ['-H', dockerHost, 'rm', '-f', ...ids], 30_000);
        try {
          process.kill(engine, 'SIGTERM');
        } catch { /* already gone */ }
        await waitFor('the swarm worker engine to stop', () => !alive(engine), 20_000, 100).catch(() => undefined);
      }
      await step('removing the worker node', async () => {
        const nodes = (await docker('node', 'ls', '--format', '{{.ID}} {{.Hostname}}').catch(() => '')).split('\n');
        for (const line of nodes) {
          const [id, host] = line.split(' ');
          if (id && host === l.hostname) await cmd('docker', ['node', 'rm', '--force', id]);
        }
      });
      await step('restoring the single-node swarm', restoreSingleNodeSwarm);
      await step('removing the worker', () => removeWorker(l));
      if (problems.length) throw new Error(`stopping the swarm worker: ${problems.join('; ')}`);
    })();
    return stopping;
  };

  try {
    await cmd('ip', ['netns', 'add', l.netns]);
    await cmd('ip', ['link', 'add', l.rootIf, 'type', 'veth', 'peer', 'name', l.peerIf]);
    await cmd('ip', ['link', 'set', l.peerIf, 'netns', l.netns]);
    await cmd('ip', ['addr', 'add', `${managerAddr}/${prefix}`, 'dev', l.rootIf]);
    await cmd('ip', ['link', 'set', l.rootIf, 'up']);
    await cmd('ip', ['-n', l.netns, 'addr', 'add', `${addr}/${prefix}`, 'dev', l.peerIf]);
    await cmd('ip', ['-n', l.netns, 'link', 'set', l.peerIf, 'up']);
    await cmd('ip', ['-n', l.netns, 'link', 'set', 'lo', 'up']);

    await writeFile(l.configFile, '{}\n');
    mkdirSync(LOG_DIR, { recursive: true });
    const log = openSync(l.logFile, 'w');
    const child = spawn('nsenter', [`--net=/run/netns/${l.netns}`, '--', 'unshare', '--uts', '--mount', '--propagation', 'private', '--', 'sh', '-c', engineScript(l)],
      { stdio: ['ignore', log, log], detached: true });
    closeSync(log);
    child.unref();
    let exited: string | undefined;
    child.once('exit', (code, signal) => { exited = `exited with ${signal ?? code}`; });
    child.once('error', (err) => { exited = err.message; });
    await waitFor('the swarm worker engine to answer', async () => {
      if (exited) throw new Error(`the swarm worker engine ${exited}:\n${await tail(l.logFile)}`);
      return (await workerDocker('version', '--format', '{{.Server.Version}}').catch(() => '')) !== '';
    }, 30_000, 100).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${exited ? '' : await tail(l.logFile)}`);
    });

    for (const image of opts.images ?? []) await copyImage(image, dockerHost);

    const state = await docker('info', '--format', '{{.Swarm.LocalNodeState}}');
    if (state !== 'inactive') await cmd('docker', ['swarm', 'leave', '--force'], 60_000);
    await cmd('docker', ['swarm', 'init', '--advertise-addr', managerAddr, '--listen-addr', `${managerAddr}:2377`], 60_000);
    const token = await docker('swarm', 'join-token', '-q', 'worker');
    await workerDocker('swarm', 'join', '--token', token, '--advertise-addr', addr, '--listen-addr', `${addr}:2377`, `${managerAddr}:2377`);
    const nodeId = await workerDocker('info', '--format', '{{.Swarm.NodeID}}');
    await waitFor(`swarm node ${nodeId} (${l.hostname}) to be ready`, async () => (await docker('node', 'inspect', nodeId, '--format', '{{.Status.State}}')) === 'ready', 30_000, 200);

    return {
      nodeId, hostname: l.hostname, addr, managerAddr, dockerHost, logFile: l.logFile,
      docker: workerDocker,
      loadImage: (image) => copyImage(image, dockerHost),
      stop,
    };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}
