import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Resvg } from '@resvg/resvg-js';
import { renderChartSvg, type ChartData } from './chart-svg.js';
import { niceTicks, tickLabels } from './chart-layout.js';

const BASE = Date.UTC(2024, 4, 1, 3, 0, 0);
const at = (s: number): number => BASE + s * 1_000;

/** Ten minutes of 15-s samples around 0.02 before a deploy at 03:05:00 and around 0.2 after it. */
function chart(overrides: Partial<ChartData> = {}): ChartData {
  return {
    signal: 'error_rate',
    threshold: 0.18,
    direction: 'above',
    points: Array.from({ length: 40 }, (_, i) => ({ t: at(i * 15), v: i < 20 ? 0.02 : 0.25 })),
    deployAt: at(300),
    revertAt: at(510),
    ...overrides,
  };
}

/** The text of every <text> element, unescaped. */
function texts(svg: string): string[] {
  return [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => (m[1] ?? '').replace(/&gt;/g, '>').replace(/&lt;/g, '<').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&'));
}

/** resvg parses it: the markup is well-formed XML a renderer accepts. */
function parses(svg: string): boolean {
  new Resvg(svg, { font: { loadSystemFonts: false } });
  return true;
}

describe('renderChartSvg', () => {
  it('labels the value axis with the signal and round ticks, the time axis with UTC clock times', () => {
    const t = texts(renderChartSvg(chart()));
    assert.ok(t.includes('error_rate'), 'value axis title');
    for (const label of ['0.05', '0.1', '0.15', '0.2', '0.25']) assert.ok(t.includes(label), `value tick ${label} in ${t.join(' | ')}`);
    for (const label of ['03:00:00', '03:04:00', '03:08:00']) assert.ok(t.includes(label), `time tick ${label} in ${t.join(' | ')}`);
    assert.ok(t.includes('time (UTC, 2024-05-01)'));
  });

  it('labels the threshold with its value and direction, the deploy and revert with their times', () => {
    const t = texts(renderChartSvg(chart()));
    assert.ok(t.includes('threshold > 0.18'), t.join(' | '));
    assert.ok(t.includes('deploy 03:05:00'));
    assert.ok(t.includes('revert 03:08:30'));
    assert.ok(texts(renderChartSvg(chart({ direction: 'below', revertAt: undefined }))).includes('threshold < 0.18'));
    assert.ok(!texts(renderChartSvg(chart({ revertAt: undefined }))).some((s) => s.startsWith('revert')));
  });

  it('tells 0.18 from 18: the same shape a hundred times larger gets different labels', () => {
    const small = chart();
    const large = chart({ threshold: 18, points: small.points.map((p) => ({ t: p.t, v: p.v === null ? null : p.v * 100 })) });
    const [a, b] = [texts(renderChartSvg(small)), texts(renderChartSvg(large))];
    assert.ok(b.includes('threshold > 18') && b.includes('20') && b.includes('10'), b.join(' | '));
    const values = (t: string[]): string[] => t.filter((s) => /^-?[\d.]+$/.test(s) && s !== '0');
    assert.deepEqual(values(a).filter((s) => values(b).includes(s)), [], 'no value label but 0 in common');
  });

  it('writes sub-second ticks with milliseconds when the window is that short', () => {
    const t = texts(renderChartSvg(chart({ points: [{ t: at(0), v: 1 }, { t: at(0.5), v: 2 }], deployAt: at(0.1), revertAt: undefined })));
    assert.ok(t.some((s) => /^03:00:00\.\d00$/.test(s)), t.join(' | '));
  });

  it('draws the threshold dashed and the series as a polyline broken at a null, with a dot per sample', () => {
    const points = [0, 15, 30, 45, 60].map((s) => ({ t: at(s), v: s === 30 ? null : 0.1 }));
    const svg = renderChartSvg(chart({ points, deployAt: at(10), revertAt: undefined }));
    assert.match(svg, /<line [^>]*stroke-dasharray/);
    assert.equal(svg.match(/<polyline /g)?.length, 2);
    assert.equal(svg.match(/<circle /g)?.length, 4);
  });

  it('pins +Inf to the top edge and -Inf to the bottom one', () => {
    const points = [{ t: at(0), v: 0.1 }, { t: at(15), v: Infinity }, { t: at(30), v: 0.1 }, { t: at(45), v: -Infinity }];
    const svg = renderChartSvg(chart({ points, threshold: 0.2, revertAt: undefined, deployAt: at(5) }));
    const [, top, height] = /<svg x="\d+" y="(\d+)" width="\d+" height="(\d+)"/.exec(svg)!.map(Number) as number[];
    const ys = /<polyline points="([^"]+)"/.exec(svg)![1]!.split(' ').map((p) => Number(p.split(',')[1]) - 1);
    assert.equal(ys[1], top);
    assert.equal(ys[3], top! + height! - 1);
  });

  it('is self-contained and safe inline in HTML: no scripts, links, styles or ids; text escaped', () => {
    const svg = renderChartSvg(chart({ signal: '<script>"x" & \'y\'\u0000' }), { title: '</svg><img src=x onerror=alert(1)>' });
    const tags = [...svg.matchAll(/<\/?([a-zA-Z]+)/g)].map((m) => m[1]);
    assert.deepEqual([...new Set(tags)].sort(), ['circle', 'g', 'line', 'polyline', 'rect', 'svg', 'text']);
    const markup = svg.replace(/"[^"]*"/g, '""').replace(/>[^<]*</g, '><');
    assert.ok(!/href|url\(|@font-face|\sid=|\son\w+=/i.test(markup), markup.slice(0, 400));
    assert.ok(texts(svg).includes('<script>"x" & \'y\''), texts(svg).join(' | '));
    assert.ok(parses(svg));
    assert.equal(svg.match(/<svg/g)?.length, 2, 'one outer svg and the nested plot');
  });

  it('honours the requested size and title', () => {
    const svg = renderChartSvg(chart(), { width: 800, height: 300, title: 'api · error_rate' });
    assert.match(svg, /^<svg [^>]*width="800" height="300" viewBox="0 0 800 300"/);
    assert.ok(texts(svg).includes('api · error_rate'));
  });

  describe('odd data never throws and still parses', () => {
    const cases: [string, Partial<ChartData>, { width?: number; height?: number }?][] = [
      ['no points', { points: [] }],
      ['all points null', { points: [{ t: at(0), v: null }, { t: at(1), v: null }] }],
      ['a single point', { points: [{ t: at(5), v: 3 }] }],
      ['only ±Inf and NaN values', { points: [{ t: at(0), v: NaN }, { t: at(1), v: Infinity }, { t: at(2), v: -Infinity }] }],
      ['a NaN threshold', { threshold: NaN }],
      ['an infinite threshold', { threshold: Infinity }],
      ['a NaN deploy moment', { deployAt: NaN, revertAt: NaN }],
      ['a deploy long before the points and a revert long after', { deployAt: at(-86_400), revertAt: at(3 * 86_400) }],
      ['times no Date can hold', { points: [{ t: 1e17, v: 1 }, { t: 2e17, v: 2 }], deployAt: 9e15 }],
      ['values near the float limits', { points: [{ t: at(0), v: -Number.MAX_VALUE }, { t: at(1), v: Number.MAX_VALUE }] }],
      ['tiny values', { points: [{ t: at(0), v: 1e-12 }, { t: at(1), v: 3e-12 }], threshold: 2e-12 }],
      ['huge values', { points: [{ t: at(0), v: 1e25 }, { t: at(1), v: 3e25 }], threshold: 2e25 }],
      ['negative values', { points: [{ t: at(0), v: -5 }, { t: at(1), v: -1 }], threshold: -2, direction: 'below' }],
      ['a tiny size', {}, { width: 1, height: 1 }],
      ['a non-finite size', {}, { width: NaN, height: Infinity }],
    ];
    for (const [name, overrides, opts] of cases) {
      it(`renders ${name}`, () => {
        const svg = renderChartSvg(chart(overrides), opts);
        assert.ok(parses(svg));
        assert.ok(!/NaN|Infinity/.test(svg.replace(/<text[^>]*>[^<]*<\/text>/g, '')), 'no NaN or Infinity in the geometry');
      });
    }
  });
});

describe('chart ticks', () => {
  it('picks round steps and labels them with the decimals the step needs', () => {
    assert.deepEqual(tickLabels(niceTicks(0.001, 0.229, 5)), ['0.05', '0.1', '0.15', '0.2']);
    assert.deepEqual(tickLabels(niceTicks(0.1, 22.9, 5)), ['5', '10', '15', '20']);
    assert.deepEqual(tickLabels(niceTicks(-1.2, 1.2, 4)), ['-1', '-0.5', '0', '0.5', '1']);
    assert.deepEqual(niceTicks(1, 1, 4), []);
    assert.deepEqual(niceTicks(-Number.MAX_VALUE, Number.MAX_VALUE, 4), []);
  });
});
