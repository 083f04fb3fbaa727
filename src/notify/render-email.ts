/** NotificationEvent → email: subject, plain-text body and HTML body (see render.ts). */
import type { NotificationEvent } from './event.js';
import { actionLine, attemptLabel, criterionLine, digestRows, resultText, sampleLine, samplesTitle } from './render-evidence.js';
import { clip, formatDuration, formatTime, formatValue, graphLink, isHttpUrl, oneLine } from './render-format.js';
import { escalationLines, facts, headline, whatRollguardDid } from './render-wording.js';

export interface EmailMessage { subject: string; text: string; html: string }

/** Content-ID the email channel must give the chart PNG attachment. */
export const CHART_CID = 'chart@rollguard';

export function emailSubject(e: NotificationEvent): string {
  const sev = e.kind === 'digest' || e.kind === 'test' ? '' : `${e.severity} `;
  return clip(oneLine(`[rollguard] ${sev}${headline(e)}`), 250);
}

export function renderEmail(e: NotificationEvent): EmailMessage {
  return { subject: emailSubject(e), text: emailText(e), html: emailHtml(e) };
}

function emailText(e: NotificationEvent): string {
  const out: string[] = [headline(e), whatRollguardDid(e), ''];
  if (e.kind === 'rollback_failed') out.push(...escalationLines(e), '');
  if (e.summary) out.push(e.summary, '');
  const f = facts(e);
  const width = Math.max(0, ...f.map(([k]) => k.length)) + 1;
  for (const [k, v] of f) out.push(`${`${k}:`.padEnd(width)} ${v}`);
  if (e.digest) out.push('', ...digestRows(e.digest).map(([k, v]) => `${k}: ${v}`));
  if (e.samples?.length) out.push('', `${samplesTitle(e)}:`, ...e.samples.map((s) => `  ${sampleLine(s)}`));
  const graph = graphLink(e);
  if (graph) out.push('', `Prometheus graph: ${graph}`);
  if (e.chart) out.push('', `Chart attached: ${chartLegend(e.chart)}`);
  if (e.actions?.length) out.push('', 'Actions:', ...e.actions.map((a) => `  ${actionLine(a)}`));
  if (e.criteria?.length) out.push('', 'Recovery criteria:', ...e.criteria.map((c) => `  ${criterionLine(c)}`));
  out.push('', `— rollguard, ${e.kind} at ${formatTime(e.at)}`);
  return `${out.join('\n')}\n`;
}

function chartLegend(chart: NonNullable<NotificationEvent['chart']>): string {
  return `blue = signal, red dashed = threshold, gray = deploy${chart.revertAt === undefined ? '' : ', green = revert'}`;
}

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch] as string);
}

const CELL = 'style="padding:2px 10px 2px 0;text-align:left;vertical-align:top"';

function htmlTable(head: string[] | undefined, rows: string[][]): string {
  const th = head ? `<tr>${head.map((h) => `<th ${CELL}>${escapeHtml(h)}</th>`).join('')}</tr>` : '';
  const body = rows.map((r) => `<tr>${r.map((c) => `<td ${CELL}>${c}</td>`).join('')}</tr>`).join('');
  return `<table style="border-collapse:collapse;font-size:14px">${th}${body}</table>`;
}

function emailHtml(e: NotificationEvent): string {
  const h = escapeHtml;
  const color = e.kind === 'rollback_failed' ? '#b00020' : e.kind === 'rollback_succeeded' || e.kind === 'deployment_passed' ? '#1b7f3b' : '#222';
  const parts: string[] = [
    `<h2 style="color:${color};margin:0 0 8px">${h(headline(e))}</h2>`,
    `<p style="margin:0 0 12px"><strong>${h(whatRollguardDid(e))}</strong></p>`,
  ];
  if (e.kind === 'rollback_failed') {
    parts.push(`<pre style="border:2px solid #b00020;background:#fdecea;padding:8px;font-size:14px">${h(escalationLines(e).join('\n'))}</pre>`);
  }
  if (e.summary) parts.push(`<p>${h(e.summary)}</p>`);
  parts.push(htmlTable(undefined, facts(e).map(([k, v]) => [`<strong>${h(k)}</strong>`, h(v)])));
  if (e.digest) parts.push(`<h3>Counts</h3>`, htmlTable(undefined, digestRows(e.digest).map(([k, v]) => [h(k), h(v)])));
  if (e.chart) {
    const alt = `${e.chart.signal} over the watch window; breach ${e.chart.direction} ${formatValue(e.chart.threshold)}`;
    parts.push(`<p><img src="cid:${CHART_CID}" alt="${h(alt)}" style="max-width:100%"><br><small>${h(chartLegend(e.chart))}</small></p>`);
  }
  if (e.samples?.length) {
    const rows = e.samples.map((s) => {
      const style = s.result === 'breach' ? ' style="color:#b00020;font-weight:bold"' : '';
      return [h(formatTime(s.at)), h(formatValue(s.value)), `<span${style}>${h(resultText(s.result))}</span>`];
    });
    parts.push(`<h3>${h(samplesTitle(e))}</h3>`, htmlTable(['Time', 'Value', 'Result'], rows));
  }
  const graph = graphLink(e);
  if (graph) {
    parts.push(isHttpUrl(graph)
      ? `<p><a href="${h(graph)}">Prometheus graph</a></p>`
      : `<p>Prometheus graph: ${h(graph)}</p>`);
  }
  if (e.actions?.length) {
    const rows = e.actions.map((a) => [h(attemptLabel(a)), h(a.kind), a.ok ? 'ok' : '<strong style="color:#b00020">FAILED</strong>', h(formatDuration(a.durationMs)), h(formatTime(a.startedAt)), h(a.detail ?? '')]);
    parts.push('<h3>Actions</h3>', htmlTable(['Attempt', 'Step', 'Result', 'Took', 'Started', 'Detail'], rows));
  }
  if (e.criteria?.length) {
    const rows = e.criteria.map((c) => [c.holds ? '<span style="color:#1b7f3b">✓</span>' : '<span style="color:#b00020">✗</span>', h(c.signal), h(c.threshold), h(formatValue(c.measured))]);
    parts.push('<h3>Recovery criteria</h3>', htmlTable(['', 'Signal', 'Criterion', 'Measured'], rows));
  }
  parts.push(`<p style="color:#666;font-size:12px">rollguard · ${h(e.kind)} at ${h(formatTime(e.at))}</p>`);
  return `<!doctype html>\n<html><head><meta charset="utf-8"><title>${h(emailSubject(e))}</title></head>\n<body style="font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:14px">\n${parts.join('\n')}\n</body></html>\n`;
}
