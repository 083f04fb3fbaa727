import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import { failpoints, parseFailpoints } from './failpoints.js';

describe('failpoints', () => {
  test('ROLLGUARD_FAILPOINTS names points, each with hang (the default) or sigstop', () => {
    assert.deepEqual([...parseFailpoints('revert.decided, watch.revert-due:sigstop')], [['revert.decided', 'hang'], ['watch.revert-due', 'sigstop']]);
    assert.deepEqual([...parseFailpoints(undefined)], []);
  });

  test('an unknown point or action is an error naming every problem and what is known', () => {
    assert.throws(() => parseFailpoints('revert.decidd,watch.revert-due:pause'),
      /unknown failpoint revert\.decidd; unknown action pause for watch\.revert-due; known failpoints: watch\.revert-due, .*; actions: hang, sigstop/);
  });

  test('sigstop stops the process the first time the point is reached and carries on after it; points not armed do nothing', async () => {
    let stops = 0;
    const point = failpoints(parseFailpoints('watch.revert-due:sigstop'), pino({ level: 'silent' }), () => stops++);
    await point('watch.revert-due');
    await point('watch.revert-due');
    await point('revert.decided');
    assert.equal(stops, 1);
  });
});
