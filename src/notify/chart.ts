import { PNG } from 'pngjs';
import type { NotificationEvent } from './event.js';

/** The chart part of an event: the breaching signal, its threshold and the deploy/revert moments. */
export type ChartData = NonNullable<NotificationEvent['chart']>;

/** Output size in pixels; defaults to 600×240. */
export interface ChartOptions {
  width?: number;
  height?: number;
}

type Rgb = readonly [number, number, number];
interface Pixel { x: number; y: number }
interface Box { left: number; top: number; right: number; bottom: number }

// There is no legend: the message carrying the chart names these colours in words.
const COLORS = {
  background: [255, 255, 255],
  grid: [232, 232, 232],
  frame: [60, 60, 60],
  series: [37, 99, 235],
  threshold: [220, 38, 38],
  deploy: [128, 128, 128],
  revert: [22, 163, 74],
  breach: [220, 38, 38],
} as const satisfies Record<string, Rgb>;
const BREACH_TINT = 0.1;
const MARGIN = 4;
const HEADROOM = 0.1;
const X_MARGIN = 0.03;
const GRID = { rows: 4, columns: 6 };
const DASH = { on: 6, off: 4 };

/**
 * Draws the breaching signal as a PNG for an email: the series in blue (broken at nulls, an isolated
 * sample as a dot, +Inf on the top edge and -Inf on the bottom one), the threshold as a red dashed
 * line with the breaching side tinted, the deploy as a gray and the revert as a green vertical line.
 * No text. Never throws on odd data.
 */
export function renderChart(chart: ChartData, opts: ChartOptions = {}): Buffer {
  const width = size(opts.width, 600);
  const height = size(opts.height, 240);
  const png = new PNG({ width, height });
  const canvas = new Canvas(png);
  canvas.fill({ left: 0, top: 0, right: width - 1, bottom: height - 1 }, COLORS.background);

  const frame = { left: MARGIN, top: MARGIN, right: width - 1 - MARGIN, bottom: height - 1 - MARGIN };
  const plot = { left: frame.left + 1, top: frame.top + 1, right: frame.right - 1, bottom: frame.bottom - 1 };
  canvas.clip = plot;

  const points = usablePoints(chart.points);
  const threshold = Number.isFinite(chart.threshold) ? chart.threshold : null;
  const moments: { t: number | undefined; color: Rgb }[] = [
    { t: chart.deployAt, color: COLORS.deploy },
    { t: chart.revertAt, color: COLORS.revert },
  ];
  const markers = moments.filter((m): m is { t: number; color: Rgb } => Number.isFinite(m.t));

  // A little room left and right so the deploy and revert lines do not merge with the frame.
  const toX = scale([...points.map((p) => p.t), ...markers.map((m) => m.t)], plot.left, plot.right, X_MARGIN);
  const values = points.flatMap((p) => (p.v === null || !Number.isFinite(p.v) ? [] : [p.v]));
  const toFiniteY = scale(threshold === null ? values : [...values, threshold], plot.bottom, plot.top, HEADROOM);
  // +Inf (a ratio over zero, a quantile past the top bucket) is drawn on the top edge, -Inf on the bottom one.
  const toY = (v: number): number => (v === Number.POSITIVE_INFINITY ? plot.top : v === Number.NEGATIVE_INFINITY ? plot.bottom : toFiniteY(v));
  const thresholdY = threshold === null ? null : toY(threshold);

  drawGrid(canvas, plot);
  if (thresholdY !== null) {
    const breaching = chart.direction === 'above' ? { ...plot, bottom: thresholdY - 1 } : { ...plot, top: thresholdY + 1 };
    canvas.fill(breaching, COLORS.breach, BREACH_TINT);
  }
  for (const marker of markers) {
    const x = toX(marker.t);
    canvas.fill({ left: x, top: plot.top, right: x + 1, bottom: plot.bottom }, marker.color);
  }
  if (thresholdY !== null) {
    for (let x = plot.left; x <= plot.right; x += DASH.on + DASH.off) {
      canvas.fill({ left: x, top: thresholdY, right: x + DASH.on - 1, bottom: thresholdY + 1 }, COLORS.threshold);
    }
  }
  for (const run of runs(points, toX, toY)) drawRun(canvas, run);

  canvas.clip = null;
  canvas.frame(frame, COLORS.frame);
  return PNG.sync.write(png, { colorType: 2 });
}

/** Keeps points with a finite time, in time order; NaN counts as no data, ±Infinity as a value. */
function usablePoints(points: ChartData['points']): { t: number; v: number | null }[] {
  const usable = points
    .filter((p) => Number.isFinite(p.t))
    .map((p) => ({ t: p.t, v: typeof p.v === 'number' && !Number.isNaN(p.v) ? p.v : null }));
  const sorted = usable.every((p, i) => i === 0 || (usable[i - 1] as { t: number }).t <= p.t);
  return sorted ? usable : usable.sort((a, b) => a.t - b.t);
}

/**
 * A linear map from the span of `values`, widened by `headroom` of that span on each side, onto the
 * pixels `from`..`to`. Works on half-spans so values near ±Number.MAX_VALUE do not overflow.
 */
function scale(values: number[], from: number, to: number, headroom: number): (v: number) => number {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo > hi) return () => Math.round((from + to) / 2);
  const mid = lo / 2 + hi / 2;
  let half = hi / 2 - lo / 2;
  if (half === 0) half = Math.abs(mid) / 2 || 1;
  const stretch = 1 + 2 * headroom;
  return (v) => Math.round((from + to) / 2 + ((v - mid) / half / stretch) * ((to - from) / 2));
}

/**
 * The series as unbroken runs of pixels, split at nulls. Points landing in the same pixel column are
 * reduced to that column's lowest and highest (plus its first and last null, so gaps survive), which
 * keeps a million-point series to at most two drawn points per column.
 */
function runs(points: { t: number; v: number | null }[], toX: (t: number) => number, toY: (v: number) => number): Pixel[][] {
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

function drawRun(canvas: Canvas, run: Pixel[]): void {
  const [first] = run;
  if (run.length === 1 && first) {
    for (let dy = -2; dy <= 2; dy++) {
      for (let dx = -2; dx <= 2; dx++) if (dx * dx + dy * dy <= 5) canvas.set(first.x + dx, first.y + dy, COLORS.series);
    }
    return;
  }
  for (let i = 1; i < run.length; i++) {
    line(run[i - 1] as Pixel, run[i] as Pixel, (x, y) => canvas.fill({ left: x, top: y, right: x + 1, bottom: y + 1 }, COLORS.series));
  }
}

/** Bresenham's line from a to b, both ends included. */
function line(a: Pixel, b: Pixel, plot: (x: number, y: number) => void): void {
  const dx = Math.abs(b.x - a.x);
  const dy = -Math.abs(b.y - a.y);
  const sx = a.x < b.x ? 1 : -1;
  const sy = a.y < b.y ? 1 : -1;
  let err = dx + dy;
  let { x, y } = a;
  for (;;) {
    plot(x, y);
    if (x === b.x && y === b.y) return;
    const e2 = 2 * err;
    if (e2 >= dy) {
      err += dy;
      x += sx;
    }
    if (e2 <= dx) {
      err += dx;
      y += sy;
    }
  }
}

function drawGrid(canvas: Canvas, plot: Box): void {
  const w = plot.right - plot.left;
  const h = plot.bottom - plot.top;
  for (let i = 1; i < GRID.columns; i++) {
    const x = plot.left + Math.round((w * i) / GRID.columns);
    canvas.fill({ ...plot, left: x, right: x }, COLORS.grid);
  }
  for (let i = 1; i < GRID.rows; i++) {
    const y = plot.top + Math.round((h * i) / GRID.rows);
    canvas.fill({ ...plot, top: y, bottom: y }, COLORS.grid);
  }
}

function size(requested: number | undefined, fallback: number): number {
  if (requested === undefined || !Number.isFinite(requested)) return fallback;
  return Math.min(4000, Math.max(2 * MARGIN + 16, Math.floor(requested)));
}

/** Pixel writes onto an RGBA buffer, optionally clipped to a box. */
class Canvas {
  clip: Box | null = null;
  constructor(private readonly png: PNG) {}

  set(x: number, y: number, [r, g, b]: Rgb, alpha = 1): void {
    const c = this.clip ?? { left: 0, top: 0, right: this.png.width - 1, bottom: this.png.height - 1 };
    if (x < c.left || x > c.right || y < c.top || y > c.bottom) return;
    const i = (y * this.png.width + x) * 4;
    const data = this.png.data;
    data[i] = Math.round((data[i] ?? 0) * (1 - alpha) + r * alpha);
    data[i + 1] = Math.round((data[i + 1] ?? 0) * (1 - alpha) + g * alpha);
    data[i + 2] = Math.round((data[i + 2] ?? 0) * (1 - alpha) + b * alpha);
    data[i + 3] = 255;
  }

  fill(box: Box, color: Rgb, alpha = 1): void {
    for (let y = box.top; y <= box.bottom; y++) for (let x = box.left; x <= box.right; x++) this.set(x, y, color, alpha);
  }

  frame(box: Box, color: Rgb): void {
    this.fill({ ...box, bottom: box.top }, color);
    this.fill({ ...box, top: box.bottom }, color);
    this.fill({ ...box, right: box.left }, color);
    this.fill({ ...box, left: box.right }, color);
  }
}
