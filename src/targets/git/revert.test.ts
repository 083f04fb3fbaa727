import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import pino from 'pino';
import type { ServicePolicy } from '../../config/policy.js';
import { RevertError } from '../target.js';
import { GitTarget } from './target.js';
import { GIT_ENV, gitService, policyOf, TestRepo } from './test-repo.fixture.js';

// Revert mode's one revert commit, and what it does about a revert left half-done — by a crash
// of rollguard's, or by an operator — on real repositories made with the git binary.

const log = pino({ level: 'silent' });
const repos: TestRepo[] = [];
afterEach(async () => {
  await Promise.all(repos.splice(0).map((r) => r.remove()));
});

/** A repository at the known-good commit `good`, and its git service in revert mode. */
async function setUp(): Promise<{ r: TestRepo; good: string; service: ServicePolicy; t: GitTarget; known: unknown }> {
  const r = await TestRepo.create({ 'app.txt': 'v1\n' }, 'good');
  repos.push(r);
  const service = gitService(r.dir);
  const t = new GitTarget(log, () => [service.match], { env: GIT_ENV });
  const [head] = await t.running(policyOf(service), service);
  assert.ok(head);
  return { r, good: head.id, service, t, known: t.snapshot([head]) };
}

const short = (sha: string): string => sha.slice(0, 12);
const marker = (r: TestRepo): string => path.join(r.dir, '.git', 'rollguard-revert');

describe('GitTarget.putBack() in revert mode makes one revert commit', () => {
  it('reverting several commits: "Revert N commits back to <known>", each reverted commit in the body', async () => {
    const { r, good, service, t, known } = await setUp();
    const bad1 = await r.commit({ 'app.txt': 'v2\n' }, 'bad 1');
    const bad2 = await r.commit({ 'new.txt': 'new\n' }, 'bad 2');
    const bad3 = await r.commit({ 'app.txt': 'v3\n' }, 'bad 3');
    await t.putBack(service, known, { force: false });
    assert.deepEqual((await r.log()).slice(1), [bad3, bad2, bad1, good], 'one commit on top of the bad ones');
    assert.equal(await r.git('log', '-1', '--format=%B'), [
      `Revert 3 commits back to ${short(good)}`,
      '',
      `Reverted by rollguard to put back the known-good code of ${short(good)} ("good"):`,
      `${bad3} bad 3`,
      `${bad2} bad 2`,
      `${bad1} bad 1`,
    ].join('\n'));
    assert.equal(await r.tree('HEAD'), await r.tree(good));
    assert.deepEqual((await r.state()).gitState, []);
    assert.equal(existsSync(marker(r)), false, 'the marker is gone once the commit is made');
  });

  it('reverting one commit: git\'s own "Revert "<subject>"" and "This reverts commit"', async () => {
    const { r, good, service, t, known } = await setUp();
    const bad = await r.commit({ 'app.txt': 'v2\n' }, 'release v3');
    await t.putBack(service, known, { force: false });
    assert.equal(await r.git('log', '-1', '--format=%an <%ae>%n%B'), [
      'rollguard <rollguard@localhost>',
      'Revert "release v3"',
      '',
      `This reverts commit ${bad}.`,
      '',
      `Reverted by rollguard to put back the known-good code of ${short(good)} ("good"):`,
      `${bad} release v3`,
    ].join('\n'));
  });

  it('commits nothing when the revert does not give the known-good tree, leaving the work tree as found', async () => {
    const { r, service, t, known } = await setUp();
    await r.commit({ 'app.txt': 'v2\n' }, 'bad');
    const before = await r.state();
    const other = { ...(known as object), tree: 'f'.repeat(40) };
    await assert.rejects(t.putBack(service, other, { force: false }), (err: unknown) => {
      assert.ok(err instanceof RevertError, `a RevertError, not ${String(err)}`);
      assert.match(err.message, /does not give the known-good code: the reverted tree \w{12} is not the tree of .*nothing was committed; the work tree was left as found$/);
      return true;
    });
    assert.deepEqual(await r.state(), before);
    assert.equal(existsSync(marker(r)), false);
  });
});

describe('GitTarget.putBack() and a revert left half-done', () => {
  /** What a crash between `git revert --no-commit` and `git commit` leaves: REVERT_HEAD and the revert staged. */
  async function halfDone(r: TestRepo, base: string): Promise<void> {
    await r.git('revert', '--no-edit', '--no-commit', `${base}..HEAD`);
    assert.deepEqual((await r.state()).gitState, ['REVERT_HEAD']);
  }

  it('undoes rollguard\'s own revert cut short by a crash (its marker names HEAD) and reverts again', async () => {
    const { r, good, service, t, known } = await setUp();
    await r.commit({ 'app.txt': 'v2\n' }, 'bad 1');
    const bad2 = await r.commit({ 'gone.txt': 'x\n' }, 'bad 2');
    await writeFile(marker(r), `${bad2}\n`);
    await halfDone(r, good);
    const put = await t.putBack(service, known, { force: false, resume: true });
    assert.match(put.detail, new RegExp(`^undid rollguard's own revert cut short at ${short(bad2)} .*; git revert --no-edit --no-commit ${short(good)}\\.\\.${short(bad2)}, then git commit: .* reverts 2 commits in one commit`));
    assert.equal((await r.log())[1], bad2, 'one revert commit on top of the bad one');
    assert.equal(await r.tree('HEAD'), await r.tree(good));
    assert.deepEqual((await r.state()).gitState, []);
    assert.equal(await r.git('status', '--porcelain'), '');
    assert.equal(existsSync(marker(r)), false);
  });

  it('refuses the same half-done revert without rollguard\'s marker: it is an operator\'s, left as found', async () => {
    const { r, good, service, t, known } = await setUp();
    await r.commit({ 'app.txt': 'v2\n' }, 'bad');
    await halfDone(r, good);
    const before = await r.state();
    await assert.rejects(t.putBack(service, known, { force: false, resume: true }), /has a revert in progress; the work tree was left as found/);
    assert.deepEqual(await r.state(), before);
  });

  it('refuses a half-done revert when the marker names another commit (stale), and drops the marker', async () => {
    const { r, good, service, t, known } = await setUp();
    await r.commit({ 'app.txt': 'v2\n' }, 'bad');
    await writeFile(marker(r), `${good}\n`);
    await halfDone(r, good);
    const before = await r.state();
    await assert.rejects(t.putBack(service, known, { force: false }), /has a revert in progress; the work tree was left as found/);
    assert.deepEqual(await r.state(), before);
    assert.equal(existsSync(marker(r)), false);
  });

  it('refuses an operator\'s revert of several commits stopped part-way (a clean tree, no REVERT_HEAD), never aborting it', async () => {
    const { r, good, service, t, known } = await setUp();
    await r.commit({ 'x.txt': 'x\n' }, 'c1');
    await r.commit({ 'y.txt': 'y\n' }, 'c2');
    await r.commit({ 'app.txt': 'v2\n' }, 'c3');
    await r.commit({ 'app.txt': 'v3\n' }, 'c4');
    // Reverting c3..c1 stops on a conflict at c3; resolved and committed by hand, the rest of the sequence waits.
    await assert.rejects(r.git('revert', '--no-edit', 'HEAD~4..HEAD~1'), 'the revert of c3 conflicts');
    await writeFile(path.join(r.dir, 'app.txt'), 'v1\n');
    await r.git('add', 'app.txt');
    await r.git('commit', '--quiet', '--no-edit');
    const before = await r.state();
    assert.deepEqual(before.gitState, ['sequencer']);
    assert.equal(before.status, '');
    assert.notEqual(before.head, good);
    await assert.rejects(t.putBack(service, known, { force: false }), (err: unknown) => {
      assert.ok(err instanceof RevertError, `a RevertError, not ${String(err)}`);
      assert.match(err.message, /has an unfinished revert or cherry-pick of several commits in progress; the work tree was left as found/);
      return true;
    });
    assert.deepEqual(await r.state(), before);
    assert.equal(await r.git('revert', '--continue').then(() => 'continued'), 'continued', 'the operator can still go on with it');
  });
});
