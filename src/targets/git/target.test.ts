import assert from 'node:assert/strict';
import { rename } from 'node:fs/promises';
import { afterEach, describe, it } from 'node:test';
import pino from 'pino';
import type { ServiceMatch } from '../../config/policy.js';
import type { KnownGood } from '../../model/known-good.js';
import { RevertError } from '../target.js';
import { GitTarget, gitWorkTreeProblem, type GitSpec } from './target.js';
import { GIT_ENV, gitMatch, gitService, policyOf, TestRepo, waitFor } from './test-repo.fixture.js';

// GitTarget on real repositories made with the git binary, each test in temp directories of its own.

const log = pino({ level: 'silent' });
const OLD = { GIT_AUTHOR_DATE: '2020-01-01T00:00:00Z', GIT_COMMITTER_DATE: '2020-01-01T00:00:00Z' };

const repos: TestRepo[] = [];
const targets: GitTarget[] = [];
afterEach(async () => {
  await Promise.all(targets.splice(0).map((t) => t.unfollow()));
  await Promise.all(repos.splice(0).map((r) => r.remove()));
});

async function repo(files?: Record<string, string>): Promise<TestRepo> {
  const r = await TestRepo.create(files);
  repos.push(r);
  return r;
}

function target(...matches: ServiceMatch[]): GitTarget {
  const t = new GitTarget(log, () => matches, { env: GIT_ENV });
  targets.push(t);
  return t;
}

/** Follows the target, recording each commit handed over; resolves once the first look was taken. */
async function following(t: GitTarget, handle: (sha: string) => Promise<void> = async () => {}): Promise<string[]> {
  const handed: string[] = [];
  t.follow(async (sha) => {
    handed.push(sha);
    await handle(sha);
  });
  await t.poke();
  return handed;
}

describe('GitTarget replicas', () => {
  it('is HEAD\'s commit, of the version of its tree: a revert commit has the known-good version', async () => {
    const r = await repo();
    const good = await r.head();
    const bad = await r.commit({ 'app.txt': 'v2\n' }, 'bad change', OLD);
    // Deployed now: checked out again, as a `git pull` or checkout of it would.
    await r.git('checkout', '--quiet', '--detach', good);
    await r.git('checkout', '--quiet', 'main');
    const t = target(gitMatch(r.dir));
    const service = gitService(r.dir);

    const [head] = await t.running(policyOf(service), service);
    assert.ok(head);
    assert.deepEqual({ ...head, startedAt: undefined }, {
      id: bad, name: r.dir, image: bad, ref: bad.slice(0, 12), version: await r.tree(bad), startedAt: undefined, running: true, labels: {},
      spec: { path: r.dir, branch: 'main', commit: bad, tree: await r.tree(bad), subject: 'bad change' } satisfies GitSpec,
    });
    // When HEAD moved (the reflog), not when the commit was written.
    assert.ok(head.startedAt.getTime() > Date.parse('2021-01-01'), `${head.startedAt.toISOString()} is when HEAD moved`);

    await r.git('revert', '--no-edit', 'HEAD');
    const revert = await r.head();
    const reverted = await t.replica(revert);
    assert.equal(reverted?.version, await r.tree(good), 'a revert commit is the known-good version');
    assert.equal(reverted?.running, true);
    assert.equal((await t.replica(r.dir))?.id, revert, 'the work tree\'s path is its HEAD');

    const old = await t.replica(bad);
    assert.equal(old?.running, false);
    assert.equal(old?.startedAt.toISOString(), '2020-01-01T00:00:00.000Z', 'a commit not checked out started when it was committed');
    assert.equal((await t.replica(bad.slice(0, 12)))?.id, bad, 'a short sha');
    assert.equal(await t.replica('0123456789abcdef0123456789abcdef01234567'), undefined);
    assert.equal(await t.replica('/no/such/work/tree'), undefined);
    assert.equal(await t.replica('main'), undefined, 'a branch name is not a replica');
  });

  it('belongs to the services watching its work tree, and is snapshotted as its commit', async () => {
    const r = await repo();
    const other = await repo();
    const t = target(gitMatch(r.dir), gitMatch(other.dir));
    const web = gitService(r.dir);
    const api = gitService(other.dir, {}, { name: 'api' });
    const [head] = await t.running(policyOf(web, api), web);
    assert.ok(head);
    assert.deepEqual(t.servicesOf(policyOf(web, api), head).map((s) => s.name), ['web']);
    assert.deepEqual(t.role(head), { kind: 'service' });
    const snapshot = t.snapshot([head]);
    assert.deepEqual(t.knownReplicas(snapshot), [{ name: r.dir, version: head.version, spec: head.spec }]);
    assert.deepEqual(t.changedSettings(snapshot, head), []);
    assert.equal(await t.inspectReplica(head.id), undefined);
    assert.equal(await t.specVersion(web), head.version);
  });

  it('prefers the work tree whose HEAD a commit is, when two clones have it', async () => {
    const a = await repo();
    const b = await repo();
    const shared = await a.head();
    await b.git('fetch', '--quiet', a.dir, 'main');
    await b.git('reset', '--hard', '--quiet', 'FETCH_HEAD');
    await b.commit({ 'app.txt': 'v2\n' }, 'b moves on');
    const t = target(gitMatch(b.dir), gitMatch(a.dir));
    const r = await t.replica(shared);
    assert.equal(r?.name, a.dir);
    assert.equal(r?.running, true);
  });

  it('cannot list a path that is not a git work tree, and has no version for a work tree that is gone', async () => {
    const r = await repo();
    const t = target(gitMatch(r.dir));
    const service = gitService(`${r.dir}/../`);
    await assert.rejects(t.running(policyOf(service), service), /cannot read the git service web: .* is not a git work tree/);
    assert.match((await gitWorkTreeProblem(`${r.dir}/missing`, { env: GIT_ENV })) ?? '', /missing is not a git work tree: .*No such file or directory/);
    assert.equal(await gitWorkTreeProblem(r.dir, { env: GIT_ENV }), undefined);
    await r.remove();
    assert.equal(await t.specVersion(gitService(r.dir)), undefined);
  });
});

describe('GitTarget following', () => {
  it('hands a new HEAD over once, neither the one found at the start nor another branch\'s', async () => {
    const r = await repo();
    const good = await r.head();
    const t = target(gitMatch(r.dir));
    const handed = await following(t);

    const bad = await r.commit({ 'app.txt': 'v2\n' }, 'bad');
    await waitFor(() => handed.length > 0, 'the new HEAD');
    await t.poke();
    assert.deepEqual(handed, [bad]);

    await r.git('checkout', '--quiet', '-b', 'feature');
    await r.commit({ 'app.txt': 'feature\n' }, 'work in progress');
    await t.poke();
    await r.git('checkout', '--quiet', 'main');
    await t.poke();
    assert.deepEqual(handed, [bad], 'another branch is someone\'s work; back on main at the same commit is no change');

    await r.git('checkout', '--quiet', '--detach', good);
    await t.poke();
    assert.deepEqual(handed, [bad, good], 'a detached HEAD is a deployment');
    assert.equal(t.connected, true);
  });

  it('poke() and announce() read at once and resolve after the new HEADs were handled, one at a time', async () => {
    const a = await repo();
    const b = await repo();
    const t = target(gitMatch(a.dir, { pollMs: 60_000 }), gitMatch(b.dir, { pollMs: 60_000 }));
    const events: string[] = [];
    const handed = await following(t, async (sha) => {
      events.push(`start ${sha}`);
      await new Promise((res) => setTimeout(res, 30));
      events.push(`end ${sha}`);
    });
    const newA = await a.commit({ 'app.txt': 'a2\n' }, 'a2');
    const newB = await b.commit({ 'app.txt': 'b2\n' }, 'b2');
    await t.poke(b.dir);
    assert.deepEqual(handed, [newB], 'only the work tree poked is read');
    assert.deepEqual(events, [`start ${newB}`, `end ${newB}`]);
    await t.poke();
    assert.deepEqual(events, [`start ${newB}`, `end ${newB}`, `start ${newA}`, `end ${newA}`]);
    const announced = await a.commit({ 'app.txt': 'a3\n' }, 'a3');
    await t.announce(gitService(a.dir));
    assert.deepEqual(handed, [newB, newA, announced], 'a deployment announced is handed over before announce() resolves');
    await t.drained();
  });

  it('hands a HEAD over again when handling it failed, and tells when a work tree cannot be read', async () => {
    const r = await repo();
    const t = target(gitMatch(r.dir, { pollMs: 60_000 }));
    let fail = true;
    const handed = await following(t, async () => {
      if (fail) throw new Error('store down');
    });
    const bad = await r.commit({ 'app.txt': 'v2\n' }, 'bad');
    await t.poke();
    fail = false;
    await t.poke();
    assert.deepEqual(handed, [bad, bad]);

    await rename(r.dir, `${r.dir}.away`);
    await t.poke();
    assert.equal(t.connected, false);
    await rename(`${r.dir}.away`, r.dir);
    await t.poke();
    assert.equal(t.connected, true);
    assert.deepEqual(handed, [bad, bad], 'the same HEAD after the outage is no change');
  });

  it('never hands over a HEAD its own put-back made, even when the restart failed; a later commit it does', async () => {
    const r = await repo();
    const service = gitService(r.dir, { pollMs: 60_000 }, { restart: { command: [process.execPath, '-e', 'process.exit(7)'], timeoutMs: 10_000 } });
    const t = target(service.match);
    const handed = await following(t);
    const [good] = await t.running(policyOf(service), service);
    assert.ok(good);
    const bad = await r.commit({ 'app.txt': 'v2\n' }, 'bad');
    await t.poke();
    assert.deepEqual(handed, [bad]);

    await assert.rejects(t.putBack(service, t.snapshot([good]), { force: false }), /the restart command .* exited with 7/);
    const revert = await r.head();
    assert.notEqual(revert, bad, 'the revert commit was made');
    await t.poke();
    assert.deepEqual(handed, [bad], 'rollguard\'s own revert commit is no deployment');
    const own = await t.replica(revert);
    assert.equal(own?.name, r.dir);
    assert.equal(own?.running, true);
    assert.equal(own?.version, good.version);

    const next = await r.commit({ 'app.txt': 'v3\n' }, 'next release');
    await t.poke();
    assert.deepEqual(handed, [bad, next]);
  });
});

describe('GitTarget known-good commits', () => {
  async function knownGood(t: GitTarget, r: TestRepo): Promise<KnownGood> {
    const service = gitService(r.dir);
    const [head] = await t.running(policyOf(service), service);
    assert.ok(head);
    return { service: 'web', target: 'git', image_id: head.image, image_ref: head.ref, container_name: head.name, spec: t.snapshot([head]), deployment_id: 4, since: new Date() };
  }

  it('resolveImage() finds the commit in a watched work tree, or says it is not there', async () => {
    const r = await repo();
    const good = await r.head();
    const t = target(gitMatch(r.dir));
    assert.equal(await t.resolveImage(good, good.slice(0, 12)), good);
    const missing = 'deadbeef'.repeat(5);
    await assert.rejects(t.resolveImage(missing, 'deadbeefdead'), (err: unknown) => err instanceof RevertError && err.message === `the known-good commit deadbeefdead is not in ${r.dir}`);
    await assert.rejects(target().resolveImage(good, ''), /is not in any watched git work tree/);
  });

  it('withImage() puts another commit of the repository in the snapshot, or refuses one it does not have', async () => {
    const r = await repo();
    await r.git('tag', 'v1');
    const t = target(gitMatch(r.dir));
    const later = await r.commit({ 'app.txt': 'v3\n' }, 'later');
    const known = await knownGood(t, r);
    const v1 = await r.git('rev-parse', 'v1');
    const moved = await t.withImage(known, 'v1');
    assert.equal(moved.image_id, v1);
    assert.equal(moved.image_ref, v1.slice(0, 12));
    assert.equal(moved.deployment_id, null);
    assert.deepEqual(t.knownReplicas(moved.spec), [{ name: r.dir, version: await r.tree(v1), spec: { path: r.dir, branch: 'main', commit: v1, tree: await r.tree(v1), subject: 'good' } }]);
    assert.equal(known.image_id, later);
    await assert.rejects(t.withImage(known, 'nope'), (err: unknown) => err instanceof RevertError && err.message === `nope is not a commit in ${r.dir}`);
    await assert.rejects(t.withImage(known, '--help'), RevertError);
  });
});
