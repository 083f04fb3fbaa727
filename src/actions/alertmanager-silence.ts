import type { Logger } from 'pino';
import type { Policy } from '../config/policy.js';
import { redactUrl, redactUrlsIn } from '../model/redact-url.js';

/** Each call to Alertmanager's API gets this long; a revert never waits on it (see silenceWhileReverting). */
export const SILENCE_TIMEOUT_MS = 5_000;

/** The silence kept while one revert runs. `end` expires it; it never rejects. */
export interface RevertSilence {
  end(): Promise<void>;
}

export interface SilenceOptions {
  now?: () => Date;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

const NONE: RevertSilence = { end: async () => {} };

/** The base URL without its userinfo, and that userinfo as a basic-auth header (fetch refuses URLs that carry credentials). */
function endpoint(base: string): { url: string; headers: Record<string, string> } {
  const u = new URL(base);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (u.username || u.password) {
    headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
    u.username = '';
    u.password = '';
  }
  return { url: u.toString().replace(/\/+$/, ''), headers };
}

/** What went wrong, with fetch's underlying cause (ECONNREFUSED…), without credentials. */
function reason(err: unknown): string {
  const e = err as { message?: unknown; cause?: { message?: unknown } } | undefined;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  const cause = typeof e?.cause?.message === 'string' ? `: ${e.cause.message}` : '';
  return redactUrlsIn(`${message}${cause}`);
}

async function call(f: typeof fetch, url: string, init: RequestInit, timeoutMs: number): Promise<unknown> {
  const res = await f(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  if (!res.ok) throw new Error(`HTTP ${res.status}${text.trim() ? `: ${text.trim().slice(0, 200)}` : ''}`);
  return text ? (JSON.parse(text) as unknown) : undefined;
}

/**
 * With `alertmanager.silence` set, silences the service's alerts in Alertmanager (API v2, one
 * matcher: the service label equal to the service's name) for as long as a revert runs and
 * verifies: created now, expired by `end()`. The silence lasts `for` at most, so one left behind
 * by a crash ends by itself. Creating it runs beside the revert rather than before it: a slow or
 * unreachable Alertmanager never delays a revert, and every failure is only logged.
 */
export function silenceWhileReverting(settings: Policy['alertmanager'], target: { service: string; deployment: number }, log: Logger, opts: SilenceOptions = {}): RevertSilence {
  const silence = settings?.silence;
  if (!settings || !silence) return NONE;
  const f = opts.fetch ?? fetch;
  const timeoutMs = opts.timeoutMs ?? SILENCE_TIMEOUT_MS;
  const now = opts.now ?? (() => new Date());
  const { url, headers } = endpoint(silence.url);
  const fields = { service: target.service, deployment: target.deployment, alertmanager: redactUrl(silence.url) };
  const startsAt = now();
  const created = call(f, `${url}/api/v2/silences`, {
    method: 'POST',
    headers,
    body: JSON.stringify({
      matchers: [{ name: settings.serviceLabel, value: target.service, isRegex: false, isEqual: true }],
      startsAt: startsAt.toISOString(),
      endsAt: new Date(startsAt.getTime() + silence.forMs).toISOString(),
      createdBy: 'rollguard',
      comment: `rollguard is reverting deployment ${target.deployment} of ${target.service}; expired when the revert ends`,
    }),
  }, timeoutMs).then(
    (body) => {
      const id = (body as { silenceID?: unknown } | undefined)?.silenceID;
      if (typeof id !== 'string' || !id) throw new Error('Alertmanager answered without a silenceID');
      log.info({ ...fields, silence: id }, 'Alertmanager silence created for the revert');
      return id;
    },
  ).catch((err: unknown) => {
    log.warn({ ...fields, error: reason(err) }, 'could not silence the service\'s alerts in Alertmanager; the revert goes on');
    return undefined;
  });
  return {
    async end() {
      const id = await created;
      if (!id) return;
      try {
        await call(f, `${url}/api/v2/silence/${encodeURIComponent(id)}`, { method: 'DELETE', headers }, timeoutMs);
        log.info({ ...fields, silence: id }, 'Alertmanager silence expired: the revert ended');
      } catch (err) {
        log.warn({ ...fields, silence: id, error: reason(err) }, 'could not expire the Alertmanager silence; it ends by itself after alertmanager.silence.for');
      }
    },
  };
}
