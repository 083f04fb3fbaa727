import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ContainerInspect } from '../targets/docker-container/inspect.js';
import { servingVerdict } from './container-state.js';

type Inspected = Pick<ContainerInspect, 'RestartCount' | 'State'>;

/** A container as Docker reports it while it runs, with its restart count. */
function running(restartCount = 0): Inspected {
  return { RestartCount: restartCount, State: { Running: true, Restarting: false, OOMKilled: false, StartedAt: '2026-11-26T12:00:01Z', ExitCode: 0 } };
}

/** A container as Docker reports it once its process exited with `exitCode`. */
function exited(exitCode: number, oomKilled = false): Inspected {
  return { RestartCount: 0, State: { Running: false, Restarting: false, OOMKilled: oomKilled, StartedAt: '2026-11-26T12:00:01Z', ExitCode: exitCode } };
}

/** A container in a restart policy's back-off: Docker reports it running and restarting. */
function restarting(restartCount: number): Inspected {
  return { RestartCount: restartCount, State: { Running: true, Restarting: true, OOMKilled: false, StartedAt: '2026-11-26T12:00:01Z', ExitCode: 1 } };
}

describe('servingVerdict', () => {
  const cases: [what: string, container: Inspected, restartsBefore: number, verdict: { value: number | null; detail?: string }][] = [
    ['a running container that never restarted serves', running(0), 0, { value: 1 }],
    ['a running container with no restart since the last sample serves', running(3), 3, { value: 1 }],
    ['a running container that restarted since the last sample does not serve', running(5), 3, { value: 0, detail: 'restarted 2 time(s) since the last sample' }],
    ['a first restart of a running container is caught', running(1), 0, { value: 0, detail: 'restarted 1 time(s) since the last sample' }],
    ['an OOM-killed container does not serve', exited(137, true), 0, { value: 0, detail: 'OOM-killed' }],
    ['a restarting container does not serve', restarting(4), 4, { value: 0, detail: 'restarting (restarted 4 times)' }],
    ['a container that exited with code 1 does not serve', exited(1), 0, { value: 0, detail: 'exited with code 1' }],
    ['a container that exited with code 2 does not serve', exited(2), 0, { value: 0, detail: 'exited with code 2' }],
    ['a container that segfaulted (139) does not serve', exited(139), 0, { value: 0, detail: 'exited with code 139' }],
    ['a container stopped with exit code 0 is not counted', exited(0), 0, { value: null, detail: 'stopped (exit code 0, as on docker stop); not counted' }],
    ['a container stopped by SIGTERM (143) is not counted', exited(143), 0, { value: null, detail: 'stopped (exit code 143, as on docker stop); not counted' }],
    ['a container killed after the stop grace (137), not OOM-killed, is not counted', exited(137), 0, { value: null, detail: 'stopped (exit code 137, as on docker stop); not counted' }],
  ];
  for (const [what, container, restartsBefore, verdict] of cases) {
    it(what, () => {
      assert.deepEqual(servingVerdict(container, restartsBefore), verdict);
    });
  }

  it('a paused container is not counted as serving', () => {
    const paused: Inspected = { RestartCount: 0, State: { ...running(0).State, Paused: true } };
    assert.notEqual(servingVerdict(paused, 0).value, 1);
  });
});
