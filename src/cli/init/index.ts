import { access, writeFile } from 'node:fs/promises';
import type Docker from 'dockerode';
import { reachDocker } from '../docker-reachable.js';
import { discoverContainers } from './discover.js';
import { generatePolicy } from './generate.js';

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
  const { plan, text } = generatePolicy(containers, { generatedAt: new Date() });
  const where = opts.stdout ? 'printed' : `wrote ${opts.output}`;
  const skipped = plan.skipped.length ? `; not included: ${plan.skipped.map((s) => `${s.name} (${s.reason})`).join(', ')}` : '';
  const summary = plan.services.length
    ? [
      `${where}: ${plan.services.length} service(s) from ${containers.length} running container(s): ${plan.services.map((s) => s.key).join(', ')}${skipped}.`,
      'Review it (readiness URLs marked FIX THE PATH are guesses), then check it against the running services:',
      `  rollguard policy check ${opts.stdout ? 'FILE' : opts.output} --live`,
    ].join('\n')
    : `${where}: no running container was found${skipped}, so this is a commented template: add your services under services:.`;
  if (opts.stdout) return { policy: text, summary };
  try {
    // `wx` refuses an existing file in the same step as creating it: nothing is ever overwritten by a race.
    await writeFile(opts.output, text, { flag: opts.force ? 'w' : 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw exists(opts.output);
    throw new InitError(`cannot write ${opts.output}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return { summary };
}
