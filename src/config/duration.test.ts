import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, parseDuration } from './duration.js';

describe('parseDuration', () => {
  const accepted: [text: string, ms: number][] = [
    ['500ms', 500],
    ['15s', 15_000],
    ['90s', 90_000],
    ['10m', 600_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['2h45m30s', 9_930_000],
    ['1s500ms', 1_500],
    ['3d', 259_200_000],
    ['1w', 604_800_000],
    ['1w2d', 777_600_000],
    ['1y', 31_536_000_000],
    ['1y2w3d4h5m6s7ms', 31_536_000_000 + 2 * 604_800_000 + 3 * 86_400_000 + 4 * 3_600_000 + 5 * 60_000 + 6_000 + 7],
    ['0s', 0],
    [' 15s ', 15_000],
  ];
  // Policies written before Prometheus's syntax: one decimal amount of one unit still loads after an upgrade.
  accepted.push(['1.5h', 5_400_000], ['1.5s', 1_500], ['0.5s', 500], ['2.5d', 216_000_000]);
  for (const [text, ms] of accepted) {
    it(`reads ${JSON.stringify(text)} as ${ms} ms`, () => {
      assert.equal(parseDuration(text), ms);
    });
  }

  const rejected: [text: string, why: string][] = [
    ['10', 'a bare number has no unit'],
    ['10 minutes', 'units are ms, s, m, h, d, w or y, written without a space'],
    ['1h 30m', 'the parts of a combination are written together'],
    ['-1s', 'a duration cannot be negative'],
    ['', 'an empty string is not a duration'],
    ['   ', 'blanks are not a duration'],
    ['h', 'a unit needs an amount'],
    ['1h30', 'every amount needs a unit'],
    ['1.5h30m', 'a decimal amount stands alone (the older form); combinations are whole numbers, as in Prometheus'],
    ['1.5w', 'the older decimal form knows ms, s, m, h and d only'],
    ['1m1h', 'units go from the largest to the smallest'],
    ['1h1h', 'each unit appears at most once'],
    ['1ms1s', 'milliseconds come last'],
    ['15S', 'units are lower case'],
    ['1mo', 'months are not a unit'],
    ['99999999999y', 'beyond what a millisecond count can hold exactly'],
  ];
  for (const [text, why] of rejected) {
    it(`rejects ${JSON.stringify(text)}: ${why}`, () => {
      assert.equal(parseDuration(text), undefined);
    });
  }
});

describe('formatDuration', () => {
  const cases: [ms: number, text: string][] = [
    [500, '500ms'],
    [15_000, '15s'],
    [600_000, '10m'],
    [3_600_000, '1h'],
    [1_500, '1s500ms'],
    [90_000, '1m30s'],
    [5_400_000, '1h30m'],
    [9_930_000, '2h45m30s'],
    [86_400_000, '1d'],
    [259_200_000, '3d'],
    [604_800_000, '1w'],
    [1_209_600_000, '2w'],
    [777_600_000, '9d'],
    [7_776_000_000, '90d'],
    [31_536_000_000, '1y'],
    [31_536_000_000 + 86_400_000, '366d'],
    [0, '0s'],
  ];
  for (const [ms, text] of cases) {
    it(`writes ${ms} ms as ${text}, as Prometheus writes a duration`, () => {
      assert.equal(formatDuration(ms), text);
    });
  }

  it('writes what parseDuration reads back unchanged', () => {
    for (const [ms] of cases) assert.equal(parseDuration(formatDuration(ms)), ms);
  });

  it('writes a valid PromQL range for every burn-rate window of the SRE workbook', () => {
    for (const text of ['5m', '30m', '1h', '2h', '6h', '1d', '3d']) assert.equal(formatDuration(parseDuration(text) as number), text);
  });
});
