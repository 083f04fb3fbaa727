/**
 * Swarm's own rollback beside rollguard's, on the same bad images and the same single-node swarm:
 * how long after `docker service update` every task of a 2-replica service runs the known-good
 * version again and answers ready. Swarm's side is what operators configure today — a HEALTHCHECK
 * on the readiness endpoint every 1 s with 3 retries and `--update-failure-action rollback` — and
 * rollguard's side is its policy with a per-task readiness check and a per-task error rate
 * (`for: 3` at 1 s). Prints the figures; never asserts them.
 *
 *   node --import tsx test/bench/swarm.ts      (part of `npm run bench`)
 *   BENCH_SWARM_RUNS=5                          runs per image and side (default 3)
 *
 * Services `rg-bench-swarm` (ports 1898<slot>) and `rg-bench-rg` (1899<slot>), 127.0.0.1 only.
 */
import os from 'node:os';
import path from 'node:path';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import {
  buildFixtures, docker, startPrometheus, startRollguard, waitFor, type Prometheus, type Rollguard,
} from '../integration/harness.js';

const RUNS = Number(process.env.BENCH_SWARM_RUNS ?? 3);
/** How long a side gets to recover before the run counts as "not recovered". */
const LIMIT_MS = 30_000;
const V1 = 'rollguard-fixture:v1';
const SIDES = {
  swarm: { service: 'rg-bench-swarm', prefix: '1898' },
  rollguard: { service: 'rg-bench-rg', prefix: '1899' },
} as const;
type Side = keyof typeof SIDES;
const IMAGES = {
  errors: { base: 'rollguard-fixture:v2-errors', title: '20 % 5xx, readiness passing' },
  unready: { base: 'rollguard-fixture:v2-unready', title: 'readiness answers 503' },
} as const;
type Bad = keyof typeof IMAGES;

const say = (line = ''): void => void process.stdout.write(`${line}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]): number | undefined => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2) : undefined;
};

/** The readiness check Swarm runs in the task, as an operator writes it for this service. */
const HEALTHCHECK = ['--health-cmd', 'wget -q -O- http://127.0.0.1:$PORT/cgi-bin/ready | grep -q \'"status":"ready"\'', '--health-interval', '1s', '--health-retries', '3', '--health-timeout', '1s', '--health-start-period', '0s'];
const SWARM_ROLLBACK = ['--update-failure-action', 'rollback', '--update-monitor', '30s', '--update-max-failure-ratio', '0'];

async function ensureSwarm(): Promise<void> {
  if ((await docker('info', '--format', '{{.Swarm.LocalNodeState}}')) !== 'active') await docker('swarm', 'init', '--advertise-addr', '127.0.0.1');
}

/** A bad image with an ID of its own (a redeploy of an image rollguard reverted away from would be reverted at once, measuring nothing). */
async function freshBad(kind: Bad, n: number, side: Side): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rg-bench-swarm-'));
  try {
    await writeFile(path.join(dir, 'Dockerfile'), `FROM ${IMAGES[kind].base}\nLABEL rollguard.bench.run="${side}-${n}-${Date.now()}"\n`);
    const tag = `rollguard-fixture:bench-${side}-${kind}-${n}`;
    await docker('build', '-q', '-t', tag, dir);
    return tag;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function ready(port: string): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/cgi-bin/ready`, { signal: AbortSignal.timeout(500) });
    return res.status === 200 && ((await res.json()) as { version?: string }).version === 'v1';
  } catch {
    return false;
  }
}

/** Whether both tasks run the known-good image and answer ready with its version. */
async function recovered(side: Side): Promise<boolean> {
  const { service, prefix } = SIDES[side];
  const tasks = (await docker('service', 'ps', service, '--filter', 'desired-state=running', '--format', '{{.Image}}|{{.CurrentState}}')).split('\n').filter(Boolean);
  const running = tasks.filter((t) => t.split('|')[1]?.startsWith('Running'));
  if (running.length !== 2 || !running.every((t) => t.startsWith(`${V1}|`))) return false;
  return (await ready(`${prefix}1`)) && (await ready(`${prefix}2`));
}

async function createService(side: Side): Promise<void> {
  const { service, prefix } = SIDES[side];
  await docker('service', 'rm', service).catch(() => '');
  await sleep(1_000);
  const extra = side === 'swarm' ? [...HEALTHCHECK, ...SWARM_ROLLBACK] : [];
  await docker('service', 'create', '-d', '--name', service, '--replicas', '2', '--network', 'host', '--no-resolve-image',
    '--stop-grace-period', '1s', '--update-delay', '0s', '--update-parallelism', '1', '--env', `PORT=${prefix}{{.Task.Slot}}`, ...extra, V1);
  await waitFor(`${service} on ${V1}`, () => recovered(side), 60_000, 200);
}

/** One bad update: ms from `docker service update` until every task is back on v1 and ready; undefined past LIMIT_MS. */
async function measure(side: Side, image: string, rg?: Rollguard): Promise<number | undefined> {
  const { service } = SIDES[side];
  const before = rg ? ((await rg.history('web'))[0]?.id ?? 0) : 0;
  const t0 = Date.now();
  await docker('service', 'update', '-d', '--no-resolve-image', '--image', image, service);
  // The update must have begun (a bad task started) before "recovered" means anything.
  await waitFor('the bad version to start', async () => !(await recovered(side)), 20_000, 100).catch(() => undefined);
  let at: number | undefined;
  while (Date.now() - t0 < LIMIT_MS) {
    if (await recovered(side)) {
      at = Date.now() - t0;
      break;
    }
    await sleep(100);
  }
  if (rg) {
    await waitFor('rollguard to finish', async () => {
      const d = (await rg.history('web'))[0];
      return d && d.id > before && !['watching', 'rolling_back'].includes(d.state);
    }, 90_000).catch(() => undefined);
  }
  if (at === undefined) {
    // Put the known-good version back by hand for the next run.
    await docker('service', 'update', '-d', '--no-resolve-image', '--image', V1, service);
    await waitFor('v1 back', () => recovered(side), 60_000, 200);
  }
  await sleep(2_000);
  return at;
}

function policy(promUrl: string): string {
  const { service, prefix } = SIDES.rollguard;
  return `version: 1
prometheus: {url: ${promUrl}, timeout: 2s}
defaults: {window: 15s, interval: 1s, max_attempts: 2, stop_timeout: 1s, recovery_timeout: 20s, min_data_ratio: 0.5, max_rollbacks: {count: 100, per: 1h}}
services:
  web:
    match: {swarm_service: ${service}}
    signals:
      error_rate:
        prometheus: sum(rate(http_requests_total{service="${service}",slot="{{slot}}",code=~"5.."}[3s])) / sum(rate(http_requests_total{service="${service}",slot="{{slot}}"}[3s]))
      ready:
        http: {url: "http://{{node_addr}}:${prefix}{{slot}}/cgi-bin/ready", timeout: 1s, json: {status: ready}}
    rules:
      - {name: error rate above 5%, signal: error_rate, above: 0.05, for: 3, severity: P0, action: rollback}
      - {name: readiness failing, signal: ready, below: 1, for: 3, severity: P0, action: rollback}
    recovery:
      - {signal: ready, above: 0}
`;
}

async function main(): Promise<void> {
  say(`Swarm's own rollback beside rollguard — ${RUNS} run(s) per image and side; ${os.cpus().length} cores; ${new Date().toISOString()}`);
  await buildFixtures();
  await ensureSwarm();
  const results: Record<Side, Record<Bad, (number | undefined)[]>> = { swarm: { errors: [], unready: [] }, rollguard: { errors: [], unready: [] } };
  let prom: Prometheus | undefined;
  let rg: Rollguard | undefined;
  try {
    await createService('swarm');
    for (const kind of Object.keys(IMAGES) as Bad[]) {
      for (let n = 1; n <= RUNS; n++) results.swarm[kind].push(await measure('swarm', await freshBad(kind, n, 'swarm')));
    }
    await docker('service', 'rm', SIDES.swarm.service).catch(() => '');
    prom = await startPrometheus(['1', '2'].map((slot) => ({ port: Number(`${SIDES.rollguard.prefix}${slot}`), service: SIDES.rollguard.service, labels: { slot } })));
    await createService('rollguard');
    await prom.waitForData(`sum(rate(http_requests_total{service="${SIDES.rollguard.service}"}[3s])) by (slot)`);
    rg = await startRollguard(policy(prom.url));
    await waitFor('rollguard to adopt the service', async () => ((await rg?.status())?.services.web?.image ?? null) !== null, 30_000);
    for (const kind of Object.keys(IMAGES) as Bad[]) {
      for (let n = 1; n <= RUNS; n++) results.rollguard[kind].push(await measure('rollguard', await freshBad(kind, n, 'rollguard'), rg));
    }
  } finally {
    await rg?.stop();
    await prom?.stop();
    for (const side of Object.values(SIDES)) await docker('service', 'rm', side.service).catch(() => '');
  }
  const cell = (xs: (number | undefined)[]): string => {
    const done = xs.filter((x): x is number => x !== undefined);
    const m = median(done);
    const missed = xs.length - done.length;
    if (m === undefined) return `not recovered in ${LIMIT_MS / 1000} s (${xs.length}/${xs.length} runs: the bad version kept serving)`;
    return `**${(m / 1000).toFixed(2)} s**${missed ? ` (${missed}/${xs.length} runs not recovered in ${LIMIT_MS / 1000} s)` : ''} (worst ${(Math.max(...done) / 1000).toFixed(2)} s)`;
  };
  say();
  say('| bad image | Swarm\'s own rollback (HEALTHCHECK 1 s × 3 retries, failure action rollback) | rollguard (per-task readiness and error rate, `for: 3` × 1 s) |');
  say('| --- | --- | --- |');
  for (const kind of Object.keys(IMAGES) as Bad[]) say(`| ${IMAGES[kind].title} | ${cell(results.swarm[kind])} | ${cell(results.rollguard[kind])} |`);
  say();
  say('Time from `docker service update` to both tasks on the known-good image and answering ready (median of the runs).');
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
