import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { at, HOUR, IMG_A, IMG_B, mark } from '../policy/flapping.fixture.js';
import pino from 'pino';
import type { BadImage, RevertRecord } from '../store/bad-images.js';
import { FlapGuard } from './flapping.js';


/** A repository over plain arrays; `down` makes every call fail like an unreachable store. */
function fakeRepo(marks: BadImage[] = [], reverts: RevertRecord[] = []) {
  const repo = {
    down: false,
    hang: false,
    marked: [] as BadImage[],
    unmarked: [] as string[],
    async unmark(_service: string, imageId: string) {
      repo.unmarked.push(imageId);
    },
    async mark(b: BadImage) {
      if (repo.down) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      repo.marked.push(b);
    },
    async forService(service: string) {
      if (repo.hang) await new Promise(() => {});
      if (repo.down) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      return marks.filter((m) => m.service === service);
    },
    async revertsSince(_service: string, since: Date) {
      if (repo.down) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      return reverts.filter((r) => r.decided_at >= since);
    },
  };
  return repo;
}

const log = pino({ level: 'silent' });
const immediate = async (_what: string, run: (resolve: (id: number) => number) => Promise<void>): Promise<void> => run((id) => id);

describe('FlapGuard', () => {
  const deployment = (n: number, image = IMG_A) => ({ id: n, container_id: `c${n}`, to_image: image, to_ref: 'app:v2' });

  it('a revert marks the image bad and counts against the limit, and the mark is written', async () => {
    const repo = fakeRepo();
    const guard = new FlapGuard({ repo, record: immediate, log });
    await guard.reverted('web', deployment(1), at(0), 'error rate');
    assert.equal((await guard.badImage('web', IMG_A, undefined, at(1)))?.deployment_id, 1);
    assert.equal((await guard.badImage('api', IMG_A, undefined, at(1))), undefined, 'per service');
    assert.equal((await guard.budget('web', HOUR, at(1))).used, 1);
    assert.deepEqual(repo.marked.map((m) => m.image_id), [IMG_A]);
  });

  it('an image that became known-good after its mark is cleared, and stays cleared when another version is known-good', async () => {
    const repo = fakeRepo([mark(IMG_A, 0)]);
    const guard = new FlapGuard({ repo, record: immediate, log });
    const knownA = { service: 'web', target: 'docker-container', image_id: IMG_A, image_ref: 'app:v2', container_name: 'web', spec: {}, deployment_id: 8, since: at(20) };
    assert.equal(await guard.badImage('web', IMG_B, knownA, at(30)), undefined);
    assert.deepEqual(repo.unmarked, [IMG_A]);
    const knownB = { ...knownA, image_id: IMG_B, since: at(40) };
    assert.equal(await guard.badImage('web', IMG_A, knownB, at(50)), undefined, 'not bad again once another version is known-good');
  });

  it('is seeded from the store: marks and recent reverts recorded before a restart count', async () => {
    const repo = fakeRepo([mark(IMG_B, -30)], [
      { deployment_id: 3, container_id: 'c3', decided_at: at(-50) },
      { deployment_id: 4, container_id: 'c4', decided_at: at(-20) },
      { deployment_id: 2, container_id: 'c2', decided_at: at(-70) },
    ]);
    const guard = new FlapGuard({ repo, record: immediate, log });
    assert.ok(await guard.badImage('web', IMG_B, undefined, at(0)));
    assert.deepEqual(await guard.budget('web', HOUR, at(0)), { allowed: true, used: 2, limit: HOUR });
    await guard.reverted('web', deployment(5), at(1), 'x');
    assert.equal((await guard.budget('web', HOUR, at(2))).allowed, false, 'two from the store and one now reach 3 per hour');
  });

  it('a revert already in the store is not counted twice', async () => {
    const repo = fakeRepo([], [{ deployment_id: 1, container_id: 'c1', decided_at: at(0) }]);
    const guard = new FlapGuard({ repo, record: immediate, log });
    await guard.reverted('web', deployment(1), at(0), 'x');
    assert.equal((await guard.budget('web', HOUR, at(1))).used, 1);
  });

  it('fault: store unreachable → reverts are still counted and images still marked, from memory', async () => {
    const repo = fakeRepo([], [{ deployment_id: 1, container_id: 'c1', decided_at: at(-5) }]);
    repo.down = true;
    const kept: string[] = [];
    const guard = new FlapGuard({ repo, record: async (what) => void kept.push(what), log });
    for (const n of [2, 3, 4]) await guard.reverted('web', deployment(n, n === 4 ? IMG_B : IMG_A), at(n), 'x');
    assert.equal((await guard.budget('web', HOUR, at(5))).allowed, false);
    assert.ok(await guard.badImage('web', IMG_B, undefined, at(5)));
    assert.equal(kept.length, 3, 'the marks wait in the write queue');
    repo.down = false;
    assert.equal((await guard.budget('web', HOUR, at(6))).used, 4, 'once the store answers, what it knew is merged in');
  });

  it('reads the store again after a while: a revert another instance made meanwhile counts', async () => {
    const reverts: RevertRecord[] = [];
    const repo = fakeRepo([], reverts);
    const guard = new FlapGuard({ repo, record: immediate, log });
    assert.equal((await guard.budget('web', HOUR, at(0))).used, 0);
    reverts.push({ deployment_id: 9, container_id: 'c9', decided_at: at(1) });
    assert.equal((await guard.budget('web', HOUR, new Date(at(0).getTime() + 30_000))).used, 0, 'read half a minute ago: from memory');
    assert.equal((await guard.budget('web', HOUR, at(2))).used, 1, 'read again after a minute');
    assert.equal((await guard.budget('web', HOUR, at(4))).used, 1, 'counted once however often it is read');
  });

  it('fault: store unreachable → after one failed read, decisions do not wait on it for a while', async () => {
    const repo = fakeRepo();
    repo.down = true;
    let reads = 0;
    const forService = repo.forService;
    repo.forService = async (service: string) => { reads += 1; return forService(service); };
    const guard = new FlapGuard({ repo, record: immediate, log });
    await guard.budget('web', HOUR, at(0));
    await guard.budget('web', HOUR, new Date(at(0).getTime() + 10_000));
    assert.equal(reads, 1, 'no second read within 30 s of a failure');
    await guard.budget('web', HOUR, at(1));
    assert.equal(reads, 2, 'tried again after 30 s');
  });

  it('fault: store hangs → a decision waits at most seedWaitMs and uses memory', async () => {
    const repo = fakeRepo();
    repo.hang = true;
    const guard = new FlapGuard({ repo, record: immediate, log, seedWaitMs: 50 });
    const started = Date.now();
    assert.equal(await guard.badImage('web', IMG_A, undefined, at(0)), undefined);
    assert.ok(Date.now() - started < 5_000);
  });
});
