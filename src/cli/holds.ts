import axios from 'axios';
import { apiToken } from '../api/auth.js';
import { runningDaemon } from '../daemon/state-dir.js';

/** The running daemon's API does not answer (exit 69, unavailable). */
export class DaemonUnreachableError extends Error {
  override readonly name = 'DaemonUnreachableError';
}

/** Finds the daemon's API (from --api, else the state directory's pid file) and the token for changes. */
export async function daemonApi(opts: { api?: string; stateDir: string }): Promise<{ api: string; token: string }> {
  const api = opts.api ?? (await runningDaemon(opts.stateDir))?.api;
  if (!api) throw new DaemonUnreachableError(`no rollguard daemon is running with state directory ${opts.stateDir}; pass --api URL`);
  const token = apiToken();
  if (!token) throw Object.assign(new Error('set ROLLGUARD_API_TOKEN or ROLLGUARD_API_TOKEN_FILE (the daemon\'s token) to change state'), { name: 'SettingError' });
  return { api: api.replace(/\/+$/, ''), token };
}

export function apiError(err: unknown): Error {
  const e = err as { response?: { status: number; data?: { error?: string } }; code?: string; message?: string };
  if (e.response) return new Error(`rollguard answered ${e.response.status}: ${e.response.data?.error ?? 'no reason given'}`);
  return new DaemonUnreachableError(`cannot reach rollguard: ${e.code ?? e.message ?? String(err)}`);
}

export async function placeHold(service: string, opts: { for: string; reason: string; api?: string; stateDir: string; json?: boolean }): Promise<string | object> {
  const { api, token } = await daemonApi(opts);
  try {
    const res = await axios.post<{ until: string; deployment_id: number }>(`${api}/api/v1/holds`, { service, for: opts.for, reason: opts.reason }, {
      headers: { authorization: `Bearer ${token}` }, timeout: 10_000,
    });
    return opts.json ? res.data : `${service}: automatic reverts of deployment ${res.data.deployment_id} paused until ${res.data.until}`;
  } catch (err) {
    throw apiError(err);
  }
}

export async function releaseHold(service: string, opts: { api?: string; stateDir: string; json?: boolean }): Promise<string | object> {
  const { api, token } = await daemonApi(opts);
  try {
    const res = await axios.delete<{ kind: string; deployment_id: number }>(`${api}/api/v1/holds/${encodeURIComponent(service)}`, {
      headers: { authorization: `Bearer ${token}` }, timeout: 10_000,
    });
    return opts.json ? res.data : `${service}: ${res.data.kind} of deployment ${res.data.deployment_id} released; automatic reverts resume`;
  } catch (err) {
    throw apiError(err);
  }
}
