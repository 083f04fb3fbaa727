import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, parseDuration } from './duration.js';

describe('parseDuration', () => {
  const accepted: [text: string, ms: number][] = [
    ['500ms', 500],
    ['15s', 15_000],
    ['10m', 600_000],
    ['1h', 3_600_000],
    ['1.5s', 1_500],
    ['0s', 0],
    [' 15s ', 15_000],
  ];
  for (const [text, ms] of accepted) {
    it(`reads ${JSON.stringify(text)} as ${ms} ms`, () => {
      assert.equal(parseDuration(text), ms);
    });
  }

  const rejected: [text: string, why: string][] = [
    ['10', 'a bare number has no unit'],
    ['10 minutes', 'units are ms, s, m or h, written without a space'],
    ['-1s', 'a duration cannot be negative'],
    ['', 'an empty string is not a duration'],
    ['h', 'a unit needs an amount'],
    ['1d', 'days are not a unit'],
    ['15S', 'units are lower case'],
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
    [1_500, '1500ms'],
    [90_000, '90s'],
    [5_400_000, '90m'],
    [0, '0ms'],
  ];
  for (const [ms, text] of cases) {
    it(`writes ${ms} ms as ${text}, the largest whole unit`, () => {
      assert.equal(formatDuration(ms), text);
    });
  }

  it('writes what parseDuration reads back unchanged', () => {
    for (const [ms] of cases) assert.equal(parseDuration(formatDuration(ms)), ms);
  });
});
