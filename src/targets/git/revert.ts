import type { ServiceMatch } from '../../config/policy.js';
import { RevertError, type PutBack } from '../target.js';
import { gitMessage } from './git.js';
import { mustHave } from './put-back.js';
import { short, type GitSpec, type Repo } from './repo.js';
import { markRevert, unmarkRevert } from './revert-marker.js';
import { failed, LEFT_AS_FOUND, said } from './undo.js';

type GitMatch = Extract<ServiceMatch, { kind: 'git' }>;

/** Who the revert commit is by: set through the environment, so no git config is needed (or changed). */
const AUTHOR: NodeJS.ProcessEnv = {
  GIT_AUTHOR_NAME: 'rollguard',
  GIT_AUTHOR_EMAIL: 'rollguard@localhost',
  GIT_COMMITTER_NAME: 'rollguard',
  GIT_COMMITTER_EMAIL: 'rollguard@localhost',
};

/** How many reverted commits the commit message lists by name; a longer range ends with a count. */
const LISTED = 200;

/** A commit the revert undoes. */
interface Reverted {
  commit: string;
  subject: string;
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

/** The commits of a range, newest first, as `git revert` takes them. */
async function commitsIn(repo: Repo, range: string): Promise<Reverted[]> {
  const out = await repo.run(['log', '--no-show-signature', '--format=%H%x00%s', range]);
  return out.split('\n').filter(Boolean).map((line) => {
    const [commit = '', subject = ''] = line.split('\0');
    return { commit, subject };
  });
}

/**
 * The revert commit's message: git's own `Revert "<subject>"` for one commit (tools that read
 * `This reverts commit` still do), else how many commits back to which; the body names every
 * commit reverted and that rollguard reverted them.
 */
export function revertMessage(reverted: readonly Reverted[], known: GitSpec): string {
  const only = reverted.length === 1 ? reverted[0] : undefined;
  const subject = only ? `Revert "${only.subject}"` : `Revert ${reverted.length} commits back to ${short(known.commit)}`;
  const listed = reverted.slice(0, LISTED).map((c) => `${c.commit} ${c.subject}`);
  if (reverted.length > LISTED) listed.push(`… and ${reverted.length - LISTED} more`);
  return [
    subject,
    '',
    ...(only ? [`This reverts commit ${only.commit}.`, ''] : []),
    `Reverted by rollguard to put back the known-good code of ${short(known.commit)} ("${known.subject}"):`,
    ...listed,
    '',
  ].join('\n');
}

/**
 * Revert mode: reverts everything after the known-good commit in one commit onto the branch —
 * `git revert --no-edit --no-commit <base>..HEAD`, a check that the index has the known-good
 * tree, then one `git commit` — so history is kept and the next deploy goes on from it. Any
 * failure before the commit (a conflict, a merge commit in the range, another tree) is undone:
 * HEAD, index and files are as found, and the error is a refusal. A marker in the git directory
 * lets the next put-back undo a revert a crash cut short (see revert-marker.ts).
 */
export async function revertTo(repo: Repo, match: GitMatch, known: GitSpec): Promise<PutBack> {
  await mustHave(repo, known);
  const original = await repo.head();
  if (!(await repo.isAncestor(known.commit, original))) {
    throw new RevertError(`the known-good commit ${short(known.commit)} is not in the history of HEAD ${short(original)} on ${match.branch} in ${repo.path} (a rewritten or reset branch), so revert commits cannot put it back (mode: checkout can, by detaching HEAD at it); ${LEFT_AS_FOUND}`);
  }
  const base = await revertBase(repo, known, original);
  const range = `${base}..${original}`;
  const reverted = await commitsIn(repo, range);
  const command = `git revert --no-edit --no-commit ${short(base)}..${short(original)}`;
  try {
    await markRevert(repo, original);
  } catch (err) {
    throw new RevertError(`cannot write rollguard's revert marker into the git directory of ${repo.path}: ${gitMessage(err)}; ${LEFT_AS_FOUND}`, { cause: err });
  }
  /** Undoes the revert; the marker goes once the work tree is as found (else the next put-back undoes it). */
  const undone = async (message: string, cause?: unknown): Promise<Error> => {
    const err = await failed(message, repo, original, cause);
    if (err instanceof RevertError) await unmarkRevert(repo).catch(() => undefined);
    return err;
  };
  try {
    await repo.run(['revert', '--no-edit', '--no-commit', range], { env: AUTHOR });
  } catch (err) {
    throw await undone(`${command} in ${repo.path} failed: ${said(err)}`, err);
  }
  let tree: string;
  try {
    tree = (await repo.run(['write-tree'])).trim();
  } catch (err) {
    throw await undone(`${command} in ${repo.path}, then git write-tree failed: ${said(err)}`, err);
  }
  if (tree !== known.tree) {
    throw await undone(`${command} in ${repo.path} does not give the known-good code: the reverted tree ${short(tree)} is not the tree of ${short(known.commit)} ("${known.subject}"), so nothing was committed`);
  }
  const message = revertMessage(reverted, known);
  try {
    // As `git revert` itself: no pre-commit or commit-msg hook (an operator's lint must not block
    // the way back), and the message kept as written.
    await repo.run(['commit', '--quiet', '--no-verify', '--cleanup=verbatim', '-m', message], { env: AUTHOR });
  } catch (err) {
    throw await undone(`${command} in ${repo.path}, then git commit failed: ${said(err)}`, err);
  }
  // A marker left behind names a commit HEAD is no longer at: the next put-back drops it.
  await unmarkRevert(repo).catch(() => undefined);
  const head = await repo.head();
  const n = reverted.length;
  return { how: 'update', detail: `${command}, then git commit: HEAD ${short(head)} reverts ${n === 1 ? '1 commit' : `${n} commits in one commit`}: ${message.split('\n')[0]}` };
}
