import { spawn } from 'node:child_process';

/** How much of a failed command's output a message keeps: its end, where the error is. */
const OUTPUT_TAIL = 2_000;
/** After the timeout's SIGTERM, how long the command has before SIGKILL. */
const KILL_GRACE_MS = 5_000;
/** After the command exited, how long output still in its pipes is waited for. */
const DRAIN_MS = 200;

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
