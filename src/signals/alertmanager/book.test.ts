import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AlertBook, type ReceivedAlert } from './book.js';

const GO_ZERO_TIME = '0001-01-01T00:00:00Z';
const NOW = new Date('2026-11-30T01:00:00Z');

function alert(fingerprint: string, over: Partial<ReceivedAlert> = {}): ReceivedAlert {
  return {
    status: 'firing', fingerprint,
    labels: { alertname: 'HighErrorRate', service: 'web', severity: 'critical' },
    annotations: { summary: 'web serves 20 % errors' },
    startsAt: '2026-11-30T00:58:00Z', endsAt: GO_ZERO_TIME,
    ...over,
  };
}

describe('AlertBook', () => {
  it('keeps a firing alert by its fingerprint, with Go\'s zero time as no end', () => {
    const book = new AlertBook();
    assert.deepEqual(book.record([alert('a1')], NOW), { firing: 1, resolved: 0 });
    const [held] = book.firing({ alertname: 'HighErrorRate', service: 'web' }, NOW);
    assert.equal(held?.fingerprint, 'a1');
    assert.equal(held?.endsAt, undefined);
    assert.equal(held?.summary, 'web serves 20 % errors');
    assert.equal(held?.startsAt.toISOString(), '2026-11-30T00:58:00.000Z');
  });

  it('a second notification of the same alert replaces it instead of adding one', () => {
    const book = new AlertBook();
    book.record([alert('a1')], NOW);
    book.record([alert('a1', { annotations: { summary: 'now 30 %' } })], NOW);
    assert.equal(book.size, 1);
    assert.equal(book.firing({}, NOW)[0]?.summary, 'now 30 %');
  });

  it('a resolved alert is removed', () => {
    const book = new AlertBook();
    book.record([alert('a1'), alert('a2', { labels: { alertname: 'HighErrorRate', service: 'api' } })], NOW);
    assert.deepEqual(book.record([alert('a1', { status: 'resolved', endsAt: '2026-11-30T00:59:30Z' })], NOW), { firing: 0, resolved: 1 });
    assert.deepEqual(book.firing({ alertname: 'HighErrorRate' }, NOW).map((a) => a.fingerprint), ['a2']);
  });

  it('an alert whose endsAt has passed counts as resolved, whether it arrives so or expires while kept', () => {
    const book = new AlertBook();
    assert.deepEqual(book.record([alert('past', { endsAt: '2026-11-30T00:59:00Z' })], NOW), { firing: 0, resolved: 1 });
    book.record([alert('soon', { endsAt: '2026-11-30T01:05:00Z' })], NOW);
    assert.equal(book.firing({}, NOW).length, 1, 'firing until its end');
    assert.equal(book.firing({}, new Date('2026-11-30T01:05:00Z')).length, 0, 'resolved once its end is reached');
    assert.equal(book.size, 0, 'and no longer kept');
  });

  it('matches only alerts carrying every wanted label with exactly that value', () => {
    const book = new AlertBook();
    book.record([
      alert('web-crit'),
      alert('web-warn', { labels: { alertname: 'HighErrorRate', service: 'web', severity: 'warning' } }),
      alert('other', { labels: { alertname: 'HighLatency', service: 'web', severity: 'critical' } }),
      alert('no-service', { labels: { alertname: 'HighErrorRate', severity: 'critical' } }),
    ], NOW);
    const names = (labels: Record<string, string>): string[] => book.firing(labels, NOW).map((a) => a.fingerprint).sort();
    assert.deepEqual(names({ alertname: 'HighErrorRate', service: 'web' }), ['web-crit', 'web-warn']);
    assert.deepEqual(names({ alertname: 'HighErrorRate', service: 'web', severity: 'critical' }), ['web-crit']);
    assert.deepEqual(names({ alertname: 'HighErrorRate', service: 'we' }), []);
  });

  it('lists matching alerts oldest first', () => {
    const book = new AlertBook();
    book.record([alert('new', { startsAt: '2026-11-30T00:59:00Z' }), alert('old', { startsAt: '2026-11-30T00:10:00Z' })], NOW);
    assert.deepEqual(book.firing({}, NOW).map((a) => a.fingerprint), ['old', 'new']);
  });

  it('keeps at most its limit, dropping the alert heard of longest ago', () => {
    const book = new AlertBook(2);
    book.record([alert('a'), alert('b')], NOW);
    book.record([alert('a')], NOW);
    book.record([alert('c')], NOW);
    assert.deepEqual(book.firing({}, NOW).map((a) => a.fingerprint).sort(), ['a', 'c']);
  });

  it('counts the alerts told firing per service by the service label, for the status', () => {
    const book = new AlertBook();
    book.record([alert('a'), alert('b', { labels: { alertname: 'HighLatency', service: 'web' } }), alert('c', { labels: { alertname: 'X', service: 'api' } }), alert('d', { status: 'resolved' })], NOW);
    assert.deepEqual(book.countBy('service', ['web', 'api', 'db'], NOW), { web: 2, api: 1, db: 0 });
    assert.deepEqual(book.countBy('app', ['web'], NOW), { web: 0 });
  });

  it('an empty book has nothing firing', () => {
    assert.deepEqual(new AlertBook().firing({ alertname: 'HighErrorRate', service: 'web' }, NOW), []);
  });
});
