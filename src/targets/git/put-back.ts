import type { ServiceMatch } from '../../config/policy.js';
import { RevertError, type PutBack } from '../target.js';
import { gitMessage } from './git.js';
import { short, type GitSpec, type Repo } from './repo.js';

type GitMatch = Extract<ServiceMatch, { kind: 'git' }>;

/** Who the revert commits are by: set through the environment, so no git config is needed (or changed). */
const AUTHOR: NodeJS.ProcessEnv = {
  GIT_AUTHOR_NAME: 'rollguard',
  GIT_AUTHOR_EMAIL: 'rollguard@localhost',
  GIT_COMMITTER_NAME: 'rollguard',
  GIT_COMMITTER_EMAIL: 'rollguard@localhost',
};

const LEFT_AS_FOUND = 'the work tree was left as found';

/** What git said, without its hints on how to go on by hand (rollguard undid the operation). */
function said(err: unknown): string {
  return gitMessage(err).split('\n').filter((l) => l.trim() && !l.startsWith('hint:')).join('; ');
}

/**
 * Refuses to touch a work tree someone is working in: an operation under way (merge, revert,
 * cherry-pick, rebase), changes to tracked files (staged or not), or — in revert mode, which
 * commits onto the branch — HEAD not on the policy's branch. Reads only.
 */
export async function preflight(repo: Repo, match: GitMatch): Promise<void> {
  const busy = await repo.inProgress();
  if (busy.length) throw new RevertError(`${repo.path} has ${busy.join(' and ')} in progress; ${LEFT_AS_FOUND} (finish or abort it, then the revert can go on)`);
  const changed = await repo.changedFiles();
  if (changed.length) {
    const files = changed.slice(0, 20).map((l) => l.slice(3)).join(', ');
    throw new RevertError(`${repo.path} has uncommitted changes to tracked files (${files}${changed.length > 20 ? `, and ${changed.length - 20} more` : ''}); ${LEFT_AS_FOUND} (commit, stash or discard them, then the revert can go on)`);
  }
  if (match.mode !== 'revert') return;
  const branch = await repo.branch();
  if (branch !== match.branch) {
    const where = branch === undefined ? `HEAD is detached at ${short(await repo.head())}` : `the branch ${branch} is checked out`;
    throw new RevertError(`${where} in ${repo.path}, not ${match.branch}: revert commits go onto ${match.branch} only; ${LEFT_AS_FOUND}`);
  }
}

/** The known-good commit must be in the repository to be put back. */
async function mustHave(repo: Repo, known: GitSpec): Promise<void> {
  if (!(await repo.resolve(known.commit))) throw new RevertError(`the known-good commit ${short(known.commit)} ("${known.subject}") is not in ${repo.path}; ${LEFT_AS_FOUND}`);
}

/**
 * Where the revert range starts: the newest commit on the first-parent path from the known-good
 * commit to HEAD that already has the known-good tree (an earlier revert), so that only what came
 * after it is reverted; else the known-good commit itself.
 */
async function revertBase(repo: Repo, known: GitSpec, head: string): Promise<string> {
  const log = await repo.run(['log', '--first-parent', '--no-show-signature', '--format=%H %T', `${known.commit}..${head}`]);
  for (const line of log.split('\n')) {
    const [commit, tree] = line.split(' ');
    if (commit && tree === known.tree) return commit;
  }
  return known.commit;
}

/**
 * Puts HEAD back at `original` with a clean work tree after a failed operation: aborts a revert
 * left half-way, then resets hard only if that was not enough — safe, as the preflight found the
 * tree clean. Returns what to say about the work tree.
 */
async function undo(repo: Repo, original: string): Promise<string> {
  await repo.run(['revert', '--abort']).catch(() => undefined);
  try {
    if ((await repo.head()) !== original || (await repo.changedFiles()).length) await repo.run(['reset', '--hard', '--quiet', original]);
    await repo.run(['revert', '--quit']).catch(() => undefined);
    const [head, changed, busy] = await Promise.all([repo.head(), repo.changedFiles(), repo.inProgress()]);
    if (head === original && !changed.length && !busy.length) return LEFT_AS_FOUND;
    return `the work tree could NOT be put back as found (HEAD ${short(head)}${changed.length ? `, changed: ${changed.join(', ')}` : ''}${busy.length ? `, ${busy.join(' and ')} in progress` : ''}; it was at ${short(original)})`;
  } catch (err) {
    return `the work tree could NOT be put back as found (${said(err)}; it was at ${short(original)})`;
  }
}

/** The error of a failed git change, once undone: a refusal when the work tree is as found, else a plain error saying what is left. */
async function failed(message: string, repo: Repo, original: string, cause: unknown): Promise<Error> {
  const left = await undo(repo, original);
  return left === LEFT_AS_FOUND ? new RevertError(`${message}; ${left}`, { cause }) : new Error(`${message}; ${left}`, { cause });
}

/**
 * Revert mode: commits the revert of everything after the known-good commit onto the branch
 * (`git revert --no-edit <base>..HEAD`), so history is kept and the next deploy goes on from it.
 * Any failure — a conflict, a merge commit in the range — is undone before throwing.
 */
export async function revertTo(repo: Repo, match: GitMatch, known: GitSpec): Promise<PutBack> {
  await mustHave(repo, known);
  const original = await repo.head();
  if (!(await repo.isAncestor(known.commit, original))) {
    throw new RevertError(`the known-good commit ${short(known.commit)} is not in the history of HEAD ${short(original)} on ${match.branch} in ${repo.path} (a rewritten or reset branch), so revert commits cannot put it back (mode: checkout can, by detaching HEAD at it); ${LEFT_AS_FOUND}`);
  }
  const base = await revertBase(repo, known, original);
  const command = `git revert --no-edit ${short(base)}..${short(original)}`;
  try {
    await repo.run(['revert', '--no-edit', `${base}..${original}`], { env: AUTHOR });
  } catch (err) {
    throw await failed(`${command} in ${repo.path} failed: ${said(err)}`, repo, original, err);
  }
  const head = await repo.head();
  const now = await repo.commit(head);
  const count = Number((await repo.run(['rev-list', '--count', `${original}..${head}`])).trim());
  if (now.tree !== known.tree) {
    // Not a refusal: the revert commits are there (a RevertError would say nothing was changed).
    throw new Error(`${command} in ${repo.path} made ${count} revert commit(s), but HEAD (now ${short(head)} "${now.subject}") does not have the tree of the known-good commit ${short(known.commit)}; the revert commits were kept`);
  }
  return { how: 'update', detail: `${command}: ${count} revert commit${count === 1 ? '' : 's'}, HEAD ${short(head)}` };
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
