import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Replica } from '../target.js';
import { git, gitTest, type GitOptions } from './git.js';

/** A commit of a work tree as a replica describes it, and as a known-good snapshot keeps it (plain JSON). */
export interface GitSpec {
  /** The work tree's absolute path. */
  path: string;
  /** The branch the policy deploys from. */
  branch: string;
  commit: string;
  /** The commit's tree: what the code is, whichever commit carries it. */
  tree: string;
  /** The commit's subject line, for messages. */
  subject: string;
}

/** A commit as git tells it. */
export interface CommitInfo {
  commit: string;
  tree: string;
  time: Date;
  subject: string;
}

/** How a commit is named in messages: its 12-character short sha. */
export const short = (sha: string): string => sha.slice(0, 12);

/** Files under the git directory while an operation is under way, and what each means. */
const IN_PROGRESS: readonly [string, string][] = [
  ['MERGE_HEAD', 'a merge'],
  ['REVERT_HEAD', 'a revert'],
  ['CHERRY_PICK_HEAD', 'a cherry-pick'],
  // A revert or cherry-pick of several commits stopped part-way (a conflict resolved with a plain
  // `git commit`, say): HEAD has moved, the tree may be clean, and there is no REVERT_HEAD.
  ['sequencer', 'an unfinished revert or cherry-pick of several commits'],
  ['rebase-merge', 'a rebase'],
  ['rebase-apply', 'a rebase (or git am)'],
];

/** One git work tree, read (and changed) through the git binary. */
export class Repo {
  readonly path: string;

  constructor(repoPath: string, private readonly opts: GitOptions = {}) {
    this.path = path.resolve(repoPath);
  }

  /** Runs git in this work tree; `env` is added to the repo's environment. */
  run(args: readonly string[], extra: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<string> {
    const env = extra.env ? { ...(this.opts.env ?? process.env), ...extra.env } : this.opts.env;
    return git(this.path, args, { ...this.opts, env, ...(extra.timeoutMs ? { timeoutMs: extra.timeoutMs } : {}) });
  }

  /** Reads that must never block an operator's git (no index refresh written back). */
  private read(args: readonly string[]): Promise<string> {
    return this.run(args, { env: { GIT_OPTIONAL_LOCKS: '0' } });
  }

  /** The commit HEAD is at. */
  async head(): Promise<string> {
    return (await this.read(['rev-parse', '--verify', 'HEAD^{commit}'])).trim();
  }

  /** The commit HEAD is at, and the branch it is on (undefined when detached), read one after the other. */
  async where(): Promise<{ sha: string; branch: string | undefined }> {
    const branch = await this.branch();
    return { sha: await this.head(), branch };
  }

  /** The branch HEAD is on; undefined when it is detached. */
  async branch(): Promise<string | undefined> {
    try {
      return (await this.read(['symbolic-ref', '--quiet', '--short', 'HEAD'])).trim();
    } catch (err) {
      if ((err as { code?: unknown }).code === 1) return undefined;
      throw err;
    }
  }

  /** The commit a name (sha, branch, tag, HEAD~2…) stands for; undefined when there is none. */
  async resolve(rev: string): Promise<string | undefined> {
    // A name starting with a dash would be read as an option.
    if (!rev || rev.startsWith('-')) return undefined;
    try {
      return (await this.read(['rev-parse', '--verify', '--quiet', `${rev}^{commit}`])).trim() || undefined;
    } catch (err) {
      if ((err as { code?: unknown }).code === 1) return undefined;
      throw err;
    }
  }

  /** A commit's tree, time and subject. */
  async commit(sha: string): Promise<CommitInfo> {
    const out = await this.read(['log', '-1', '--no-show-signature', '--format=%H%x00%T%x00%ct%x00%s', sha]);
    const [commit = '', tree = '', time = '0', subject = ''] = out.replace(/\n$/, '').split('\0');
    return { commit, tree, time: new Date(Number(time) * 1000), subject };
  }

  /** When HEAD last moved (its newest reflog entry); undefined without a reflog. */
  async headMovedAt(): Promise<Date | undefined> {
    const out = await this.read(['log', '-g', '-1', '--date=unix', '--format=%gd', 'HEAD']).catch(() => '');
    const m = /@\{(\d+)\}/.exec(out);
    return m ? new Date(Number(m[1]) * 1000) : undefined;
  }

  /** Whether `ancestor` is in the history of `descendant`. */
  isAncestor(ancestor: string, descendant: string): Promise<boolean> {
    return gitTest(this.path, ['merge-base', '--is-ancestor', ancestor, descendant], this.opts);
  }

  /** The git directory (`.git`, or a linked work tree's own), absolute. */
  async gitDir(): Promise<string> {
    return (await this.read(['rev-parse', '--absolute-git-dir'])).trim();
  }

  /** The files of the git directory that say an operation is under way (MERGE_HEAD, sequencer…). */
  async operationFiles(): Promise<Set<string>> {
    const dir = await this.gitDir();
    return new Set(IN_PROGRESS.map(([file]) => file).filter((file) => existsSync(path.join(dir, file))));
  }

  /** The operations under way in the work tree (a merge, a rebase…) as words; empty when none. */
  async inProgress(): Promise<string[]> {
    const files = await this.operationFiles();
    // The sequence's current step says it better.
    if (files.has('REVERT_HEAD') || files.has('CHERRY_PICK_HEAD')) files.delete('sequencer');
    return IN_PROGRESS.filter(([file]) => files.has(file)).map(([, what]) => what);
  }

  /** Tracked files with changes, staged or not (`git status --porcelain` lines); untracked files do not count. */
  async changedFiles(): Promise<string[]> {
    return (await this.read(['status', '--porcelain', '--untracked-files=no'])).split('\n').filter((l) => l.trim());
  }

  /** Whether the index differs from HEAD (changes staged for a commit). */
  async hasStagedChanges(): Promise<boolean> {
    try {
      await this.read(['diff', '--cached', '--quiet']);
      return false;
    } catch (err) {
      if ((err as { code?: unknown }).code === 1) return true;
      throw err;
    }
  }

  /** A commit of this work tree as a replica: the code that runs when HEAD is at it. */
  async replica(sha: string, branch: string, head?: string): Promise<Replica> {
    const [info, headNow] = await Promise.all([this.commit(sha), head ?? this.head()]);
    const running = info.commit === headNow;
    const movedAt = running ? await this.headMovedAt() : undefined;
    const spec: GitSpec = { path: this.path, branch, commit: info.commit, tree: info.tree, subject: info.subject };
    return {
      id: info.commit,
      name: this.path,
      image: info.commit,
      ref: short(info.commit),
      version: info.tree,
      startedAt: movedAt ?? info.time,
      running,
      labels: {},
      spec,
    };
  }
}
