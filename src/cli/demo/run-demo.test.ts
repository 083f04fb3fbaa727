import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { signalExitCode } from './run-demo.js';

describe('signalExitCode()', () => {
  it('is 128 + the signal number, as a shell reports a process a signal stopped', () => {
    assert.equal(signalExitCode('SIGINT'), 130);
    assert.equal(signalExitCode('SIGTERM'), 143);
    assert.equal(signalExitCode('SIGHUP'), 129);
  });
});
