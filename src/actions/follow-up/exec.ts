import { Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type Docker from 'dockerode';
import type { FollowUpStep } from '../../config/policy.js';
import { errorText, isNotFound, type FollowUpKind, type StepContext, type StepOutcome } from './kind.js';

type ExecStep = Extract<FollowUpStep, { kind: 'exec' }>;

/** Output kept while the command runs: only its end is shown, so a chatty command cannot fill memory. */
const KEEP_BYTES = 64 * 1024;

/** Collects what a stream writes, keeping the last `limit` bytes. */
export class OutputTail extends Writable {
  private chunks: Buffer[] = [];
  private kept = 0;
  /** Bytes written in all, kept or not. */
  total = 0;

  constructor(private readonly limit = KEEP_BYTES) {
    super();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.chunks.push(chunk);
    this.kept += chunk.length;
    this.total += chunk.length;
    while (this.kept - (this.chunks[0]?.length ?? 0) >= this.limit) this.kept -= this.chunks.shift()!.length;
    done();
  }

  /** The kept bytes as text, at most `limit` of them. */
  text(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.limit)).toString('utf8');
  }
}

/** Resolves when the exec's output stream has ended; on abort the stream is destroyed. */
function drained(stream: NodeJS.ReadableStream, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = stream as NodeJS.ReadableStream & { destroy?: () => void };
    const onAbort = (): void => {
      s.destroy?.();
      reject(new Error('aborted'));
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    const done = (): void => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    };
    s.on('end', done);
    s.on('close', done);
    s.on('error', (err: Error) => {
      signal.removeEventListener('abort', onAbort);
      reject(err);
    });
  });
}

/** The exit code, once Docker has it: the stream can end a moment before the exec is marked finished. */
async function exitCode(exec: Docker.Exec, signal: AbortSignal): Promise<number | null> {
  for (let wait = 10; ; wait = Math.min(wait * 2, 200)) {
    const info = await exec.inspect({ abortSignal: signal });
    if (!info.Running) return info.ExitCode;
    await delay(wait, undefined, { signal });
  }
}

/**
 * `docker exec` of an argv (no shell) in a running container. Its stdout and stderr are kept
 * together as Docker delivers them (Docker copies the two on their own, so a line of one may come
 * before an earlier line of the other); a non-zero exit code fails the step with the code and the output.
 */
export const exec: FollowUpKind<ExecStep> = {
  label(step) {
    return `exec ${step.command.join(' ')} in ${step.container}`;
  },

  async run(step, ctx: StepContext): Promise<StepOutcome> {
    let created: Docker.Exec;
    try {
      created = await ctx.docker.getContainer(step.container).exec({
        Cmd: step.command, AttachStdin: false, AttachStdout: true, AttachStderr: true, Tty: false, abortSignal: ctx.signal,
      });
    } catch (err) {
      if (isNotFound(err)) return { ok: false, summary: `no container named ${step.container}` };
      return { ok: false, summary: `cannot exec in ${step.container}: ${errorText(err)}` };
    }
    const stream = await created.start({ hijack: true, stdin: false, abortSignal: ctx.signal });
    const output = new OutputTail();
    ctx.docker.modem.demuxStream(stream, output, output);
    await drained(stream, ctx.signal);
    const code = await exitCode(created, ctx.signal);
    const text = output.text();
    if (code === 0) return { ok: true, summary: 'exit code 0', output: text };
    return { ok: false, summary: code === null ? 'no exit code reported' : `exit code ${code}`, output: text };
  },

  timeoutNote(step) {
    return `the command may still be running in ${step.container}`;
  },
};
