import { execFile } from 'node:child_process';

/** How long one git command may take: reads are instant; a revert of a long range rewrites many files. */
export const GIT_TIMEOUT_MS = 30_000;

/** A git command that failed: its exit code (undefined when it could not run or timed out) and what it said. */
export class GitError extends Error {
  constructor(message: string, readonly code: number | undefined, readonly stderr: string) {
    super(message);
    this.name = 'GitError';
  }
}

/** What a git command runs with. */
export interface GitOptions {
  /** The environment (rollguard's own by default); git's locale and prompts are always set. */
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/**
 * Runs `git -C <path> <args…>` — never through a shell — and returns its standard output.
 * Throws a GitError carrying git's standard error. Git speaks English (its messages end up in
 * step details) and never prompts: a credential helper or an editor would hang the daemon.
 */
export function git(path: string, args: readonly string[], opts: GitOptions = {}): Promise<string> {
  const timeout = opts.timeoutMs ?? GIT_TIMEOUT_MS;
  const env = { ...(opts.env ?? process.env), LC_ALL: 'C', GIT_TERMINAL_PROMPT: '0', GIT_EDITOR: 'true' };
  return new Promise((resolve, reject) => {
    execFile('git', ['-C', path, ...args], { env, timeout, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const e = err as NodeJS.ErrnoException & { code?: number | string; killed?: boolean };
      const said = stderr.trim() || stdout.trim();
      const what = `git ${args.join(' ')}`;
      if (e.code === 'ENOENT') return reject(new GitError('git is not installed (no git on PATH)', undefined, ''));
      if (e.killed) return reject(new GitError(`${what} took longer than ${timeout} ms`, undefined, said));
      const code = typeof e.code === 'number' ? e.code : undefined;
      reject(new GitError(`${what} failed${code === undefined ? '' : ` (exit ${code})`}: ${said || e.message}`, code, said));
    });
  });
}

/** What git said when a command failed, or the error's message. */
export function gitMessage(err: unknown): string {
  if (err instanceof GitError) return err.stderr || err.message;
  return err instanceof Error ? err.message : String(err);
}

/** Runs a git command that answers with its exit code: true on 0, false on 1, throws otherwise. */
export async function gitTest(path: string, args: readonly string[], opts: GitOptions = {}): Promise<boolean> {
  try {
    await git(path, args, opts);
    return true;
  } catch (err) {
    if (err instanceof GitError && err.code === 1) return false;
    throw err;
  }
}

/**
 * Why `path` cannot be watched as a git work tree (it does not exist, is not in a repository, is a
 * bare repository, or git cannot read it — another owner's repository, say); undefined when it can.
 */
export async function gitWorkTreeProblem(path: string, opts: GitOptions = {}): Promise<string | undefined> {
  let inside: string;
  try {
    inside = (await git(path, ['rev-parse', '--is-inside-work-tree'], opts)).trim();
  } catch (err) {
    if (err instanceof GitError && err.code === undefined) return `cannot read ${path}: ${err.message}`;
    return `${path} is not a git work tree: ${gitMessage(err)}`;
  }
  if (inside !== 'true') return `${path} is not a git work tree (a bare repository, or the inside of .git)`;
  const head = await git(path, ['rev-parse', '--verify', '--quiet', 'HEAD^{commit}'], opts).then(() => true, () => false);
  return head ? undefined : `${path} is a git work tree without a commit checked out`;
}
