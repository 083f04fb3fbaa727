import axios from 'axios';
import pino from 'pino';
import { runningDaemon } from '../daemon/state-dir.js';
import { openStore } from '../store/open-store.js';
import type { ActionRecord, DecisionRecord, Deployment } from '../store/store.js';
import { EXIT } from './exit-codes.js';
import { renderTable } from './format.js';
import { apiError } from './holds.js';

const quiet = pino({ level: 'silent' });

interface DeploymentRecord { deployment: Deployment; decisions: DecisionRecord[]; actions: ActionRecord[] }

/** One deployment with its decisions and steps: through the running daemon, else from the store (as `history` reads). */
async function readDeployment(stateDir: string, id: number): Promise<DeploymentRecord | undefined> {
  const databaseUrl = process.env.DATABASE_URL || undefined;
  const daemon = databaseUrl ? undefined : await runningDaemon(stateDir);
  if (daemon?.api) {
    try {
      const res = await axios.get<DeploymentRecord>(`${daemon.api}/api/v1/deployments/${id}`, { timeout: 10_000, validateStatus: (s) => s === 200 || s === 404 });
      return res.status === 404 ? undefined : res.data;
    } catch (err) {
      throw apiError(err);
    }
  }
  const store = await openStore({ databaseUrl, stateDir, log: quiet });
  try {
    const deployment = await store.getDeployment(id);
    if (!deployment) return undefined;
    const [decisions, actions] = await Promise.all([store.listDecisions(id), store.listActions(id)]);
    return { deployment, decisions, actions };
  } finally {
    await store.sql.close();
  }
}

const iso = (d: Date | string | null | undefined): string => (d ? new Date(d).toISOString() : '-');

/**
 * `rollguard history --deployment ID`: what happened to one deployment — its decisions, and every
 * step of its revert with its result, duration and output (the follow-up steps, the safety
 * snapshot and the down-migration included).
 */
export async function printDeployment(opts: { deployment: number; json: boolean; stateDir: string }): Promise<number> {
  const found = await readDeployment(opts.stateDir, opts.deployment);
  if (!found) {
    process.stderr.write(`no deployment ${opts.deployment} is recorded (rollguard history lists them)\n`);
    return EXIT.failure;
  }
  const { deployment: d, decisions, actions } = found;
  const steps = actions.map((a) => ({
    attempt: a.attempt, step: a.kind, ok: a.ok, started_at: iso(a.started_at),
    duration_ms: new Date(a.finished_at).getTime() - new Date(a.started_at).getTime(), detail: a.detail ?? null,
  }));
  if (opts.json) {
    const events = decisions.map((x) => ({ kind: x.kind, rule: x.rule ?? null, severity: x.severity ?? null, at: iso(x.decided_at), detail: x.detail ?? null }));
    process.stdout.write(`${JSON.stringify({ deployment: d, decisions: events, steps }, null, 2)}\n`);
    return 0;
  }
  const out = [
    `deployment ${d.id} of ${d.service}: ${d.from_ref ?? '-'} → ${d.to_ref}, ${d.state}${d.reason ? ` (${d.reason})` : ''}`,
    `detected ${iso(d.detected_at)}; decided ${iso(d.decided_at)}; recovered ${iso(d.recovered_at)}; attempts ${d.attempts}`,
    '',
    decisions.length ? renderTable(['AT', 'DECISION', 'RULE', 'DETAIL'], decisions.map((x) => [iso(x.decided_at), x.kind, x.rule ?? '-', x.detail ?? ''])) : 'no decisions recorded',
    '',
    steps.length
      ? renderTable(['ATTEMPT', 'STEP', 'RESULT', 'TOOK', 'STARTED', 'DETAIL'], steps.map((s) => [String(s.attempt), s.step, s.ok ? 'ok' : 'FAILED', `${s.duration_ms} ms`, s.started_at, (s.detail ?? '').replace(/\s*\n\s*/g, ' ⏎ ')]))
      : 'no revert steps recorded',
  ];
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}
