import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseSinceArg, parseTimeArg } from './time-arg.js';

describe('parseTimeArg', () => {
  const cases: [text: string, ms: number | undefined][] = [
    ['2026-11-26T14:05:00Z', Date.UTC(2026, 10, 26, 14, 5, 0)],
    ['2026-11-26T14:05:00.250Z', Date.UTC(2026, 10, 26, 14, 5, 0, 250)],
    ['2026-11-26T15:05:00+01:00', Date.UTC(2026, 10, 26, 14, 5, 0)],
    ['2026-11-26 14:05:00z', Date.UTC(2026, 10, 26, 14, 5, 0)],
    ['1795701900', 1_795_701_900_000],
    ['1795701900.5', 1_795_701_900_500],
    ['2026-11-26T14:05:00', undefined],
    ['2026-11-26', undefined],
    ['2026-13-40T99:99:99Z', undefined],
    ['yesterday', undefined],
    ['-5', undefined],
    ['', undefined],
  ];
  for (const [text, ms] of cases) {
    it(`${JSON.stringify(text)} → ${ms === undefined ? 'refused' : new Date(ms).toISOString()}`, () => {
      assert.equal(parseTimeArg(text), ms);
    });
  }
});

describe('parseSinceArg', () => {
  const cases: [text: string, ms: number | undefined][] = [
    ['7d', 7 * 86_400_000],
    ['1.5d', 129_600_000],
    ['12h', 43_200_000],
    ['30m', 1_800_000],
    ['0d', undefined],
    ['7', undefined],
    ['a week', undefined],
  ];
  for (const [text, ms] of cases) {
    it(`${JSON.stringify(text)} → ${ms ?? 'refused'}`, () => {
      assert.equal(parseSinceArg(text), ms);
    });
  }
});
