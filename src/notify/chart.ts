import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { PNG } from 'pngjs';
import { DEFAULT_SIZE, layoutChart, type ChartData } from './chart-layout.js';
import { CHART_COLORS, CHART_FONT_FAMILY, renderChartSvg } from './chart-svg.js';

export type { ChartData } from './chart-layout.js';

/** Output size in pixels; defaults to 600×240. */
export interface ChartOptions {
  width?: number;
  height?: number;
}

type Resvg = typeof import('@resvg/resvg-js').Resvg;
interface Rasteriser { Resvg: Resvg; fontFile: string }

const require = createRequire(import.meta.url);
let rasteriser: Rasteriser | null | undefined;

/**
 * The chart as a PNG for an email: the SVG of chart-svg.ts (axes with their labels, the threshold's
 * value, the deploy and revert with their times, the series) drawn by resvg with DejaVu Sans from the
 * `dejavu-fonts-ttf` package, so the text looks the same on any host, whatever fonts it has.
 *
 * Never throws: should resvg be missing for this platform or fail on the data, the result is a blank,
 * framed PNG of the requested size (the message's text still carries the evidence).
 */
export function renderChart(chart: ChartData, opts: ChartOptions = {}): Buffer {
  const r = loadRasteriser();
  if (r) {
    try {
      const svg = renderChartSvg(chart, opts);
      const png = new r.Resvg(svg, {
        fitTo: { mode: 'original' },
        font: { loadSystemFonts: false, fontFiles: [r.fontFile], defaultFontFamily: CHART_FONT_FAMILY, sansSerifFamily: CHART_FONT_FAMILY },
        logLevel: 'off',
      }).render();
      return png.asPng();
    } catch {
      // fall through to the blank chart
    }
  }
  return blankChart(chart, opts);
}

/** resvg and the font, loaded on first use; null when either is missing (then charts are blank). */
function loadRasteriser(): Rasteriser | null {
  if (rasteriser !== undefined) return rasteriser;
  try {
    const { Resvg } = require('@resvg/resvg-js') as typeof import('@resvg/resvg-js');
    const fontFile = join(dirname(require.resolve('dejavu-fonts-ttf/package.json')), 'ttf', 'DejaVuSans.ttf');
    rasteriser = { Resvg, fontFile };
  } catch {
    rasteriser = null;
  }
  return rasteriser;
}

/** A white PNG of the chart's size with the plot's frame and nothing else. */
function blankChart(chart: ChartData, opts: ChartOptions): Buffer {
  let width: number = DEFAULT_SIZE.width;
  let height: number = DEFAULT_SIZE.height;
  let frame = { left: -1, top: -1, right: -1, bottom: -1 };
  try {
    const l = layoutChart(chart, opts);
    ({ width, height } = l);
    frame = { left: l.plot.left - 1, top: l.plot.top - 1, right: l.plot.right + 1, bottom: l.plot.bottom + 1 };
  } catch {
    // the default size, unframed
  }
  const png = new PNG({ width, height });
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(CHART_COLORS.frame.slice(i, i + 2), 16)) as [number, number, number];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const onFrame = (x === frame.left || x === frame.right) && y >= frame.top && y <= frame.bottom
        || (y === frame.top || y === frame.bottom) && x >= frame.left && x <= frame.right;
      const i = (y * width + x) * 4;
      png.data[i] = onFrame ? r : 255;
      png.data[i + 1] = onFrame ? g : 255;
      png.data[i + 2] = onFrame ? b : 255;
      png.data[i + 3] = 255;
    }
  }
  return PNG.sync.write(png, { colorType: 2 });
}
