/**
 * Where everything on an evidence chart goes and what its text says, as plain data: the plot box,
 * the value and time ticks with their labels, the threshold and the deploy/revert moments with their
 * labels, and the series as pixel runs. Pure: the SVG renderer (chart-svg.ts, used by the status page
 * and, rasterised, by the email PNG in chart.ts) only draws what this decides, so both read the same way.
 */
import type { NotificationEvent } from './event.js';
import { formatValue } from './render-format.js';

/** The chart part of an event: the breaching signal, its threshold and the deploy/revert moments. */
export type ChartData = NonNullable<NotificationEvent['chart']>;

export interface Pixel { x: number; y: number }
/** A box of whole pixels, edges included. */
export interface Box { left: number; top: number; right: number; bottom: number }
export interface Tick { at: number; label: string }
/** A labelled vertical line; `label` sits on `row` (0 or 1) of the strip above the plot. */
export interface Marker { kind: 'deploy' | 'revert'; x: number; label: string; row: number }

export interface ChartLayout {
  width: number;
  height: number;
  /** Font size of every label, in pixels. */
  fontSize: number;
  /** False when the chart is too small for text: then ticks, markers' labels and titles are empty. */
  text: boolean;
  title: string | null;
  /** The plot area, inside a 1-px frame drawn just outside it. */
  plot: Box;
  /** Rows of the value ticks (at = y pixel), bottom to top. */
  yTicks: Tick[];
  /** Columns of the time ticks (at = x pixel), left to right. */
  xTicks: Tick[];
  /** The value axis' title: the signal's name. */
  yTitle: string;
  /** The time axis' title: `time (UTC)`, with the date when the window has one. */
  xTitle: string;
  threshold: { y: number; label: string; breaching: Box } | null;
  markers: Marker[];
  /** The series as unbroken runs, split at nulls; a run of one is an isolated sample. */
  runs: Pixel[][];
  /** One dot per sample when samples are few enough to tell apart; otherwise none. */
  dots: Pixel[];
}

export const DEFAULT_SIZE = { width: 600, height: 240 } as const;
const FONT_SIZE = 11;
/** DejaVu Sans' digits are 0.636 em wide; most other characters are narrower. */
const CHAR_WIDTH = 0.64 * FONT_SIZE;
const LINE = FONT_SIZE + 4;
const BARE_MARGIN = 4;
const HEADROOM = 0.1;
const X_MARGIN = 0.03;
/** Below these sizes there is no room for text and the chart is lines only. */
const TEXT_MIN = { width: 200, height: 110 };
const MIN_SIZE = 2 * BARE_MARGIN + 16;
const MAX_SIZE = 4000;
/** Samples get a dot only when at least this many pixels apart on average. */
const DOT_SPACING = 8;

/** Rough width of `s` in pixels at the labels' font size; generous, so labels do not overlap. */
export const textWidth = (s: string): number => Math.ceil(s.length * CHAR_WIDTH);

/** Lays the chart out on a `width`×`height` canvas. Never throws, whatever the data. */
export function layoutChart(chart: ChartData, opts: { width?: number; height?: number; title?: string } = {}): ChartLayout {
  const width = size(opts.width, DEFAULT_SIZE.width);
  const height = size(opts.height, DEFAULT_SIZE.height);
  const points = usablePoints(Array.isArray(chart.points) ? chart.points : []);
  const threshold = Number.isFinite(chart.threshold) ? chart.threshold : null;
  const moments = [
    { kind: 'deploy' as const, t: chart.deployAt },
    { kind: 'revert' as const, t: chart.revertAt },
  ].filter((m): m is { kind: 'deploy' | 'revert'; t: number } => typeof m.t === 'number' && Number.isFinite(m.t));
  const values = points.flatMap((p) => (p.v === null || !Number.isFinite(p.v) ? [] : [p.v]));
  const yValues = threshold === null ? values : [...values, threshold];
  const tValues = [...points.map((p) => p.t), ...moments.map((m) => m.t)];

  const text = width >= TEXT_MIN.width && height >= TEXT_MIN.height;
  const title = text && opts.title ? opts.title : null;
  const yDomain = domain(yValues, HEADROOM);
  const xDomain = domain(tValues, X_MARGIN);

  // The left margin fits the widest value label; it is found from the labels a plot of roughly the
  // final height would get, which is what the final one gets (the height does not depend on it).
  const top = text ? (title ? LINE : 0) + LINE * (moments.length > 1 ? 2 : 1) + 4 : BARE_MARGIN + 1;
  const bottom = text ? height - 1 - (2 * LINE + 4) : height - 1 - BARE_MARGIN - 1;
  const yTickValues = text && yDomain ? niceTicks(yDomain.lo, yDomain.hi, Math.max(2, Math.floor((bottom - top) / (2 * LINE)))) : [];
  const yLabels = tickLabels(yTickValues);
  const widest = Math.min(Math.floor(width * 0.35), Math.max(0, ...yLabels.map(textWidth)));
  const left = text ? LINE + widest + 8 : BARE_MARGIN + 1;
  const right = text ? width - 1 - 4 * CHAR_WIDTH : width - 1 - BARE_MARGIN - 1;
  const plot = { left, top, right: Math.max(left + 1, Math.round(right)), bottom: Math.max(top + 1, bottom) };

  const toX = scale(xDomain, plot.left, plot.right);
  const toFiniteY = scale(yDomain, plot.bottom, plot.top);
  // +Inf (a ratio over zero, a quantile past the top bucket) is drawn on the top edge, -Inf on the bottom one.
  const toY = (v: number): number => (v === Number.POSITIVE_INFINITY ? plot.top : v === Number.NEGATIVE_INFINITY ? plot.bottom : toFiniteY(v));

  const yTicks = yTickValues
    .map((v, i) => ({ at: toFiniteY(v), label: yLabels[i] ?? '' }))
    .filter((t) => t.at >= plot.top && t.at <= plot.bottom);
  const xTicks = text && xDomain ? timeTicks(xDomain, toX, plot, width) : [];

  let thresholdLayout: ChartLayout['threshold'] = null;
  if (threshold !== null) {
    const y = toY(threshold);
    const breaching = chart.direction === 'below' ? { ...plot, top: y + 1 } : { ...plot, bottom: y - 1 };
    thresholdLayout = { y, label: `threshold ${chart.direction === 'below' ? '<' : '>'} ${formatValue(threshold)}`, breaching };
  }

  const markers: Marker[] = [];
  for (const m of moments) {
    const x = toX(m.t);
    const label = `${m.kind === 'revert' ? (chart.revertLabel ?? 'revert') : m.kind} ${clockTime(m.t)}`;
    const previous = markers.at(-1);
    // A second label that would run into the first goes on the row below it.
    const row = previous && previous.row === 0 && Math.abs(previous.x - x) < (textWidth(previous.label) + textWidth(label)) / 2 + 8 ? 1 : 0;
    markers.push({ kind: m.kind, x, label, row });
  }

  const runs = seriesRuns(points, toX, toY);
  const dots = points.length > 0 && points.length * DOT_SPACING <= plot.right - plot.left
    ? points.flatMap((p) => (p.v === null ? [] : [{ x: toX(p.t), y: toY(p.v) }]))
    : [];

  return {
    width,
    height,
    fontSize: FONT_SIZE,
    text,
    title,
    plot,
    yTicks,
    xTicks,
    yTitle: text ? String(chart.signal ?? '') : '',
    xTitle: text ? timeTitle(xDomain, moments[0]?.t) : '',
    threshold: thresholdLayout,
    markers,
    runs,
    dots,
  };
}

/** `HH:MM:SS` in UTC; a time no Date can hold is shown as its number. */
export function clockTime(t: number, withMs = false): string {
  const iso = isoTime(t);
  if (iso === null) return String(t);
  return withMs ? iso.slice(11, 23) : iso.slice(11, 19);
}

function isoTime(t: number): string | null {
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/** The time axis' title, naming the day when the whole window falls on one. */
function timeTitle(d: Domain | null, fallback: number | undefined): string {
  const from = d ? isoTime(d.lo) : null;
  const to = d ? isoTime(d.hi) : null;
  if (from && to && from.slice(0, 10) === to.slice(0, 10)) return `time (UTC, ${from.slice(0, 10)})`;
  const one = fallback === undefined ? null : isoTime(fallback);
  return from && to ? `time (UTC, ${from.slice(0, 10)} – ${to.slice(0, 10)})` : one ? `time (UTC, ${one.slice(0, 10)})` : 'time (UTC)';
}

interface Domain { lo: number; hi: number; mid: number; half: number }

/**
 * The span of `values` widened by `headroom` of that span on each side, as a midpoint and half-width
 * (half-spans, so values near ±Number.MAX_VALUE do not overflow). Null when there are no values.
 */
function domain(values: number[], headroom: number): Domain | null {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo > hi) return null;
  const mid = lo / 2 + hi / 2;
  let half = hi / 2 - lo / 2;
  if (half === 0) half = Math.abs(mid) / 2 || 1;
  half *= 1 + 2 * headroom;
  return { lo: mid - half, hi: mid + half, mid, half };
}

/** A linear map from the domain onto the pixels `from`..`to`; no domain puts everything in the middle. */
function scale(d: Domain | null, from: number, to: number): (v: number) => number {
  if (d === null) return () => Math.round((from + to) / 2);
  return (v) => Math.round((from + to) / 2 + ((v - d.mid) / d.half) * ((to - from) / 2));
}

/** Round values (1, 2 or 5 × 10ⁿ apart, the step nearest span/count) inside lo…hi. */
export function niceTicks(lo: number, hi: number, count: number): number[] {
  const span = hi - lo;
  if (!Number.isFinite(span) || span <= 0 || count < 1) return [];
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const error = raw / power;
  const step = (error >= Math.sqrt(50) ? 10 : error >= Math.sqrt(10) ? 5 : error >= Math.sqrt(2) ? 2 : 1) * power;
  if (!Number.isFinite(step) || step <= 0) return [];
  const ticks: number[] = [];
  for (let i = Math.ceil(lo / step); i * step <= hi && ticks.length <= 2 * count + 2; i++) ticks.push(i * step);
  return ticks;
}

/**
 * Labels for evenly spaced ticks, each with as many decimals as the step needs (0.05 apart → `0.15`,
 * 5 apart → `15`), written as the messages write values, so `0.18` and `18` never look alike.
 */
export function tickLabels(ticks: number[]): string[] {
  const [a, b] = ticks;
  const step = a !== undefined && b !== undefined ? Math.abs(b - a) : 0;
  const decimals = step > 0 && Number.isFinite(step) ? Math.min(20, Math.max(0, Math.ceil(-Math.log10(step) - 1e-9))) : 0;
  return ticks.map((v) => (Math.abs(v) < 1e21 ? formatValue(Number(v.toFixed(decimals))) : formatValue(v)));
}

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const TIME_STEPS = [
  1, 2, 5, 10, 20, 50, 100, 200, 500,
  SECOND, 2 * SECOND, 5 * SECOND, 10 * SECOND, 15 * SECOND, 30 * SECOND,
  MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
  HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY,
];

/** Clock-time ticks at round steps (10 s, 1 min, …) that fit across the plot without overlapping. */
function timeTicks(d: Domain, toX: (t: number) => number, plot: Box, width: number): Tick[] {
  const span = d.hi - d.lo;
  if (!Number.isFinite(span) || span <= 0) return [];
  const fitting = (label: string): number => Math.max(1, Math.floor((plot.right - plot.left) / (textWidth(label) + 16)));
  const stepFor = (fit: number): number => TIME_STEPS.find((s) => span / s <= fit) ?? Math.ceil(span / fit / DAY) * DAY;
  // Sub-second steps need the longer `HH:MM:SS.mmm` labels, so fewer of them fit.
  let fit = fitting('00:00:00');
  let step = stepFor(fit);
  if (step < SECOND) {
    fit = fitting('00:00:00.000');
    step = stepFor(fit);
  }
  const withMs = step < SECOND;
  const ticks: Tick[] = [];
  for (let i = Math.ceil(d.lo / step); i * step <= d.hi && ticks.length <= fit + 1; i++) {
    const t = i * step;
    const x = toX(t);
    const label = step >= DAY ? (isoTime(t)?.slice(0, 10) ?? String(t)) : clockTime(t, withMs);
    const half = textWidth(label) / 2;
    if (x < plot.left || x > plot.right || x - half < 0 || x + half > width) continue;
    ticks.push({ at: x, label });
  }
  return ticks;
}

/** Keeps points with a finite time, in time order; NaN counts as no data, ±Infinity as a value. */
function usablePoints(points: ChartData['points']): { t: number; v: number | null }[] {
  const usable = points
    .filter((p) => p !== null && typeof p === 'object' && typeof p.t === 'number' && Number.isFinite(p.t))
    .map((p) => ({ t: p.t, v: typeof p.v === 'number' && !Number.isNaN(p.v) ? p.v : null }));
  const sorted = usable.every((p, i) => i === 0 || (usable[i - 1] as { t: number }).t <= p.t);
  return sorted ? usable : usable.sort((a, b) => a.t - b.t);
}

/**
 * The series as unbroken runs of pixels, split at nulls. Points landing in the same pixel column are
 * reduced to that column's lowest and highest (plus its first and last null, so gaps survive), which
 * keeps a million-point series to at most two drawn points per column.
 */
function seriesRuns(points: { t: number; v: number | null }[], toX: (t: number) => number, toY: (v: number) => number): Pixel[][] {
  const result: Pixel[][] = [];
  let run: Pixel[] = [];
  for (const column of columns(points, toX)) {
    for (const p of reduceColumn(column)) {
      if (p.v !== null) run.push({ x: toX(p.t), y: toY(p.v) });
      else if (run.length > 0) {
        result.push(run);
        run = [];
      }
    }
  }
  if (run.length > 0) result.push(run);
  return result;
}

/** Consecutive points that land in the same pixel column. */
function* columns<P extends { t: number }>(points: P[], toX: (t: number) => number): Generator<P[]> {
  let start = 0;
  while (start < points.length) {
    const x = toX((points[start] as P).t);
    let end = start + 1;
    while (end < points.length && toX((points[end] as P).t) === x) end++;
    yield points.slice(start, end);
    start = end;
  }
}

/** A column's lowest and highest sample and its first and last gap, in time order. */
function reduceColumn<P extends { v: number | null }>(column: P[]): P[] {
  if (column.length <= 2) return column;
  let low = -1, high = -1, firstGap = -1, lastGap = -1;
  let lowV = Infinity, highV = -Infinity;
  column.forEach(({ v }, i) => {
    if (v === null) {
      if (firstGap < 0) firstGap = i;
      lastGap = i;
    } else {
      if (v < lowV) {
        low = i;
        lowV = v;
      }
      if (v > highV) {
        high = i;
        highV = v;
      }
    }
  });
  const keep = [...new Set([low, high, firstGap, lastGap])].filter((i) => i >= 0).sort((a, b) => a - b);
  return keep.map((i) => column[i] as P);
}

function size(requested: number | undefined, fallback: number): number {
  if (requested === undefined || !Number.isFinite(requested)) return fallback;
  return Math.min(MAX_SIZE, Math.max(MIN_SIZE, Math.floor(requested)));
}
