import { parseDuration } from '../config/duration.js';

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;
const UNIX_SECONDS = /^\d+(?:\.\d+)?$/;

/**
 * A point in time given on the command line: RFC 3339 with a zone (`2026-11-26T14:05:00Z`,
 * `2026-11-26T15:05:00+01:00`) or Unix seconds (`1795701900`, `1795701900.5`). Returns
 * milliseconds since the epoch, or undefined for anything else (a date without a zone is
 * ambiguous and refused).
 */
export function parseTimeArg(text: string): number | undefined {
  const t = text.trim();
  if (UNIX_SECONDS.test(t)) {
    const ms = Math.round(Number(t) * 1000);
    return Number.isFinite(ms) ? ms : undefined;
  }
  if (!RFC3339.test(t)) return undefined;
  const ms = Date.parse(t.replace(' ', 'T'));
  return Number.isNaN(ms) ? undefined : ms;
}

/** How far back `--since` reaches: `7d`, or any policy duration (`12h`, `30m`). Milliseconds, or undefined. */
export function parseSinceArg(text: string): number | undefined {
  const days = /^(\d+(?:\.\d+)?)d$/.exec(text.trim());
  const ms = days ? Math.round(Number(days[1]) * 86_400_000) : parseDuration(text);
  return ms !== undefined && ms > 0 ? ms : undefined;
}
