import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PNG } from 'pngjs';
import { renderChart, type ChartData } from './chart.js';

type Rgb = [number, number, number];
interface Box { left: number; top: number; right: number; bottom: number }

const isBlue = ([r, g, b]: Rgb): boolean => b > 180 && r < 100 && g < 150;
const isRed = ([r, g, b]: Rgb): boolean => r > 180 && g < 80 && b < 80;
const isGray = ([r, g, b]: Rgb): boolean => r === g && g === b && r > 90 && r < 180;
const isGreen = ([r, g, b]: Rgb): boolean => g > r + 60 && g > b + 60;
const isDark = ([r, g, b]: Rgb): boolean => r === g && g === b && r < 90;
const isTinted = ([r, g, b]: Rgb): boolean => r > g + 10 && g === b && g > 180;
const isNeutral = ([r, g, b]: Rgb): boolean => r === g && g === b && r > 200;

/** Values 0…1 over t 0…100 with the threshold inside, so the y range is 0…1 plus headroom. */
function chart(overrides: Partial<ChartData> = {}): ChartData {
  return {
    signal: 'error_rate',
    threshold: 0.75,
    direction: 'above',
    points: [{ t: 0, v: 0 }, { t: 50, v: 0.5 }, { t: 100, v: 1 }],
    deployAt: 20,
    ...overrides,
  };
}

function render(data: ChartData, opts?: { width?: number; height?: number }): PNG {
  return PNG.sync.read(renderChart(data, opts));
}

function pixel(png: PNG, x: number, y: number): Rgb {
  const i = (y * png.width + x) * 4;
  return [png.data[i] ?? -1, png.data[i + 1] ?? -1, png.data[i + 2] ?? -1];
}

function row(png: PNG, y: number, box: Box): Rgb[] {
  return Array.from({ length: box.right - box.left + 1 }, (_, i) => pixel(png, box.left + i, y));
}

function column(png: PNG, x: number, box: Box): Rgb[] {
  return Array.from({ length: box.bottom - box.top + 1 }, (_, i) => pixel(png, x, box.top + i));
}

/** The plot area inside the dark frame, found by scanning in from the middle of each edge. */
function plotArea(png: PNG): Box {
  const midX = Math.floor(png.width / 2);
  const midY = Math.floor(png.height / 2);
  const xs = Array.from({ length: png.width }, (_, x) => x).filter((x) => isDark(pixel(png, x, midY)));
  const ys = Array.from({ length: png.height }, (_, y) => y).filter((y) => isDark(pixel(png, midX, y)));
  return { left: xs[0]! + 1, right: xs.at(-1)! - 1, top: ys[0]! + 1, bottom: ys.at(-1)! - 1 };
}

/** Where the spec puts t: the points' and markers' time span plus 3 % of it left and right. */
function xOf(t: number, [t0, t1]: [number, number], box: Box): number {
  const pad = (t1 - t0) * 0.03;
  return Math.round(box.left + ((t - t0 + pad) / (t1 - t0 + 2 * pad)) * (box.right - box.left));
}

/** Where the spec puts v: the values' and threshold's span plus 10 % of it above and below. */
function yOf(v: number, [lo, hi]: [number, number], box: Box): number {
  const pad = (hi - lo) * 0.1;
  return Math.round(box.bottom - ((v - lo + pad) / (hi - lo + 2 * pad)) * (box.bottom - box.top));
}

function near(png: PNG, x: number, y: number, test: (c: Rgb) => boolean, radius = 1): boolean {
  for (let dy = -radius; dy <= radius; dy++) for (let dx = -radius; dx <= radius; dx++) if (test(pixel(png, x + dx, y + dy))) return true;
  return false;
}

describe('renderChart', () => {
  it('returns a 600×240 PNG by default', () => {
    const buf = renderChart(chart());
    assert.deepEqual([...buf.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const png = PNG.sync.read(buf);
    assert.equal(png.width, 600);
    assert.equal(png.height, 240);
  });

  it('honours a requested size', () => {
    const png = render(chart(), { width: 320, height: 100 });
    assert.deepEqual([png.width, png.height], [320, 100]);
  });

  it('frames the plot with a 1-px dark border on a white background', () => {
    const png = render(chart());
    const box = plotArea(png);
    assert.ok(isNeutral(pixel(png, 0, 0)), 'corner outside the frame is white');
    assert.ok(isDark(pixel(png, box.left - 1, box.top - 1)));
    assert.ok(!isDark(pixel(png, box.left - 2, box.top + 20)), 'frame is one pixel wide');
    assert.ok(!isDark(pixel(png, box.left, box.top + 20)));
  });

  it('draws the threshold as a red dashed line at its row', () => {
    const png = render(chart());
    const box = plotArea(png);
    const y = yOf(0.75, [0, 1], box);
    const red = row(png, y, box).filter(isRed).length;
    assert.ok(red > box.right - box.left - red, `mostly red at row ${y}, got ${red} red pixels`);
    assert.ok(red < box.right - box.left, 'with gaps between dashes');
    assert.equal(row(png, y - 3, box).filter(isRed).length, 0);
  });

  it('draws the series in blue through the pixel of a known point', () => {
    const png = render(chart({ threshold: 0.25, points: [{ t: 0, v: 0 }, { t: 50, v: 0.5 }, { t: 100, v: 1 }, { t: 150, v: 0.2 }], deployAt: 10 }));
    const box = plotArea(png);
    const x = xOf(100, [0, 150], box);
    const y = yOf(1, [0, 1], box);
    assert.ok(near(png, x, y, isBlue), `blue at (${x}, ${y})`);
    assert.ok(!near(png, x, y - 6, isBlue, 2), 'and not well above the peak');
  });

  it('marks the deploy with a gray column and the revert with a green one', () => {
    const png = render(chart({ deployAt: 30, revertAt: 80 }));
    const box = plotArea(png);
    const deploy = column(png, xOf(30, [0, 100], box), box);
    const revert = column(png, xOf(80, [0, 100], box), box);
    assert.ok(deploy.filter(isGray).length > deploy.length * 0.8);
    assert.ok(revert.filter(isGreen).length > revert.length * 0.8);
    assert.equal(column(png, xOf(55, [0, 100], box), box).filter(isGreen).length, 0);
  });

  it('widens the x range to include a marker outside the points, keeping markers off the frame', () => {
    const png = render(chart({ deployAt: -100, revertAt: 200 }));
    const box = plotArea(png);
    const deployX = xOf(-100, [-100, 200], box);
    const revertX = xOf(200, [-100, 200], box);
    assert.ok(deployX > box.left + 5 && revertX < box.right - 5, 'markers stand clear of the frame');
    assert.ok(column(png, deployX, box).filter(isGray).length > 10);
    assert.ok(column(png, revertX, box).filter(isGreen).length > 10);
  });

  it('tints only the area above the threshold when direction is above', () => {
    const png = render(chart({ threshold: 0.5, points: [{ t: 0, v: 0 }, { t: 100, v: 1 }] }));
    const box = plotArea(png);
    const y = yOf(0.5, [0, 1], box);
    const x = xOf(75, [0, 100], box);
    assert.ok(isTinted(pixel(png, x, y - 10)));
    assert.ok(isTinted(pixel(png, x, box.top)));
    assert.ok(isNeutral(pixel(png, x, y + 10)));
    assert.ok(isNeutral(pixel(png, x, box.bottom)));
  });

  it('tints only the area below the threshold when direction is below', () => {
    const png = render(chart({ threshold: 0.5, direction: 'below', points: [{ t: 0, v: 0 }, { t: 100, v: 1 }] }));
    const box = plotArea(png);
    const y = yOf(0.5, [0, 1], box);
    const x = xOf(75, [0, 100], box);
    assert.ok(isNeutral(pixel(png, x, y - 10)));
    assert.ok(isTinted(pixel(png, x, y + 10)));
    assert.ok(isTinted(pixel(png, x, box.bottom)));
  });

  it('does not connect the series across a null', () => {
    const points = [0, 10, 20, 30, 40, 50, 60].map((t) => ({ t, v: t === 30 ? null : 0.5 }));
    const png = render(chart({ points, threshold: 1, deployAt: 0 }));
    const box = plotArea(png);
    const [from, to] = [xOf(20, [0, 60], box) + 2, xOf(40, [0, 60], box) - 1];
    assert.ok(to - from > 20);
    for (let x = from; x <= to; x++) assert.equal(column(png, x, box).filter(isBlue).length, 0, `no blue in column ${x}`);
    assert.ok(column(png, from - 3, box).some(isBlue) && column(png, to + 2, box).some(isBlue), 'blue on both sides');
  });

  it('marks an isolated point as a small dot', () => {
    const points = [{ t: 0, v: 0 }, { t: 10, v: null }, { t: 20, v: 1 }, { t: 30, v: null }, { t: 40, v: 0 }];
    const png = render(chart({ points, threshold: 0.5, deployAt: 5 }));
    const box = plotArea(png);
    const [x, y] = [xOf(20, [0, 40], box), yOf(1, [0, 1], box)];
    assert.ok(isBlue(pixel(png, x, y)));
    const dot = column(png, x, box).filter(isBlue).length;
    assert.ok(dot >= 3 && dot <= 6, `dot is small, got ${dot} px tall`);
  });

  it('treats NaN as a gap and draws +Inf on the top edge, -Inf on the bottom one', () => {
    const points = [0, 10, 20, 30, 40, 50].map((t) => ({ t, v: t === 20 ? NaN : t === 30 ? Infinity : t === 50 ? -Infinity : 0.5 }));
    const png = render(chart({ points, threshold: 1, deployAt: 0 }));
    const box = plotArea(png);
    const y = yOf(0.5, [0.5, 1], box);
    assert.equal(column(png, xOf(20, [0, 50], box), box).filter(isBlue).length, 0, 'NaN is a gap');
    assert.ok(near(png, xOf(30, [0, 50], box), box.top, isBlue), '+Inf is on the top edge');
    assert.ok(near(png, xOf(40, [0, 50], box), y, isBlue), 'the finite values keep their scale');
    assert.ok(near(png, xOf(50, [0, 50], box), box.bottom, isBlue), '-Inf is on the bottom edge');
  });

  it('keeps each column’s min and max when downsampling a huge series', () => {
    const points = Array.from({ length: 200_000 }, (_, i) => ({ t: i, v: i % 2 }));
    const started = performance.now();
    const png = render(chart({ points, threshold: 2 }));
    assert.ok(performance.now() - started < 5_000, 'renders in well under a few seconds');
    const box = plotArea(png);
    const x = Math.round((box.left + box.right) / 2);
    const blue = column(png, x, box).filter(isBlue).length;
    assert.ok(blue >= yOf(0, [0, 2], box) - yOf(1, [0, 2], box), `column spans 0…1, got ${blue} px`);
  });

  describe('text', () => {
    const BASE = Date.UTC(2024, 4, 1, 3, 0, 0);
    const timed = (): ChartData => chart({
      points: Array.from({ length: 40 }, (_, i) => ({ t: BASE + i * 15_000, v: i < 20 ? 0.02 : 0.25 })),
      threshold: 0.18,
      deployAt: BASE + 300_000,
      revertAt: BASE + 510_000,
    });
    const inked = (png: PNG, box: Box, test: (c: Rgb) => boolean = (c) => !isNeutral(c) || c[0] < 200): number => {
      let n = 0;
      for (let y = box.top; y <= box.bottom; y++) for (let x = box.left; x <= box.right; x++) if (test(pixel(png, x, y))) n++;
      return n;
    };

    it('writes the value labels left of the plot and the time labels below it', () => {
      const png = render(timed());
      const box = plotArea(png);
      assert.ok(box.left > 30 && box.bottom < png.height - 25, `room for labels around ${JSON.stringify(box)}`);
      assert.ok(inked(png, { left: 0, top: box.top, right: box.left - 3, bottom: box.bottom }) > 150, 'value ticks and axis title are drawn');
      assert.ok(inked(png, { left: box.left, top: box.bottom + 3, right: box.right, bottom: png.height - 1 }) > 150, 'time ticks and axis title are drawn');
    });

    it('writes the deploy and revert times above the plot in their colours', () => {
      const png = render(timed());
      const box = plotArea(png);
      const strip = { left: 0, top: 0, right: png.width - 1, bottom: box.top - 3 };
      assert.ok(inked(png, strip, ([r, g, b]) => g > r + 30 && g > b + 20) > 20, 'green revert label');
      assert.ok(inked(png, strip, ([r, g, b]) => b > r + 8 && r < 160) > 20, 'slate-gray deploy label');
    });

    it('writes the threshold value in dark red beside its line', () => {
      const png = render(timed());
      const box = plotArea(png);
      const darkRed = ([r, g, b]: Rgb): boolean => r > 120 && r < 190 && g < 90 && b < 90;
      assert.ok(inked(png, box, darkRed) > 20, 'threshold label pixels');
      assert.equal(inked(render(chart({ threshold: NaN })), plotArea(render(chart({ threshold: NaN }))), darkRed), 0, 'none without a threshold');
    });

    it('labels differ between 0.18 and 18', () => {
      const small = timed();
      const large = { ...small, threshold: 18, points: small.points.map((p) => ({ t: p.t, v: p.v === null ? null : p.v * 100 })) };
      const [a, b] = [render(small), render(large)];
      const [boxA, boxB] = [plotArea(a), plotArea(b)];
      const margin = { left: 0, top: boxA.top, right: Math.min(boxA.left, boxB.left) - 3, bottom: boxA.bottom };
      let differing = 0;
      for (let y = margin.top; y <= margin.bottom; y++) for (let x = margin.left; x <= margin.right; x++) if (pixel(a, x, y).join() !== pixel(b, x, y).join()) differing++;
      assert.ok(differing > 50, `value labels differ in ${differing} pixels`);
    });
  });

  describe('edge cases yield a valid PNG', () => {
    const cases: [string, Partial<ChartData>, { width?: number; height?: number }?][] = [
      ['no points', { points: [] }],
      ['all points null', { points: [{ t: 0, v: null }, { t: 1, v: null }] }],
      ['a single point', { points: [{ t: 5, v: 3 }] }],
      ['a single point at the deploy moment', { points: [{ t: 20, v: 3 }], deployAt: 20 }],
      ['all values equal to the threshold', { points: [{ t: 0, v: 0.75 }, { t: 10, v: 0.75 }] }],
      ['all values zero with a zero threshold', { points: [{ t: 0, v: 0 }, { t: 10, v: 0 }], threshold: 0 }],
      ['only non-finite values', { points: [{ t: 0, v: NaN }, { t: 1, v: Infinity }, { t: 2, v: -Infinity }] }],
      ['non-finite times', { points: [{ t: NaN, v: 1 }, { t: Infinity, v: 2 }, { t: 3, v: 1 }] }],
      ['values near the float limits', { points: [{ t: 0, v: -Number.MAX_VALUE }, { t: 1, v: Number.MAX_VALUE }] }],
      ['a non-finite threshold and deploy moment', { threshold: NaN, deployAt: NaN }],
      ['points out of time order', { points: [{ t: 9, v: 1 }, { t: 1, v: 0 }, { t: 5, v: null }] }],
      ['a tiny requested size', {}, { width: 1, height: 1 }],
      ['a non-finite requested size', {}, { width: NaN, height: Infinity }],
    ];
    for (const [name, overrides, opts] of cases) {
      it(`renders ${name} without throwing`, () => {
        const png = render(chart(overrides), opts);
        assert.ok(png.width > 0 && png.height > 0);
        assert.equal(png.data.length, png.width * png.height * 4);
      });
    }
  });
});
