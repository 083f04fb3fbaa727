import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openStore } from '../store/open-store.js';
import type { Store } from '../store/store.js';
import { log, rig as makeRig } from './daemon.fixture.js';
import { HoldError } from './holds.js';

// The deploy API's announcement (POST /api/v1/deployments) over a FakeTarget and the embedded
// store. `announceOnly()` makes the fake hold its starts back until announced, as a git target
// sees a new HEAD only when it reads it.

describe('announceDeployment', () => {
  let dir: string;
  let store: Store;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'rollguard-announce-'));
    store = await openStore({ stateDir: dir, log });
  });

  after(async () => {
    await store?.sql.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const rig = (t: TestContext, name: string) => makeRig(t, store, name, { window: '30s' });
  const refused = (status: number, text: RegExp) => (err: unknown) => err instanceof HoldError && err.status === status && text.test(err.message);

  it('refuses an unknown service with 404', async (t) => {
    const r = rig(t, 'annknown');
    r.target.deploy('annknown', 'app:1');
    await r.start();
    await assert.rejects(r.daemon.announceDeployment('nosuch'), refused(404, /^unknown service "nosuch"$/));
  });

  it('refuses with 409 a service whose target sees deployments as they start, with nothing to announce', async (t) => {
    const r = rig(t, 'annpushed');
    r.target.deploy('annpushed', 'app:1');
    await r.start();
    await assert.rejects(r.daemon.announceDeployment('annpushed'),
      refused(409, /^deployments of annpushed \(fake\) are seen as they start, from the engine's events; there is nothing to announce$/));
  });

  it('waits for the announced deployment to be handled, then answers what runs and the deployment that watches it', async (t) => {
    const r = rig(t, 'annheld');
    r.target.deploy('annheld', 'app:1');
    await r.start();
    r.target.announceOnly();
    r.target.deploy('annheld', 'app:2');
    assert.equal(await store.latestDeployment('annheld'), undefined, 'not seen before it is announced');

    const answer = await r.daemon.announceDeployment('annheld', 'app:2');

    const d = await store.latestDeployment('annheld');
    assert.equal(d?.to_image, 'app:2');
    assert.equal(d?.state, 'watching');
    assert.deepEqual(answer, { service: 'annheld', running: 'app:2', ref: 'app:2', deployment: d?.id });
    assert.deepEqual(await r.daemon.announceDeployment('annheld'), answer, 'announced again: the same deployment, none new');
    assert.equal((await r.deployments()).length, 1);
  });

  it('refuses with 409 a commit other than the one that runs: the deploy has not landed', async (t) => {
    const r = rig(t, 'annstale');
    r.target.deploy('annstale', 'app:1');
    await r.start();
    r.target.announceOnly();
    r.target.deploy('annstale', 'app:2');

    await assert.rejects(r.daemon.announceDeployment('annstale', 'app:3'), refused(409, /^annstale runs app:2 \(app:2\), not app:3: the deploy has not landed$/));
    assert.equal((await store.latestDeployment('annstale'))?.to_image, 'app:2', 'what did land is watched all the same');
  });

  it('refuses with 409 a service that runs nothing rollguard can see', async (t) => {
    const r = rig(t, 'annnone');
    await r.start();
    r.target.announceOnly();
    await assert.rejects(r.daemon.announceDeployment('annnone'), refused(409, /^annnone runs nothing rollguard can see/));
  });
});
