/** Small helpers shared by the status page's renderers: escaping, formatting, the page frame. */

/** A piece of HTML that is already safe to put in a page (escaped text or markup built from it). */
export interface Html { readonly html: string }

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text as HTML: every character that could open markup or end an attribute is escaped. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] as string);
}

type Part = Html | string | number | null | undefined | false | readonly Part[];

function partToHtml(part: Part): string {
  if (part === null || part === undefined || part === false) return '';
  if (Array.isArray(part)) return part.map(partToHtml).join('');
  if (typeof part === 'object') return (part as Html).html;
  return escapeHtml(String(part));
}

/**
 * A template tag for HTML: interpolated strings and numbers are escaped, `Html` values (from
 * `html` itself or `raw`) are kept, arrays are joined, and null/undefined/false print nothing.
 */
export function html(strings: TemplateStringsArray, ...parts: Part[]): Html {
  let out = strings[0] ?? '';
  parts.forEach((p, i) => { out += partToHtml(p) + (strings[i + 1] ?? ''); });
  return { html: out };
}

/** Markup made elsewhere and trusted as it is (the chart's SVG, which escapes its own text). */
export function raw(markup: string): Html {
  return { html: markup };
}

/** A moment as `2024-05-01 12:00:03 UTC` inside a <time> element; an em dash when unknown. */
export function time(at: Date | string | null | undefined): Html {
  if (at === null || at === undefined) return html`<span class="none">—</span>`;
  const d = typeof at === 'string' ? new Date(at) : at;
  if (Number.isNaN(d.getTime())) return html`<span class="none">—</span>`;
  const iso = d.toISOString();
  return html`<time datetime="${iso}">${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC</time>`;
}

/** A measured value with at most 4 significant digits; `no data` for null. */
export function value(v: number | null | undefined): string {
  if (v === null || v === undefined || Number.isNaN(v)) return 'no data';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  return String(+v.toPrecision(4));
}

/** An image ID as Docker shows it: 12 hex digits without `sha256:`. */
export function shortImage(id: string | null | undefined): string {
  if (!id) return '';
  return id.replace(/^sha256:/, '').slice(0, 12);
}

/** A duration in whole seconds or minutes, for window lengths and elapsed times. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  const m = Math.floor(s / 60);
  return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
}

/** Outcome and rule states as badges: the class picks the colour, the text says it in words. */
export function badge(state: string): Html {
  return html`<span class="badge ${badgeClass(state)}" data-state="${state}">${state.replace(/_/g, ' ')}</span>`;
}

function badgeClass(state: string): string {
  if (['ok', 'passed', 'passed_early', 'leader'].includes(state)) return 'good';
  if (['breach', 'rolled_back', 'rollback_failed', 'would_roll_back', 'rolling_back', 'failed'].includes(state)) return 'bad';
  if (['watching'].includes(state)) return 'live';
  return 'muted';
}

const CSS = `
:root{--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--bg:#fff;--panel:#f6f8fa;--good:#1a7f37;--bad:#cf222e;--live:#0969da;--warn:#9a6700}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
header,main,footer{max-width:1100px;margin:0 auto;padding:12px 20px}
header{border-bottom:1px solid var(--line)}
h1{font-size:20px;margin:4px 0}h1 a{color:inherit;text-decoration:none}
h2{font-size:17px;margin:18px 0 8px}h3{font-size:15px;margin:12px 0 6px}
a{color:var(--live)}
.meta{color:var(--muted);margin:2px 0}.meta span+span::before{content:" · "}
.service{border:1px solid var(--line);border-radius:6px;padding:8px 14px 12px;margin:12px 0;background:var(--panel)}
.service h2{margin:6px 0}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:6px 0}
dl.facts dt{color:var(--muted)}dl.facts dd{margin:0}
table{border-collapse:collapse;width:100%;margin:6px 0;background:var(--bg)}
th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:var(--panel);font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;white-space:nowrap;padding:0 7px;border-radius:10px;font-size:12px;font-weight:600;color:#fff;background:var(--muted)}
.badge.good{background:var(--good)}.badge.bad{background:var(--bad)}.badge.live{background:var(--live)}
.hold{border-left:4px solid var(--warn);padding:4px 10px;background:#fff8c5;margin:6px 0}
.progress{height:10px;background:var(--line);border-radius:5px;overflow:hidden;max-width:420px}
.progress>div{height:100%;background:var(--live)}
.none{color:var(--muted)}
time{white-space:nowrap}
figure.chart{margin:10px 0;padding:6px;border:1px solid var(--line);border-radius:6px;display:inline-block;max-width:100%}
figure.chart svg{max-width:100%;height:auto}
figcaption{color:var(--muted);font-size:13px}
ol.timeline{list-style:none;padding:0;margin:6px 0}
ol.timeline li{padding:3px 0 3px 12px;border-left:3px solid var(--line)}
ol.timeline li.bad{border-color:var(--bad)}ol.timeline li.good{border-color:var(--good)}
.reason{white-space:pre-wrap}
.store-down,.stale-banner{border-left:4px solid var(--bad);padding:6px 10px;background:#ffebe9;margin:6px 0}
.stale-banner{position:sticky;top:0;z-index:1;margin:0;font-weight:600}
body.stale header,body.stale main{opacity:.55;filter:grayscale(1)}
.revert{border-left:4px solid var(--bad);padding:2px 10px;margin:6px 0}
footer{color:var(--muted);border-top:1px solid var(--line);font-size:12px}
`;

/** The page frame: inline CSS, the one live-update script served by the daemon, nothing from elsewhere. */
export function page(title: string, header: Html, main: Html, opts: { live: boolean; generatedAt: Date }): string {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title><style>${raw(CSS)}</style><script src="/status-page.js" defer></script></head>
<body><header id="page-header">${header}</header>
<main id="live" data-live="${opts.live ? 'true' : 'false'}">${main}</main>
<footer>Shown at ${time(opts.generatedAt)}. <span id="live-note">${opts.live ? 'Updates every 2 s.' : 'Final: no longer updating.'}</span></footer>
</body></html>
`.html;
}
