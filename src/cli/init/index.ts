import { randomBytes } from 'node:crypto';
import { access, lstat, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type Docker from 'dockerode';
import { reachDocker } from '../docker-reachable.js';
import { discoverContainers } from './discover.js';
import { generatePolicy } from './generate.js';
import { guessedUrls, planServices } from './plan.js';
import { probeReadiness } from './probe.js';

/** `rollguard init` cannot do what it was asked (the output file exists); the message says why. */
export class InitError extends Error {
  override name = 'InitError';
}

function exists(file: string): InitError {
  return new InitError(`${file} exists; not overwritten. Use --force to replace it, or --output to write elsewhere.`);
}

export interface InitOptions {
  output: string;
  force: boolean;
  stdout: boolean;
}

/**
 * `rollguard init`: reads the running containers and writes the starter policy for them. Returns
 * the policy text when it is to go to stdout, and a summary for the operator.
 */
export async function runInit(opts: InitOptions, docker?: Docker): Promise<{ policy?: string; summary: string }> {
  if (!opts.stdout && !opts.force && (await access(opts.output).then(() => true, () => false))) throw exists(opts.output);
  const engine = docker ?? (await reachDocker());
  const containers = await discoverContainers(engine);
  // Each guessed readiness URL is requested once now: only one answering as written may revert.
  const probes = await probeReadiness(guessedUrls(planServices(containers)));
  const { plan, text } = generatePolicy(containers, { generatedAt: new Date(), probes });
  const unverified = plan.services.filter((s) => s.verdict?.action === 'notify');
  const where = opts.stdout ? 'printed' : `wrote ${opts.output}`;
  const skipped = plan.skipped.length ? `; not included: ${plan.skipped.map((s) => `${s.name} (${s.reason})`).join(', ')}` : '';
  const summary = plan.services.length
    ? [
      `${where}: ${plan.services.length} service(s) from ${containers.length} running container(s): ${plan.services.map((s) => s.key).join(', ')}${skipped}.`,
      ...(unverified.length ? [`Readiness checks that only notify until fixed (not answering 200 as written now; see the comment above each rule): ${unverified.map((s) => s.key).join(', ')}.`] : []),
      'Review it (readiness URLs marked FIX THE PATH are guesses), then check it against the running services:',
      `  rollguard policy check ${opts.stdout ? 'FILE' : opts.output} --live`,
    ].join('\n')
    : `${where}: no running container was found${skipped}, so this is a commented template: add your services under services:.`;
  if (opts.stdout) return { policy: text, summary };
  await writePolicyFile(opts.output, text, opts.force);
  return { summary };
}

/**
 * Writes the policy to `file`. Without `force`, `wx` refuses an existing file in the same step as
 * creating it: nothing is ever overwritten by a race. With `force`, the text goes to a new file
 * beside it, renamed over it: a reader (the daemon reloading its policy) sees the old file or the
 * new one, never a half-written one, and a symlink at `file` is replaced, not written through.
 */
export async function writePolicyFile(file: string, text: string, force: boolean): Promise<void> {
  const failed = (err: unknown): InitError => {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return exists(file);
    return new InitError(`cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  };
  if (!force) {
    await writeFile(file, text, { flag: 'wx' }).catch((err: unknown) => { throw failed(err); });
    return;
  }
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    // A regular file replaced keeps its permissions (a policy may be made readable by its group only).
    const before = await lstat(file).catch(() => undefined);
    await writeFile(tmp, text, { flag: 'wx', mode: before?.isFile() ? before.mode & 0o7777 : 0o666 });
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw failed(err);
  }
}
