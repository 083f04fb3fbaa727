import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import pino from 'pino';
import type { ServicePolicy } from '../../config/policy.js';
import { RevertError } from '../target.js';
import { GitTarget } from './target.js';
import { GIT_ENV, gitService, policyOf, TestRepo } from './test-repo.fixture.js';

// GitTarget.putBack() and converged() on real repositories made with the git binary.

const log = pino({ level: 'silent' });
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanup.splice(0).map((f) => f()));
});

async function repo(): Promise<TestRepo> {
  const r = await TestRepo.create({ 'app.txt': 'v1\n', 'lib/util.txt': 'util v1\n' }, 'good');
  cleanup.push(() => r.remove());
  return r;
}

async function scratch(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rollguard-git-restart-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** The target watching the service's work tree, and the known-good snapshot of HEAD now. */
async function setUp(service: ServicePolicy): Promise<{ t: GitTarget; known: unknown }> {
  const t = new GitTarget(log, () => [service.match], { env: GIT_ENV });
  const [head] = await t.running(policyOf(service), service);
  assert.ok(head);
  return { t, known: t.snapshot([head]) };
}

const short = (sha: string): string => sha.slice(0, 12);

describe('GitTarget.putBack() in revert mode', () => {
  it('commits the revert of the bad range onto the branch: history kept, the known-good files back', async () => {
    const r = await repo();
    const good = await r.head();
    const service = gitService(r.dir);
    const { t, known } = await setUp(service);
    const bad1 = await r.commit({ 'app.txt': 'v2\n' }, 'bad 1');
    const bad2 = await r.commit({ 'new.txt': 'new\n', 'lib/util.txt': null }, 'bad 2');
    // No identity configured anywhere: the revert commits carry rollguard's own.
    await r.git('config', '--unset', 'user.name');
    await r.git('config', '--unset', 'user.email');
    assert.equal((await t.converged(service, known)).done, false);

    const put = await t.putBack(service, known, { force: false });
    const head = await r.head();
    assert.deepEqual(put, {
      how: 'update',
      detail: `git revert --no-edit --no-commit ${short(good)}..${short(bad2)}, then git commit: HEAD ${short(head)} reverts 2 commits in one commit: Revert 2 commits back to ${short(good)}`,
    });
    assert.equal(await r.tree('HEAD'), await r.tree(good));
    assert.deepEqual(await r.log(), [head, bad2, bad1, good], 'one revert commit; the bad commits stay in the history');
    assert.equal(await r.git('symbolic-ref', '--short', 'HEAD'), 'main');
    assert.equal(await r.git('log', '-1', '--format=%an <%ae> / %cn <%ce>'), 'rollguard <rollguard@localhost> / rollguard <rollguard@localhost>');
    assert.equal(await r.read('app.txt'), 'v1\n');
    assert.equal(await r.read('lib/util.txt'), 'util v1\n');
    await assert.rejects(r.read('new.txt'), { code: 'ENOENT' });
    assert.equal(await r.git('status', '--porcelain'), '');

    const converged = await t.converged(service, known);
    assert.equal(converged.done, true);
    assert.deepEqual(converged.replicas.map((x) => x.id), [head]);
    assert.match(converged.detail, /with the known-good code/);
    assert.equal(await t.specVersion(service), await r.tree(good));

    const again = await t.putBack(service, known, { force: true });
    assert.equal(again.how, 'already');
    assert.equal(await r.head(), head, 'putting back again changes nothing');
  });

  it('reverts only what came after an earlier revert to the known-good code', async () => {
    const r = await repo();
    const service = gitService(r.dir);
    const { t, known } = await setUp(service);
    await r.commit({ 'app.txt': 'v2\n' }, 'bad 1');
    await r.git('revert', '--no-edit', 'HEAD');
    const earlier = await r.head();
    const bad2 = await r.commit({ 'app.txt': 'v3\n' }, 'bad 2');
    const put = await t.putBack(service, known, { force: false });
    assert.equal(put.detail, `git revert --no-edit --no-commit ${short(earlier)}..${short(bad2)}, then git commit: HEAD ${short(await r.head())} reverts 1 commit: Revert "bad 2"`);
    assert.equal(await r.read('app.txt'), 'v1\n');
  });
});

describe('GitTarget.putBack() in checkout mode', () => {
  it('detaches HEAD at the known-good commit and leaves the branch at the bad one', async () => {
    const r = await repo();
    const good = await r.head();
    const service = gitService(r.dir, { mode: 'checkout' });
    const { t, known } = await setUp(service);
    const bad = await r.commit({ 'app.txt': 'v2\n' }, 'bad');
    const put = await t.putBack(service, known, { force: false });
    assert.deepEqual(put, { how: 'update', detail: `git checkout --detach ${short(good)}: HEAD is detached at the known-good commit ${short(good)} ("good"); the branch main still points at the bad commit ${short(bad)}` });
    assert.equal(await r.head(), good);
    await assert.rejects(r.git('symbolic-ref', '-q', 'HEAD'), 'HEAD is detached');
    assert.equal(await r.git('rev-parse', 'main'), bad);
    assert.equal(await r.read('app.txt'), 'v1\n');
    assert.equal((await t.converged(service, known)).done, true);
  });
});

describe('GitTarget.putBack() refusals leave the work tree as found', () => {
  /** Puts back with the work tree as `prepare` left it; the refusal must match `message` and change nothing. */
  async function refused(prepare: (r: TestRepo) => Promise<void>, message: RegExp, mode: 'revert' | 'checkout' = 'revert'): Promise<void> {
    const r = await repo();
    const service = gitService(r.dir, { mode });
    const { t, known } = await setUp(service);
    await prepare(r);
    const before = await r.state();
    await assert.rejects(t.putBack(service, known, { force: false }), (err: unknown) => {
      assert.ok(err instanceof RevertError, `a RevertError, not ${String(err)}`);
      assert.match(err.message, message);
      assert.match(err.message, /the work tree was left as found/);
      return true;
    });
    assert.deepEqual(await r.state(), before);
    assert.equal(existsSync(path.join(r.dir, '.git', 'rollguard-revert')), false, 'no revert marker is left behind');
  }

  it('refuses a work tree with uncommitted changes to tracked files', () => refused(async (r) => {
    await r.commit({ 'app.txt': 'v2\n' }, 'bad');
    await writeFile(path.join(r.dir, 'app.txt'), 'hotfix by hand\n');
    await writeFile(path.join(r.dir, 'lib/util.txt'), 'staged\n');
    await r.git('add', 'lib/util.txt');
    await writeFile(path.join(r.dir, 'notes.txt'), 'untracked\n');
  }, /uncommitted changes to tracked files \(app\.txt, lib\/util\.txt\)/));

  it('refuses a work tree with a merge in progress', () => refused(async (r) => {
    await r.git('checkout', '--quiet', '-b', 'other');
    await r.commit({ 'app.txt': 'other\n' }, 'other');
    await r.git('checkout', '--quiet', 'main');
    await r.commit({ 'app.txt': 'v2\n' }, 'bad');
    await assert.rejects(r.git('merge', 'other'), 'the merge stops on a conflict');
  }, /has a merge in progress/));

  it('undoes a revert that fails half-way on a merge commit in the range', () => refused(async (r) => {
    await r.git('checkout', '--quiet', '-b', 'feature');
    await r.commit({ 'feature.txt': 'f\n' }, 'feature');
    await r.git('checkout', '--quiet', 'main');
    await r.commit({ 'app.txt': 'v2\n' }, 'bad 1');
    await r.git('merge', '--quiet', '--no-ff', '--no-edit', 'feature');
    await r.commit({ 'app.txt': 'v3\n' }, 'bad 2');
  }, /git revert --no-edit --no-commit \w{12}\.\.\w{12} in .* failed: .*is a merge but no -m option was given/));

  it('refuses a known-good commit that is not in the branch\'s history, pointing to checkout mode', () => refused(async (r) => {
    await r.git('checkout', '--quiet', '--orphan', 'rewritten');
    await r.commit({ 'app.txt': 'v9\n' }, 'rewritten history');
    await r.git('branch', '--quiet', '-M', 'main');
  }, /is not in the history of HEAD .* \(mode: checkout can/));

  it('refuses to commit onto another branch than the policy\'s', () => refused(async (r) => {
    await r.git('checkout', '--quiet', '-b', 'feature');
    await r.commit({ 'app.txt': 'v2\n' }, 'bad');
  }, /the branch feature is checked out in .*, not main/));

  it('refuses a known-good commit the repository does not have', async () => {
    const r = await repo();
    const service = gitService(r.dir, { mode: 'checkout' });
    const { t, known } = await setUp(service);
    await r.commit({ 'app.txt': 'v2\n' }, 'bad');
    const before = await r.state();
    const gone = { ...(known as object), commit: 'deadbeef'.repeat(5), tree: 'f'.repeat(40) };
    await assert.rejects(t.putBack(service, gone, { force: false }), /the known-good commit deadbeefdead \("good"\) is not in/);
    assert.deepEqual(await r.state(), before);
  });
});

describe('GitTarget.putBack() without a work tree', () => {
  it('refuses a path that is not a git work tree', async () => {
    const r = await repo();
    const service = gitService(r.dir);
    const { t, known } = await setUp(service);
    const elsewhere = gitService(await scratch());
    await assert.rejects(t.putBack(elsewhere, known, { force: false }), /is not a git work tree.*; nothing was changed/);
    assert.equal((await t.converged(elsewhere, known)).done, false);
  });
});

