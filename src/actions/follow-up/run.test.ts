import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type Docker from 'dockerode';
import pino from 'pino';
import type { FollowUpStep } from '../../config/policy.js';
import { FOLLOW_UP_STEPS, type FollowUpRegistry } from './index.js';
import type { FollowUpKind, StepContext, StepOutcome } from './kind.js';
import { runFollowUps, type FollowUpResult } from './run.js';

/** Fake exec steps: the command's first word says what the step does (`ok`, `fail`, `hang`, `throw`, `print`). */
type ExecStep = Extract<FollowUpStep, { kind: 'exec' }>;

function step(command: string[], over: Partial<ExecStep> = {}): ExecStep {
  return { kind: 'exec', container: 'app', command, timeoutMs: 1_000, continueOnError: false, ...over };
}

interface Fake { kinds: FollowUpRegistry; ran: string[]; aborted: string[] }

function fake(): Fake {
  const ran: string[] = [];
  const aborted: string[] = [];
  const exec: FollowUpKind<ExecStep> = {
    label: (s) => `fake ${s.command.join(' ')}`,
    async run(s, ctx: StepContext): Promise<StepOutcome> {
      const [what, arg = ''] = s.command;
      ran.push(s.command.join(' '));
      switch (what) {
        case 'ok': return { ok: true, summary: `did ${arg}` };
        case 'fail': return { ok: false, summary: `failed ${arg}`, output: arg };
        case 'print': return { ok: false, summary: 'exit code 1', output: arg };
        case 'throw': throw new Error(`thrown ${arg}`);
        case 'hang':
          // Never settles by itself, as a hung Docker call would; only the abort is seen.
          ctx.signal.addEventListener('abort', () => aborted.push(s.command.join(' ')));
          return new Promise<StepOutcome>(() => {});
        default: throw new Error(`unknown fake ${what}`);
      }
    },
    timeoutNote: (s) => `still going in ${s.container}`,
  };
  return { kinds: { ...FOLLOW_UP_STEPS, exec }, ran, aborted };
}

const log = pino({ level: 'silent' });
const docker = {} as Docker;

describe('runFollowUps', () => {
  it('runs the steps in order and hands each result to onStep before the next step starts', async () => {
    const f = fake();
    const seen: string[] = [];
    const results = await runFollowUps([step(['ok', 'a']), step(['ok', 'b']), step(['ok', 'c'])], { docker, log, kinds: f.kinds }, async (r) => {
      seen.push(`${r.index}:${r.detail} after ${f.ran.length} ran`);
    });
    assert.deepEqual(f.ran, ['ok a', 'ok b', 'ok c']);
    assert.deepEqual(seen, ['0:did a after 1 ran', '1:did b after 2 ran', '2:did c after 3 ran']);
    assert.deepEqual(results.map((r) => [r.index, r.kind, r.label, r.ok, r.skipped]), [
      [0, 'exec', 'fake ok a', true, false], [1, 'exec', 'fake ok b', true, false], [2, 'exec', 'fake ok c', true, false],
    ]);
  });

  it('a failed step skips the steps after it, each reported as skipped naming the failed step', async () => {
    const f = fake();
    const recorded: FollowUpResult[] = [];
    const results = await runFollowUps([step(['ok', 'a']), step(['fail', 'b']), step(['ok', 'c']), step(['ok', 'd'])], { docker, log, kinds: f.kinds }, async (r) => {
      recorded.push(r);
    });
    assert.deepEqual(f.ran, ['ok a', 'fail b']);
    assert.deepEqual(results.map((r) => [r.ok, r.skipped]), [[true, false], [false, false], [false, true], [false, true]]);
    assert.equal(results[1]!.detail, 'failed b\nb');
    assert.equal(results[2]!.detail, 'skipped: step 2 (fake fail b) failed');
    assert.equal(results[3]!.detail, 'skipped: step 2 (fake fail b) failed');
    assert.deepEqual(recorded, results, 'skipped steps are recorded too');
  });

  it('a failed step with continueOnError is reported and the next steps run', async () => {
    const f = fake();
    const results = await runFollowUps([step(['fail', 'a'], { continueOnError: true }), step(['ok', 'b']), step(['fail', 'c']), step(['ok', 'd'])], { docker, log, kinds: f.kinds });
    assert.deepEqual(f.ran, ['fail a', 'ok b', 'fail c']);
    assert.deepEqual(results.map((r) => [r.ok, r.skipped]), [[false, false], [true, false], [false, false], [false, true]]);
    assert.equal(results[3]!.detail, 'skipped: step 3 (fake fail c) failed');
  });

  it('a step that overruns its timeoutMs fails as timed out, is told to let go, and is not waited for', async () => {
    const f = fake();
    const started = Date.now();
    const results = await runFollowUps([step(['hang', 'x'], { timeoutMs: 150, continueOnError: true }), step(['ok', 'after'])], { docker, log, kinds: f.kinds });
    const took = Date.now() - started;
    assert.equal(results[0]!.ok, false);
    assert.equal(results[0]!.detail, 'timed out after 150 ms (still going in app)');
    assert.deepEqual(f.aborted, ['hang x'], "the step's signal was aborted");
    assert.equal(results[1]!.ok, true, 'the next step ran');
    assert.ok(took >= 140 && took < 1_000, `took ${took} ms`);
  });

  it('a timed-out step without continueOnError skips the rest', async () => {
    const f = fake();
    const results = await runFollowUps([step(['hang', 'x'], { timeoutMs: 50 }), step(['ok', 'never'])], { docker, log, kinds: f.kinds });
    assert.deepEqual(f.ran, ['hang x']);
    assert.equal(results[1]!.detail, 'skipped: step 1 (fake hang x) failed');
  });

  it('never rejects: a throwing implementation is a failed step and a failing onStep is only logged', async () => {
    const f = fake();
    let calls = 0;
    const results = await runFollowUps([step(['throw', 'boom'], { continueOnError: true }), step(['ok', 'b'])], { docker, log, kinds: f.kinds }, async () => {
      calls += 1;
      throw new Error('store down');
    });
    assert.equal(calls, 2);
    assert.deepEqual(results.map((r) => [r.ok, r.detail]), [[false, 'thrown boom'], [true, 'did b']]);
  });

  it('an implementation that throws before returning a promise is a failed step too', async () => {
    const f = fake();
    const kinds: FollowUpRegistry = { ...f.kinds, exec: { ...f.kinds.exec, run: () => { throw new Error('sync boom'); } } };
    const [r] = await runFollowUps([step(['any'])], { docker, log, kinds });
    assert.deepEqual([r!.ok, r!.detail], [false, 'sync boom']);
  });

  it('times come from the injected clock; a skipped step starts and finishes at once', async () => {
    const f = fake();
    let t = Date.parse('2025-03-01T12:00:00Z');
    const now = (): Date => new Date((t += 1_000));
    const results = await runFollowUps([step(['fail', 'a']), step(['ok', 'b'])], { docker, log, kinds: f.kinds, now });
    assert.deepEqual(results.map((r) => [r.startedAt.toISOString(), r.finishedAt.toISOString()]), [
      ['2025-03-01T12:00:01.000Z', '2025-03-01T12:00:02.000Z'],
      ['2025-03-01T12:00:03.000Z', '2025-03-01T12:00:03.000Z'],
    ]);
  });

  it('a long output is cut to about 2000 characters, keeping the summary and the end where the error is', async () => {
    const f = fake();
    const output = `${'early line\n'.repeat(1_000)}Traceback: the real error`;
    const [r] = await runFollowUps([step(['print', output])], { docker, log, kinds: f.kinds });
    assert.ok(r!.detail.length <= 2_000, `detail is ${r!.detail.length} chars`);
    assert.ok(r!.detail.length > 1_900, 'the room is used');
    assert.match(r!.detail, /^exit code 1\n\[… earlier output cut\]\n/);
    assert.ok(r!.detail.endsWith('Traceback: the real error'));
  });

  it('URL passwords are removed from labels and details, in summaries, outputs and errors alike', async () => {
    const f = fake();
    const url = 'redis://cache:hunter2-pw@10.0.0.5:6379/0';
    const results = await runFollowUps([
      step(['fail', `connect to ${url} refused`], { continueOnError: true }),
      step(['throw', `${url}?token=abc123`], { continueOnError: true }),
      step(['print', `${'x'.repeat(3_000)} postgres://app:hunter2-pw@db/app`]),
    ], { docker, log, kinds: f.kinds });
    const text = JSON.stringify(results);
    assert.ok(!text.includes('hunter2-pw'), text);
    assert.ok(!text.includes('abc123'), text);
    assert.equal(results[0]!.label, 'fake fail connect to redis://10.0.0.5:6379/0 refused');
    assert.equal(results[1]!.detail, 'thrown redis://10.0.0.5:6379/0?token=redacted');
    assert.ok(results[2]!.detail.endsWith('postgres://db/app'));
  });

  it('logs carry the label and detail without URL credentials', async () => {
    const f = fake();
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (s: string) => lines.push(s) });
    await runFollowUps([step(['fail', 'http://u:hunter2-pw@h/x'])], { docker, log: logger, kinds: f.kinds });
    assert.equal(lines.length, 1);
    assert.ok(!lines[0]!.includes('hunter2-pw'), lines[0]);
    assert.match(lines[0]!, /follow-up step failed/);
  });

  it('a long label (a long argv) is shortened', async () => {
    const f = fake();
    const [r] = await runFollowUps([step(['ok', 'z'.repeat(500)])], { docker, log, kinds: f.kinds });
    assert.equal(r!.label.length, 160);
    assert.ok(r!.label.startsWith('fake ok zzz') && r!.label.endsWith('z…'));
  });

  it('no steps, no results', async () => {
    assert.deepEqual(await runFollowUps([], { docker, log }), []);
  });
});
