import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type Docker from 'dockerode';
import pino from 'pino';
import { runFollowUps } from './run.js';
import { databaseOf } from './redis-flush.js';

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

describe('redis_flush follow-up step', () => {
  it('reads the database number from the URL path, 0 without one', () => {
    assert.equal(databaseOf('redis://127.0.0.1:6379/11'), 11);
    assert.equal(databaseOf('redis://:pw@127.0.0.1:6379/0'), 0);
    assert.equal(databaseOf('redis://127.0.0.1:6379'), 0);
    assert.equal(databaseOf('rediss://cache.internal/3'), 3);
  });

  it('a Redis that refuses the connection fails the step at once, naming no password', async () => {
    const url = `redis://app:hunter2-pw@127.0.0.1:${await closedPort()}/4`;
    const started = Date.now();
    const [r] = await runFollowUps([{ kind: 'redis_flush', url, pattern: 'cache:*', timeoutMs: 5_000, continueOnError: false }], { docker: {} as Docker, log: pino({ level: 'silent' }) });
    assert.equal(r!.ok, false);
    assert.match(r!.detail, /^cannot connect to Redis: .*ECONNREFUSED/);
    assert.ok(Date.now() - started < 2_000, 'no reconnect attempts');
    assert.ok(!JSON.stringify(r).includes('hunter2-pw'));
    assert.match(r!.label, /^redis_flush cache:\* on redis:\/\/127\.0\.0\.1:\d+\/4$/);
  });

  it('a port that accepts the connection and never answers fails the step within half its time, and the connection is closed', async () => {
    const sockets: net.Socket[] = [];
    let closed = 0;
    // Reads what the client sends (so its end is seen) and never answers.
    const silent = net.createServer((s) => {
      sockets.push(s);
      s.resume();
      s.on('close', () => { closed += 1; });
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const url = `redis://127.0.0.1:${(silent.address() as net.AddressInfo).port}/0`;
      const started = Date.now();
      const [r] = await runFollowUps([{ kind: 'redis_flush', url, timeoutMs: 1_000, continueOnError: false }], { docker: {} as Docker, log: pino({ level: 'silent' }) });
      assert.equal(r!.ok, false);
      const ms = Number(/^cannot connect to Redis: no answer within (\d+) ms$/.exec(r!.detail)?.[1]);
      assert.ok(ms > 400 && ms <= 500, r!.detail);
      assert.ok(Date.now() - started < 900);
      // The step lets go of its connection.
      await new Promise<void>((resolve, reject) => {
        const deadline = setTimeout(() => reject(new Error('connection still open')), 2_000);
        const check = (): void => {
          if (sockets.length > 0 && closed === sockets.length) {
            clearTimeout(deadline);
            resolve();
          } else setTimeout(check, 20);
        };
        check();
      });
    } finally {
      sockets.forEach((s) => s.destroy());
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});
