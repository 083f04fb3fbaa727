import os from 'node:os';
import { createInterface } from 'node:readline/promises';
import axios from 'axios';
import { apiError, daemonApi, DaemonUnreachableError } from './holds.js';
import { EXIT } from './exit-codes.js';
import { colourful, paint } from './style.js';
import { UsageError } from './usage-error.js';

/** One deployment as `/api/v1/deployments/:id` shows it (only what the progress lines use). */
interface Detail {
  deployment: { id: number; state: string; phase?: string | null; attempts?: number; reason?: string | null };
  actions: { attempt: number; kind: string; ok: boolean; detail?: string | null }[];
}

/** Where progress lines go: the terminal, or nowhere with --json. */
interface Out { write(text: string): unknown; isTTY?: boolean }

/** What the service runs now, to name it in the question and pin it in the request. */
interface Current { deployment: number; toRef: string; knownGood: string | null }

export interface RollbackOptions {
  to?: string;
  reason?: string;
  yes: boolean;
  /** Print one JSON object with the outcome instead of the progress lines. */
  json?: boolean;
  api?: string;
  stateDir: string;
  /** How often progress is read. */
  pollMs?: number;
  /** How long the revert is followed before the command gives up following (the daemon goes on). */
  followMs?: number;
}

const ENDED = new Set(['rolled_back', 'rollback_failed', 'superseded', 'passed', 'passed_early', 'inconclusive']);
/** Polls in a row that may fail before the command says it lost the daemon. */
const UNREACHABLE_POLLS = 20;

/**
 * `rollguard rollback SERVICE`: asks the running daemon to revert the service's current deployment
 * (the automatic revert's own path: recorded, told, crash-safe), pinned to the deployment shown in
 * the question, then follows its steps until it ends. Returns the exit code: 0 when the service
 * was rolled back and the recovery verified, 1 when it was not, 69 when the daemon stopped
 * answering (it finishes the revert by itself from the recorded phase).
 */
export async function rollbackByHand(service: string, opts: RollbackOptions, stdout: NodeJS.WriteStream = process.stdout): Promise<number> {
  if (opts.json && !opts.yes) throw new UsageError('--json prints no question to answer: pass --yes with it');
  // With --json the progress lines are not printed; the outcome is, as one object.
  const out: Out = opts.json ? { write: () => true } : stdout;
  const { api, token } = await daemonApi(opts);
  const current = await currentDeployment(api, service);
  const to = opts.to ? `${opts.to} (with the known-good settings)` : `its known-good version${current?.knownGood ? ` ${current.knownGood}` : ''}`;
  const what = current ? `deployment ${current.deployment} (${current.toRef}) → ${to}` : `→ ${to}`;
  if (!opts.yes) {
    if (!process.stdin.isTTY) throw new UsageError(`rollguard rollback changes production: pass --yes to roll back ${service} without a terminal to confirm on`);
    const rl = createInterface({ input: process.stdin, output: stdout });
    const answer = await rl.question(`Roll back ${service}: ${what}? [y/N] `).finally(() => rl.close());
    if (!/^y(es)?$/i.test(answer.trim())) {
      out.write('nothing was changed\n');
      return EXIT.failure;
    }
  }
  const reason = opts.reason ?? `by ${whoAmI()}@${os.hostname()} with rollguard rollback`;
  let started: { deployment_id: number; from: string; to: string };
  try {
    const body = { service, to: opts.to, reason, deployment: current?.deployment };
    started = (await axios.post(`${api}/api/v1/rollbacks`, body, { headers: { authorization: `Bearer ${token}` }, timeout: 30_000 })).data;
  } catch (err) {
    if ((err as { code?: string }).code === 'ECONNABORTED') {
      throw new Error(`rollguard did not answer within 30 s; whether the rollback started is unknown: check \`rollguard history --service ${service}\``);
    }
    throw apiError(err);
  }
  const t0 = Date.now();
  const outcome = await follow(api, service, started, opts, out);
  if (opts.json) {
    stdout.write(`${JSON.stringify({ service, deployment_id: started.deployment_id, from: started.from, to: started.to, state: outcome.state, reason: outcome.reason, took_ms: Date.now() - t0 }, null, 2)}\n`);
  }
  return outcome.code;
}

/** Prints each step and phase of the revert as it passes, until the deployment ends. */
async function follow(api: string, service: string, started: { deployment_id: number; from: string; to: string }, opts: RollbackOptions, out: Out): Promise<{ code: number; state: string; reason: string | null }> {
  const t0 = Date.now();
  const elapsed = (): string => `${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s`;
  out.write(`${service}: rolling back deployment ${started.deployment_id} ${started.from} → ${started.to}\n`);
  let last = '';
  let actionsShown = 0;
  let failures = 0;
  const deadline = t0 + (opts.followMs ?? 30 * 60_000);
  for (;;) {
    try {
      const { deployment: d, actions } = (await axios.get<Detail>(`${api}/api/v1/deployments/${started.deployment_id}`, { timeout: 10_000 })).data;
      failures = 0;
      for (const a of actions.slice(actionsShown)) out.write(`  ${elapsed()}  ${a.ok ? 'done  ' : 'FAILED'} ${a.kind}${a.attempt > 1 ? ` (attempt ${a.attempt})` : ''}${a.detail ? `: ${a.detail}` : ''}\n`);
      actionsShown = actions.length;
      const now = `${d.state}${d.phase && d.state === 'rolling_back' ? ` / ${d.phase}` : ''}`;
      if (now !== last) {
        out.write(`  ${elapsed()}  ${now}\n`);
        last = now;
      }
      if (ENDED.has(d.state)) {
        const ok = d.state === 'rolled_back';
        const colour = colourful(out) ? paint(ok ? 'green' : 'red') : (s: string) => s;
        const end = ok ? `${service}: rolled back to ${started.to}; recovery verified` : `${service}: ${d.state.toUpperCase()}${d.reason ? ` — ${d.reason}` : ''}`;
        out.write(`${colour(end)} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
        return { code: ok ? EXIT.ok : EXIT.failure, state: d.state, reason: d.reason ?? null };
      }
    } catch (err) {
      if (++failures >= UNREACHABLE_POLLS) {
        throw new DaemonUnreachableError(`lost contact with rollguard (${apiError(err).message}); it finishes the revert by itself from the recorded phase — follow it with \`rollguard history --service ${service}\``);
      }
    }
    if (Date.now() > deadline) {
      out.write(`${service}: still ${last} after ${((Date.now() - t0) / 60_000).toFixed(0)} min; rollguard goes on — follow it with \`rollguard history --service ${service}\`\n`);
      return { code: EXIT.failure, state: last.split(' ')[0] || 'unknown', reason: 'still running when the command stopped following it' };
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 500));
  }
}

/** The deployment the service runs now as the daemon sees it: the watched one, else the last recorded. */
async function currentDeployment(api: string, service: string): Promise<Current | undefined> {
  try {
    const status = (await axios.get<{ services: Record<string, { watch?: { deployment: number; to_ref: string } | null; known_good?: { ref: string } | null }> }>(`${api}/api/v1/status`, { timeout: 10_000 })).data;
    const svc = status.services[service];
    if (!svc) return undefined;
    const knownGood = svc.known_good?.ref ?? null;
    if (svc.watch) return { deployment: svc.watch.deployment, toRef: svc.watch.to_ref, knownGood };
    const [latest] = (await axios.get<{ id: number; to_ref: string }[]>(`${api}/api/v1/deployments`, { params: { service, limit: 1 }, timeout: 10_000 })).data;
    return latest ? { deployment: latest.id, toRef: latest.to_ref, knownGood } : undefined;
  } catch (err) {
    throw apiError(err);
  }
}

/** The user's name; a uid without a passwd entry (a container's) is named by its number. */
function whoAmI(): string {
  try {
    return os.userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}
