import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { findSnapshot, listSnapshots } from './list.js';
import { dumpName, sidecarName, snapshotsDir, type Snapshot } from './snapshot.js';

async function withState(fn: (state: string, dir: string) => Promise<void>): Promise<void> {
  const state = await mkdtemp(path.join(os.tmpdir(), 'rg-snap-list-'));
  try {
    const dir = snapshotsDir(state);
    await mkdir(dir, { recursive: true });
    await fn(state, dir);
  } finally {
    await rm(state, { recursive: true, force: true });
  }
}

async function put(dir: string, s: Omit<Snapshot, 'path' | 'size'>, dump = 'PGDMP-data'): Promise<void> {
  await writeFile(path.join(dir, dumpName(s.id)), dump);
  // The sidecar's own path and size may be stale (a moved state directory): the listing reads the file.
  await writeFile(path.join(dir, sidecarName(s.id)), JSON.stringify({ ...s, path: '/old/place.dump', size: 1 }));
}

const web1 = { id: 'web-d1-20261129T100000Z', service: 'web', deployment: 1, created_at: '2026-11-29T10:00:00.000Z', database: 'postgresql://erp@db/app' };
const web2 = { id: 'web-d2-20261129T110000Z', service: 'web', deployment: 2, created_at: '2026-11-29T11:00:00.000Z', database: 'postgresql://erp@db/app' };
const api7 = { id: 'api-d7-20261129T105000Z', service: 'api', deployment: 7, created_at: '2026-11-29T10:50:00.000Z', database: 'postgresql://api@db/api' };

describe('listSnapshots', () => {
  it('lists newest first from the sidecars, with the dump\'s path where it is now and its real size', async () => {
    await withState(async (state, dir) => {
      await put(dir, web1);
      await put(dir, api7, 'PGDMP-api-data');
      await put(dir, web2);
      const all = await listSnapshots(state);
      assert.deepEqual(all.map((s) => s.id), [web2.id, api7.id, web1.id]);
      assert.deepEqual(all[1], { ...api7, path: path.join(dir, dumpName(api7.id)), size: 14 });
    });
  });

  it('filters by service', async () => {
    await withState(async (state, dir) => {
      await put(dir, web1);
      await put(dir, api7);
      assert.deepEqual((await listSnapshots(state, 'api')).map((s) => s.id), [api7.id]);
      assert.deepEqual(await listSnapshots(state, 'worker'), []);
    });
  });

  it('ignores stray files: other JSON, broken sidecars, temporaries, a sidecar named for another id, one whose dump is gone', async () => {
    await withState(async (state, dir) => {
      await put(dir, web1);
      await writeFile(path.join(dir, 'notes.json'), '{"hello": "world"}');
      await writeFile(path.join(dir, 'broken.json'), '{');
      await writeFile(path.join(dir, `.${sidecarName(web2.id)}.ab12.partial`), JSON.stringify(web2));
      await writeFile(path.join(dir, `.${dumpName(web2.id)}.ab12.partial`), 'PGDMP-half');
      await writeFile(path.join(dir, 'renamed.json'), JSON.stringify({ ...web2, path: '/x', size: 1 }));
      await writeFile(path.join(dir, dumpName(web2.id)), 'PGDMP');
      await writeFile(path.join(dir, sidecarName(api7.id)), JSON.stringify({ ...api7, path: '/x', size: 1 }));
      await mkdir(path.join(dir, 'subdir.json'));
      await symlink('/nonexistent', path.join(dir, 'dangling.json'));
      assert.deepEqual((await listSnapshots(state)).map((s) => s.id), [web1.id]);
    });
  });

  it('a state directory without a snapshots folder has no snapshots', async () => {
    const state = await mkdtemp(path.join(os.tmpdir(), 'rg-snap-empty-'));
    try {
      assert.deepEqual(await listSnapshots(state), []);
      assert.deepEqual(await listSnapshots(path.join(state, 'missing')), []);
    } finally {
      await rm(state, { recursive: true, force: true });
    }
  });

  it('finds one snapshot by id', async () => {
    await withState(async (state, dir) => {
      await put(dir, web1);
      assert.equal((await findSnapshot(state, web1.id))?.deployment, 1);
      assert.equal(await findSnapshot(state, 'web-d9-20261129T100000Z'), undefined);
    });
  });
});
