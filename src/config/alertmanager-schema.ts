import { z } from 'zod';
import { parseDuration } from './duration.js';
import { isMap } from './raw.js';

/**
 * The policy keys of the Alertmanager integration: the `alertmanager` signal kind (an active alert
 * of the service, read from Alertmanager's API) and the top-level `alertmanager` block (its URL,
 * the label naming the service, and the silence kept while a revert runs).
 */

/** Prometheus label names, as Alertmanager accepts them. */
const labelName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'label names are letters, digits and _, not starting with a digit');

/** The label that names the service in alerts when the policy does not say otherwise. */
export const DEFAULT_SERVICE_LABEL = 'service';

/** A silence shorter than this would end before a revert has been verified. */
const MIN_SILENCE_MS = 60_000;

/** The longest silence: one left behind by a crash must not hide the service's alerts for long. */
const MAX_SILENCE_MS = 3_600_000;

/** `signals.<name>.alertmanager`: the alert whose being active is the sample. */
export const alertmanagerSignalSchema = z
  .strictObject({
    alertname: z.string().min(1).describe('The alert\'s alertname label, e.g. HighErrorRate.'),
    matchers: z
      .record(labelName, z.string())
      .default({})
      .describe('Further labels the alert must carry, with their exact values (e.g. {severity: critical}). The service label (alertmanager.service_label, default service) must equal the service\'s name unless it is given here.'),
  })
  .describe('1 while Alertmanager (alertmanager.url, asked at every sample) holds an active alert — silenced or inhibited too — with this alertname and these labels for the service under watch that started since the deploy, else 0; Alertmanager unreachable is no data.');

/** The top-level `alertmanager` block. */
export const alertmanagerPolicySchema = z
  .strictObject({
    url: z
      .url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' })
      .refine((u) => !/[?#]/.test(u), { message: 'a query string or fragment cannot be used: rollguard appends /api/v2/… to this URL' })
      .optional()
      .describe('Alertmanager\'s base URL, e.g. http://127.0.0.1:9093: alertmanager signals read its alerts (GET /api/v2/alerts) and the silence is made there. Required when a service uses an alertmanager signal or silence is set. Basic-auth credentials only from the environment: http://rollguard:${AM_PASSWORD}@am:9093; never shown.'),
    service_label: labelName
      .default(DEFAULT_SERVICE_LABEL)
      .describe('The alert label whose value is the service\'s name in this policy (default service); alertmanager signals and silences match on it.'),
    silence: z
      .strictObject({
        for: z
          .string()
          .refine((t) => { const ms = parseDuration(t) ?? 0; return ms >= MIN_SILENCE_MS && ms <= MAX_SILENCE_MS; }, { message: 'expected a duration from 1m to 1h, such as 15m' })
          .transform((t) => parseDuration(t) as number)
          .default(900_000)
          .describe('How long the silence lasts if rollguard cannot expire it (a crash), from 1m to 1h; it is expired as soon as the revert ends. Default 15m.'),
      })
      .optional()
      .describe('Silence the service\'s alerts in Alertmanager (alertmanager.url; matched on service_label) while rollguard reverts and verifies; a failure to silence is logged and never stops a revert.'),
  })
  .describe('Prometheus\'s Alertmanager: where alertmanager signals read the alerts, how alerts are matched to services, and the silence kept during a revert.');


/** An alertmanager signal, or the silence, with no `alertmanager.url` to ask. */
export function alertmanagerProblems(raw: Record<string, unknown>): { keys: (string | number)[]; message: string }[] {
  const am = isMap(raw.alertmanager) ? raw.alertmanager : undefined;
  if (am?.url !== undefined) return [];
  const problems: { keys: (string | number)[]; message: string }[] = [];
  if (am?.silence !== undefined) problems.push({ keys: ['alertmanager', 'silence'], message: 'the silence needs alertmanager.url' });
  if (!isMap(raw.services)) return problems;
  for (const [svcName, svc] of Object.entries(raw.services)) {
    if (!isMap(svc) || !isMap(svc.signals)) continue;
    for (const [sigName, sig] of Object.entries(svc.signals)) {
      if (isMap(sig) && sig.alertmanager !== undefined) {
        problems.push({ keys: ['services', svcName, 'signals', sigName, 'alertmanager'], message: 'an alertmanager signal needs the top-level alertmanager.url' });
      }
    }
  }
  return problems;
}
