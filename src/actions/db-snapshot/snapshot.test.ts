import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { newestFirst, snapshotId, snapshotStamp, snapshotsDir, type Snapshot } from './snapshot.js';

describe('snapshot naming', () => {
  it('stamps the time in UTC to the second as YYYYMMDDTHHMMSSZ', () => {
    assert.equal(snapshotStamp(new Date('2026-11-29T23:30:00.987Z')), '20261129T233000Z');
    assert.equal(snapshotStamp(new Date('2026-01-02T03:04:05+02:00')), '20260102T010405Z');
  });

  it('names a snapshot <service>-d<deployment>-<stamp>', () => {
    assert.equal(snapshotId('web', 12, new Date('2026-11-29T23:30:00Z')), 'web-d12-20261129T233000Z');
    assert.equal(snapshotId('api_v2.eu-west', 0, new Date('2026-11-29T23:30:00Z')), 'api_v2.eu-west-d0-20261129T233000Z');
  });

  it('refuses a service name that could leave the snapshots folder, a bad deployment id or an invalid time', () => {
    const now = new Date('2026-11-29T23:30:00Z');
    assert.throws(() => snapshotId('../etc', 1, now), /service names are letters, digits/);
    assert.throws(() => snapshotId('a/b', 1, now), /service names/);
    assert.throws(() => snapshotId('', 1, now), /service names/);
    assert.throws(() => snapshotId('web', 1.5, now), /whole number/);
    assert.throws(() => snapshotId('web', -1, now), /whole number/);
    assert.throws(() => snapshotId('web', 1, new Date('nope')), /not a valid date/);
  });

  it('keeps the snapshots in <state dir>/snapshots as an absolute path', () => {
    assert.equal(snapshotsDir('/var/lib/rollguard'), '/var/lib/rollguard/snapshots');
    assert.equal(snapshotsDir('var'), `${process.cwd()}/var/snapshots`);
  });

  it('orders newest first by created_at, and by id within the same instant', () => {
    const at = (id: string, created_at: string): Snapshot => ({ id, service: 'web', deployment: 1, path: `/s/${id}.dump`, size: 1, created_at, database: 'postgresql://db/app' });
    const sorted = [
      at('web-d1-a', '2026-11-29T10:00:00.000Z'),
      at('web-d3-a', '2026-11-29T12:00:00.000Z'),
      at('web-d2-b', '2026-11-29T11:00:00.000Z'),
      at('web-d2-a', '2026-11-29T11:00:00.000Z'),
    ].sort(newestFirst).map((s) => s.id);
    assert.deepEqual(sorted, ['web-d3-a', 'web-d2-b', 'web-d2-a', 'web-d1-a']);
  });
});
