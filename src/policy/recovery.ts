import type { RecoveryCheck, Signal } from '../config/policy.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, y: 31_536_000_000 };
const PART = /(\d+)(ms|s|m|h|d|w|y)/g;

/** A PromQL duration (`5m`, `1h30m`, `500ms`) in milliseconds; undefined when it is not one. */
export function promqlDurationMs(text: string): number | undefined {
  const t = text.trim();
  if (!/^(\d+(ms|s|m|h|d|w|y))+$/.test(t)) return undefined;
  let ms = 0;
  for (const [, n, unit] of t.matchAll(PART)) ms += Number(n) * (UNIT_MS[unit as string] as number);
  return ms;
}

/**
 * How far back in time a PromQL query reads: its longest range (`[5m]`, a subquery's `[30m:1m]`)
 * plus its longest `offset`. A value of the query describes only what ran during that span before
 * the evaluation time. Quoted strings (label matchers, regexes) are left out of the reading.
 */
export function promqlLookbackMs(query: string): number {
  const code = query.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""').replace(/#[^\n]*/g, '');
  let range = 0;
  for (const [, d] of code.matchAll(/\[\s*([0-9a-z]+)\s*(?::[^\]]*)?\]/g)) range = Math.max(range, promqlDurationMs(d as string) ?? 0);
  let offset = 0;
  for (const [, d] of code.matchAll(/\boffset\s+([0-9a-z]+)/g)) offset = Math.max(offset, promqlDurationMs(d as string) ?? 0);
  return range + offset;
}

/**
 * When a recovery criterion's samples start to describe the restored version alone. A Prometheus
 * signal over `rate(…[5m])` still mixes in the replaced version until five minutes after the
 * restore, plus `marginMs` for the restored replicas' first scrape; an HTTP check or a container's
 * state describes what runs at once.
 */
export function describesRestoredFrom(signal: Signal | undefined, restoredAt: number, marginMs: number): number {
  if (signal?.kind !== 'prometheus') return restoredAt;
  const lookback = promqlLookbackMs(signal.query);
  return lookback > 0 ? restoredAt + lookback + marginMs : restoredAt;
}

/** The recovery criteria split by whether their samples at `at` can be judged yet. */
export function settledCriteria(
  checks: readonly RecoveryCheck[],
  signals: Readonly<Record<string, Signal>>,
  restoredAt: number,
  marginMs: number,
  at: number,
): { settled: RecoveryCheck[]; waiting: { check: RecoveryCheck; from: number }[]; allSettledAt: number } {
  const settled: RecoveryCheck[] = [];
  const waiting: { check: RecoveryCheck; from: number }[] = [];
  let allSettledAt = restoredAt;
  for (const check of checks) {
    const from = describesRestoredFrom(signals[check.signal], restoredAt, marginMs);
    allSettledAt = Math.max(allSettledAt, from);
    if (at >= from) settled.push(check);
    else waiting.push({ check, from });
  }
  return { settled, waiting, allSettledAt };
}
