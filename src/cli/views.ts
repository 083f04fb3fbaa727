import axios from 'axios';
import { apiError } from './holds.js';
import pino from 'pino';
import { runningDaemon } from '../daemon/state-dir.js';
import { openStore } from '../store/open-store.js';
import type { Deployment } from '../store/store.js';
import { EXIT } from './exit-codes.js';
import { renderTable } from './format.js';
import { colourful, paint, stateColour } from './style.js';

const quiet = pino({ level: 'silent' });

/** Colours column `column` of a table by its state word, on a terminal only. */
function stateCells(column: number): ((text: string, i: number, cell: string) => string) | undefined {
  if (!colourful(process.stdout)) return undefined;
  return (text, i, cell) => {
    const c = i === column ? stateColour(cell) : undefined;
    return c ? paint(c)(text) : text;
  };
}

const iso = (d: Date | string | null): string | null => (d === null ? null : new Date(d).toISOString());

/** The JSON shape of `rollguard history --json` (operators script against it). */
function toJson(d: Deployment): Record<string, unknown> {
  return {
    id: d.id,
    service: d.service,
    target: d.target,
    state: d.state,
    reason: d.reason,
    from_image: d.from_image,
    from_ref: d.from_ref,
    to_image: d.to_image,
    to_ref: d.to_ref,
    container: d.container_name,
    attempts: d.attempts,
    dry_run: d.dry_run,
    started_at: iso(d.started_at),
    detected_at: iso(d.detected_at),
    decided_at: iso(d.decided_at),
    recovered_at: iso(d.recovered_at),
  };
}

/**
 * Reads deployments: from PostgreSQL when DATABASE_URL is set; else through the running daemon
 * (the state directory and its embedded database are its own), or straight from the state directory when none runs.
 */
export async function readHistory(stateDir: string, q: { service?: string; limit: number }): Promise<Deployment[]> {
  const databaseUrl = process.env.DATABASE_URL || undefined;
  const daemon = databaseUrl ? undefined : await runningDaemon(stateDir);
  if (daemon?.api) {
    try {
      return (await axios.get<Deployment[]>(`${daemon.api}/api/v1/deployments`, { params: q, timeout: 10_000 })).data;
    } catch (err) {
      throw apiError(err);
    }
  }
  const store = await openStore({ databaseUrl, stateDir, log: quiet });
  try {
    return await store.listDeployments(q);
  } finally {
    await store.sql.close();
  }
}

export async function printHistory(opts: { service?: string; limit: number; json: boolean; stateDir: string }): Promise<number> {
  const rows = (await readHistory(opts.stateDir, { service: opts.service, limit: opts.limit })).map(toJson);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return 0;
  }
  if (!rows.length) {
    process.stdout.write('no deployments recorded\n');
    return 0;
  }
  const short = (id: unknown): string => (typeof id === 'string' ? id.replace(/^sha256:/, '').slice(0, 12) : '-');
  const table = rows.map((r) => [String(r.id), String(r.service), String(r.state), `${r.from_ref ?? '-'} (${short(r.from_image)})`, `${r.to_ref} (${short(r.to_image)})`, String(r.detected_at), String(r.reason ?? '')]);
  process.stdout.write(`${renderTable(['ID', 'SERVICE', 'STATE', 'FROM', 'TO', 'DETECTED', 'REASON'], table, stateCells(2))}\n`);
  return 0;
}

export async function printStatus(opts: { json: boolean; stateDir: string }): Promise<number> {
  const daemon = await runningDaemon(opts.stateDir);
  if (!daemon?.api) {
    process.stderr.write(`no rollguard daemon is running with state directory ${opts.stateDir}\n`);
    return EXIT.unavailable;
  }
  const res = await axios.get<{ services: Record<string, Record<string, unknown>>; activeWatches: number; dryRun: boolean; dockerConnected: boolean; policy: string; notifications?: { channel: string; pending: number; failed: number; sent: number; last_error: string | null }[] | { error: string } }>(`${daemon.api}/api/v1/status`, { timeout: 10_000 });
  const s = res.data;
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ pid: daemon.pid, api: daemon.api, ...s }, null, 2)}\n`);
    return 0;
  }
  process.stdout.write(`rollguard pid ${daemon.pid} at ${daemon.api}${s.dryRun ? ' (dry run)' : ''}; policy ${s.policy}; Docker ${s.dockerConnected ? 'connected' : 'reconnecting'}; ${s.activeWatches} active watch(es)\n\n`);
  const rows = Object.entries(s.services).map(([name, svc]) => {
    const watch = svc.watch as { deployment: number; to_ref: string; samples: number; window_ends_at: string } | null;
    const hold = svc.hold as { kind: string; until: string | null; reason: string } | null;
    const revert = svc.revert as { deployment: number; to_ref: string; from_ref: string | null; phase: string } | null | undefined;
    const state = svc.leader === false ? 'not led here' : revert ? 'rolling_back' : hold ? (hold.kind === 'freeze' ? 'frozen' : 'held') : watch ? 'watching' : 'idle';
    const left = watch ? Math.max(0, Math.round((Date.parse(watch.window_ends_at) - Date.now()) / 1000)) : 0;
    const detail = [
      revert ? `reverting deployment ${revert.deployment} (${revert.to_ref} → ${revert.from_ref ?? 'known-good'}), phase ${revert.phase}` : '',
      watch ? `deployment ${watch.deployment} (${watch.to_ref}): ${watch.samples} samples, ${left} s of the window left` : '',
      hold ? `${hold.kind === 'freeze' ? 'migrations freeze' : `hold until ${hold.until}`}: ${hold.reason}` : '',
      svc.leader === false ? `led by ${String(svc.leader_instance ?? 'another instance')}` : '',
    ].filter(Boolean).join('; ');
    return [name, String(svc.ref ?? 'no container'), String(svc.replicas ?? '-'), state, detail];
  });
  process.stdout.write(`${renderTable(['SERVICE', 'RUNNING', 'REPLICAS', 'STATE', 'DETAIL'], rows, stateCells(3))}\n`);
  const n = s.notifications;
  if (Array.isArray(n) && n.length) {
    process.stdout.write('notifications:\n');
    for (const c of n) process.stdout.write(`  ${c.channel}: ${c.sent} sent, ${c.pending} pending, ${c.failed} failed${c.last_error ? ` — last error: ${c.last_error}` : ''}\n`);
  } else if (n && !Array.isArray(n)) {
    process.stdout.write(`notifications: unknown (${n.error})\n`);
  }
  return 0;
}
