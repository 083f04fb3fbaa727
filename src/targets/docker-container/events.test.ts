import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import type Docker from 'dockerode';
import pino from 'pino';
import { DockerEventFollower, type ContainerStarted } from './events.js';

const log = pino({ level: 'silent' });

function event(id: string, time: number, nano: number, action = 'start'): string {
  return `${JSON.stringify({ Type: 'container', Action: action, Actor: { ID: id, Attributes: {} }, time, timeNano: time * 1e9 + nano })}\n`;
}

/** A Docker whose event stream the test writes to, recording the `since` of every connection. */
function fakeDocker(): { docker: Docker; streams: PassThrough[]; sinces: unknown[] } {
  const streams: PassThrough[] = [];
  const sinces: unknown[] = [];
  const docker = {
    async getEvents(opts: { since: unknown }) {
      sinces.push(opts.since);
      const s = new PassThrough();
      streams.push(s);
      return s;
    },
  } as unknown as Docker;
  return { docker, streams, sinces };
}

async function until(check: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('DockerEventFollower', () => {
  it('hands over container starts in order, split across chunks', async () => {
    const { docker, streams } = fakeDocker();
    const seen: ContainerStarted[] = [];
    const f = new DockerEventFollower(docker, log, async (e) => { seen.push(e); }, new Date(1_000_000));
    f.start();
    await until(() => streams.length === 1);
    const s = streams[0] as PassThrough;
    const two = event('a', 1001, 1) + event('b', 1002, 2);
    s.write(two.slice(0, 30));
    s.write(two.slice(30));
    s.write(event('c', 1003, 3, 'die'));
    await until(() => seen.length === 2);
    await f.drained();
    assert.deepEqual(seen.map((e) => e.containerId), ['a', 'b']);
    await f.stop();
  });

  it('reconnects from the last event seen when the stream breaks, and drops the replayed duplicates', async () => {
    const { docker, streams, sinces } = fakeDocker();
    const seen: string[] = [];
    const f = new DockerEventFollower(docker, log, async (e) => { seen.push(e.containerId); }, new Date(1_000_000));
    f.start();
    await until(() => streams.length === 1);
    assert.equal(sinces[0], 1000, 'first connection starts at start-up time');
    (streams[0] as PassThrough).write(event('a', 1005, 1) + event('b', 1005, 2));
    await until(() => seen.length === 2);
    (streams[0] as PassThrough).destroy(new Error('engine restarted'));
    await until(() => streams.length === 2, 10_000);
    assert.equal(sinces[1], 1005, 'the reconnect asks for events since the last one seen');
    // Docker replays everything in that second, then what happened while disconnected.
    (streams[1] as PassThrough).write(event('a', 1005, 1) + event('b', 1005, 2) + event('c', 1006, 3));
    await until(() => seen.length === 3);
    await f.drained();
    assert.deepEqual(seen, ['a', 'b', 'c'], 'each start exactly once');
    assert.equal(f.connected, true);
    await f.stop();
  });

  it('keeps retrying while the engine is unreachable', async () => {
    let calls = 0;
    const stream = new PassThrough();
    const docker = {
      async getEvents() {
        calls++;
        if (calls < 3) throw Object.assign(new Error('connect ENOENT /var/run/docker.sock'), { code: 'ENOENT' });
        return stream;
      },
    } as unknown as Docker;
    const seen: string[] = [];
    const f = new DockerEventFollower(docker, log, async (e) => { seen.push(e.containerId); }, new Date(1_000_000));
    f.start();
    await until(() => calls === 3, 10_000);
    stream.write(event('x', 1001, 1));
    await until(() => seen.length === 1);
    assert.equal(f.connected, true);
    await f.stop();
  });

  it('a handler that throws does not stop later events', async () => {
    const { docker, streams } = fakeDocker();
    const seen: string[] = [];
    const f = new DockerEventFollower(docker, log, async (e) => {
      seen.push(e.containerId);
      if (e.containerId === 'a') throw new Error('boom');
    }, new Date(1_000_000));
    f.start();
    await until(() => streams.length === 1);
    (streams[0] as PassThrough).write(event('a', 1001, 1) + 'not json\n' + event('b', 1002, 2));
    await until(() => seen.length === 2);
    assert.deepEqual(seen, ['a', 'b']);
    await f.stop();
  });
});
