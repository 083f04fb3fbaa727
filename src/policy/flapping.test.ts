import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { at, HOUR, IMG_A, IMG_B, mark } from './flapping.fixture.js';
import { badImageMark, badImageMessage, badImageRule, revertBudget, rollbackLimitMessage, type RevertBudget } from './flapping.js';


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
