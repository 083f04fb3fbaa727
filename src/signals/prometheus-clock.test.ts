import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Logger } from 'pino';
import { PrometheusClock, type ClockReading } from './prometheus-clock.js';

const HOST = 1_700_000_000_000;

/** A logger recording what was logged at each level. */
function recorder(): { log: Logger; lines: { level: string; fields: Record<string, unknown>; msg: string }[] } {
  const lines: { level: string; fields: Record<string, unknown>; msg: string }[] = [];
  const at = (level: string) => (fields: Record<string, unknown>, msg: string) => lines.push({ level, fields, msg });
  return { log: { warn: at('warn'), info: at('info'), debug: at('debug') } as unknown as Logger, lines };
}

/**
 * A clock whose Prometheus is `offset()` ms ahead of the host (or answers `fail`), counting
 * readings. Both host clocks stand still, so a busy machine's round trip cannot shift the offset.
 */
function clockWith(offset: () => number | Error, opts: { refreshMs?: number; retryMs?: number } = {}) {
  const { log, lines } = recorder();
  let reads = 0;
  const read = async (): Promise<ClockReading> => {
    reads++;
    const o = offset();
    return o instanceof Error ? { ok: false, detail: o.message } : { ok: true, prometheusMs: HOST + o };
  };
  const clock = new PrometheusClock({ read, now: () => HOST, monotonic: () => 0, log, ...opts });
  return { clock, lines, reads: () => reads };
}

describe('PrometheusClock', () => {
  it('translates host time by the measured offset, measured once per refresh period', async () => {
    const { clock, lines, reads } = clockWith(() => 600_000);
    assert.equal(await clock.toPrometheus(HOST), HOST + 600_000);
    assert.equal(await clock.toPrometheus(HOST + 5), HOST + 600_005);
    assert.equal(reads(), 1);
    const warned = lines.filter((l) => l.level === 'warn');
    assert.equal(warned.length, 1);
    assert.match(warned[0]?.msg ?? '', /Prometheus's clock is 10 min ahead of this host's/);
    assert.deepEqual(warned[0]?.fields, {
      hostTime: new Date(HOST).toISOString(), prometheusTime: new Date(HOST + 600_000).toISOString(), offsetMs: 600_000, roundTripMs: 0,
    });
  });

  it('clocks within a second of each other agree: no offset, no warning', async () => {
    const { clock, lines } = clockWith(() => -800);
    assert.equal(await clock.offsetMs(), 0);
    assert.deepEqual(lines, []);
  });

  it('warns once per change of the offset, not at every measurement', async () => {
    let offset = -600_000;
    const { clock, lines, reads } = clockWith(() => offset, { refreshMs: 0 });
    const settle = async (): Promise<number> => {
      await clock.offsetMs();
      await new Promise((r) => setImmediate(r)); // the refresh runs beside the query
      return clock.offsetMs();
    };
    assert.equal(await clock.offsetMs(), -600_000);
    offset = -600_400; // jitter within the tolerance keeps the applied offset
    assert.equal(await settle(), -600_000);
    offset = -605_000;
    assert.equal(await settle(), -605_000);
    offset = 200;
    assert.equal(await settle(), 0);
    assert.ok(reads() >= 4);
    assert.deepEqual(lines.map((l) => [l.level, l.fields.offsetMs]), [['warn', -600_000], ['warn', -605_000], ['info', 200]]);
    assert.match(lines[0]?.msg ?? '', /10 min behind this host's/);
  });

  it('a failed measurement keeps the last known offset (0 at first) and says so at debug', async () => {
    let answer: number | Error = new Error('ECONNREFUSED');
    const { clock, lines } = clockWith(() => answer, { refreshMs: 0, retryMs: 0 });
    assert.equal(await clock.offsetMs(), 0);
    assert.deepEqual(lines.map((l) => [l.level, l.fields.offsetMs, l.fields.error]), [['debug', 0, 'ECONNREFUSED']]);
    answer = 120_000;
    await clock.offsetMs();
    await new Promise((r) => setImmediate(r));
    assert.equal(await clock.offsetMs(), 120_000);
    answer = new Error('timeout');
    await clock.offsetMs();
    await new Promise((r) => setImmediate(r));
    assert.equal(await clock.offsetMs(), 120_000);
    assert.equal(lines.at(-1)?.level, 'debug');
    assert.equal(lines.at(-1)?.fields.offsetMs, 120_000);
  });

  it('only the first query waits for a measurement; later ones use the known offset while it runs', async () => {
    let release: (r: ClockReading) => void = () => {};
    let reads = 0;
    const clock = new PrometheusClock({
      read: () => {
        reads++;
        return reads === 1 ? Promise.resolve({ ok: true, prometheusMs: HOST + 60_000 }) : new Promise<ClockReading>((r) => (release = r));
      },
      now: () => HOST,
      monotonic: () => 0,
      refreshMs: 0,
    });
    assert.equal(await clock.offsetMs(), 60_000);
    // The next measurement hangs: queries go on with the offset known.
    assert.equal(await clock.offsetMs(), 60_000);
    assert.equal(await clock.offsetMs(), 60_000);
    assert.equal(reads, 2, 'one measurement at a time');
    release({ ok: true, prometheusMs: HOST + 120_000 });
    await new Promise((r) => setImmediate(r));
    assert.equal(await clock.offsetMs(), 120_000);
  });
});
