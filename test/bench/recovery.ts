/**
 * Recovery benchmark: how long a bad deploy keeps the service bad, and what the idle daemon costs
 * in memory. It prints figures next to their targets and never asserts them: exit 0 when it ran to
 * the end (a missed target is printed as MISSED), exit 1 only when the bench itself failed.
 *
 * Real parts through the integration harness: Docker engine, Prometheus (1 s scrape), the embedded
 * SQLite store or PostgreSQL, and `rollguard run` as a child process. Other engineers run Docker
 * tests on the same host, so this uses only containers named `rg-bench*`, fixture port 18083 and
 * 127.0.0.1.
 *
 *   npm run bench                 5 runs per bad image
 *   BENCH_RUNS=10 npm run bench   more runs
 *   BENCH_STORE=postgres          store of the daemon used for the recovery runs (default sqlite, the embedded one)
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import {
  buildFixtures, deploy, docker, fixturePolicy, freshDatabase, inspect, readyStatus, removeContainers,
  startPrometheus, startRollguard, waitFor, type FixtureImages, type HistoryRow, type Prometheus, type Rollguard,
} from '../integration/harness.js';

const NAME = 'rg-bench';
const SERVICE = 'bench';
const PORT = 18083;
const GOOD_REF = 'rollguard-fixture:v1';

const RECOVERY_TARGET_MS = 6_000;
/** The policy's `for: 3` at a 1 s interval: the part of detection the policy itself asks for. */
const POLICY_DETECTION_MS = 3_000;
const INTERVAL_MS = 1_000;
const RSS_TARGET_MB = 80;
const POLL_MS = 50;
/** Worst case the policy allows: 8 s window, then 2 attempts of (1 s stop + 20 s recovery timeout), plus slack. */
const RECOVERY_BOUND_MS = 75_000;
const RSS_SAMPLES = 11; // one a second: ~10 s
const FINAL_STATES = ['passed', 'rolled_back', 'rollback_failed', 'inconclusive', 'superseded', 'would_roll_back'];
/** The policy's error_rate signal, for service `bench`: what "a clean error rate" means between runs. */
const ERROR_RATE_QUERY = `sum(rate(http_requests_total{service="${SERVICE}",code=~"5.."}[3s])) / sum(rate(http_requests_total{service="${SERVICE}"}[3s]))`;

type BadKind = 'errors' | 'unready';
const BAD: Record<BadKind, { ref: string; title: string }> = {
  errors: { ref: 'rollguard-fixture:v2-errors', title: 'rollguard-fixture:v2-errors (20 % of requests 5xx)' },
  unready: { ref: 'rollguard-fixture:v2-unready', title: 'rollguard-fixture:v2-unready (readiness answers 503)' },
};

/** One bad deploy and its revert. Durations in ms; undefined when that moment never came. */
interface RecoveryRun {
  run: number;
  state: string;
  rule: string;
  attempts: number | undefined;
  /** Bad container's start → known-good image running and /cgi-bin/ready answering 200 (our poll). */
  total?: number;
  startToDetect?: number;
  startToDecision?: number;
  decisionToReady?: number;
  decisionToVerified?: number;
  /** Bad container's start → rollguard's recovered_at. */
  startToVerified?: number;
  /** Bad container's start → the breach first visible (Prometheus' error rate above 5 %, or /ready not 200; polled). */
  startToVisible?: number;
  /** Breach first visible → revert decided: detection, `for: 3` included. */
  visibleToDecision?: number;
  /** Revert decided → the known-good container's State.StartedAt. */
  decisionToGoodStarted?: number;
  /** Known-good container started → serving ready (our poll). */
  goodStartedToReady?: number;
  note?: string;
}

interface RssResult { store: string; samplesMb: number[]; medianMb: number; hwmMb: number | undefined }

const run = promisify(execFile);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const say = (line = ''): void => void process.stdout.write(`${line}\n`);

/**
 * Resources to release on the way out, newest first — also on SIGINT/SIGTERM, so an interrupted
 * bench leaves no daemon, database, container or Prometheus behind. `defer` returns a release
 * function for releasing one early, on the normal path.
 */
const cleanups: { what: string; fn: () => Promise<unknown> }[] = [];
function defer(what: string, fn: () => Promise<unknown>): () => Promise<void> {
  const entry = { what, fn };
  cleanups.unshift(entry);
  return async () => {
    const i = cleanups.indexOf(entry);
    if (i < 0) return;
    cleanups.splice(i, 1);
    await fn();
  };
}
async function cleanUp(): Promise<void> {
  while (cleanups.length) {
    const c = cleanups.shift() as (typeof cleanups)[number];
    await c.fn().catch((err) => process.stderr.write(`bench clean-up: ${c.what} failed: ${err instanceof Error ? err.message : String(err)}\n`));
  }
}

/** Starts a daemon whose stop (and state-directory removal, unless `keepStateDir`) is deferred. */
async function daemon(policy: string, opts: { databaseUrl?: string; stateDir?: string; keepStateDir?: boolean } = {}): Promise<{ rg: Rollguard; release: () => Promise<void> }> {
  const rg = await startRollguard(policy, opts);
  const release = defer(`stop rollguard pid ${rg.process.pid}`, async () => {
    await rg.stop();
    if (!opts.keepStateDir) await rm(rg.stateDir, { recursive: true, force: true });
  });
  return { rg, release };
}

/** A fresh PostgreSQL database whose drop is deferred. */
async function database(): Promise<{ url: string; release: () => Promise<void> }> {
  const db = await freshDatabase();
  return { url: db.url, release: defer('drop the bench database', () => db.drop()) };
}

// ---- small helpers -----------------------------------------------------------------------------

/**
 * The bench's policy: the integration fixture's, with room for ten bad deploys in a row where the
 * policy knows `max_rollbacks` (otherwise the anti-flapping limit, 3 per hour by default, would
 * stop the fourth revert of the bench and measure that instead).
 */
async function benchPolicy(promUrl: string): Promise<string> {
  const text = fixturePolicy(promUrl, { port: PORT, service: SERVICE, container: NAME });
  const schema = await readFile(path.join(path.dirname(new URL(import.meta.url).pathname), '../../config/rollguard.schema.json'), 'utf8').catch(() => '');
  return schema.includes('"max_rollbacks"') ? text.replace('defaults:\n', 'defaults:\n  max_rollbacks: {count: 100, per: 1h}\n') : text;
}

function median(values: readonly number[]): number | undefined {
  if (!values.length) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Docker's RFC 3339 time with nanoseconds → epoch ms, keeping the sub-millisecond part. */
function dockerTimeMs(text: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$/.exec(text.trim());
  if (!m) throw new Error(`unexpected Docker time "${text}"`);
  const whole = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(whole) || whole <= 0) throw new Error(`unexpected Docker time "${text}"`);
  return whole + (m[2] ? Number(`0${m[2]}`) * 1000 : 0);
}

const ms = (iso: string | null): number | undefined => (iso === null ? undefined : Date.parse(iso));
const diff = (from: number | undefined, to: number | undefined): number | undefined => (from === undefined || to === undefined ? undefined : to - from);
const secs = (v: number | undefined): string => (v === undefined ? '-' : `${(v / 1000).toFixed(2)} s`);
const verdict = (ok: boolean): string => (ok ? 'ok' : 'MISSED');

function table(head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = (c: string): boolean => /^(-|[\d.]+ (s|MB))$/.test(c); // figures right-aligned, words left
  const line = (cells: string[]): string => cells.map((c, i) => (numeric(c) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  say(line(head));
  say(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) say(line(r));
}

async function firstLine(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run(cmd, args);
    return (stdout || stderr).trim().split('\n')[0] ?? '?';
  } catch (err) {
    return `unavailable (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`;
  }
}

// ---- the environment ---------------------------------------------------------------------------

async function printMachine(): Promise<void> {
  const [nproc, dockerVersion, promVersion] = await Promise.all([
    firstLine('nproc', []),
    firstLine('docker', ['version', '--format', '{{.Server.Version}}']),
    firstLine('prometheus', ['--version']),
  ]);
  say('== Machine');
  table(['what', 'value'], [
    ['nproc', nproc],
    ['memory', `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB total, ${(os.freemem() / 2 ** 30).toFixed(1)} GiB free`],
    ['cpu', os.cpus()[0]?.model ?? '?'],
    ['kernel', `${os.type()} ${os.release()}`],
    ['node', process.version],
    ['docker server', dockerVersion],
    ['prometheus', promVersion.replace(/^prometheus, version /, '')],
    ['load average', os.loadavg().map((l) => l.toFixed(2)).join(' ')],
  ].map((r) => r.map(String)));
  say();
}

/** Prometheus' current value of the policy's error_rate for `bench`; undefined without a series. */
async function errorRate(prom: Prometheus): Promise<number | undefined> {
  const res = await fetch(`${prom.url}/api/v1/query?query=${encodeURIComponent(ERROR_RATE_QUERY)}`, { signal: AbortSignal.timeout(2_000) });
  const body = (await res.json()) as { data?: { result?: { value: [number, string] }[] } };
  const v = body.data?.result?.[0]?.value[1];
  return v === undefined ? undefined : Number(v);
}

/**
 * Waits until the service is back at rest: `rg-bench` runs the known-good image and is ready,
 * rollguard has no watch open and believes the known-good image runs, and Prometheus' error rate
 * over its 3 s range is exactly 0 again (the known-good fixture serves no 5xx).
 */
async function waitForRest(rg: Rollguard, prom: Prometheus, images: FixtureImages): Promise<void> {
  await waitFor(`${NAME} running the known-good image and ready`, async () => {
    const c = await inspect(NAME);
    return c?.Image === images.good && c.State.Running && (await readyStatus(PORT)) === 200;
  }, 60_000, 250);
  await waitFor('rollguard idle on the known-good image', async () => {
    const s = (await rg.status()).services[SERVICE];
    return s?.image === images.good && s.watch === null;
  }, 45_000, 500);
  await waitFor('a clean error rate in Prometheus', async () => (await errorRate(prom)) === 0, 60_000, 250);
}

async function latestDeploymentId(rg: Rollguard): Promise<number> {
  return (await rg.history(SERVICE))[0]?.id ?? 0;
}

/** After a run that did not end in a clean revert: put the known-good version back by deploying it. */
async function restoreKnownGood(images: FixtureImages): Promise<void> {
  const c = await inspect(NAME);
  if (c?.Image !== images.good || !c.State.Running) await deploy(NAME, GOOD_REF, [], PORT);
  const parked = (await docker('ps', '-aq', '--filter', `name=^/${NAME}.rollguard-bad`)).split('\n').filter(Boolean);
  if (parked.length) await docker('rm', '-f', ...parked);
}

/**
 * Temporary directories of harness Prometheus instances that scrape the bench's port. The harness
 * does not return its directory; port 18083 is reserved for the bench, so these are ours.
 */
async function prometheusDirs(): Promise<string[]> {
  const found: string[] = [];
  for (const name of await readdir(os.tmpdir()).catch(() => [] as string[])) {
    if (!name.startsWith('rg-prom-')) continue;
    const dir = path.join(os.tmpdir(), name);
    const config = await readFile(path.join(dir, 'prometheus.yml'), 'utf8').catch(() => '');
    if (config.includes(`"127.0.0.1:${PORT}"`)) found.push(dir);
  }
  return found;
}

// ---- 1. time to recovery -----------------------------------------------------------------------

/**
 * Polls every POLL_MS until `rg-bench` runs the known-good image and then /cgi-bin/ready answers
 * 200. Inspect comes first: the bad container is stopped before the known-good one is created, so
 * a 200 after seeing the known-good image running is the known-good container's.
 */
async function knownGoodServingAt(dockerApi: Docker, goodImage: string, deadline: number): Promise<number | undefined> {
  for (;;) {
    const tick = Date.now();
    const c = await dockerApi.getContainer(NAME).inspect().catch(() => undefined);
    if (c?.Image === goodImage && c.State.Running && (await readyStatus(PORT)) === 200) return Date.now();
    if (Date.now() > deadline) return undefined;
    await sleep(Math.max(0, POLL_MS - (Date.now() - tick)));
  }
}

/**
 * Polls every POLL_MS from the bad deploy until the breach is visible where rollguard looks: the
 * policy's error rate above 5 % in Prometheus, or the bad container's /cgi-bin/ready answering
 * something else than 200 after it answered at all. Stops at `deadline` or when `stop()` is true.
 */
async function breachVisibleAt(prom: Prometheus, kind: BadKind, deadline: number, stop: () => boolean): Promise<number | undefined> {
  while (Date.now() < deadline && !stop()) {
    const tick = Date.now();
    if (kind === 'errors') {
      const rate = await errorRate(prom).catch(() => undefined);
      if (rate !== undefined && rate > 0.05) return Date.now();
    } else {
      const status = await readyStatus(PORT);
      if (status !== 0 && status !== 200) return Date.now();
    }
    await sleep(Math.max(0, POLL_MS - (Date.now() - tick)));
  }
  return undefined;
}

/**
 * A copy of the bad fixture with an image ID of its own for each run (one LABEL on top, built
 * locally): rollguard reverts a redeploy of an image it already reverted away from at once, and
 * the bench measures detection, not that shortcut.
 */
async function freshBadImage(kind: BadKind, n: number): Promise<string> {
  const tag = `${BAD[kind].ref}-bench-${n}`;
  await new Promise<void>((resolve, reject) => {
    const build = execFile('docker', ['build', '-q', '-t', tag, '-'], (err) => (err ? reject(err) : resolve()));
    build.stdin?.end(`FROM ${BAD[kind].ref}\nLABEL rollguard.bench.run="${kind}-${n}-${Date.now()}"\n`);
  });
  defer(`remove image ${tag}`, () => docker('rmi', '-f', tag));
  return tag;
}

async function measureRecovery(rg: Rollguard, prom: Prometheus, dockerApi: Docker, images: FixtureImages, kind: BadKind, n: number): Promise<RecoveryRun> {
  const before = await latestDeploymentId(rg);
  const ref = await freshBadImage(kind, n);
  const id = await deploy(NAME, ref, [], PORT);
  const badStart = dockerTimeMs(await docker('inspect', '-f', '{{.State.StartedAt}}', id));
  let served = false;
  const visible = breachVisibleAt(prom, kind, badStart + RECOVERY_BOUND_MS, () => served);
  const servingAt = await knownGoodServingAt(dockerApi, images.good, badStart + RECOVERY_BOUND_MS);
  served = true;
  const visibleAt = await visible;
  const goodStarted = servingAt === undefined ? undefined : dockerTimeMs(await docker('inspect', '-f', '{{.State.StartedAt}}', NAME));
  const row: HistoryRow = await waitFor(`deployment of ${BAD[kind].ref} (run ${n}) to settle`, async () => {
    const newest = (await rg.history(SERVICE))[0];
    return newest && newest.id > before && FINAL_STATES.includes(newest.state) ? newest : undefined;
  }, 60_000, 500);

  const notes: string[] = [];
  if (row.to_ref !== ref) notes.push(`recorded to_ref ${row.to_ref} is not the deployed ${ref}`);
  const recordedStart = ms(row.started_at);
  if (recordedStart !== undefined && Math.abs(recordedStart - badStart) > 1) notes.push(`recorded started_at differs from Docker's by ${(recordedStart - badStart).toFixed(0)} ms`);
  if (servingAt === undefined) notes.push(`known-good not serving within ${RECOVERY_BOUND_MS / 1000} s`);
  const decided = ms(row.decided_at);
  const recovered = ms(row.recovered_at);
  return {
    run: n,
    state: row.state,
    rule: (row.reason ?? '').split(':')[0] ?? '',
    attempts: (row as HistoryRow & { attempts?: number }).attempts,
    total: diff(badStart, servingAt),
    startToDetect: diff(badStart, ms(row.detected_at)),
    startToDecision: diff(badStart, decided),
    decisionToReady: diff(decided, servingAt),
    decisionToVerified: diff(decided, recovered),
    startToVerified: diff(badStart, recovered),
    startToVisible: diff(badStart, visibleAt),
    visibleToDecision: diff(visibleAt, decided),
    decisionToGoodStarted: diff(decided, goodStarted),
    goodStartedToReady: diff(goodStarted, servingAt),
    note: notes.join('; ') || undefined,
  };
}

function printRecoveryTable(kind: BadKind, runs: RecoveryRun[]): { total: number | undefined; overhead: number | undefined } {
  const cols: { head: string; get: (r: RecoveryRun) => number | undefined }[] = [
    { head: 'start→ready*', get: (r) => r.total },
    { head: 'start→detect', get: (r) => r.startToDetect },
    { head: 'start→visible', get: (r) => r.startToVisible },
    { head: 'visible→decision', get: (r) => r.visibleToDecision },
    { head: 'start→decision', get: (r) => r.startToDecision },
    { head: 'decision→started', get: (r) => r.decisionToGoodStarted },
    { head: 'started→ready', get: (r) => r.goodStartedToReady },
    { head: 'decision→ready', get: (r) => r.decisionToReady },
    { head: 'decision→verified', get: (r) => r.decisionToVerified },
    { head: 'start→verified', get: (r) => r.startToVerified },
  ];
  const within = (v: number | undefined): string => (v === undefined ? 'MISSED' : verdict(v <= RECOVERY_TARGET_MS));
  const rows = runs.map((r) => [String(r.run), ...cols.map((c) => secs(c.get(r))), within(r.total), r.state, String(r.attempts ?? '-'), r.rule, r.note ?? '']);
  const medians = cols.map((c) => median(runs.map(c.get).filter((v): v is number => v !== undefined)));
  const medianTotal = medians[0];
  rows.push(['median', ...medians.map(secs), within(medianTotal), `${runs.filter((r) => r.state === 'rolled_back').length}/${runs.length} rolled_back`, '', '', '']);
  const overhead = median(runs.map((r) => r.visibleToDecision).filter((v): v is number => v !== undefined));
  say(`-- ${BAD[kind].title}, over a running ${GOOD_REF}`);
  table(['run', ...cols.map((c) => c.head), `≤${RECOVERY_TARGET_MS / 1000} s`, 'state', 'attempts', 'rule', 'note'], rows);
  say();
  return { total: medianTotal, overhead: overhead === undefined ? undefined : overhead - POLICY_DETECTION_MS };
}

// ---- 2. idle RSS -------------------------------------------------------------------------------

async function statusField(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number | undefined> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return m ? Number(m[1]) / 1024 : undefined;
}

/** Waits until the daemon adopted the running container and watches nothing, then samples VmRSS once a second for ~10 s. */
async function sampleIdle(rg: Rollguard, images: FixtureImages, store: string): Promise<RssResult> {
  await waitFor('the idle daemon to adopt the running container', async () => {
    const s = (await rg.status()).services[SERVICE];
    return s?.image === images.good && s.watch === null;
  }, 30_000, 250);
  const history = await rg.history(SERVICE);
  if (history.length) throw new Error(`expected no deployment for the idle measurement, found ${history.length}`);
  const pid = rg.process.pid as number;
  const samplesMb: number[] = [];
  for (let i = 0; i < RSS_SAMPLES; i++) {
    if (i) await sleep(1_000);
    if (rg.process.exitCode !== null) throw new Error(`rollguard exited with ${rg.process.exitCode} while idle: ${await rg.logs()}`);
    const rss = await statusField(pid, 'VmRSS');
    if (rss !== undefined) samplesMb.push(rss);
  }
  return { store, samplesMb, medianMb: median(samplesMb) as number, hwmMb: await statusField(pid, 'VmHWM') };
}

/**
 * Idle RSS with the embedded store, twice: the first start of a fresh state directory (the
 * database file is created and migrated) and a restart over that directory (what a long-running
 * host sees after a reboot).
 */
async function idleRssEmbedded(prom: Prometheus, images: FixtureImages): Promise<RssResult[]> {
  const policy = await benchPolicy(prom.url);
  const first = await daemon(policy, { keepStateDir: true });
  const removeStateDir = defer('remove the idle daemon\'s state dir', () => rm(first.rg.stateDir, { recursive: true, force: true }));
  try {
    const fresh = await sampleIdle(first.rg, images, 'SQLite, first start (fresh state dir)');
    await first.release();
    const again = await daemon(policy, { stateDir: first.rg.stateDir, keepStateDir: true });
    try {
      return [fresh, await sampleIdle(again.rg, images, 'SQLite, restart on that state dir')];
    } finally {
      await again.release();
    }
  } finally {
    await first.release();
    await removeStateDir();
  }
}

/** Idle RSS with PostgreSQL, on a fresh database. */
async function idleRssPostgres(prom: Prometheus, images: FixtureImages): Promise<RssResult> {
  const db = await database();
  try {
    const { rg, release } = await daemon(await benchPolicy(prom.url), { databaseUrl: db.url });
    try {
      return await sampleIdle(rg, images, 'PostgreSQL (fresh database)');
    } finally {
      await release();
    }
  } finally {
    await db.release();
  }
}

// ---- the bench ---------------------------------------------------------------------------------

async function main(): Promise<void> {
  const runs = Number(process.env.BENCH_RUNS ?? 5);
  if (!Number.isInteger(runs) || runs < 1 || runs > 100) throw new Error(`BENCH_RUNS must be an integer from 1 to 100, got "${process.env.BENCH_RUNS}"`);
  const recoveryStore = (process.env.BENCH_STORE ?? 'sqlite').toLowerCase();
  if (recoveryStore !== 'sqlite' && recoveryStore !== 'postgres') throw new Error(`BENCH_STORE must be sqlite or postgres, got "${process.env.BENCH_STORE}"`);

  say(`rollguard recovery bench — ${new Date().toISOString()}`);
  say();
  await printMachine();

  const images = await buildFixtures();
  await removeContainers(NAME);
  defer(`remove ${NAME}* containers`, () => removeContainers(NAME));
  const promDirsBefore = new Set(await prometheusDirs());
  const prom = await startPrometheus([{ port: PORT, service: SERVICE }]);
  defer('remove the bench\'s Prometheus directory', async () => {
    for (const dir of await prometheusDirs()) if (!promDirsBefore.has(dir)) await rm(dir, { recursive: true, force: true });
  });
  defer('stop Prometheus', () => prom.stop());
  await deploy(NAME, GOOD_REF, [], PORT);
  await prom.waitForData(`sum(rate(http_requests_total{service="${SERVICE}"}[3s]))`);

  // 2. Idle RSS first, each with its own fresh daemon; never two daemons watching rg-bench at once.
  say('== Idle RSS of the rollguard process (one watched service, no deployment in progress)');
  const rss: RssResult[] = [];
  rss.push(...(await idleRssEmbedded(prom, images)));
  rss.push(await idleRssPostgres(prom, images));
  table(['store', 'median VmRSS', `≤${RSS_TARGET_MB} MB`, 'min', 'max', 'VmHWM', 'samples (MB, 1 s apart)'], rss.map((r) => [
    r.store, `${r.medianMb.toFixed(1)} MB`, verdict(r.medianMb <= RSS_TARGET_MB),
    `${Math.min(...r.samplesMb).toFixed(1)} MB`, `${Math.max(...r.samplesMb).toFixed(1)} MB`,
    r.hwmMb === undefined ? '-' : `${r.hwmMb.toFixed(1)} MB`, r.samplesMb.map((v) => v.toFixed(1)).join(' '),
  ]));
  say();

  // 1. Time to recovery.
  const db = recoveryStore === 'postgres' ? await database() : undefined;
  const { rg } = await daemon(await benchPolicy(prom.url), { databaseUrl: db?.url });
  const dockerApi = new Docker();
  say(`== Time to recovery (${runs} run(s) per bad image; store ${recoveryStore === 'postgres' ? 'PostgreSQL' : 'SQLite'}; scrape 1 s, interval 1 s, for: 3, stop_timeout 1s, window 8s)`);
  say(`   * start→ready = bad container's State.StartedAt → ${NAME} runs the known-good image and /cgi-bin/ready answers 200 (polled every ${POLL_MS} ms); target ≤ ${RECOVERY_TARGET_MS / 1000} s`);
  say('   detect / decision / verified are rollguard\'s detected_at / decided_at / recovered_at from `rollguard history --json`');
  say();
  const summary: Partial<Record<BadKind, { median: number | undefined; worst: number | undefined; rolledBack: string; overhead: number | undefined }>> = {};
  for (const kind of ['errors', 'unready'] as const) {
    const results: RecoveryRun[] = [];
    for (let n = 1; n <= runs; n++) {
      await waitForRest(rg, prom, images);
      const r = await measureRecovery(rg, prom, dockerApi, images, kind, n);
      results.push(r);
      process.stderr.write(`bench: ${kind} run ${n}/${runs}: ${r.state}, start→ready ${secs(r.total)}\n`);
      if (r.state !== 'rolled_back' || r.total === undefined) await restoreKnownGood(images);
    }
    await waitForRest(rg, prom, images);
    const totals = results.map((r) => r.total);
    const printed = printRecoveryTable(kind, results);
    summary[kind] = {
      median: printed.total,
      overhead: printed.overhead,
      worst: totals.includes(undefined) ? undefined : Math.max(...(totals as number[])),
      rolledBack: `${results.filter((r) => r.state === 'rolled_back').length}/${results.length} rolled_back`,
    };
  }

  say('== Targets');
  const rows: string[][] = [];
  for (const kind of ['errors', 'unready'] as const) {
    const k = summary[kind];
    const m = k?.median;
    rows.push([
      `recovery from the bad container's start, ${kind === 'errors' ? '20 % 5xx' : 'readiness 503'} (median start→ready)`, secs(m), `≤ ${RECOVERY_TARGET_MS / 1000} s`,
      m === undefined ? 'MISSED' : verdict(m <= RECOVERY_TARGET_MS), `worst run ${k?.worst === undefined ? 'did not recover' : secs(k.worst)}; ${k?.rolledBack ?? ''}`,
    ]);
    const o = k?.overhead;
    rows.push([
      `detection overhead beyond for × interval, ${kind} (median visible→decision − 3 s)`, secs(o), `≤ ${INTERVAL_MS / 1000} s`,
      o === undefined ? 'MISSED' : verdict(o <= INTERVAL_MS), '',
    ]);
  }
  for (const r of rss) rows.push([`idle RSS, ${r.store} (median)`, `${r.medianMb.toFixed(1)} MB`, `≤ ${RSS_TARGET_MB} MB`, verdict(r.medianMb <= RSS_TARGET_MB), '']);
  table(['figure', 'measured', 'target', 'verdict', 'notes'], rows);
  say();
  say(`machine: nproc ${await firstLine('nproc', [])}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, node ${process.version}, load average now ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
}

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupted = true;
    process.stderr.write(`bench: ${signal}; cleaning up\n`);
    void cleanUp().finally(() => process.exit(1));
  });
}

main().then(
  async () => {
    await cleanUp();
    if (!interrupted) process.exit(0);
  },
  async (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    await cleanUp();
    if (!interrupted) process.exit(1);
  },
);
