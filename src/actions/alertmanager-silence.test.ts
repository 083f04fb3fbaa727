import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { silenceWhileReverting } from './alertmanager-silence.js';

const NOW = new Date('2026-11-30T01:00:00Z');
const target = { service: 'web', deployment: 7 };

interface Call { method: string; url: string; headers: Record<string, string>; body?: unknown }

/** A stand-in for Alertmanager's API v2 that records each call; `answer` decides each response. */
function fakeAlertmanager(answer: (call: Call) => Response | Promise<Response> = (c) => (c.method === 'POST' ? Response.json({ silenceID: 's-1' }) : new Response(null, { status: 200 }))) {
  const calls: Call[] = [];
  const f = (async (url: string | URL | Request, init?: RequestInit) => {
    const call: Call = { method: init?.method ?? 'GET', url: String(url), headers: init?.headers as Record<string, string>, body: init?.body ? JSON.parse(String(init.body)) : undefined };
    calls.push(call);
    return answer(call);
  }) as typeof fetch;
  return { calls, fetch: f };
}

/** A logger whose lines are kept as objects. */
function memoryLog(): { log: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { log, lines };
}

describe('silenceWhileReverting', () => {
  it('creates a silence on the service label for `for`, and expires it when the revert ends', async () => {
    const am = fakeAlertmanager();
    const { log } = memoryLog();
    const silence = silenceWhileReverting({ url: 'http://127.0.0.1:9093', serviceLabel: 'app', silence: { forMs: 900_000 } }, target, log, { fetch: am.fetch, now: () => NOW });
    await silence.end();
    assert.deepEqual(am.calls.map((c) => `${c.method} ${c.url}`), ['POST http://127.0.0.1:9093/api/v2/silences', 'DELETE http://127.0.0.1:9093/api/v2/silence/s-1']);
    const body = am.calls[0]?.body as Record<string, unknown>;
    assert.deepEqual(body.matchers, [{ name: 'app', value: 'web', isRegex: false, isEqual: true }]);
    assert.equal(body.startsAt, '2026-11-30T01:00:00.000Z');
    assert.equal(body.endsAt, '2026-11-30T01:15:00.000Z');
    assert.equal(body.createdBy, 'rollguard');
    assert.match(String(body.comment), /deployment 7 of web/);
  });

  it('does nothing without alertmanager.silence (or its url)', async () => {
    const am = fakeAlertmanager();
    await silenceWhileReverting({ url: 'http://am:9093', serviceLabel: 'service' }, target, memoryLog().log, { fetch: am.fetch }).end();
    await silenceWhileReverting({ serviceLabel: 'service', silence: { forMs: 60_000 } }, target, memoryLog().log, { fetch: am.fetch }).end();
    await silenceWhileReverting(undefined, target, memoryLog().log, { fetch: am.fetch }).end();
    assert.deepEqual(am.calls, []);
  });

  it('never holds the revert up: it is asked for at once and answered beside it', async () => {
    let release: () => void = () => {};
    const answered = new Promise<void>((r) => { release = r; });
    const am = fakeAlertmanager(async (c) => {
      if (c.method === 'POST') await answered;
      return c.method === 'POST' ? Response.json({ silenceID: 's-2' }) : new Response(null, { status: 200 });
    });
    const silence = silenceWhileReverting({ url: 'http://am:9093', serviceLabel: 'service', silence: { forMs: 60_000 } }, target, memoryLog().log, { fetch: am.fetch });
    assert.equal(am.calls.length, 1, 'the POST is on its way while the revert runs');
    const ended = silence.end();
    release();
    await ended;
    assert.equal(am.calls[1]?.url, 'http://am:9093/api/v2/silence/s-2', 'the silence is expired once it exists');
  });

  it('logs a failure to silence or to expire, and never throws', async () => {
    const refused = fakeAlertmanager(() => { throw Object.assign(new TypeError('fetch failed'), { cause: new Error('connect ECONNREFUSED 127.0.0.1:9093') }); });
    const a = memoryLog();
    await silenceWhileReverting({ url: 'http://127.0.0.1:9093', serviceLabel: 'service', silence: { forMs: 60_000 } }, target, a.log, { fetch: refused.fetch }).end();
    assert.equal(refused.calls.length, 1, 'no expiry without a silence');
    assert.match(String(a.lines.find((l) => l.level === 40)?.error), /fetch failed: connect ECONNREFUSED/);

    const down = fakeAlertmanager((c) => (c.method === 'POST' ? Response.json({ silenceID: 's-3' }) : new Response('unavailable', { status: 503 })));
    const b = memoryLog();
    await silenceWhileReverting({ url: 'http://127.0.0.1:9093', serviceLabel: 'service', silence: { forMs: 60_000 } }, target, b.log, { fetch: down.fetch, backoffMs: [1, 1] }).end();
    assert.equal(down.calls.filter((c) => c.method === 'DELETE').length, 3, 'tried three times');
    const warn = b.lines.find((l) => l.level === 40);
    assert.equal(warn?.msg, 'could not expire the Alertmanager silence; it ends by itself after alertmanager.silence.for');
    assert.equal(warn?.error, 'HTTP 503: unavailable');
    assert.equal(warn?.attempts, 3);
  });

  it('tries to expire the silence again after a failure, and stops once it is gone', async () => {
    let deletes = 0;
    const flaky = fakeAlertmanager((c) => {
      if (c.method === 'POST') return Response.json({ silenceID: 's-4' });
      deletes += 1;
      if (deletes === 1) throw new TypeError('fetch failed');
      return new Response(null, { status: 200 });
    });
    const a = memoryLog();
    await silenceWhileReverting({ url: 'http://am:9093', serviceLabel: 'service', silence: { forMs: 60_000 } }, target, a.log, { fetch: flaky.fetch, backoffMs: [1, 1] }).end();
    assert.equal(deletes, 2);
    assert.ok(a.lines.some((l) => l.msg === 'Alertmanager silence expired: the revert ended'));
    assert.equal(a.lines.some((l) => l.level === 40), false);

    const gone = fakeAlertmanager((c) => (c.method === 'POST' ? Response.json({ silenceID: 's-5' }) : new Response('silence not found', { status: 404 })));
    const b = memoryLog();
    await silenceWhileReverting({ url: 'http://am:9093', serviceLabel: 'service', silence: { forMs: 60_000 } }, target, b.log, { fetch: gone.fetch, backoffMs: [1, 1] }).end();
    assert.equal(gone.calls.filter((c) => c.method === 'DELETE').length, 1, 'a silence Alertmanager no longer has is not asked for again');
    assert.equal(b.lines.some((l) => l.level === 40), false);
  });

  it('sends the URL\'s credentials as basic auth and never logs them', async () => {
    const am = fakeAlertmanager();
    const { log, lines } = memoryLog();
    await silenceWhileReverting({ url: 'http://rollguard:s3cret%21@am:9093', serviceLabel: 'service', silence: { forMs: 60_000 } }, target, log, { fetch: am.fetch }).end();
    assert.equal(am.calls[0]?.url, 'http://am:9093/api/v2/silences');
    assert.equal(am.calls[0]?.headers.authorization, `Basic ${Buffer.from('rollguard:s3cret!').toString('base64')}`);
    assert.equal(JSON.stringify(lines).includes('s3cret'), false);
    assert.equal(lines[0]?.alertmanager, 'http://am:9093');
  });
});
