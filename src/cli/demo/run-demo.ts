import { constants as fsConstants, createWriteStream, type WriteStream } from 'node:fs';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import { ConfigError } from '../../config/errors.js';
import { createLogger } from '../../daemon/logger.js';
import { runRollguard, type RunningRollguard } from '../../daemon/runtime.js';
import { DockerUnreachableError, dockerEndpoint, reachDocker } from '../docker-reachable.js';
import { exitCodeFor } from '../exit-codes.js';
import { appExited, deployApp } from './app-container.js';
import { DEMO_LABEL, removeAllDemoResources, removeDemoResources } from './cleanup.js';
import { buildDemoImages } from './image.js';
import { DEMO_ERROR_RATIO, demoPolicy } from './policy.js';
import { checkEngine, checkNamesFree, DemoRefused } from './preflight.js';
import { Progress } from './progress.js';

export interface DemoOptions {
  /** The status page's address (default 127.0.0.1:9817, or a free port when that is taken). */
  listen?: string;
  /** The demo app's loopback port (default 9818, or a free port when that is taken). */
  port?: number;
  /** Name prefix of what the demo creates; its label's value, so clean-up removes only its own. */
  prefix: string;
  prometheus?: string;
  /** After the revert, keep everything up (status page included) until Ctrl-C. */
  keepRunning: boolean;
}

/** The demo failed on its way: the message says where. */
class DemoFailed extends Error {}

const SERVICE = 'demo';
/** How long the whole loop may take once v2 is deployed before the demo gives up. */
const FOLLOW_TIMEOUT_MS = 120_000;

interface LogEvent {
  msg: string;
  /** Epoch milliseconds. */
  time: number;
  /** An error or worse. */
  error: boolean;
  [field: string]: unknown;
}

/** A log line as an event, whether pino wrote numeric levels and times or names and ISO times. */
function logEvent(line: string): LogEvent | undefined {
  try {
    const raw = JSON.parse(line) as Record<string, unknown>;
    if (typeof raw.msg !== 'string') return undefined;
    const time = typeof raw.time === 'number' ? raw.time : Date.parse(String(raw.time));
    const error = typeof raw.level === 'number' ? raw.level >= 50 : raw.level === 'error' || raw.level === 'fatal';
    return { ...raw, msg: raw.msg, time: Number.isFinite(time) ? time : Date.now(), error };
  } catch {
    return undefined; // not a JSON line: kept in the file only
  }
}

/** A pino destination keeping the daemon's log in a file and its events in memory, for the commentary. */
class LogTap {
  readonly events: LogEvent[] = [];

  constructor(private readonly file: WriteStream) {}

  write(line: string): void {
    this.file.write(line);
    const event = logEvent(line);
    if (event) this.events.push(event);
  }
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** `preferred` when nothing listens on it, else a port the system picks. */
async function pickPort(preferred: number): Promise<number> {
  if (await portFree(preferred)) return preferred;
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function httpStatus(url: string): Promise<number> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(1_000) })).status;
  } catch {
    return 0;
  }
}

/** Polls `check` every 200 ms until it returns a value; fails after `timeoutMs` or when `signal` aborts. */
async function until<T>(what: string, check: () => Promise<T | undefined>, signal: AbortSignal, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    signal.throwIfAborted();
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new DemoFailed(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(200, undefined, { signal });
  }
}

/** The error ratio as Prometheus answers it now; undefined while it has no data for it. */
async function errorRatio(prometheus: string): Promise<number | undefined> {
  const url = new URL('/api/v1/query', prometheus);
  url.searchParams.set('query', DEMO_ERROR_RATIO);
  const res = await fetch(url, { signal: AbortSignal.timeout(2_000) }).catch(() => undefined);
  if (!res?.ok) return undefined;
  const body = (await res.json().catch(() => undefined)) as { data?: { result?: { value?: [number, string] }[] } } | undefined;
  const value = Number(body?.data?.result?.[0]?.value?.[1]);
  return Number.isFinite(value) ? value : undefined;
}

/**
 * Waits until Prometheus has v1's traffic in the error-rate rule's window, so that the rule
 * judges v2 on data rather than on an empty window. Without data in time the demo goes on,
 * saying so: readiness reverts v2 either way.
 */
async function prometheusSeesV1(prometheus: string, p: Progress, signal: AbortSignal): Promise<void> {
  try {
    const ratio = await until('Prometheus to see v1\'s traffic', () => errorRatio(prometheus), signal, 20_000);
    p.ok(`Prometheus sees v1's traffic: error ratio ${ratio}`);
  } catch (err) {
    if (!(err instanceof DemoFailed)) throw err;
    p.note(`Prometheus ${prometheus} has no data for the error-rate rule after 20 s; going on: readiness reverts v2 without it`);
  }
}

/** `promise`, or a rejection as soon as `signal` aborts (the work itself goes on; the caller cleans up after it). */
async function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted();
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => signal.addEventListener('abort', (onAbort = () => reject(signal.reason)), { once: true }))]);
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}

const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

interface Outcome {
  ok: boolean;
  text: string;
  recoveryMs?: number;
}

/**
 * The whole loop on this host: build the demo images, run v1, start rollguard on it, deploy v2 and
 * follow rollguard's revert; cleans up whatever happens. Resolves the exit code.
 */
async function demo(opts: DemoOptions, signal: AbortSignal, p: Progress, out: NodeJS.WritableStream, shared: DemoShared): Promise<number> {
  const docker = await reachDocker();
  const endpoint = await dockerEndpoint(docker);
  const name = `${opts.prefix}app`;
  // Before anything is built or removed: an engine whose host network is not this host's, or a
  // container or image of the demo's names that is not the demo's, and the demo refuses.
  await checkEngine(docker, endpoint);
  await checkNamesFree(docker, name, opts.prefix);
  p.ok(`Docker engine at ${endpoint}`);
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'rollguard-demo-'));
  shared.tmp = tmp;
  const logFile = path.join(tmp, 'rollguard.log');
  const logStream = createWriteStream(logFile);
  let starting: Promise<RunningRollguard> | undefined;
  let traffic: NodeJS.Timeout | undefined;
  let failed = true;
  try {
    const leftovers = await removeDemoResources(docker, opts.prefix);
    if (leftovers.containers.length + leftovers.images.length) p.note(`removed what an earlier demo left: ${[...leftovers.containers, ...leftovers.images].join(', ')}`);

    const port = opts.port ?? (await pickPort(9818));
    const listen = opts.listen ?? `127.0.0.1:${await pickPort(9817)}`;
    const readyUrl = `http://127.0.0.1:${port}/ready`;
    const policyFile = path.join(tmp, 'policy.yaml');
    await writeFile(policyFile, demoPolicy({ container: name, port, prometheus: opts.prometheus }));

    // rollguard starts (opening its embedded database takes a while) while the images are built:
    // the first container of a service it sees is adopted as known-good, whichever comes first.
    p.step(`starting rollguard with a demo policy (readiness every 1 s, revert after 3 failures; embedded database in ${tmp})`);
    const tap = new LogTap(logStream);
    starting = runRollguard({ policyFile, listen, dryRun: false, stateDir: path.join(tmp, 'state'), log: createLogger({ level: 'info', destination: tap }), docker });
    const started = starting.then((r) => {
      p.ok(`rollguard is running — status page: ${r.apiUrl}/ (while the demo runs)`);
      return r;
    });
    started.catch(() => {}); // awaited below; a failure while the images build is reported from there

    p.step('building the demo app\'s images on this engine (no registry): v1 good, v2 bad (/ready answers 503)');
    const built = Date.now();
    const images = await buildDemoImages(docker, { repo: name, label: `${DEMO_LABEL}=${opts.prefix}`, signal });
    p.ok(`built ${images.good.ref} and ${images.bad.ref} in ${secs(Date.now() - built)} (FROM scratch: this host's Node binary and its libraries, and a 30-line HTTP server)`);

    p.step(`running v1 as container ${name} (host network, 127.0.0.1:${port})`);
    await deployApp(docker, name, images.good, port, opts.prefix);
    await until(`v1 to answer ${readyUrl}`, async () => {
      if ((await httpStatus(readyUrl)) === 200) return true;
      const exited = await appExited(docker, name);
      if (exited) throw new DemoFailed(`v1 (container ${name}) did not start: it ${exited}`);
      return undefined;
    }, signal);
    p.ok(`v1 is up: GET ${readyUrl} → 200`);

    if (opts.prometheus) {
      // Some traffic for the error-ratio rule: 20 requests a second to the app's front page.
      traffic = setInterval(() => void fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1_000) }).catch(() => {}), 50);
      p.note(`Prometheus ${opts.prometheus} must scrape http://127.0.0.1:${port}/metrics every 1–5 s for the error-rate rule (${DEMO_ERROR_RATIO}); readiness reverts without it`);
    }

    const running = await abortable(started, signal);
    if (opts.prometheus) await prometheusSeesV1(opts.prometheus, p, signal);
    const serviceStatus = (): { image: string | null; watch: { deployment: number; samples: number; streaks: Record<string, number> } | null } | undefined =>
      running.daemon.status().services[SERVICE] as never;
    await until('rollguard to adopt v1 as known-good', async () => (serviceStatus()?.image === images.good.id ? true : undefined), signal);
    p.ok(`rollguard adopted v1 (${images.good.id.slice(7, 19)}) as the known-good version`);

    let cursor = tap.events.length;
    p.step(`deploying v2: docker rm -f ${name} && docker run --name ${name} … ${images.bad.ref}`);
    const deployedAt = Date.now();
    await deployApp(docker, name, images.bad, port, opts.prefix);

    let outcome: Outcome | undefined;
    let samplesShown = 0;
    let revertDecided = false;
    let restoredShown = false;
    const deadline = Date.now() + FOLLOW_TIMEOUT_MS;
    while (!outcome) {
      signal.throwIfAborted();
      for (; cursor < tap.events.length; cursor++) {
        const ev = tap.events[cursor] as LogEvent;
        switch (ev.msg) {
          case 'deployment detected':
            p.ok(`rollguard detected deployment #${String(ev.deployment)}: ${String(ev.from)} → ${String(ev.to)}, ${secs(ev.time - deployedAt)} after the deploy; watching it`);
            break;
          case 'rolling back':
            revertDecided = true;
            p.bad(`revert decided: "${String(ev.rule)}" failed 3 samples in a row; putting ${String(ev.to)} back`);
            break;
          case 'rolled back and recovered':
            outcome = { ok: true, text: 'recovery verified', recoveryMs: Number(ev.recoveryMs) };
            break;
          case 'deployment passed; now known-good':
          case 'watch inconclusive':
            outcome = { ok: false, text: `rollguard did not revert the bad version: ${ev.msg}${ev.reason ? ` (${String(ev.reason)})` : ''}` };
            break;
          default:
            if (ev.error) {
              const err = (ev.err as { message?: string } | undefined)?.message;
              if (/ROLLBACK FAILED|ROLLBACK LIMIT|known-good image is missing/.test(ev.msg)) outcome = { ok: false, text: `${ev.msg}${ev.reason ? `: ${String(ev.reason)}` : ''}` };
              else p.note(`rollguard: ${ev.msg}${err ? `: ${err}` : ''}`);
            }
        }
      }
      const watch = serviceStatus()?.watch;
      if (watch && watch.samples > samplesShown) {
        samplesShown = watch.samples;
        const rules = Object.entries(watch.streaks);
        const breach = rules.some(([, streak]) => streak > 0);
        p.sample(`sample ${watch.samples}: ${rules.map(([rule, streak]) => `${rule}: ${streak > 0 ? `breach (${streak} in a row)` : 'ok'}`).join(', ')}`, breach);
      }
      if (revertDecided && !restoredShown) {
        const now = await docker.getContainer(name).inspect().catch(() => undefined);
        if (now?.Image === images.good.id && now.State.Running) {
          restoredShown = true;
          p.ok(`known-good v1 restored as ${name}, ${secs(Date.now() - deployedAt)} after the deploy; verifying its recovery`);
        }
      }
      if (!outcome && Date.now() > deadline) outcome = { ok: false, text: `no revert within ${FOLLOW_TIMEOUT_MS / 1000} s of the deploy` };
      if (!outcome) await sleep(200, undefined, { signal });
    }
    if (!outcome.ok) throw new DemoFailed(outcome.text);

    const ready = await httpStatus(readyUrl);
    if (ready !== 200) throw new DemoFailed(`rollguard reported recovery, but ${readyUrl} answers ${ready}`);
    p.ok(`recovery verified: GET ${readyUrl} → 200 from v1 again`);
    const rows = (await (await fetch(`${running.apiUrl}/api/v1/deployments?service=${SERVICE}`)).json().catch(() => [])) as { id: number; state: string; reason: string | null }[];
    const row = Array.isArray(rows) ? rows[0] : undefined;
    if (row) p.note(`recorded: deployment #${row.id} ${row.state}${row.reason ? ` — ${row.reason}` : ''}`);
    out.write(`\nTime to recovery: ${secs(outcome.recoveryMs ?? Date.now() - deployedAt)} (from the bad version's start to verified recovery)\n`);
    out.write(`Status page: ${running.apiUrl}/\n\n`);
    if (opts.keepRunning) {
      p.step('the demo stays up; press Ctrl-C to clean up and exit');
      if (!signal.aborted) await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    }
    failed = false;
    return 0;
  } finally {
    clearInterval(traffic);
    // Started or still starting: stopped once it has (it cannot be stopped half-way through opening its database).
    const rollguard = await starting?.catch((err: Error) => {
      p.bad(`rollguard could not start: ${err.message}`);
      return undefined;
    });
    if (rollguard) {
      const watch = (rollguard.daemon.status().services[SERVICE] as { watch: { state: string } | null } | undefined)?.watch;
      if (watch?.state === 'rolling_back') p.step('a revert is finishing… (rollguard stops once it is done, within 30 s)');
      await rollguard.stop().catch((err: Error) => p.note(`stopping rollguard: ${err.message}`));
    }
    try {
      const removed = await removeAllDemoResources(docker, opts.prefix);
      p.ok(`cleaned up: ${removed.containers.length} container(s), ${removed.images.length} image(s)${removed.volumes.length ? `, ${removed.volumes.length} volume(s)` : ''} removed; rollguard stopped`);
    } catch (err) {
      p.bad(`${(err as Error).message}`);
    }
    await new Promise((r) => logStream.end(r));
    if (failed && starting && !signal.aborted) {
      // A directory of its own (mkdtemp: new, private, unpredictable), so no link planted in /tmp is followed.
      const kept = await mkdtemp(path.join(os.tmpdir(), 'rollguard-demo-log-'))
        .then(async (dir) => {
          const file = path.join(dir, 'rollguard.log');
          await copyFile(logFile, file, fsConstants.COPYFILE_EXCL);
          return file;
        })
        .catch(() => undefined);
      if (kept) p.note(`rollguard's log is kept in ${kept}`);
    }
    await rm(tmp, { recursive: true, force: true });
    shared.tmp = undefined;
  }
}

/** What the signal handler needs to know of a demo in progress. */
interface DemoShared {
  /** The demo's temporary directory (policy, embedded database, log) while it exists. */
  tmp?: string;
}

/** The exit code of a demo stopped by `sig`: 128 + the signal's number, as a shell reports it. */
export function signalExitCode(sig: NodeJS.Signals): number {
  return 128 + (os.constants.signals[sig] ?? 0);
}

/**
 * `rollguard demo`: the loop on this host in about a minute. Ctrl-C (or SIGTERM, or SIGHUP when
 * the terminal goes) stops it and cleans up; a second signal leaves at once, printing how to
 * remove what is left. Resolves the exit code: 0 when rollguard reverted the bad deploy and the
 * demo cleaned up, 69 without a reachable Docker engine, 1 when the demo refused to run here or
 * anything else failed, 128 + the signal's number when stopped by one (SIGINT 130, SIGTERM 143, SIGHUP 129).
 */
export async function demoCommand(opts: DemoOptions): Promise<number> {
  const out = process.stdout;
  const p = new Progress(out);
  const abort = new AbortController();
  const shared: DemoShared = {};
  let stoppedBy: NodeJS.Signals | undefined;
  // After SIGHUP the terminal is gone: writing to it fails (EIO, EPIPE), which must not end the
  // clean-up. Kept until the process exits, as a failed write may still be reported after the demo.
  const ignoreWriteError = (): void => {};
  process.stdout.on('error', ignoreWriteError);
  process.stderr.on('error', ignoreWriteError);
  const onSignal = (sig: NodeJS.Signals): void => {
    if (stoppedBy) {
      const label = `label=${DEMO_LABEL}=${opts.prefix}`;
      process.stderr.write(`\nleaving without cleaning up; remove what is left with:\n  docker ps -aq --filter ${label} | xargs -r docker rm -f -v\n  docker images -q --filter ${label} | xargs -r docker rmi -f\n${shared.tmp ? `  rm -rf '${shared.tmp}'\n` : ''}`);
      process.exit(signalExitCode(sig));
    }
    stoppedBy = sig;
    p.step(`${sig}: stopping the demo and cleaning up (again to leave at once)`);
    abort.abort(new Error(sig));
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const sig of signals) process.on(sig, onSignal);
  try {
    // Resolved: the loop finished (with --keep-running, Ctrl-C is how it ends), whatever came after.
    return await demo(opts, abort.signal, p, out, shared);
  } catch (err) {
    if (stoppedBy) return signalExitCode(stoppedBy);
    if (err instanceof DockerUnreachableError || err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return exitCodeFor(err);
    }
    if (err instanceof DemoRefused) {
      process.stderr.write(`rollguard demo refused: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`rollguard demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    for (const sig of signals) process.off(sig, onSignal);
  }
}
