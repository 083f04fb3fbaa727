import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import type { BadImage, RevertRecord } from '../store/bad-images.js';
import { badImageMark, badImageMessage, badImageRule, FlapGuard, revertBudget, rollbackLimitMessage, type RevertBudget } from './flapping.js';

const T0 = new Date('2026-05-01T03:00:00Z');
const at = (minutes: number): Date => new Date(T0.getTime() + minutes * 60_000);
const IMG_A = `sha256:${'a'.repeat(64)}`;
const IMG_B = `sha256:${'b'.repeat(64)}`;
const mark = (image: string, minutes: number, over: Partial<BadImage> = {}): BadImage => ({
  service: 'web', image_id: image, image_ref: 'app:v2', deployment_id: 7, marked_at: at(minutes), reason: 'error rate above 5%', ...over,
});
const HOUR = { count: 3, perMs: 3_600_000 };

describe('badImageMark()', () => {
  it('an image reverted away from is bad', () => {
    assert.equal(badImageMark([mark(IMG_A, 0)], IMG_A)?.deployment_id, 7);
  });

  it('another image is not', () => {
    assert.equal(badImageMark([mark(IMG_A, 0)], IMG_B), undefined);
  });

  it('an image that became known-good after it was marked is no longer bad', () => {
    assert.equal(badImageMark([mark(IMG_A, 0)], IMG_A, { image_id: IMG_A, since: at(10) }), undefined);
  });

  it('known-good before the mark does not clear it (reverted away from since)', () => {
    assert.ok(badImageMark([mark(IMG_A, 10)], IMG_A, { image_id: IMG_A, since: at(0) }));
  });

  it('the latest mark of an image is the one told', () => {
    assert.equal(badImageMark([mark(IMG_A, 0), mark(IMG_A, 5, { deployment_id: 9 }), mark(IMG_A, 2, { deployment_id: 8 })], IMG_A)?.deployment_id, 9);
  });
});

describe('revertBudget()', () => {
  const cases: [what: string, reverts: Date[], now: Date, allowed: boolean, used: number][] = [
    ['no reverts yet: allowed', [], at(0), true, 0],
    ['two of three within the hour: allowed', [at(0), at(10)], at(20), true, 2],
    ['three within the hour: refused', [at(0), at(10), at(20)], at(30), false, 3],
    ['three, the oldest over an hour ago: allowed', [at(0), at(10), at(20)], at(61), true, 2],
    ['exactly an hour after the oldest: it has left the window', [at(0), at(10), at(20)], at(60), true, 2],
    ['a revert "in the future" (clock skew) is not counted', [at(0), at(10), at(90)], at(30), true, 2],
  ];
  for (const [what, reverts, now, allowed, used] of cases) {
    it(what, () => {
      const b = revertBudget(reverts, HOUR, now);
      assert.equal(b.allowed, allowed);
      assert.equal(b.used, used);
    });
  }

  it('when refused, tells when the next revert is allowed (the window slides)', () => {
    const b = revertBudget([at(20), at(0), at(10), at(25)], HOUR, at(30));
    assert.equal(b.allowed, false);
    assert.deepEqual((b as Extract<RevertBudget, { allowed: false }>).freesAt, at(70), 'at(0) and at(10) must leave the window: at(10) + 1h');
  });

  it('count 1 allows one revert per window', () => {
    assert.equal(revertBudget([], { count: 1, perMs: 600_000 }, at(0)).allowed, true);
    assert.equal(revertBudget([at(0)], { count: 1, perMs: 600_000 }, at(5)).allowed, false);
    assert.equal(revertBudget([at(0)], { count: 1, perMs: 600_000 }, at(11)).allowed, true);
  });
});

describe('messages', () => {
  it('a bad image reverted at once says when and by which deployment it was reverted away from', () => {
    assert.equal(badImageMessage(mark(IMG_A, 0), 'revert'),
      'image app:v2 (aaaaaaaaaaaa) was reverted away from at 2026-05-01 03:00:00 UTC (deployment #7); redeployed, reverted immediately');
  });

  it('on_bad_image: warn says it is watched as usual', () => {
    assert.match(badImageMessage(mark(IMG_A, 0), 'warn'), /reverted away from at .* \(deployment #7\); redeployed, watched like any other deployment \(on_bad_image: warn\)$/);
  });

  it('the rollback limit message names the limit, the service and that a human must decide', () => {
    const b = revertBudget([at(0), at(10), at(20)], HOUR, at(30)) as Extract<RevertBudget, { allowed: false }>;
    assert.equal(rollbackLimitMessage('web', b),
      'rollback limit of 3 per 1h reached for web; not reverting; a human must decide (3 revert(s) in the last 1h; the next is allowed from 2026-05-01 04:00:00 UTC)');
  });

  it('the bad-image rule takes the most severe rollback rule severity', () => {
    const rules = [
      { name: 'a', signal: 's', above: 1, for: 1, severity: 'P2' as const, action: 'rollback' as const },
      { name: 'b', signal: 's', above: 1, for: 1, severity: 'P0' as const, action: 'notify' as const },
      { name: 'c', signal: 's', above: 1, for: 1, severity: 'P1' as const, action: 'rollback' as const },
    ];
    assert.equal(badImageRule({ rules }).severity, 'P1');
    assert.equal(badImageRule({ rules }).action, 'rollback');
  });
});

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
    const knownA = { service: 'web', image_id: IMG_A, image_ref: 'app:v2', container_name: 'web', spec: {}, deployment_id: 8, since: at(20) };
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
