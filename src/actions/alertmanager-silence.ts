import type { Logger } from 'pino';
import type { Policy } from '../config/policy.js';
import { redactUrl } from '../model/redact-url.js';
import { AlertmanagerHttpError, alertmanagerEndpoint, callAlertmanager, failureText } from '../signals/alertmanager/api.js';

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
  /** Overrides EXPIRE_BACKOFF_MS (tests). */
  backoffMs?: readonly number[];
}

const NONE: RevertSilence = { end: async () => {} };

/** The waits before each new try to expire the silence: a brief outage does not leave it for its full `for`. */
export const EXPIRE_BACKOFF_MS = [500, 1_000, 2_000] as const;

/**
 * With `alertmanager.silence` set, silences the service's alerts in Alertmanager (API v2, one
 * matcher: the service label equal to the service's name) for as long as a revert runs and
 * verifies: created now, expired by `end()` (tried again after EXPIRE_BACKOFF_MS when Alertmanager
 * fails, never rejecting). The silence lasts `for` (1h at most), so one left behind
 * by a crash ends by itself. Creating it runs beside the revert rather than before it: a slow or
 * unreachable Alertmanager never delays a revert, and every failure is only logged.
 */
export function silenceWhileReverting(settings: Policy['alertmanager'], target: { service: string; deployment: number }, log: Logger, opts: SilenceOptions = {}): RevertSilence {
  const silence = settings?.silence;
  if (!settings?.url || !silence) return NONE;
  const f = opts.fetch ?? fetch;
  const timeoutMs = opts.timeoutMs ?? SILENCE_TIMEOUT_MS;
  const backoffMs = opts.backoffMs ?? EXPIRE_BACKOFF_MS;
  const now = opts.now ?? (() => new Date());
  const { url, headers } = alertmanagerEndpoint(settings.url);
  const fields = { service: target.service, deployment: target.deployment, alertmanager: redactUrl(settings.url) };
  const startsAt = now();
  const created = callAlertmanager(f, `${url}/api/v2/silences`, {
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
    log.warn({ ...fields, error: failureText(err) }, 'could not silence the service\'s alerts in Alertmanager; the revert goes on');
    return undefined;
  });
  return {
    async end() {
      const id = await created;
      if (!id) return;
      // Tried again a few times: a silence left behind hides the service's alerts until `for` ends.
      for (let attempt = 0; ; attempt += 1) {
        try {
          await callAlertmanager(f, `${url}/api/v2/silence/${encodeURIComponent(id)}`, { method: 'DELETE', headers }, timeoutMs);
          log.info({ ...fields, silence: id }, 'Alertmanager silence expired: the revert ended');
          return;
        } catch (err) {
          // 404: someone expired or deleted it already; nothing is left to do.
          if (err instanceof AlertmanagerHttpError && err.status === 404) return;
          const wait = backoffMs[attempt];
          if (wait === undefined) {
            log.warn({ ...fields, silence: id, attempts: attempt + 1, error: failureText(err) }, 'could not expire the Alertmanager silence; it ends by itself after alertmanager.silence.for');
            return;
          }
          log.debug({ ...fields, silence: id, error: failureText(err) }, 'expiring the Alertmanager silence failed; trying again');
          await new Promise((r) => setTimeout(r, wait));
        }
      }
    },
  };
}
