import type { ServiceMatch } from '../../config/policy.js';
import { RevertError, type PutBack } from '../target.js';
import { short, type GitSpec, type Repo } from './repo.js';
import { undoOwnRevert } from './revert-marker.js';
import { failed, LEFT_AS_FOUND, said } from './undo.js';

type GitMatch = Extract<ServiceMatch, { kind: 'git' }>;

/**
 * Refuses to touch a work tree someone is working in: an operation under way (merge, revert,
 * cherry-pick, a sequence of them stopped part-way, rebase), changes to tracked files (staged or
 * not), or — in revert mode, which commits onto the branch — HEAD not on the policy's branch.
 * Only rollguard's own revert cut short by a crash is undone first (see revert-marker.ts); an
 * operator's is never aborted. Returns what that undoing did, for the step's detail.
 */
export async function preflight(repo: Repo, match: GitMatch): Promise<string | undefined> {
  const undone = await undoOwnRevert(repo);
  const busy = await repo.inProgress();
  if (busy.length) throw new RevertError(`${repo.path} has ${busy.join(' and ')} in progress; ${LEFT_AS_FOUND} (finish or abort it, then the revert can go on)`);
  const changed = await repo.changedFiles();
  if (changed.length) {
    const files = changed.slice(0, 20).map((l) => l.slice(3)).join(', ');
    throw new RevertError(`${repo.path} has uncommitted changes to tracked files (${files}${changed.length > 20 ? `, and ${changed.length - 20} more` : ''}); ${LEFT_AS_FOUND} (commit, stash or discard them, then the revert can go on)`);
  }
  if (match.mode !== 'revert') return undone;
  const branch = await repo.branch();
  if (branch !== match.branch) {
    const where = branch === undefined ? `HEAD is detached at ${short(await repo.head())}` : `the branch ${branch} is checked out`;
    throw new RevertError(`${where} in ${repo.path}, not ${match.branch}: revert commits go onto ${match.branch} only; ${LEFT_AS_FOUND}`);
  }
  return undone;
}

/** The known-good commit must be in the repository to be put back. */
export async function mustHave(repo: Repo, known: GitSpec): Promise<void> {
  if (!(await repo.resolve(known.commit))) throw new RevertError(`the known-good commit ${short(known.commit)} ("${known.subject}") is not in ${repo.path}; ${LEFT_AS_FOUND}`);
}

/**
 * Checkout mode: detaches HEAD at the known-good commit. The branch is not touched, so it still
 * points at the bad commit: whoever deploys next decides what it becomes.
 */
export async function checkoutTo(repo: Repo, match: GitMatch, known: GitSpec): Promise<PutBack> {
  await mustHave(repo, known);
  const [original, branch] = await Promise.all([repo.head(), repo.branch()]);
  const command = `git checkout --detach ${short(known.commit)}`;
  try {
    await repo.run(['checkout', '--quiet', '--detach', known.commit]);
  } catch (err) {
    throw await failed(`${command} in ${repo.path} failed: ${said(err)}`, repo, original, err);
  }
  const tip = await repo.resolve(`refs/heads/${match.branch}`);
  const was = branch === undefined ? `; HEAD was detached at ${short(original)}` : '';
  const branchNow = tip ? `the branch ${match.branch} still points at ${tip === original ? 'the bad commit ' : ''}${short(tip)}` : `there is no branch ${match.branch}`;
  return { how: 'update', detail: `${command}: HEAD is detached at the known-good commit ${short(known.commit)} ("${known.subject}")${was}; ${branchNow}` };
}
