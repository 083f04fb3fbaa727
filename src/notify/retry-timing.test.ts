import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { httpFailure } from './notifier.js';
import { backoffMs, jittered, MAX_RETRY_AFTER_MS, parseRetryAfter, retryWait } from './retry-timing.js';

const NOW = new Date('2026-11-06T08:49:30Z');

describe('parseRetryAfter', () => {
  const cases: [string, unknown, number | undefined][] = [
    ['delay-seconds', '2', 2_000],
    ['delay-seconds with spaces around', ' 120 ', 120_000],
    ['zero seconds', '0', 0],
    ['IMF-fixdate', 'Fri, 06 Nov 2026 08:49:37 GMT', 7_000],
    ['obsolete RFC 850 date', 'Friday, 06-Nov-26 08:49:37 GMT', 7_000],
    ['obsolete asctime date, read as GMT', 'Fri Nov  6 08:49:37 2026', 7_000],
    ['a date in the past is no wait', 'Fri, 06 Nov 2026 08:00:00 GMT', 0],
    ['the first of repeated headers', ['3', '9'], 3_000],
    ['a fraction is no delay-seconds', '1.5', undefined],
    ['a negative number is no delay-seconds', '-1', undefined],
    ['a date without GMT is no HTTP-date', '2026-11-06T08:49:37Z', undefined],
    ['words', 'soon', undefined],
    ['absent', undefined, undefined],
  ];
  for (const [name, value, want] of cases) it(`reads ${name}`, () => assert.equal(parseRetryAfter(value, NOW), want));
});

describe('jittered', () => {
  it('spreads a wait over ±20 % of it', () => {
    assert.equal(jittered(1_000, () => 0), 800);
    assert.equal(jittered(1_000, () => 0.5), 1_000);
    assert.equal(jittered(1_000, () => 0.999_999), 1_200);
  });

  it('gives messages failing together different waits', () => {
    const waits = new Set(Array.from({ length: 50 }, () => jittered(backoffMs(3, 300_000))));
    assert.ok(waits.size > 40, `${waits.size} different waits of 50`);
    for (const w of waits) assert.ok(w >= 3_200 && w <= 4_800, String(w));
  });
});

describe('retryWait', () => {
  const middle = (): number => 0.5;

  it('is the jittered backoff when the receiver asked for nothing', () => {
    assert.deepEqual(retryWait(4_000, undefined, { random: () => 0 }), { waitMs: 3_200, note: '' });
  });

  it('is never shorter than the Retry-After', () => {
    assert.deepEqual(retryWait(1_000, 2_000, { random: middle }), { waitMs: 2_000, retryAfterMs: 2_000, note: '' });
  });

  it('keeps a backoff longer than the Retry-After', () => {
    assert.deepEqual(retryWait(8_000, 2_000, { random: middle }), { waitMs: 8_000, retryAfterMs: 2_000, note: '' });
  });

  it('honours a Retry-After up to 1 h, and says so when it asked for more', () => {
    const w = retryWait(1_000, 86_400_000, { random: middle });
    assert.equal(w.waitMs, MAX_RETRY_AFTER_MS);
    assert.equal(w.retryAfterMs, MAX_RETRY_AFTER_MS);
    assert.equal(w.note, '; waiting 3600 s, the longest Retry-After honoured');
  });

  it('takes another cap', () => {
    assert.equal(retryWait(1_000, 60_000, { random: middle, maxRetryAfterMs: 5_000 }).waitMs, 5_000);
  });
});

describe('httpFailure with Retry-After', () => {
  it('carries the Retry-After of a 429 and a 503, and says it in its message', () => {
    const slow = httpFailure(429, 'slow down', { 'retry-after': '2' }, NOW);
    assert.equal(slow.retryAfterMs, 2_000);
    assert.equal(slow.permanent, false);
    assert.equal(slow.message, 'HTTP 429 (Retry-After 2 s): slow down');
    assert.equal(httpFailure(503, 'down', { 'Retry-After': 'Fri, 06 Nov 2026 08:49:33 GMT' }, NOW).retryAfterMs, 3_000);
  });

  it('ignores a Retry-After on other answers, and an unreadable one', () => {
    assert.equal(httpFailure(500, 'oops', { 'retry-after': '2' }, NOW).retryAfterMs, undefined);
    assert.equal(httpFailure(301, '', { 'retry-after': '2' }, NOW).retryAfterMs, undefined);
    assert.equal(httpFailure(429, 'slow', { 'retry-after': 'later' }, NOW).retryAfterMs, undefined);
    assert.equal(httpFailure(429, 'slow', {}, NOW).message, 'HTTP 429: slow');
  });
});
