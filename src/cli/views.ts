import axios from 'axios';
import pino from 'pino';
import { runningDaemon } from '../daemon/state-dir.js';
import { openStore } from '../store/open-store.js';
import type { Deployment } from '../store/store.js';

const quiet = pino({ level: 'silent' });

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
 * (the embedded database allows one process), or straight from the state directory when none runs.
 */
export async function readHistory(stateDir: string, q: { service?: string; limit: number }): Promise<Deployment[]> {
  const databaseUrl = process.env.DATABASE_URL || undefined;
  const daemon = databaseUrl ? undefined : await runningDaemon(stateDir);
  if (daemon?.api) {
    const res = await axios.get<Deployment[]>(`${daemon.api}/api/v1/deployments`, { params: q, timeout: 10_000 });
    return res.data;
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
  const head = ['ID', 'SERVICE', 'STATE', 'FROM', 'TO', 'DETECTED', 'REASON'];
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((row) => (row[i] ?? '').length)));
  for (const row of [head, ...table]) process.stdout.write(`${row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')}\n`);
  return 0;
}

export async function printStatus(opts: { json: boolean; stateDir: string }): Promise<number> {
  const daemon = await runningDaemon(opts.stateDir);
  if (!daemon?.api) {
    process.stderr.write(`no rollguard daemon is running with state directory ${opts.stateDir}\n`);
    return 1;
  }
  const res = await axios.get<{ services: Record<string, Record<string, unknown>>; activeWatches: number; dryRun: boolean; dockerConnected: boolean; policy: string; notifications?: { channel: string; pending: number; failed: number; sent: number; last_error: string | null }[] | { error: string } }>(`${daemon.api}/api/v1/status`, { timeout: 10_000 });
  const s = res.data;
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ pid: daemon.pid, api: daemon.api, ...s }, null, 2)}\n`);
    return 0;
  }
  process.stdout.write(`rollguard pid ${daemon.pid} at ${daemon.api}${s.dryRun ? ' (dry run)' : ''}; policy ${s.policy}; Docker ${s.dockerConnected ? 'connected' : 'reconnecting'}; ${s.activeWatches} active watch(es)\n`);
  for (const [name, svc] of Object.entries(s.services)) {
    const watch = svc.watch as { deployment: number; state: string; to_ref: string; samples: number; window_ends_at: string } | null;
    const what = watch ? `watching deployment ${watch.deployment} (${watch.to_ref}), ${watch.samples} samples, window ends ${watch.window_ends_at}` : 'idle';
    const hold = svc.hold as { kind: string; until: string | null; reason: string } | null;
    const held = hold ? `; ${hold.kind === 'freeze' ? 'FROZEN (migrations)' : `HELD until ${hold.until}`}: ${hold.reason}` : '';
    const led = svc.leader === false ? `; led by ${String(svc.leader_instance ?? 'another instance')}` : '';
    process.stdout.write(`  ${name}: ${svc.ref ?? 'no container'} — ${svc.leader === false ? 'not led here' : what}${held}${led}\n`);
  }
  const n = s.notifications;
  if (Array.isArray(n) && n.length) {
    process.stdout.write('notifications:\n');
    for (const c of n) process.stdout.write(`  ${c.channel}: ${c.sent} sent, ${c.pending} pending, ${c.failed} failed${c.last_error ? ` — last error: ${c.last_error}` : ''}\n`);
  } else if (n && !Array.isArray(n)) {
    process.stdout.write(`notifications: unknown (${n.error})\n`);
  }
  return 0;
}
