import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expiredSnapshots, pruneSnapshots } from './retention.js';
import { dumpName, sidecarName, snapshotsDir, type Snapshot } from './snapshot.js';

const snap = (service: string, deployment: number, created_at: string): Snapshot => {
  const id = `${service}-d${deployment}-${created_at.replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '')}`;
  return { id, service, deployment, path: `/state/snapshots/${id}.dump`, size: 10, created_at, database: 'postgresql://erp@db/app' };
};

describe('expiredSnapshots', () => {
  const web1 = snap('web', 1, '2026-11-29T10:00:00.000Z');
  const web2 = snap('web', 2, '2026-11-29T11:00:00.000Z');
  const web3 = snap('web', 3, '2026-11-29T12:00:00.000Z');
  const api1 = snap('api', 1, '2026-11-29T09:00:00.000Z');

  it('keeps the newest `keep` of the service by created_at and expires the older ones', () => {
    assert.deepEqual(expiredSnapshots([web2, api1, web3, web1], 'web', 2).map((s) => s.id), [web1.id]);
    assert.deepEqual(expiredSnapshots([web2, web3, web1], 'web', 1).map((s) => s.id), [web2.id, web1.id]);
    assert.deepEqual(expiredSnapshots([web2, web3, web1], 'web', 3), []);
  });

  it('never expires another service\'s snapshots, however old', () => {
    assert.deepEqual(expiredSnapshots([api1, web1, web2, web3], 'web', 1).map((s) => s.service), ['web', 'web']);
    assert.deepEqual(expiredSnapshots([api1, web1, web2, web3], 'api', 1), []);
  });

  it('always keeps the snapshot just taken, even when the clock was set back and it looks oldest', () => {
    const taken = snap('web', 4, '2026-11-29T08:00:00.000Z');
    assert.deepEqual(expiredSnapshots([web1, web2, web3, taken], 'web', 2, taken.id).map((s) => s.id), [web2.id, web1.id]);
    assert.deepEqual(expiredSnapshots([web1, taken], 'web', 0, taken.id).map((s) => s.id), [web1.id], 'keep below 1 still keeps the one just taken');
  });
});

describe('pruneSnapshots', () => {
  it('deletes the expired dumps and their sidecars, leaving newer ones, other services and stray files', async () => {
    const state = await mkdtemp(path.join(os.tmpdir(), 'rg-snap-retention-'));
    try {
      const dir = snapshotsDir(state);
      await mkdir(dir, { recursive: true });
      const all = [
        snap('web', 1, '2026-11-29T10:00:00.000Z'),
        snap('web', 2, '2026-11-29T11:00:00.000Z'),
        snap('web', 3, '2026-11-29T12:00:00.000Z'),
        snap('api', 1, '2026-11-28T09:00:00.000Z'),
      ];
      for (const s of all) {
        await writeFile(path.join(dir, dumpName(s.id)), 'PGDMP');
        await writeFile(path.join(dir, sidecarName(s.id)), JSON.stringify(s));
      }
      await writeFile(path.join(dir, 'web-notes.txt'), 'kept by the operator');
      await writeFile(path.join(dir, 'web-d0-20200101T000000Z.dump'), 'a dump without sidecar is not rollguard\'s to delete');

      const deleted = await pruneSnapshots(dir, 'web', 2);
      assert.deepEqual(deleted, [all[0]!.id]);
      assert.deepEqual((await readdir(dir)).sort(), [
        'api-d1-20261128T090000Z.dump', 'api-d1-20261128T090000Z.json',
        'web-d0-20200101T000000Z.dump',
        'web-d2-20261129T110000Z.dump', 'web-d2-20261129T110000Z.json',
        'web-d3-20261129T120000Z.dump', 'web-d3-20261129T120000Z.json',
        'web-notes.txt',
      ]);
    } finally {
      await rm(state, { recursive: true, force: true });
    }
  });

  it('a snapshots folder that does not exist has nothing to delete', async () => {
    assert.deepEqual(await pruneSnapshots(path.join(os.tmpdir(), 'rg-snap-none', 'snapshots'), 'web', 1), []);
  });
});
