/**
 * The evidence chart as a self-contained SVG string: no fonts, stylesheets, scripts or ids to load or
 * collide, every text escaped, so it can be put inline in an HTML page (the status page) or
 * rasterised for an email (chart.ts). What goes where and what the labels say is chart-layout.ts'.
 */
import { clip } from './render-format.js';
import { layoutChart, textWidth, type ChartData, type ChartLayout, type Pixel } from './chart-layout.js';

export type { ChartData } from './chart-layout.js';

/** Size in pixels (600×240 by default) and an optional title above the plot. */
export interface ChartSvgOptions {
  width?: number;
  height?: number;
  title?: string;
}

/** Colours; the messages carrying the chart name them in words ("blue = signal, red dashed = threshold"). */
export const CHART_COLORS = {
  background: '#ffffff',
  grid: '#e8e8e8',
  frame: '#3c3c3c',
  text: '#334155',
  series: '#2563eb',
  sample: '#1e3a8a',
  threshold: '#dc2626',
  thresholdText: '#991b1b',
  breach: '#dc2626',
  deploy: '#808080',
  deployText: '#4b5563',
  revert: '#16a34a',
  revertText: '#15803d',
} as const;

/** Font families to try, first the one bundled for the email PNG. */
export const CHART_FONT_FAMILY = 'DejaVu Sans';
const FONT = `${CHART_FONT_FAMILY}, Verdana, Arial, sans-serif`;
const BREACH_TINT = 0.1;
const DASH = '6 4';

/**
 * Draws the breaching signal: value axis (the signal's name, round tick values), time axis (clock
 * times in UTC), the threshold as a red dashed line labelled `threshold > 0.05` with the breaching side
 * tinted, the deploy (gray) and revert (green) as vertical lines labelled with their times, and the
 * series in blue (broken at nulls, +Inf on the top edge and -Inf on the bottom one) with a dot per
 * sample while samples are few. Never throws on odd data.
 */
export function renderChartSvg(chart: ChartData, opts: ChartSvgOptions = {}): string {
  return svgOf(layoutChart(chart, opts), chart);
}

function svgOf(l: ChartLayout, chart: ChartData): string {
  const { plot, width, height } = l;
  const C = CHART_COLORS;
  const plotW = plot.right - plot.left + 1;
  const plotH = plot.bottom - plot.top + 1;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(ariaLabel(l, chart))}" font-family="${esc(FONT)}" font-size="${l.fontSize}">`,
    `<rect width="${width}" height="${height}" fill="${C.background}"/>`,
  );
  // The plot's contents, clipped to it by a nested <svg> (no clipPath id to collide on a page of charts).
  out.push(`<svg x="${plot.left}" y="${plot.top}" width="${plotW}" height="${plotH}" viewBox="${plot.left} ${plot.top} ${plotW} ${plotH}" overflow="hidden">`);
  out.push(`<g shape-rendering="crispEdges">`);
  for (const t of l.yTicks) out.push(rect(plot.left, t.at, plotW, 1, C.grid));
  for (const t of l.xTicks) out.push(rect(t.at, plot.top, 1, plotH, C.grid));
  if (l.threshold) {
    const b = l.threshold.breaching;
    if (b.bottom >= b.top) out.push(rect(b.left, b.top, b.right - b.left + 1, b.bottom - b.top + 1, C.breach, BREACH_TINT));
  }
  for (const m of l.markers) out.push(rect(m.x, plot.top, 2, plotH, m.kind === 'deploy' ? C.deploy : C.revert));
  if (l.threshold) {
    const y = l.threshold.y + 1;
    out.push(`<line x1="${plot.left}" y1="${y}" x2="${plot.right + 1}" y2="${y}" stroke="${C.threshold}" stroke-width="2" stroke-dasharray="${DASH}"/>`);
  }
  out.push('</g>');
  // A dot per sample, under the line so the line stays its own colour.
  for (const d of l.dots) out.push(circle(d, 2.5, C.sample));
  for (const run of l.runs) {
    const [first] = run;
    if (run.length === 1 && first) out.push(circle(first, 2.5, C.series));
    else out.push(`<polyline points="${run.map((p) => `${p.x + 1},${p.y + 1}`).join(' ')}" fill="none" stroke="${C.series}" stroke-width="2" stroke-linejoin="round"/>`);
  }
  if (l.threshold && l.text) out.push(thresholdLabel(l));
  out.push('</svg>');
  out.push(`<rect x="${plot.left - 0.5}" y="${plot.top - 0.5}" width="${plotW + 1}" height="${plotH + 1}" fill="none" stroke="${C.frame}" stroke-width="1" shape-rendering="crispEdges"/>`);
  if (l.text) out.push(...axisText(l), ...markerLabels(l));
  out.push('</svg>');
  return out.join('');
}

function thresholdLabel(l: ChartLayout): string {
  const { plot } = l;
  const t = l.threshold as NonNullable<ChartLayout['threshold']>;
  // Above its line, unless the line is too near the top; right-aligned, away from the deploy.
  const above = t.y - 4;
  const y = above - l.fontSize >= plot.top ? above : Math.min(plot.bottom - 3, t.y + 2 + l.fontSize + 2);
  return `<text x="${plot.right - 4}" y="${y}" text-anchor="end" fill="${CHART_COLORS.thresholdText}" stroke="${CHART_COLORS.background}" stroke-width="3" stroke-linejoin="round" paint-order="stroke">${esc(t.label)}</text>`;
}

function axisText(l: ChartLayout): string[] {
  const { plot } = l;
  const C = CHART_COLORS;
  const out: string[] = [];
  const line = l.fontSize + 4;
  for (const t of l.yTicks) out.push(text(plot.left - 5, t.at + Math.round(l.fontSize * 0.35), t.label, C.text, 'end'));
  for (const t of l.xTicks) out.push(text(t.at, plot.bottom + 1 + line, t.label, C.text, 'middle'));
  const midY = Math.round((plot.top + plot.bottom) / 2);
  if (l.yTitle) out.push(`<text transform="translate(${l.fontSize} ${midY}) rotate(-90)" text-anchor="middle" fill="${C.text}">${esc(clipTo(l.yTitle, plot.bottom - plot.top))}</text>`);
  if (l.xTitle) out.push(text(Math.round((plot.left + plot.right) / 2), plot.bottom + 1 + 2 * line, l.xTitle, C.text, 'middle'));
  if (l.title) out.push(`<text x="${plot.left}" y="${l.fontSize + 1}" fill="${C.text}" font-weight="bold">${esc(clipTo(l.title, l.width - plot.left - 4))}</text>`);
  return out;
}

function markerLabels(l: ChartLayout): string[] {
  const rows = Math.max(0, ...l.markers.map((m) => m.row)) + 1;
  return l.markers.map((m) => {
    const half = textWidth(m.label) / 2;
    const x = Math.round(Math.min(Math.max(m.x + 1, half + 2), l.width - half - 2));
    const y = l.plot.top - 5 - (rows - 1 - m.row) * (l.fontSize + 4);
    return text(x, y, m.label, m.kind === 'deploy' ? CHART_COLORS.deployText : CHART_COLORS.revertText, 'middle');
  });
}

function ariaLabel(l: ChartLayout, chart: ChartData): string {
  const parts = [`${String(chart.signal ?? '')} over time`];
  if (l.threshold) parts.push(l.threshold.label);
  for (const m of l.markers) parts.push(m.label);
  return parts.join('; ');
}

const rect = (x: number, y: number, w: number, h: number, fill: string, opacity?: number): string =>
  `<rect x="${x}" y="${y}" width="${w}" height="${h}" fill="${fill}"${opacity === undefined ? '' : ` fill-opacity="${opacity}"`}/>`;

const circle = (p: Pixel, r: number, fill: string): string => `<circle cx="${p.x + 1}" cy="${p.y + 1}" r="${r}" fill="${fill}"/>`;

const text = (x: number, y: number, s: string, fill: string, anchor: 'start' | 'middle' | 'end'): string =>
  `<text x="${x}" y="${y}" text-anchor="${anchor}" fill="${fill}">${esc(s)}</text>`;

/** Cuts a label to what fits in `px`, ending in `…`. */
const clipTo = (s: string, px: number): string => clip(s, Math.max(1, Math.floor(px / textWidth('0'))));

/** Text and attribute values for XML/HTML: the five special characters, and no control characters. */
function esc(s: string): string {
  return s
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\ufffe\uffff]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}
