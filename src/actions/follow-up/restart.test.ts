import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { graceSeconds } from './restart.js';

describe('graceSeconds', () => {
  it('gives each container an equal share of the time left, less time to start, at most Docker\'s 10 s', () => {
    const cases: [remainingMs: number, left: number, seconds: number][] = [
      [60_000, 1, 10],
      [60_000, 2, 10],
      [30_000, 2, 10],
      [20_000, 2, 8],
      [12_000, 3, 2],
      [5_000, 1, 3],
      [2_500, 1, 0],
      [1_000, 4, 0],
    ];
    for (const [remaining, left, seconds] of cases) assert.equal(graceSeconds(remaining, left), seconds, `${remaining} ms for ${left}`);
  });

  it('the grace of every container left fits in the time left', () => {
    for (const remaining of [3_000, 10_000, 45_000, 120_000]) {
      for (const left of [1, 2, 5]) assert.ok(graceSeconds(remaining, left) * 1000 * left <= remaining, `${remaining} ms for ${left}`);
    }
  });
});
