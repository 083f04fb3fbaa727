import { HttpHealthProvider } from '../../signals/http-health.js';
import type { ProbeResult } from './readiness.js';

/** The timeout the generated readiness checks are written with (`timeout: 2s`); a probe gets no more. */
export const PROBE_TIMEOUT_MS = 2_000;

/**
 * Requests each guessed readiness URL once, all at once, exactly as the written check will (the
 * daemon's HTTP check: GET, no redirects followed, 200 expected, `timeoutMs` for the whole
 * exchange). Never rejects: a URL that does not answer is a result saying so.
 */
export async function probeReadiness(urls: readonly string[], provider = new HttpHealthProvider(), timeoutMs = PROBE_TIMEOUT_MS): Promise<Map<string, ProbeResult>> {
  const results = await Promise.all(urls.map(async (url): Promise<[string, ProbeResult]> => {
    const m = await provider.measure({ kind: 'http', name: 'ready', url, timeoutMs, status: 200, json: {} });
    return [url, m.value === 1 ? { ok: true } : { ok: false, ...(m.detail ? { detail: m.detail } : {}) }];
  }));
  return new Map(results);
}
