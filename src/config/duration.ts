/** The units of a duration, largest first, in milliseconds; a day is 24h, a week 7d, a year 365d, as in Prometheus. */
const UNITS = [
  ['y', 31_536_000_000],
  ['w', 604_800_000],
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1_000],
  ['ms', 1],
] as const;

/**
 * Prometheus's own duration syntax (model.ParseDuration): whole numbers, each unit at most once,
 * largest first — `1h30m`, `1w2d`. `1m1h` or `1.5h` are refused there, so they are refused here:
 * a burn-rate window is handed to Prometheus as a PromQL range and must read the same to it.
 */
const DURATION = /^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$/;

/**
 * One decimal amount of one unit (`1.5h`, `0.5s`): what policies written before Prometheus's syntax
 * was adopted may hold, still read so that an upgrade does not refuse a working policy.
 */
const DECIMAL = /^(\d+\.\d+)(ms|s|m|h|d)$/;

/** Parses `500ms`, `90s`, `1h30m`, `3d`, `1w2d`, `1y` (and the older `1.5h`) into milliseconds; returns undefined for anything else. */
export function parseDuration(text: string): number | undefined {
  const t = text.trim();
  const decimal = DECIMAL.exec(t);
  if (decimal) {
    const unitMs = UNITS.find(([unit]) => unit === decimal[2])?.[1] ?? 0;
    const ms = Math.round(Number(decimal[1]) * unitMs);
    return Number.isSafeInteger(ms) ? ms : undefined;
  }
  const match = t === '' ? null : DURATION.exec(t);
  if (!match) return undefined;
  let ms = 0;
  UNITS.forEach(([, unitMs], i) => {
    const amount = match[i + 1];
    if (amount !== undefined) ms += Number(amount) * unitMs;
  });
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/**
 * Formats milliseconds as Prometheus does (model.Duration.String): every unit from days down,
 * largest first (`1h30m`, `3d`, `1s500ms`); years and weeks only when they divide it exactly, as
 * `90d` reads better than `12w6d`. The result is a valid PromQL range that parseDuration reads back.
 */
export function formatDuration(ms: number): string {
  let rest = Math.max(0, Math.round(ms));
  if (rest === 0) return '0s';
  let out = '';
  for (const [unit, unitMs] of UNITS) {
    if ((unit === 'y' || unit === 'w') && rest % unitMs !== 0) continue;
    const amount = Math.floor(rest / unitMs);
    if (amount > 0) {
      out += `${amount}${unit}`;
      rest -= amount * unitMs;
    }
  }
  return out;
}
