/**
 * Real parts for integration tests: the Docker engine, Prometheus with a 1 s scrape, PostgreSQL
 * or the embedded SQLite store, and the rollguard CLI as a child process. Everything listens on 127.0.0.1.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { appendFile, cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The built CLI; ROLLGUARD_DIST points at another build (e.g. `tsc --outDir .dist-x`) so parallel work does not share dist/; it must sit inside the checkout so node_modules resolve. */
export const CLI = path.join(process.env.ROLLGUARD_DIST ? path.resolve(process.env.ROLLGUARD_DIST) : path.join(ROOT, 'dist'), 'cli/main.js');
export const FIXTURE_PORT = 18080;

/** A daemon's JSON log line with its time in epoch milliseconds (rollguard logs ISO 8601 times). */
export function parseLogLine<T extends { time: number }>(line: string): T {
  const entry = JSON.parse(line) as Omit<T, 'time'> & { time: string | number };
  return { ...entry, time: typeof entry.time === 'string' ? Date.parse(entry.time) : entry.time } as unknown as T;
}

/** Every secret a test gives rollguard contains this, so a kept log can be searched for any of them. */
export const SECRET_MARKER = 'rg-test-secret';

/** A fresh secret value carrying SECRET_MARKER; `what` says which kind it is, for a readable failure. */
export function testSecret(what: string): string {
  return `${SECRET_MARKER}-${what}-${randomBytes(8).toString('hex')}`;
}

/** The run of `node --test` this process belongs to: each test file runs as a child of one runner, named by its pid and start time. */
function testRunId(): string {
  if (process.env.ROLLGUARD_TEST_RUN) return process.env.ROLLGUARD_TEST_RUN;
  try {
    const stat = readFileSync(`/proc/${process.ppid}/stat`, 'utf8');
    const startTime = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    return `run-${process.ppid}-${startTime}`;
  } catch {
    return `run-${process.ppid}`;
  }
}

/** Where the output of every rollguard child process is kept, one directory per run of the suite (see zz-secrets-in-logs.test.ts). */
export const KEPT_LOGS_ROOT = path.join(process.env.ROLLGUARD_TEST_LOGS ?? '/tmp/rollguard-test', 'daemon-logs');
export const KEPT_LOGS = path.join(KEPT_LOGS_ROOT, testRunId());
const testFile = path.basename(process.argv[1] ?? 'test').replace(/[^\w.-]/g, '_');
let keptCount = 0;

/** A new file name in KEPT_LOGS for this test process, for the output of a rollguard process a test spawns itself. */
export function keptLogFile(kind: string): string {
  mkdirSync(KEPT_LOGS, { recursive: true });
  keptCount += 1;
  return path.join(KEPT_LOGS, `${testFile}-${process.pid}-${keptCount}-${kind}.log`);
}

/** Appends the output of a short-lived rollguard command (its arguments, stdout and stderr) to this process's kept CLI log. */
export async function keepOutput(args: readonly string[], stdout: string, stderr: string): Promise<void> {
  mkdirSync(KEPT_LOGS, { recursive: true });
  await appendFile(path.join(KEPT_LOGS, `${testFile}-${process.pid}-cli.log`), `$ rollguard ${args.join(' ')}\n${stdout ?? ''}${stderr ?? ''}\n`);
}

export async function docker(...args: string[]): Promise<string> {
  const { stdout } = await run('docker', args, { maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}

/** Polls `check` until it returns a truthy value; fails with the last value seen after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface FixtureImages { good: string; good2: string; errors: string; unready: string }

/** Builds the fixture versions FROM scratch with Debian's busybox-static; returns their image IDs. */
export async function buildFixtures(): Promise<FixtureImages> {
  const ctx = await mkdtemp(path.join(os.tmpdir(), 'rg-fixture-'));
  try {
    await cp(path.join(ROOT, 'test/fixtures/app'), ctx, { recursive: true });
    await cp('/bin/busybox', path.join(ctx, 'busybox'));
    const build = async (tag: string, args: Record<string, string>): Promise<string> => {
      const flags = Object.entries(args).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]);
      await docker('build', '-q', '-t', tag, ...flags, ctx);
      return docker('image', 'inspect', '-f', '{{.Id}}', tag);
    };
    return {
      good: await build('rollguard-fixture:v1', { VERSION: 'v1' }),
      good2: await build('rollguard-fixture:v1.1', { VERSION: 'v1.1' }),
      errors: await build('rollguard-fixture:v2-errors', { VERSION: 'v2', ERROR_PCT: '20' }),
      unready: await build('rollguard-fixture:v2-unready', { VERSION: 'v2', READY: '0' }),
    };
  } finally {
    await rm(ctx, { recursive: true, force: true });
  }
}

/** Removes every container whose name starts with `prefix` (parked ones included). */
export async function removeContainers(prefix: string): Promise<void> {
  const ids = (await docker('ps', '-aq', '--filter', `name=^/${prefix}`)).split('\n').filter(Boolean);
  if (ids.length) await docker('rm', '-f', ...ids);
}

/** `docker run` the way an operator deploys: host network, loopback only; `port` sets the fixture's port. */
export async function deploy(name: string, image: string, extra: string[] = [], port = FIXTURE_PORT): Promise<string> {
  await docker('rm', '-f', name).catch(() => '');
  return docker('run', '-d', '--name', name, '--network', 'host', '--restart', 'unless-stopped', '-e', `PORT=${port}`, ...extra, image);
}

export async function inspect(name: string): Promise<{ Id: string; Image: string; Name: string; State: { Running: boolean } } | undefined> {
  try {
    return JSON.parse(await docker('inspect', name))[0];
  } catch {
    return undefined;
  }
}

export async function readyStatus(port = FIXTURE_PORT): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/cgi-bin/ready`, { signal: AbortSignal.timeout(1_000) });
    return res.status;
  } catch {
    return 0;
  }
}

export interface Prometheus {
  url: string;
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Resolves once `query` returns at least one series (e.g. after a restart, when rates need two scrapes). */
  waitForData(query?: string): Promise<void>;
}

/** Debian's Prometheus with its own config, a 1 s scrape of the fixture, on a loopback port. */
export async function startPrometheus(targets: { port: number; service: string; labels?: Record<string, string>; host?: string; metricsPath?: string }[]): Promise<Prometheus> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rg-prom-'));
  const port = await freePort();
  const config = [
    'global: {scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s}',
    'scrape_configs:',
    ...targets.map((t) => `  - {job_name: ${t.service}-${t.port}, metrics_path: ${t.metricsPath ?? '/cgi-bin/metrics'}, static_configs: [{targets: ["${t.host ?? '127.0.0.1'}:${t.port}"], labels: ${JSON.stringify({ service: t.service, ...t.labels })}}]}`),
  ].join('\n');
  await writeFile(path.join(dir, 'prometheus.yml'), config);
  let child: ChildProcess | undefined;
  const url = `http://127.0.0.1:${port}`;
  const start = async (): Promise<void> => {
    const log = openSync(path.join(dir, 'prometheus.log'), 'a');
    child = spawn('prometheus', [
      `--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn',
    ], { stdio: ['ignore', log, log] });
    closeSync(log);
    await waitFor('Prometheus ready', async () => (await fetch(`${url}/-/ready`).catch(() => undefined))?.ok, 30_000);
  };
  const stop = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  };
  await start();
  const waitForData = async (query = 'sum(rate(http_requests_total[3s]))'): Promise<void> => {
    await waitFor(`Prometheus data for ${query}`, async () => {
      const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(query)}`);
      const body = (await res.json()) as { data?: { result?: unknown[] } };
      return (body.data?.result?.length ?? 0) > 0;
    }, 30_000);
  };
  return { url, port, start, stop, waitForData };
}

/** A fresh, empty PostgreSQL database on the machine's server; dropped by `drop()`. */
export async function freshDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = process.env.ROLLGUARD_TEST_PG_ADMIN ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const name = `rollguard_test_${process.pid}_${Date.now()}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`CREATE DATABASE ${name}`);
  await client.end();
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export interface Rollguard {
  process: ChildProcess;
  stateDir: string;
  logFile: string;
  env: NodeJS.ProcessEnv;
  apiUrl: string;
  cli(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }>;
  history(service?: string): Promise<HistoryRow[]>;
  status(): Promise<{ services: Record<string, { image: string | null; watch: unknown }> }>;
  logs(): Promise<string>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface HistoryRow {
  id: number; service: string; state: string; reason: string | null;
  from_image: string | null; to_image: string; to_ref: string; from_ref: string | null;
  detected_at: string; decided_at: string | null; recovered_at: string | null; started_at: string;
}

export interface CliResult { stdout: string; stderr: string; code: number }

/**
 * Runs the built CLI to the end (`env` whole, as the child's environment). Its output is kept with
 * the run's logs, so the secrets scan covers every command a test runs.
 */
export async function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env: opts.env ?? process.env, timeout: opts.timeoutMs, maxBuffer: 16 * 1024 * 1024 });
    await keepOutput(args, stdout, stderr);
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    await keepOutput(args, e.stdout, e.stderr);
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

/** Starts `rollguard run` as a real process with its own state directory; its output is kept in KEPT_LOGS. */
export async function startRollguard(policyText: string, opts: { databaseUrl?: string; stateDir?: string; extraArgs?: string[]; env?: NodeJS.ProcessEnv } = {}): Promise<Rollguard> {
  const stateDir = opts.stateDir ?? (await mkdtemp(path.join(os.tmpdir(), 'rg-state-')));
  const policyFile = path.join(stateDir, 'policy.yaml');
  await writeFile(policyFile, policyText);
  const logFile = keptLogFile('rollguard');
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env, ROLLGUARD_STATE_DIR: stateDir, ROLLGUARD_LOG_LEVEL: 'debug' };
  delete env.DATABASE_URL;
  if (opts.databaseUrl) env.DATABASE_URL = opts.databaseUrl;
  const log = openSync(logFile, 'a');
  const child = spawn(process.execPath, ['--optimize-for-size', CLI, 'run', '--policy', policyFile, '--listen', `127.0.0.1:${port}`, ...(opts.extraArgs ?? [])], {
    env, stdio: ['ignore', log, log],
  });
  closeSync(log);
  const apiUrl = `http://127.0.0.1:${port}`;
  const cli = (...args: string[]): Promise<CliResult> => runCli(args, { env });
  const rg: Rollguard = {
    process: child, stateDir, logFile, env, apiUrl, cli,
    async history(service) {
      const r = await cli('history', '--json', ...(service ? ['--service', service] : []));
      if (r.code !== 0) throw new Error(`rollguard history failed: ${r.stderr}`);
      return JSON.parse(r.stdout) as HistoryRow[];
    },
    async status() {
      const r = await cli('status', '--json');
      if (r.code !== 0) throw new Error(`rollguard status failed: ${r.stderr}`);
      return JSON.parse(r.stdout);
    },
    logs: () => readFile(logFile, 'utf8'),
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null) return child.exitCode;
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill(signal);
      return exited;
    },
  };
  await waitFor('rollguard /healthz', async () => {
    if (child.exitCode !== null) throw new Error(`rollguard exited with ${child.exitCode}: ${await rg.logs()}`);
    return (await fetch(`${apiUrl}/healthz`).catch(() => undefined))?.ok;
  }, 30_000);
  return rg;
}

/** A policy for the fixture service with the benchmark's timings (1 s interval, for: 3, stop_timeout 1s). */
export function fixturePolicy(promUrl: string, over: { window?: string; container?: string; minDataRatio?: number; port?: number; service?: string; maxAttempts?: number; recoveryTimeout?: string } = {}): string {
  const port = over.port ?? FIXTURE_PORT;
  return `version: 1
prometheus:
  url: ${promUrl}
  timeout: 2s
defaults:
  window: ${over.window ?? '8s'}
  interval: 1s
  max_attempts: ${over.maxAttempts ?? 2}
  stop_timeout: 1s
  recovery_timeout: ${over.recoveryTimeout ?? '20s'}
  min_data_ratio: ${over.minDataRatio ?? 0.6}
services:
  ${over.service ?? 'web'}:
    match:
      container: ${over.container ?? 'rg-web'}
    signals:
      error_rate:
        prometheus: |
          sum(rate(http_requests_total{service="{{service}}",code=~"5.."}[3s]))
            / sum(rate(http_requests_total{service="{{service}}"}[3s]))
      ready:
        http:
          url: http://127.0.0.1:${port}/cgi-bin/ready
          timeout: 1s
          status: 200
          json: {status: ready, checks.database.status: ok}
      restarts:
        container: restart_count
    rules:
      - name: error rate above 5%
        signal: error_rate
        above: 0.05
        for: 3
        severity: P0
        action: rollback
      - name: readiness failing
        signal: ready
        below: 1
        for: 3
        severity: P0
        action: rollback
      - name: restarting
        signal: restarts
        above: 2
        for: 1
        severity: P1
        action: notify
    recovery:
      - {signal: error_rate, below: 0.01}
      - {signal: ready, above: 0}
`;
}

/** Runs one query on a test database, on a connection of its own (so a restarted server is no trouble). */
export async function dbQuery<T>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text, params)).rows as T[];
  } finally {
    await client.end();
  }
}

export interface PagerEvent { event_action: string; dedup_key: string; payload?: { summary?: string } }

/** A PagerDuty Events API v2 stand-in on loopback that keeps every event it accepts. */
export async function pagerReceiver(): Promise<{ port: number; events: PagerEvent[]; close(): Promise<void> }> {
  const events: PagerEvent[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        events.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as PagerEvent);
        res.writeHead(202, { 'content-type': 'application/json' }).end('{"status":"success"}');
      } catch {
        res.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port, events,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

/** Policy YAML appended to fixturePolicy(): one PagerDuty channel (key from ${PD_KEY}) on `port`, the P0 route. */
export function pagerChannel(port: number): string {
  return `notifications:
  pager:
    pagerduty:
      routing_key: \${PD_KEY}
      url: http://127.0.0.1:${port}/v2/enqueue
routes:
  P0: [pager]
`;
}

/** A TCP proxy to PostgreSQL that a test can cut (every connection dropped, new ones refused) and restore on the same port. */
export class TcpProxy {
  port = 0;
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly target: number) {}

  async start(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.target, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => { client.destroy(); upstream.destroy(); });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  async cut(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }

  /** `url` with its host and port replaced by the proxy's. */
  via(url: string): string {
    const u = new URL(url);
    u.host = `127.0.0.1:${this.port}`;
    return u.toString();
  }
}
