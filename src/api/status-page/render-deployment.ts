import { renderChartSvg } from '../../notify/chart-svg.js';
import { badge, duration, html, page, raw, shortImage, time, value, type Html } from './html.js';
import type { DeploymentDetail, RuleInfo } from './view.js';

/** The decisions that mean a revert was decided: the chart marks the first one. */
const REVERT_DECISIONS = new Set(['rollback', 'orchestrator_rollback', 'resume']);
const REVERTED_STATES = new Set(['rolling_back', 'rolled_back', 'rollback_failed', 'would_roll_back']);
/** Passed at the end of the window, or early (`pass_after`). */
const PASSED = new Set(['passed', 'passed_early']);
/** The samples table shows this many, newest first. */
export const SAMPLE_ROWS = 200;

/**
 * Where the chart marks the revert and what it calls it: when the first revert step started (the
 * actions), else when it was decided — the first revert decision, else the decision time of a
 * reverted deployment. A dry run that changed nothing says `would revert (dry run)`; a revert that
 * failed says so.
 */
export function revertMark(detail: DeploymentDetail): { at: number; label: string } | undefined {
  const d = detail.deployment;
  const decided = detail.decisions.find((x) => REVERT_DECISIONS.has(x.kind));
  if (!decided && !REVERTED_STATES.has(d.state)) return undefined;
  const acted = detail.actions.map((a) => new Date(a.started_at).getTime()).filter(Number.isFinite);
  const at = acted.length ? Math.min(...acted)
    : decided ? new Date(decided.decided_at).getTime()
      : REVERTED_STATES.has(d.state) && d.decided_at ? new Date(d.decided_at).getTime() : undefined;
  if (at === undefined || !Number.isFinite(at)) return undefined;
  if (d.state === 'rollback_failed') return { at, label: 'revert (failed)' };
  if (!acted.length && (d.dry_run || d.state === 'would_roll_back')) return { at, label: 'would revert (dry run)' };
  return { at, label: 'revert' };
}

/** When the chart marks the revert (see revertMark). */
export function revertAt(detail: DeploymentDetail): number | undefined {
  return revertMark(detail)?.at;
}

/** One chart per rule: the rule's samples (watch and recovery) over time, its threshold, the deploy and the revert. */
function chart(detail: DeploymentDetail, rule: RuleInfo, revert: { at: number; label: string } | undefined): Html {
  const samples = detail.samples.filter((s) => s.signal === rule.key);
  // ±Infinity stays a value (drawn on the plot's edge); only NaN is no data.
  const points = samples.map((s) => ({ t: new Date(s.taken_at).getTime(), v: s.value === null || Number.isNaN(s.value) ? null : s.value }));
  const counts = { ok: 0, breach: 0, 'no-data': 0 } as Record<string, number>;
  for (const s of samples) {
    const r = s.stage === 'watch' ? (s.rules[rule.name] ?? s.result) : s.result;
    counts[r] = (counts[r] ?? 0) + 1;
  }
  const svg = renderChartSvg(
    { signal: rule.signal, threshold: rule.limit ?? Number.NaN, direction: rule.direction, points, deployAt: new Date(detail.deployment.started_at).getTime(), revertAt: revert?.at, revertLabel: revert?.label },
    { width: 720, height: 240, title: `${rule.name}: ${rule.signal} ${rule.threshold}` },
  );
  return html`<figure class="chart" data-rule="${rule.name}" data-signal="${rule.signal}" data-points="${points.length}">${raw(svg)}
<figcaption><strong>${rule.name}</strong>: <code>${rule.signal}</code> ${rule.threshold} for ${rule.for} samples (${rule.action}, ${rule.severity}).
${points.length} samples: ${counts.ok ?? 0} ok, ${counts.breach ?? 0} breach, ${counts['no-data'] ?? 0} no data.</figcaption></figure>`;
}

interface TimelineEntry { at: number; kind: string; detail: string; tone: 'good' | 'bad' | 'plain' }

/** Everything that happened to the deployment, in order: its start and detection, each decision and action, the outcome. */
export function timeline(detail: DeploymentDetail): TimelineEntry[] {
  const d = detail.deployment;
  const ms = (x: Date | string): number => new Date(x).getTime();
  const entries: TimelineEntry[] = [
    { at: ms(d.started_at), kind: 'deployed', detail: `${d.to_ref} (${shortImage(d.to_image)}) started, replacing ${d.from_ref ?? 'an unknown version'}`, tone: 'plain' },
    { at: ms(d.detected_at), kind: 'detected', detail: `watch window until ${new Date(d.window_ends_at).toISOString()}`, tone: 'plain' },
  ];
  for (const x of detail.decisions) {
    const tone = REVERT_DECISIONS.has(x.kind) || x.kind === 'escalate' || x.kind === 'rollback_limit' ? 'bad' : x.kind === 'pass' ? 'good' : 'plain';
    entries.push({ at: ms(x.decided_at), kind: `decision: ${x.kind}`, detail: [x.rule ? `rule "${x.rule}"` : '', x.severity ?? '', x.detail ?? ''].filter(Boolean).join(' · '), tone });
  }
  for (const a of detail.actions) {
    const took = ms(a.finished_at) - ms(a.started_at);
    entries.push({ at: ms(a.started_at), kind: `action: ${a.kind}`, detail: `attempt ${a.attempt}, ${a.ok ? 'succeeded' : 'failed'} in ${(took / 1000).toFixed(1)} s${a.detail ? ` · ${a.detail}` : ''}`, tone: a.ok ? 'good' : 'bad' });
  }
  if (d.recovered_at) entries.push({ at: ms(d.recovered_at), kind: 'recovered', detail: `the known-good version serves again, ${duration(ms(d.recovered_at) - ms(d.started_at))} after the deploy`, tone: 'good' });
  // A stable sort: entries of the same moment keep the order above (decision before its action).
  entries.sort((a, b) => a.at - b.at);
  // The outcome closes the timeline: a revert's is decided when it starts but holds once it is done.
  if (d.decided_at && !['watching', 'rolling_back'].includes(d.state)) {
    const at = Math.max(ms(d.decided_at), ...entries.map((e) => e.at));
    entries.push({ at, kind: `outcome: ${d.state.replace(/_/g, ' ')}`, detail: d.reason ?? '', tone: PASSED.has(d.state) ? 'good' : REVERTED_STATES.has(d.state) ? 'bad' : 'plain' });
  }
  return entries;
}

function samplesTable(detail: DeploymentDetail): Html {
  const rows = detail.samples.slice(-SAMPLE_ROWS).reverse();
  if (!rows.length) return html`<p class="none">No samples recorded yet.</p>`;
  return html`<table class="samples"><thead><tr><th>Taken</th><th>Stage</th><th>Signal</th><th>Value</th><th>Result</th><th>Detail</th></tr></thead><tbody>
${rows.map((s) => html`<tr data-result="${s.result}"><td>${time(s.taken_at)}</td><td>${s.stage}</td><td><code>${s.signal}</code></td><td class="num">${value(s.value)}</td><td>${badge(s.result)}</td><td>${s.detail ?? ''}</td></tr>`)}
</tbody></table>${detail.samples.length > SAMPLE_ROWS ? html`<p class="none">The latest ${SAMPLE_ROWS} of ${detail.samples.length} samples; all are in <a href="/api/v1/deployments/${detail.deployment.id}">the JSON view</a>.</p>` : ''}`;
}

/** `/deployments/:id`: the outcome, one chart per rule, the action timeline and the samples. */
export function renderDeployment(detail: DeploymentDetail, now: Date): string {
  const d = detail.deployment;
  const revert = revertMark(detail);
  const header = html`<h1><a href="/">rollguard</a> · ${d.service} deployment #${d.id}</h1><p class="meta"><span><a href="/">all services</a></span><span><a href="/api/v1/deployments/${d.id}">JSON</a></span></p>`;
  const main = html`<section class="summary">
<h2><code>${d.from_ref ?? 'unknown'}</code> → <code>${d.to_ref}</code> <span class="outcome">${badge(d.state)}</span>${d.dry_run ? ' (dry run)' : ''}</h2>
${d.reason ? html`<p class="reason" id="reason">${d.reason}</p>` : ''}
<dl class="facts">
<dt>Service</dt><dd>${d.service}</dd>
<dt>Deployed image</dt><dd><code>${d.to_ref}</code> (${shortImage(d.to_image)})</dd>
<dt>Previous image</dt><dd>${d.from_ref || d.from_image ? html`<code>${d.from_ref ?? ''}</code> (${shortImage(d.from_image)})` : html`<span class="none">unknown</span>`}</dd>
<dt>Started</dt><dd>${time(d.started_at)}</dd>
<dt>Window ends</dt><dd>${time(d.window_ends_at)}</dd>
<dt>Decided</dt><dd>${time(d.decided_at)}</dd>
<dt>Recovered</dt><dd>${time(d.recovered_at)}</dd>
<dt>Revert attempts</dt><dd>${d.attempts}</dd>
</dl></section>
<section class="charts"><h2>Signals</h2>${detail.rules.length ? detail.rules.map((r) => chart(detail, r, revert)) : html`<p class="none">The running policy names no rules for this service.</p>`}</section>
<section><h2>Timeline</h2><ol class="timeline">${timeline(detail).map((e) => html`<li class="${e.tone}" data-kind="${e.kind}">${time(new Date(e.at))} <strong>${e.kind}</strong>${e.detail ? html` — <span class="reason">${e.detail}</span>` : ''}</li>`)}</ol></section>
<section><h2>Samples</h2>${samplesTable(detail)}</section>`;
  return page(`rollguard · ${d.service} #${d.id}`, header, main, { live: detail.live, generatedAt: now });
}
