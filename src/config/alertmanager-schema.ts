import { z } from 'zod';
import { parseDuration } from './duration.js';

/**
 * The policy keys of the Alertmanager integration: the `alertmanager` signal kind (a firing alert
 * of the service, received on `POST /api/v1/alertmanager`) and the top-level `alertmanager` block
 * (the label naming the service, and the silence kept while a revert runs).
 */

/** Prometheus label names, as Alertmanager accepts them. */
const labelName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'label names are letters, digits and _, not starting with a digit');

/** The label that names the service in alerts when the policy does not say otherwise. */
export const DEFAULT_SERVICE_LABEL = 'service';

/** A silence shorter than this would end before a revert has been verified. */
const MIN_SILENCE_MS = 60_000;

/** `signals.<name>.alertmanager`: the alert whose firing is the sample. */
export const alertmanagerSignalSchema = z
  .strictObject({
    alertname: z.string().min(1).describe('The alert\'s alertname label, e.g. HighErrorRate.'),
    matchers: z
      .record(labelName, z.string())
      .default({})
      .describe('Further labels the alert must carry, with their exact values (e.g. {severity: critical}). The service label (alertmanager.service_label, default service) must equal the service\'s name unless it is given here.'),
  })
  .describe('1 while Alertmanager reports a firing alert with this alertname and these labels for the service under watch, else 0 (also before any alert arrived). Alertmanager must send its webhook to POST /api/v1/alertmanager.');

/** The top-level `alertmanager` block. */
export const alertmanagerPolicySchema = z
  .strictObject({
    service_label: labelName
      .default(DEFAULT_SERVICE_LABEL)
      .describe('The alert label whose value is the service\'s name in this policy (default service); alertmanager signals and silences match on it.'),
    silence: z
      .strictObject({
        url: z
          .url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' })
          .refine((u) => !/[?#]/.test(u), { message: 'a query string or fragment cannot be used: rollguard appends /api/v2/silences to this URL' })
          .describe('Alertmanager\'s base URL, e.g. http://127.0.0.1:9093; basic-auth credentials only from the environment.'),
        for: z
          .string()
          .refine((t) => (parseDuration(t) ?? 0) >= MIN_SILENCE_MS, { message: 'expected a duration of at least 1m, such as 15m' })
          .transform((t) => parseDuration(t) as number)
          .default(900_000)
          .describe('How long the silence lasts if rollguard cannot expire it (a crash); it is expired as soon as the revert ends. Default 15m.'),
      })
      .optional()
      .describe('Silence the service\'s alerts in Alertmanager (matched on service_label) while rollguard reverts and verifies; a failure to silence is logged and never stops a revert.'),
  })
  .describe('How alerts from Prometheus\'s Alertmanager are matched to services, and the silence kept during a revert.');

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A silence also mutes the alert's resolution: Alertmanager sends no notification for a silenced
 * alert, resolved or not. A recovery criterion on an alertmanager signal would then see the alert
 * firing until the silence ends, and every revert would fail its verification.
 */
export function alertmanagerProblems(raw: Record<string, unknown>): { keys: (string | number)[]; message: string }[] {
  const silenced = isMap(raw.alertmanager) && raw.alertmanager.silence !== undefined;
  if (!silenced || !isMap(raw.services)) return [];
  const problems: { keys: (string | number)[]; message: string }[] = [];
  for (const [svcName, svc] of Object.entries(raw.services)) {
    if (!isMap(svc) || !isMap(svc.signals) || !Array.isArray(svc.recovery)) continue;
    const signals = svc.signals;
    svc.recovery.forEach((c: unknown, i) => {
      const sig = isMap(c) && typeof c.signal === 'string' && Object.hasOwn(signals, c.signal) ? signals[c.signal] : undefined;
      if (isMap(sig) && sig.alertmanager !== undefined) {
        problems.push({
          keys: ['services', svcName, 'recovery', i, 'signal'],
          message: 'an alertmanager signal cannot be a recovery criterion while alertmanager.silence is set: the silence mutes the alert\'s resolution until the revert ends',
        });
      }
    });
  }
  return problems;
}
