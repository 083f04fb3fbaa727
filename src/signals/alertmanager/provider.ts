import type { AlertmanagerSignal } from '../../config/policy.js';
import type { Measurement, ProbeContext, SignalProvider } from '../provider.js';
import type { AlertBook } from './book.js';

/** The longest summary quoted in a sample's detail. */
const SUMMARY_CHARS = 200;

/** The labels an alert must carry to count for the service under watch. */
export function wantedLabels(signal: AlertmanagerSignal, service: string): Record<string, string> {
  // The matchers may name the service label themselves (alerts that call the service otherwise);
  // the alertname is the signal's own.
  return { [signal.serviceLabel]: service, ...signal.matchers, alertname: signal.alertname };
}

/**
 * Alertmanager's firing alerts, as received on `POST /api/v1/alertmanager`: 1 while at least one
 * alert with the signal's alertname and labels fires for the service under watch, else 0. An empty
 * book (no notification yet, or rollguard just started) is 0, not no data: Alertmanager only
 * speaks when something fires or resolves, so silence means nothing fires.
 */
export class AlertmanagerProvider implements SignalProvider<AlertmanagerSignal> {
  readonly kind = 'alertmanager';

  constructor(private readonly book: AlertBook) {}

  async measure(signal: AlertmanagerSignal, ctx: ProbeContext): Promise<Measurement> {
    const started = performance.now();
    const firing = this.book.firing(wantedLabels(signal, ctx.template.service), ctx.at);
    const first = firing[0];
    if (!first) return { value: 0, latencyMs: performance.now() - started };
    const summary = first.summary ? `: ${first.summary.length > SUMMARY_CHARS ? `${first.summary.slice(0, SUMMARY_CHARS)}…` : first.summary}` : '';
    const more = firing.length > 1 ? ` (${firing.length} alerts firing)` : '';
    return { value: 1, detail: `${signal.alertname} firing since ${first.startsAt.toISOString()}${summary}${more}`, latencyMs: performance.now() - started };
  }
}
