import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { nextTickDelay, sampleTime } from './watch.js';

describe('nextTickDelay', () => {
  const interval = 5_000;
  test('the next tick comes one interval after the last sample was taken, whatever the tick took afterwards', () => {
    // Sampled at 1000; the tick (query, decision, store write) ended at 1800.
    assert.equal(nextTickDelay(1_000, interval, 1_800), 4_200);
  });

  test('a batched sample taken later than the tick started moves the rhythm to the batch', () => {
    // The tick started at 0 and waited for its template's batch, evaluated at 3000.
    assert.equal(nextTickDelay(3_000, interval, 3_400), 4_600);
  });

  test('a tick that took longer than the interval is followed at once, never with a negative delay', () => {
    assert.equal(nextTickDelay(0, interval, 7_000), 0);
    assert.equal(nextTickDelay(0, interval, 5_000), 0);
  });
});

describe('sampleTime', () => {
  test('a batched query\'s time, when one answered: the watch keeps its batch\'s rhythm', () => {
    assert.equal(sampleTime([{ value: 1, latencyMs: 5, takenAt: 900 }, { value: 1, latencyMs: 5 }], 1_400, 1_000), 900);
    assert.equal(sampleTime([{ value: 1, latencyMs: 5, takenAt: 3_000 }], 1_000, 1_000), 3_000, 'a new watch that waited for the next batch joins its rhythm');
  });

  test('else when the tick was due: a tick run late because thousands were due keeps its place', () => {
    assert.equal(sampleTime([{ value: 1, latencyMs: 5 }], 1_400, 1_000), 1_000);
    assert.equal(sampleTime([], 1_400, undefined), 1_400);
    assert.equal(sampleTime([], 1_400, 2_000), 1_400, 'never a due time after the tick started');
  });
});
