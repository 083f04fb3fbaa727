import path from 'node:path';
import type { Logger } from 'pino';
import type { ServiceMatch } from '../../config/policy.js';
import { gitMessage } from './git.js';
import type { Repo } from './repo.js';

type GitMatch = Extract<ServiceMatch, { kind: 'git' }>;

/** How often to look again when no git work tree is watched (the policy may gain one). */
const IDLE_MS = 1_000;

/** What the follower knows of one watched work tree. */
interface Watched {
  /** The commit last handed over (or found at the first look); null: hand over whatever HEAD is next. */
  head?: string | null;
  nextAt: number;
  failing: boolean;
}

/**
 * Follows the HEAD of each watched git work tree by reading it every `pollMs`: a new HEAD commit
 * is handed over once, one at a time, in order. Git has no change feed, and a poll is
 * level-triggered: a restart of rollguard misses nothing that is still checked out. What HEAD is
 * at the first look is not handed over (the daemon's reconcile adopts it). A HEAD on another
 * branch than the policy's is someone's work, not a deployment: it is skipped with a warning
 * (once per branch); a detached HEAD is a deployment (a checkout of a tag or sha).
 */
export class GitHeadFollower {
  private readonly repos = new Map<string, Watched>();
  private readonly warnedBranches = new Set<string>();
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> = Promise.resolve();
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly log: Logger,
    /** Called with the new HEAD commit, and the work tree it is HEAD of. */
    private readonly onHead: (commit: string, path: string) => Promise<void>,
    /** The git matches the policy watches now. */
    private readonly matches: () => readonly GitMatch[],
    private readonly repo: (path: string) => Repo,
    /** Work trees rollguard is changing itself now: read again once it is done. */
    private readonly busy: (path: string) => boolean,
  ) {}

  /** Whether every watched work tree could be read at its last poll. */
  get connected(): boolean {
    return [...this.repos.values()].every((r) => !r.failing);
  }

  start(): void {
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.polling;
    await this.queue;
  }

  /** Resolves when every change seen so far has been handled. */
  async drained(): Promise<void> {
    await this.polling;
    await this.queue;
  }

  /** Resolves when no poll is reading (the handing over may go on). */
  async idle(): Promise<void> {
    await this.polling;
  }

  /**
   * Takes `sha` as the HEAD of the work tree already seen, so it is not handed over: rollguard
   * made it itself. Called while the work tree is busy, so no poll is reading it.
   */
  seen(repoPath: string, sha: string): void {
    const p = path.resolve(repoPath);
    const state = this.repos.get(p);
    if (state) state.head = sha;
    else this.repos.set(p, { head: sha, nextAt: Date.now(), failing: false });
  }

  /** Polls at once (one work tree, or all) and resolves once what it found is handed over. */
  async poke(repoPath?: string): Promise<void> {
    const only = repoPath === undefined ? undefined : path.resolve(repoPath);
    await this.serially(() => this.poll({ only }));
    await this.queue;
  }

  /** Runs polls one after another: a poke never overlaps the timer's poll. */
  private serially(fn: () => Promise<void>): Promise<void> {
    this.polling = this.polling.then(fn).catch((err: unknown) => this.log.warn({ err }, 'polling the watched git work trees failed'));
    return this.polling;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.serially(() => this.poll()).finally(() => this.schedule(this.untilNext()));
    }, ms);
  }

  /** How long until a work tree is due. */
  private untilNext(): number {
    const due = [...this.repos.values()].map((r) => r.nextAt);
    return due.length ? Math.max(0, Math.min(...due) - Date.now()) : IDLE_MS;
  }

  /** The watched work trees by absolute path; one path watched twice is polled at the faster pace. */
  private watched(): Map<string, GitMatch> {
    const byPath = new Map<string, GitMatch>();
    for (const m of this.matches()) {
      const key = path.resolve(m.path);
      const seen = byPath.get(key);
      if (!seen || m.pollMs < seen.pollMs) byPath.set(key, m);
    }
    return byPath;
  }

  /** Reads the work trees that are due (`poked`: all, or only the one at that path). */
  private async poll(poked?: { only?: string }): Promise<void> {
    if (this.stopped) return;
    const watched = this.watched();
    for (const p of this.repos.keys()) if (!watched.has(p)) this.repos.delete(p);
    const now = Date.now();
    const due = [...watched].filter(([p]) => {
      if (!this.repos.has(p)) this.repos.set(p, { nextAt: now, failing: false });
      if (poked) return poked.only === undefined || p === poked.only;
      return (this.repos.get(p)?.nextAt ?? 0) <= now;
    });
    // Reads in parallel; handing over in the policy's order.
    const found = await Promise.all(due.map(([p, m]) => this.read(p, m)));
    for (const commit of found) {
      if (commit === undefined || this.stopped) continue;
      this.queue = this.queue.then(() => this.onHead(commit.sha, commit.path)).catch((err: unknown) => {
        // Handed over again at the next poll while HEAD is still there.
        const state = this.repos.get(commit.path);
        if (state && state.head === commit.sha) state.head = null;
        this.log.warn({ err, path: commit.path, commit: commit.sha }, 'handling a new git HEAD failed; trying again at the next poll');
      });
    }
  }

  /** Reads one work tree's HEAD; returns it when it is a new one to hand over. */
  private async read(p: string, m: GitMatch): Promise<{ path: string; sha: string } | undefined> {
    const state = this.repos.get(p);
    if (!state) return undefined;
    state.nextAt = Date.now() + m.pollMs;
    if (this.busy(p)) return undefined;
    let sha: string;
    let branch: string | undefined;
    const repo = this.repo(p);
    try {
      ({ sha, branch } = await repo.where());
      if (state.head !== undefined && sha !== state.head && (branch === undefined || branch === m.branch)) {
        // HEAD and its branch are two reads: a checkout between them (feature → main) would
        // pair a feature commit with main. A change counts once a second look agrees.
        const again = await repo.where();
        if (again.sha !== sha || again.branch !== branch) return undefined;
      }
    } catch (err) {
      if (!state.failing) this.log.warn({ path: p, err: gitMessage(err) }, 'cannot read the HEAD of a watched git work tree; trying again at each poll');
      state.failing = true;
      return undefined;
    }
    if (state.failing) this.log.info({ path: p }, 'the HEAD of the git work tree can be read again');
    state.failing = false;
    if (state.head === undefined) {
      // The first look: what is checked out now is adopted, not a deployment.
      state.head = sha;
      this.warnIfOtherBranch(p, m, branch);
      return undefined;
    }
    if (sha === state.head) return undefined;
    if (branch !== undefined && branch !== m.branch) {
      this.warnIfOtherBranch(p, m, branch);
      return undefined;
    }
    state.head = sha;
    return { path: p, sha };
  }

  private warnIfOtherBranch(p: string, m: GitMatch, branch: string | undefined): void {
    if (branch === undefined || branch === m.branch) return;
    const key = `${p}\0${branch}`;
    if (this.warnedBranches.has(key)) return;
    this.warnedBranches.add(key);
    if (this.warnedBranches.size > 10_000) this.warnedBranches.clear();
    this.log.warn({ path: p, branch, watched: m.branch }, 'the git work tree has another branch checked out than the policy deploys from; its commits are not watched as deployments');
  }
}
