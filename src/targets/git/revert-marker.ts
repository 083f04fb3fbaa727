import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { short, type Repo } from './repo.js';
import { LEFT_AS_FOUND, undo } from './undo.js';

/**
 * The file in the git directory that says a revert of rollguard's own is under way, holding the
 * commit HEAD was at before it. It outlives a crash: the next put-back tells rollguard's own
 * half-done revert (undone and started again) from an operator's (refused, never touched).
 */
const MARKER = 'rollguard-revert';

/** Operations rollguard's revert never starts: with one of them under way, the work tree is someone's. */
const NOT_OURS = ['MERGE_HEAD', 'CHERRY_PICK_HEAD', 'rebase-merge', 'rebase-apply'];

/** Writes the marker before the revert changes anything: HEAD is at `original`. */
export async function markRevert(repo: Repo, original: string): Promise<void> {
  await writeFile(path.join(await repo.gitDir(), MARKER), `${original}\n`);
}

/** Removes the marker: the revert is done, or undone. */
export async function unmarkRevert(repo: Repo): Promise<void> {
  await rm(path.join(await repo.gitDir(), MARKER), { force: true });
}

/** The commit the marker names; undefined without a marker (or with one that names none). */
async function markedAt(repo: Repo): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(await repo.gitDir(), MARKER), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const sha = text.trim();
  return /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/.test(sha) ? sha : undefined;
}

/**
 * Undoes a revert of rollguard's own that a crash cut short, before the preflight looks at the
 * work tree: the marker names the commit HEAD is still at, and a revert is under way there
 * (REVERT_HEAD, a sequence, or staged changes) with no operation rollguard never starts. The
 * marker was written only after the preflight found the tree clean at that commit, so putting
 * it back there loses nothing. A marker naming another commit is stale (the revert commit was
 * made, or HEAD moved on since) and is dropped; one at a clean HEAD too. Anything else is left
 * for the preflight to refuse. Returns what was done, for the step's detail.
 */
export async function undoOwnRevert(repo: Repo): Promise<string | undefined> {
  const original = await markedAt(repo);
  if (original === undefined) return undefined;
  const [head, files, staged, changed] = await Promise.all([
    repo.head(),
    repo.operationFiles(),
    repo.hasStagedChanges(),
    repo.changedFiles(),
  ]);
  if (head !== original || (!files.size && !changed.length)) {
    await unmarkRevert(repo);
    return undefined;
  }
  if (NOT_OURS.some((f) => files.has(f))) return undefined;
  if (!files.has('REVERT_HEAD') && !files.has('sequencer') && !staged) return undefined;
  const left = await undo(repo, original);
  if (left !== LEFT_AS_FOUND) throw new Error(`rollguard's own revert in ${repo.path}, cut short at ${short(original)}, could not be undone: ${left}`);
  await unmarkRevert(repo);
  return `undid rollguard's own revert cut short at ${short(original)} (HEAD, index and files are as they were before it)`;
}
