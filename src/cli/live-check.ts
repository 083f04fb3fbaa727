import { formatDuration } from '../config/duration.js';
import type { Policy, ServicePolicy, Signal } from '../config/policy.js';
import { renderTemplate, renderUrl, replicaVarsIn, usesRange } from '../config/template.js';
import { redactUrl } from '../model/redact-url.js';
import { HttpHealthProvider } from '../signals/http-health.js';
import { PrometheusProvider } from '../signals/prometheus.js';
import { prometheusProvider } from '../signals/prometheus-client.js';
import type { Measurement } from '../signals/provider.js';
import { formatValue, renderTable } from './format.js';
import { describeTemplate, probeTemplate, type ProbeTemplate } from './placeholders.js';

/** One signal probed once: `answered`, `failed` (no data, refused, wrong status…) or `skipped`. */
export interface LiveResult {
  service: string;
  signal: string;
  kind: Signal['kind'];
  /** The rendered query (with its burn-rate range) or the URL, without its credentials. */
  target: string;
  outcome: 'answered' | 'failed' | 'skipped';
  value: number | null;
  detail?: string;
  latencyMs: number;
}

export interface LiveReport { services: { name: string; template: ProbeTemplate; results: LiveResult[] }[] }

/** Providers the live check probes with; tests may pass their own. */
export interface LiveDeps { prometheus?: PrometheusProvider; http?: HttpHealthProvider }

/**
 * Probes every signal of every service once, now: PromQL through the same provider the daemon
 * uses (templates filled by `probeTemplate`; a burn-rate query once per window range), each HTTP
 * check once. Container signals need a deployed container and are skipped. Never throws for a
 * failed probe: that is a result.
 */
export async function liveCheck(policy: Policy, given: { image?: string; container?: string } = {}, deps: LiveDeps = {}): Promise<LiveReport> {
  const prometheus = deps.prometheus ?? (policy.prometheus ? prometheusProvider(policy.prometheus) : undefined);
  const http = deps.http ?? new HttpHealthProvider();
  const services = await Promise.all(Object.values(policy.services).map(async (service) => {
    const template = probeTemplate(service, given);
    const results = (await Promise.all(Object.values(service.signals).map((signal) => probe(service, signal, template, prometheus, http)))).flat();
    return { name: service.name, template, results };
  }));
  return { services };
}

async function probe(service: ServicePolicy, signal: Signal, template: ProbeTemplate, prometheus: PrometheusProvider | undefined, http: HttpHealthProvider): Promise<LiveResult[]> {
  const base = { service: service.name, signal: signal.name, kind: signal.kind };
  const result = (target: string, m: Measurement, answered: boolean): LiveResult => ({
    ...base, target, outcome: answered ? 'answered' : 'failed', value: m.value, detail: m.detail, latencyMs: Math.round(m.latencyMs),
  });
  const text = signal.kind === 'http' ? redactUrl(signal.url) : signal.kind === 'prometheus' ? signal.query.trim() : '';
  const perTask = replicaVarsIn(text);
  if (perTask.length) {
    const detail = `addressed per task (${perTask.map((v) => `{{${v}}}`).join(', ')}): measured for each task while watching; nothing to probe now`;
    return [{ ...base, target: text, outcome: 'skipped', value: null, detail, latencyMs: 0 }];
  }
  switch (signal.kind) {
    case 'container':
      return [{ ...base, target: signal.field, outcome: 'skipped', value: null, detail: 'read from the deployed container while watching; nothing to probe now', latencyMs: 0 }];
    case 'alertmanager':
      return [{ ...base, target: signal.alertname, outcome: 'skipped', value: null, detail: 'asked of Alertmanager (alertmanager.url) at each sample while watching, counting alerts since the deploy; nothing to probe now', latencyMs: 0 }];
    case 'http': {
      const url = renderUrl(signal.url, template.values);
      const m = await http.measure({ ...signal, url });
      return [result(redactUrl(url), m, m.value === 1)];
    }
    case 'prometheus': {
      const ranges = usesRange(signal.query) ? burnRanges(service, signal.name) : [undefined];
      return Promise.all((ranges.length ? ranges : [undefined]).map(async (range) => {
        const target = renderTemplate(signal.query, template.values, range).trim();
        if (!prometheus) return result(target, { value: null, detail: 'the policy has no prometheus: url', latencyMs: 0 }, false);
        const m = await prometheus.measure(signal, { template: template.values, containerId: '', at: new Date(), range });
        return { ...result(target, m, m.value !== null), ...(range ? { signal: `${signal.name}[${range}]` } : {}) };
      }));
    }
  }
}

/** The distinct window ranges (`5m`, `1h`) of the burn-rate rules reading a signal. */
function burnRanges(service: ServicePolicy, signal: string): string[] {
  const ms = service.rules.filter((r) => r.burnRate && r.signal === signal).flatMap((r) => r.burnRate?.windows.flatMap((w) => [w.shortMs, w.longMs]) ?? []);
  return [...new Set(ms)].sort((a, b) => a - b).map(formatDuration);
}

/** Whether every probe that ran answered. */
export function liveCheckPassed(report: LiveReport): boolean {
  return report.services.every((s) => s.results.every((r) => r.outcome !== 'failed'));
}

/** The report for a terminal: per service its template, then one line per signal, then a summary. */
export function formatLiveCheck(report: LiveReport, prometheusUrl: string | undefined): string {
  const lines = [`live check: each PromQL signal queried once against ${prometheusUrl === undefined ? '(no Prometheus configured)' : redactUrl(prometheusUrl)} now, each HTTP check requested once`];
  const all = report.services.flatMap((s) => s.results);
  for (const s of report.services) {
    lines.push('', `${s.name} — templates: ${describeTemplate(s.template)}`);
    const rows = s.results.map((r) => [
      r.outcome === 'answered' ? 'ok' : r.outcome === 'failed' ? 'FAILED' : 'skipped',
      r.signal,
      r.kind,
      r.outcome === 'answered' ? `${formatValue(r.value)}${r.detail ? ` (${r.detail})` : ''}` : r.detail ?? (r.kind === 'http' ? 'expectations not met' : 'no data'),
      r.outcome === 'skipped' ? '' : `${r.latencyMs} ms`,
    ]);
    lines.push(...renderTable(['RESULT', 'SIGNAL', 'KIND', 'VALUE / ERROR', 'TOOK'], rows).split('\n').map((l) => `  ${l}`));
    for (const r of s.results.filter((x) => x.outcome === 'failed')) lines.push(`  ${r.signal}: ${r.kind === 'http' ? 'GET' : 'query'} ${r.target.replace(/\s*\n\s*/g, ' ')}`);
  }
  const count = (o: LiveResult['outcome']): number => all.filter((r) => r.outcome === o).length;
  const failed = count('failed');
  lines.push('', `live check ${failed ? 'FAILED' : 'passed'}: ${count('answered')} answered, ${failed} failed, ${count('skipped')} skipped`);
  return lines.join('\n');
}
