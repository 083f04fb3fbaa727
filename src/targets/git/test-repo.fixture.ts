import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Policy, ServiceMatch, ServicePolicy } from '../../config/policy.js';
import { servicePolicy } from '../../policy/service.fixture.js';

/** Git as the tests run it: no system or user configuration of this machine. */
export const GIT_ENV: NodeJS.ProcessEnv = { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1', LC_ALL: 'C' };

/** What a refusal must leave exactly as it was. */
export interface TreeState {
  head: string;
  branch: string;
  status: string;
  files: Record<string, string>;
  gitState: string[];
}

/** A scratch git repository (branch main) in a temp directory of its own, with a local identity. */
export class TestRepo {
  private constructor(readonly dir: string) {}

  static async create(files: Record<string, string> = { 'app.txt': 'v1\n' }, message = 'good'): Promise<TestRepo> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rollguard-git-test-'));
    const repo = new TestRepo(dir);
    await repo.git('init', '--quiet', '-b', 'main');
    await repo.git('config', 'user.name', 'Dev');
    await repo.git('config', 'user.email', 'dev@example.test');
    await repo.commit(files, message);
    return repo;
  }

  async git(...args: string[]): Promise<string> {
    const { stdout } = await promisify(execFile)('git', ['-C', this.dir, ...args], { env: GIT_ENV });
    return stdout.trim();
  }

  /** Writes (or, with null, deletes) files and commits everything; returns the commit. */
  async commit(files: Record<string, string | null>, message: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
    for (const [name, content] of Object.entries(files)) {
      const file = path.join(this.dir, name);
      if (content === null) await rm(file);
      else {
        await mkdir(path.dirname(file), { recursive: true });
        await writeFile(file, content);
      }
    }
    await this.git('add', '-A');
    await promisify(execFile)('git', ['-C', this.dir, 'commit', '--quiet', '-m', message], { env: { ...GIT_ENV, ...env } });
    return this.head();
  }

  head(): Promise<string> {
    return this.git('rev-parse', 'HEAD');
  }

  tree(rev: string): Promise<string> {
    return this.git('rev-parse', `${rev}^{tree}`);
  }

  read(name: string): Promise<string> {
    return readFile(path.join(this.dir, name), 'utf8');
  }

  /** HEAD, branch, `git status`, every file of the work tree and the operations under way: all a refusal must not touch. */
  async state(): Promise<TreeState> {
    const files: Record<string, string> = {};
    for (const entry of await readdir(this.dir, { recursive: true, withFileTypes: true })) {
      const full = path.join(entry.parentPath ?? entry.path, entry.name);
      const rel = path.relative(this.dir, full);
      if (entry.isFile() && !rel.startsWith(`.git${path.sep}`)) files[rel] = await readFile(full, 'utf8');
    }
    const gitDir = path.join(this.dir, '.git');
    return {
      head: await this.head(),
      branch: await this.git('symbolic-ref', '--quiet', 'HEAD').catch(() => '(detached)'),
      status: await this.git('status', '--porcelain'),
      files,
      gitState: ['MERGE_HEAD', 'REVERT_HEAD', 'CHERRY_PICK_HEAD', 'sequencer', 'rebase-merge', 'rebase-apply'].filter((f) => existsSync(path.join(gitDir, f))),
    };
  }

  /** The commits of `git log` on HEAD, newest first. */
  async log(): Promise<string[]> {
    return (await this.git('log', '--format=%H')).split('\n');
  }

  remove(): Promise<void> {
    return rm(this.dir, { recursive: true, force: true });
  }
}

/** The git match of a work tree. */
export function gitMatch(dir: string, o: Partial<Extract<ServiceMatch, { kind: 'git' }>> = {}): Extract<ServiceMatch, { kind: 'git' }> {
  return { kind: 'git', path: dir, branch: 'main', pollMs: 20, mode: 'revert', ...o };
}

/** A git service of a work tree. */
export function gitService(dir: string, o: Partial<Extract<ServiceMatch, { kind: 'git' }>> = {}, overrides: Partial<ServicePolicy> = {}): ServicePolicy {
  return servicePolicy({ name: 'web', match: gitMatch(dir, o), ...overrides });
}

/** A policy of these services (only what the target reads). */
export function policyOf(...services: ServicePolicy[]): Policy {
  return { services: Object.fromEntries(services.map((s) => [s.name, s])) } as unknown as Policy;
}

/** Waits until `check` holds (every 10 ms, for at most 5 s). */
export async function waitFor(check: () => boolean, what: string): Promise<void> {
  const until = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
