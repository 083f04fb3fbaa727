import { spawn } from 'node:child_process';
import type { ServicePolicy } from '../../config/policy.js';
import { redactUrlsIn } from '../../model/redact-url.js';
import type { PutBack } from '../target.js';
import type { GitSpec } from './repo.js';

/** How much of a failed command's output a message keeps: its end, where the error is. */
const OUTPUT_TAIL = 2_000;
/** After the timeout's SIGTERM, how long the command has before SIGKILL. */
const KILL_GRACE_MS = 5_000;
/** After the command exited, how long output still in its pipes is waited for. */
const DRAIN_MS = 200;

/** rollguard's own secrets: a restart command is the operator's script, and needs none of them. */
const ROLLGUARD_SECRETS = ['ROLLGUARD_API_TOKEN', 'ROLLGUARD_API_TOKEN_FILE', 'DATABASE_URL'];

/** The environment a restart command runs with: rollguard's own (PATH, HOME, XDG_RUNTIME_DIR…) without its secrets. */
export function restartEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const name of ROLLGUARD_SECRETS) delete out[name];
  return out;
}

/** How a command ended: its exit code, or why it has none, and the end of its output (stdout and stderr as they came). */
export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  output: string;
}

/**
 * Runs an argv without a shell, in `cwd`, for at most `timeoutMs` (then SIGTERM, and SIGKILL if
 * it lingers). Resolves once the command exits, even when it leaves a background process holding
 * its output open (a restart script that starts the application with `&`): that process is not
 * waited for. Rejects only when the command cannot be started.
 */
export function runCommand(argv: readonly string[], opts: { cwd: string; timeoutMs: number; env?: NodeJS.ProcessEnv }): Promise<CommandResult> {
  const [program, ...args] = argv;
  if (!program) return Promise.reject(new Error('the command is empty'));
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { cwd: opts.cwd, env: opts.env ?? process.env, shell: false, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk: Buffer): void => {
      output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL * 4);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let timedOut = false;
    let killer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      killer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
    }, opts.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      clearTimeout(killer);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(killer);
      const done = (): void => {
        child.stdout.destroy();
        child.stderr.destroy();
        resolve({ code, signal, timedOut, output: output.slice(-OUTPUT_TAIL) });
      };
      const drain = setTimeout(done, DRAIN_MS);
      child.once('close', () => {
        clearTimeout(drain);
        done();
      });
    });
  });
}

/** A command's failure in words, with the end of its output. */
export function describeFailure(argv: readonly string[], r: CommandResult, timeoutMs: number): string {
  const how = r.timedOut ? `took longer than ${timeoutMs} ms and was stopped` : r.code !== null ? `exited with ${r.code}` : `was killed by ${r.signal ?? 'a signal'}`;
  const output = r.output.trim();
  return `${argv.join(' ')} ${how}${output ? `; its output ends with: ${output}` : ' without output'}`;
}

/**
 * Runs a git service's restart command in its work tree (no shell), without rollguard's own
 * secrets in its environment; returns what to add to the put-back's detail, or throws with the
 * command's output when it fails. What it printed may hold credentials: URLs in it are redacted
 * before they reach a message.
 */
export async function restart(service: ServicePolicy, spec: NonNullable<ServicePolicy['restart']>, cwd: string, known: GitSpec, put: PutBack, env: NodeJS.ProcessEnv): Promise<string> {
  const argv = spec.command;
  const code = put.how === 'already' ? 'the known-good code is checked out' : 'the known-good code was put back';
  let result: CommandResult;
  try {
    result = await runCommand(argv, { cwd, timeoutMs: spec.timeoutMs, env: { ...restartEnv(env), ROLLGUARD_SERVICE: service.name, ROLLGUARD_COMMIT: known.commit } });
  } catch (err) {
    // No cause: a spawn error carries the argv (spawnargs), unredacted, to whoever logs it.
    throw new Error(redactUrlsIn(`${put.detail}; ${code}, but the restart command ${argv.join(' ')} could not be started: ${err instanceof Error ? err.message : String(err)}`));
  }
  if (result.code !== 0) throw new Error(redactUrlsIn(`${put.detail}; ${code}, but the restart command ${describeFailure(argv, result, spec.timeoutMs)}`));
  return redactUrlsIn(`ran ${argv.join(' ')}: exit 0`);
}
