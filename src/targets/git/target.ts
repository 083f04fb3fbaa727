import path from 'node:path';
import type { Logger } from 'pino';
import type { Policy, ServiceMatch, ServicePolicy } from '../../config/policy.js';
import type { KnownGood } from '../../model/known-good.js';
import type { ReplicaView } from '../../model/replica-view.js';
import type { TemplateValues } from '../../config/template.js';
import { RevertError, type Convergence, type KnownReplica, type PutBack, type Replica, type ReplicaRole, type ServiceTarget, type UpdateState } from '../target.js';
import { GitHeadFollower } from './follower.js';
import { gitMessage, gitWorkTreeProblem } from './git.js';
import { checkoutTo, preflight } from './put-back.js';
import { Repo, short, type GitSpec } from './repo.js';
import { restart } from './restart.js';
import { revertTo } from './revert.js';

export { gitWorkTreeProblem } from './git.js';
export type { GitSpec } from './repo.js';

type GitMatch = Extract<ServiceMatch, { kind: 'git' }>;

const gitMatch = (service: ServicePolicy): GitMatch => {
  if (service.match.kind !== 'git') throw new Error(`${service.name} is not a git service`);
  return service.match;
};

function parseSnapshot(snapshot: unknown): GitSpec {
  const s = snapshot as Partial<GitSpec> | null;
  const fields = ['path', 'branch', 'commit', 'tree', 'subject'] as const;
  if (!s || fields.some((f) => typeof s[f] !== 'string')) throw new RevertError('the known-good snapshot is not a git commit\'s');
  return { path: s.path!, branch: s.branch!, commit: s.commit!, tree: s.tree!, subject: s.subject! };
}

/**
 * A git work tree deployed by checking out commits (runbook Option 1): what runs is the code of
 * HEAD, so a replica is HEAD's commit and its version the commit's tree — a revert commit that
 * puts the known-good tree back is the known-good version, not a new one. A revert commits the
 * `git revert` of the bad range onto the branch as one commit (mode revert) or detaches HEAD at
 * the known-good commit (mode checkout), never in a work tree someone is working in, then runs
 * the service's restart command.
 */
export class GitTarget implements ServiceTarget {
  readonly kind = 'git';
  readonly revertBy = 'service';
  readonly matches = ['git'] as const;
  private follower?: GitHeadFollower;
  /** Work trees a revert is changing now, so the follower does not read them half-way. */
  private readonly busy = new Map<string, number>();
  /** Which work tree a commit handed over was HEAD of: a commit may be in several watched clones. */
  private readonly handedFrom = new Map<string, string>();
  private readonly env: NodeJS.ProcessEnv | undefined;

  constructor(private readonly log: Logger, private readonly watched: () => readonly ServiceMatch[] = () => [], opts: { env?: NodeJS.ProcessEnv } = {}) {
    this.env = opts.env;
  }

  follow(onStarted: (id: string) => Promise<void>): void {
    const handOver = (sha: string, p: string): Promise<void> => {
      if (this.handedFrom.size > 10_000) this.handedFrom.clear();
      this.handedFrom.set(sha, p);
      return onStarted(sha);
    };
    this.follower = new GitHeadFollower(this.log, handOver, () => this.gitMatches(), (p) => this.repo(p), (p) => this.busy.has(p));
    this.follower.start();
  }

  async unfollow(): Promise<void> {
    await this.follower?.stop();
  }

  drained(): Promise<void> {
    return this.follower?.drained() ?? Promise.resolve();
  }

  get connected(): boolean {
    return this.follower?.connected ?? true;
  }

  /** Reads the watched work trees at once (one, or all) and resolves once a new HEAD found is handed over: a deploy announced. */
  poke(repoPath?: string): Promise<void> {
    return this.follower?.poke(repoPath) ?? Promise.resolve();
  }

  /** A deployment announced through the deploy API: the service's work tree is read at once. */
  announce(service: ServicePolicy): Promise<void> {
    return this.poke(gitMatch(service).path);
  }

  /** A watched work tree's HEAD by its absolute path; a commit (full or short sha) in the watched work tree that has it, HEAD first. */
  async replica(idOrName: string): Promise<Replica | undefined> {
    const matches = this.uniqueMatches();
    if (path.isAbsolute(idOrName)) {
      const m = matches.find((x) => path.resolve(x.path) === path.resolve(idOrName));
      return m && this.headReplica(m);
    }
    if (!/^[0-9a-f]{4,64}$/i.test(idOrName)) return undefined;
    const sha = idOrName.toLowerCase();
    const hinted = this.handedFrom.get(sha);
    const ordered = [...matches].sort((a, b) => Number(path.resolve(b.path) === hinted) - Number(path.resolve(a.path) === hinted));
    const heads = await Promise.all(ordered.map((m) => this.repo(m.path).head().catch(() => undefined)));
    const at = ordered.findIndex((_, i) => heads[i]?.startsWith(sha));
    if (at >= 0) return this.repo(ordered[at]!.path).replica(heads[at]!, ordered[at]!.branch, heads[at]);
    for (const [i, m] of ordered.entries()) {
      const repo = this.repo(m.path);
      const commit = await repo.resolve(sha).catch(() => undefined);
      // A short sha must not be read as a branch or tag of that name.
      if (commit?.startsWith(sha) && heads[i]) return repo.replica(commit, m.branch, heads[i]);
    }
    return undefined;
  }

  async running(_policy: Policy, service: ServicePolicy): Promise<Replica[]> {
    const m = gitMatch(service);
    const problem = await gitWorkTreeProblem(m.path, { env: this.env });
    if (problem) throw new Error(`cannot read the git service ${service.name}: ${problem}`);
    const repo = this.repo(m.path);
    const head = await repo.head();
    return [await repo.replica(head, m.branch, head)];
  }

  servicesOf(policy: Policy, replica: Replica): ServicePolicy[] {
    return Object.values(policy.services).filter((s) => s.match.kind === 'git' && path.resolve(s.match.path) === replica.name);
  }

  role(_replica: Replica): ReplicaRole {
    return { kind: 'service' };
  }

  /** A checkout has no process state of its own: container signals do not apply to git services. */
  async inspectReplica(_id: string): Promise<ReplicaView | undefined> {
    return undefined;
  }

  async replicaValues(_id: string): Promise<Partial<TemplateValues> | undefined> {
    return undefined;
  }

  snapshot(replicas: readonly Replica[]): unknown {
    const first = replicas[0];
    if (!first) throw new Error('a known-good snapshot needs a commit');
    return parseSnapshot(first.spec);
  }

  knownReplicas(snapshot: unknown): KnownReplica[] {
    const s = parseSnapshot(snapshot);
    return [{ name: s.path, version: s.tree, spec: s }];
  }

  /** A commit is its tree: there are no settings besides it. */
  changedSettings(_from: unknown, _to: Replica): string[] {
    return [];
  }

  /** The known-good commit must be in a watched work tree's repository; returns it. */
  async resolveImage(commit: string, _ref: string): Promise<string> {
    const paths = [...new Set(this.gitMatches().map((m) => path.resolve(m.path)))];
    for (const p of paths) {
      const found = await this.repo(p).resolve(commit).catch(() => undefined);
      if (found?.startsWith(commit.toLowerCase())) return found;
    }
    throw new RevertError(`the known-good commit ${short(commit)} is not in ${paths.length ? paths.join(', ') : 'any watched git work tree (none is watched)'}`);
  }

  /** The known-good snapshot at another commit (a sha, tag or branch of the same repository). */
  async withImage(known: KnownGood, commitish: string): Promise<KnownGood> {
    const s = parseSnapshot(known.spec);
    const repo = this.repo(s.path);
    let commit: string | undefined;
    try {
      commit = await repo.resolve(commitish);
    } catch (err) {
      throw new RevertError(`cannot look ${commitish} up in ${s.path}: ${gitMessage(err)}`, { cause: err });
    }
    if (!commit) throw new RevertError(`${commitish} is not a commit in ${s.path}`);
    const info = await repo.commit(commit);
    const spec: GitSpec = { ...s, commit, tree: info.tree, subject: info.subject };
    return { ...known, image_id: commit, image_ref: short(commit), spec, deployment_id: null };
  }

  async specVersion(service: ServicePolicy): Promise<string | undefined> {
    const repo = this.repo(gitMatch(service).path);
    try {
      return (await repo.commit(await repo.head())).tree;
    } catch (err) {
      if (await gitWorkTreeProblem(repo.path, { env: this.env })) return undefined;
      throw err;
    }
  }

  /** Git has no update of its own under way. */
  async updateState(_service: ServicePolicy): Promise<UpdateState | undefined> {
    return undefined;
  }

  /**
   * Puts the known-good code back as the service's mode says, then runs its restart command —
   * also when the code is there already and the attempt is forced, or resumes a revert a crash
   * cut short (the crash may have come between the revert commit and the restart). Refusals
   * (RevertError) change nothing. A failed restart throws a plain Error: the code was put back,
   * and the next attempt (forced) finds it so and runs the restart again. A HEAD rollguard made
   * here is never handed over as a deployment, however the put-back ends.
   */
  async putBack(service: ServicePolicy, snapshot: unknown, opts: { force: boolean; resume?: boolean }): Promise<PutBack> {
    const m = gitMatch(service);
    const known = parseSnapshot(snapshot);
    const repo = this.repo(m.path);
    const problem = await gitWorkTreeProblem(repo.path, { env: this.env });
    if (problem) throw new RevertError(`${problem}; nothing was changed`);
    this.busy.set(repo.path, (this.busy.get(repo.path) ?? 0) + 1);
    let before: string | undefined;
    try {
      await this.follower?.idle();
      before = await repo.head();
      const undone = await preflight(repo, m);
      const head = await repo.head();
      const now = await repo.commit(head);
      const done: PutBack = now.tree === known.tree
        ? { how: 'already', detail: `HEAD of ${repo.path} (${short(head)} "${now.subject}") already has the known-good code (the tree of ${short(known.commit)}); git was not changed` }
        : m.mode === 'revert' ? await revertTo(repo, m, known) : await checkoutTo(repo, m, known);
      const put = undone ? { ...done, detail: `${undone}; ${done.detail}` } : done;
      if (!service.restart || (put.how === 'already' && !opts.force && !opts.resume)) return put;
      return { ...put, detail: `${put.detail}; ${await restart(service, service.restart, repo.path, known, put, this.env ?? process.env)}` };
    } finally {
      if (before !== undefined) await this.ownHead(repo, before);
      const n = (this.busy.get(repo.path) ?? 1) - 1;
      if (n > 0) this.busy.set(repo.path, n);
      else this.busy.delete(repo.path);
    }
  }

  /**
   * While the follower still stays away: a HEAD other than `before` is the revert's own commit
   * (or checkout), not a deployment — even when the restart or a check after it failed. The
   * follower takes it as seen, and the commit stays known as this work tree's.
   */
  private async ownHead(repo: Repo, before: string): Promise<void> {
    const after = await repo.head().catch(() => undefined);
    if (after === undefined || after === before) return;
    this.follower?.seen(repo.path, after);
    if (this.handedFrom.size > 10_000) this.handedFrom.clear();
    this.handedFrom.set(after, repo.path);
  }

  async converged(service: ServicePolicy, snapshot: unknown): Promise<Convergence> {
    const m = gitMatch(service);
    const known = parseSnapshot(snapshot);
    const repo = this.repo(m.path);
    const problem = await gitWorkTreeProblem(repo.path, { env: this.env });
    if (problem) return { done: false, replicas: [], detail: problem };
    const head = await repo.head();
    const r = await repo.replica(head, m.branch, head);
    const subject = (r.spec as GitSpec).subject;
    return r.version === known.tree
      ? { done: true, replicas: [r], detail: `HEAD of ${repo.path} is ${r.ref} ("${subject}"), with the known-good code (the tree of ${short(known.commit)})` }
      : { done: false, replicas: [], detail: `HEAD of ${repo.path} is ${r.ref} ("${subject}"), not the known-good code of ${short(known.commit)} ("${known.subject}")` };
  }

  private repo(p: string): Repo {
    return new Repo(p, { env: this.env });
  }

  private gitMatches(): GitMatch[] {
    return this.watched().flatMap((m) => (m.kind === 'git' ? [m] : []));
  }

  /** The watched git matches, one per work tree. */
  private uniqueMatches(): GitMatch[] {
    const seen = new Set<string>();
    return this.gitMatches().filter((m) => !seen.has(path.resolve(m.path)) && !!seen.add(path.resolve(m.path)));
  }

  private async headReplica(m: GitMatch): Promise<Replica | undefined> {
    const repo = this.repo(m.path);
    let head: string;
    try {
      head = await repo.head();
    } catch (err) {
      if (await gitWorkTreeProblem(repo.path, { env: this.env })) return undefined;
      throw err;
    }
    return repo.replica(head, m.branch, head);
  }
}
