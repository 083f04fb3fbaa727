import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openStore } from '../store/open-store.js';
import type { Store } from '../store/store.js';
import type { WatchContext } from './context.js';
import { log, rig, waitFor } from './daemon.fixture.js';
import { onServiceStart } from './reconcile.js';

// A replica's start waits in its service's queue, perhaps behind a revert (a crash loop restarts the
// bad container while it is being reverted). By the time it is handled, that replica may be set
// aside or removed by the revert: it must not become a deployment of its own.

describe('a start handled after a revert set its replica aside', () => {
  let dir: string;
  let store: Store;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'rollguard-queued-start-'));
    store = await openStore({ stateDir: dir, log });
  });

  after(async () => {
    await store?.sql.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const ctxOf = (daemon: object): WatchContext => (daemon as unknown as { ctx: WatchContext }).ctx;

  it('a removed bad replica and a parked one, seen as they were when they started, are no deployment', async (t) => {
    const r = rig(t, store, 'queued', { labels: true, window: '30s' });
    r.target.deploy('queued', 'app:1', { labels: { app: 'queued' } });
    const daemon = await r.start();
    const bad = r.target.deploy('queued', 'app:2', { labels: { app: 'queued' } });
    r.prometheus.set('queued', 0.5);
    const reverted = await r.finished();
    assert.equal(reverted.state, 'rolled_back');
    r.prometheus.set('queued', 0);
    assert.equal(await r.target.replica(bad.id), undefined, 'the revert removed the bad replica');
    const service = r.policy.services.queued!;

    // The start of the bad replica, as it was seen before the revert, handled only now.
    await onServiceStart(ctxOf(daemon), service, bad);
    // And one that a revert set aside (parked, labels kept) but has not removed.
    const other = r.target.deploy('queued', 'app:3', { labels: { app: 'queued' } });
    await waitFor('the app:3 deployment', async () => ((await store.latestDeployment('queued'))?.to_image === 'app:3' ? true : undefined));
    const before = (await r.deployments()).length;
    await r.target.park(other, 'queued.rollguard-bad.99', 0);
    await onServiceStart(ctxOf(daemon), service, other);

    assert.equal((await r.deployments()).length, before, 'no deployment was recorded for a replica gone or set aside');
    assert.ok(!(await r.deployments()).some((d) => d.to_image === 'app:2' && d.id !== reverted.id));
  });
});
