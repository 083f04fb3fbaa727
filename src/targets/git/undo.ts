import { RevertError } from '../target.js';
import { gitMessage } from './git.js';
import { short, type Repo } from './repo.js';

/** What a refusal, or a failure undone, says of the work tree. */
export const LEFT_AS_FOUND = 'the work tree was left as found';

/** What git said, without its hints on how to go on by hand (rollguard undid the operation). */
export function said(err: unknown): string {
  return gitMessage(err).split('\n').filter((l) => l.trim() && !l.startsWith('hint:')).join('; ');
}

/**
 * Puts HEAD back at `original` with a clean work tree after a failed operation: aborts a revert
 * left half-way, then resets hard only if that was not enough, and drops what is left of a
 * revert sequence. Only ever called when the tree was clean at `original` (the preflight found it
 * so), so nothing of anyone's is lost. Returns what to say about the work tree.
 */
export async function undo(repo: Repo, original: string): Promise<string> {
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
export async function failed(message: string, repo: Repo, original: string, cause: unknown): Promise<Error> {
  const left = await undo(repo, original);
  return left === LEFT_AS_FOUND ? new RevertError(`${message}; ${left}`, { cause }) : new Error(`${message}; ${left}`, { cause });
}
