import { z } from 'zod';
import type { AlertmanagerSignal } from '../../config/policy.js';
import { redactUrl } from '../../model/redact-url.js';
import type { Measurement, ProbeContext, SignalProvider } from '../provider.js';
import { alertmanagerEndpoint, callAlertmanager, failureText } from './api.js';

/** The longest wait for Alertmanager's answer; a shorter watch interval shortens it. */
export const ALERTS_TIMEOUT_MS = 5_000;

/** The longest summary quoted in a sample's detail. */
const SUMMARY_CHARS = 200;

/** The labels an alert must carry to count for the service under watch. */
export function wantedLabels(signal: AlertmanagerSignal, service: string): Record<string, string> {
  // The matchers may name the service label themselves (alerts that call the service otherwise);
  // the alertname is the signal's own.
  return { [signal.serviceLabel]: service, ...signal.matchers, alertname: signal.alertname };
}

/** A label value as Alertmanager's matcher syntax quotes it: backslash, double quote and newline escaped. */
export function quoteLabelValue(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

/** The query of `GET /api/v2/alerts`: every alert not resolved — silenced, inhibited or not yet processed too — with these labels. */
export function alertsQuery(labels: Readonly<Record<string, string>>): string {
  const q = new URLSearchParams({ active: 'true', silenced: 'true', inhibited: 'true', unprocessed: 'true' });
  for (const [name, value] of Object.entries(labels)) q.append('filter', `${name}=${quoteLabelValue(value)}`);
  return q.toString();
}

/** An alert as `GET /api/v2/alerts` lists it; other keys are ignored, as Alertmanager may add some. */
const listedAlert = z.object({
  labels: z.record(z.string(), z.string()),
  annotations: z.record(z.string(), z.string()).default({}),
  startsAt: z.string().refine((t) => Number.isFinite(Date.parse(t)), { message: 'expected an RFC 3339 time' }),
  status: z.object({ state: z.string(), silencedBy: z.array(z.string()).default([]), inhibitedBy: z.array(z.string()).default([]) }).optional(),
});
const alertList = z.array(listedAlert);

export interface AlertmanagerProviderOptions {
  fetch?: typeof fetch;
  /** Overrides ALERTS_TIMEOUT_MS (tests). */
  timeoutMs?: number;
}

/**
 * The service's alerts as Alertmanager holds them now, asked at every sample
 * (`GET <url>/api/v2/alerts`, filtered on the alertname, the service label and the matchers):
 * 1 while at least one such alert is active — silenced or inhibited too, since a silence mutes
 * the notification, not the fault — else 0. With `ctx.deployedAt` (the watch), an alert that
 * started before the deployment is the previous version's and does not count. Alertmanager
 * unreachable, slow, or answering something else than a list of alerts is no data: never a
 * breach, never 0.
 */
export class AlertmanagerProvider implements SignalProvider<AlertmanagerSignal> {
  readonly kind = 'alertmanager';
  private readonly fetch: typeof fetch;
  private readonly endpoint: { url: string; headers: Record<string, string> };

  /** `url`: alertmanager.url, which may carry user:password@ from the environment. */
  constructor(private readonly url: string, private readonly opts: AlertmanagerProviderOptions = {}) {
    this.fetch = opts.fetch ?? fetch;
    this.endpoint = alertmanagerEndpoint(url);
  }

  async measure(signal: AlertmanagerSignal, ctx: ProbeContext): Promise<Measurement> {
    const started = performance.now();
    const latency = (): number => performance.now() - started;
    const labels = wantedLabels(signal, ctx.template.service);
    const timeoutMs = Math.min(this.opts.timeoutMs ?? ALERTS_TIMEOUT_MS, ctx.intervalMs ?? Number.POSITIVE_INFINITY);
    let body: unknown;
    try {
      body = await callAlertmanager(this.fetch, `${this.endpoint.url}/api/v2/alerts?${alertsQuery(labels)}`, { method: 'GET', headers: this.endpoint.headers }, timeoutMs);
    } catch (err) {
      return { value: null, detail: `Alertmanager ${redactUrl(this.url)} did not answer: ${failureText(err)}`, latencyMs: latency() };
    }
    const parsed = alertList.safeParse(body);
    if (!parsed.success) return { value: null, detail: `Alertmanager ${redactUrl(this.url)} answered something else than a list of alerts`, latencyMs: latency() };
    const wanted = Object.entries(labels);
    // The filter is Alertmanager's; checked again here in case something between ignored it.
    const matching = parsed.data.filter((a) => wanted.every(([k, v]) => a.labels[k] === v));
    const counted = matching
      .filter((a) => ctx.deployedAt === undefined || Date.parse(a.startsAt) >= ctx.deployedAt)
      .sort((x, y) => Date.parse(x.startsAt) - Date.parse(y.startsAt));
    const first = counted[0];
    if (!first) {
      const before = matching.length ? ` (${matching.length} started before the deploy, not counted)` : '';
      return { value: 0, ...(before ? { detail: `no ${signal.alertname} alert since the deploy${before}` } : {}), latencyMs: latency() };
    }
    const summary = first.annotations.summary ? `: ${first.annotations.summary.length > SUMMARY_CHARS ? `${first.annotations.summary.slice(0, SUMMARY_CHARS)}…` : first.annotations.summary}` : '';
    const muted = first.status && first.status.state !== 'active' ? ` (${first.status.state})` : '';
    const more = counted.length > 1 ? ` (${counted.length} alerts)` : '';
    return { value: 1, detail: `${signal.alertname} active since ${new Date(Date.parse(first.startsAt)).toISOString()}${muted}${summary}${more}`, latencyMs: latency() };
  }
}
