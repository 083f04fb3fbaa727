/** When to try a failed message again: the receiver's Retry-After and the dispatcher's jitter. */

/** The longest Retry-After honoured; a receiver asking for more is tried again after this long. */
export const MAX_RETRY_AFTER_MS = 3_600_000;

/** How far a backoff is spread either side of its nominal value (±20 %). */
export const JITTER = 0.2;

/**
 * A Retry-After header (RFC 9110 §10.2.3) as milliseconds from `now`: either delay-seconds
 * (`120`) or an HTTP-date (`Wed, 21 Oct 2026 07:28:00 GMT`). A date in the past is 0; a missing
 * or unreadable value is undefined, and the caller's own backoff applies.
 */
export function parseRetryAfter(value: unknown, now: Date = new Date()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (typeof text !== 'string') return undefined;
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1_000;
  const at = Date.parse(httpDateAsGmt(trimmed) ?? '');
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now.getTime());
}

/**
 * The three HTTP-date forms a recipient must accept, as text Date.parse reads as GMT: IMF-fixdate
 * (`Sun, 06 Nov 1994 08:49:37 GMT`) and RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) name GMT
 * already; asctime (`Sun Nov  6 08:49:37 1994`) does not, and Date.parse would read it as local
 * time. Anything else (Date.parse takes many a looser form) is no HTTP-date.
 */
function httpDateAsGmt(text: string): string | undefined {
  if (/^[A-Za-z]{3,9}, [\d]{2}[ -][A-Za-z]{3}[ -]\d{2,4} \d{2}:\d{2}:\d{2} GMT$/.test(text)) return text;
  if (/^[A-Za-z]{3} [A-Za-z]{3} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/.test(text)) return `${text} GMT`;
  return undefined;
}

/**
 * `ms` spread uniformly over ±20 % (`random` gives [0, 1)), so messages that failed together —
 * a receiver that was down for everyone — do not all come back at the same instant. Not "full
 * jitter" (0 … ms): that can retry almost at once, and keeps the schedule an operator reads in
 * the log (1 s, 2 s, 4 s …) no longer recognisable.
 */
export function jittered(ms: number, random: () => number = Math.random): number {
  return Math.round(ms * (1 - JITTER + 2 * JITTER * random()));
}

/** The nominal backoff after `attempts` failed attempts: 1 s, 2 s, 4 s … capped at `maxMs`. */
export function backoffMs(attempts: number, maxMs: number): number {
  return Math.min(maxMs, 1_000 * 2 ** Math.max(0, attempts - 1));
}

/** How long a failed message waits, and what its stored error says about that wait. */
export interface RetryWait {
  /** Until the next attempt. */
  waitMs: number;
  /** The receiver's Retry-After as honoured (at most `maxRetryAfterMs`); absent when it gave none. */
  retryAfterMs?: number;
  /** Appended to the stored error when the Retry-After asked for more than is honoured. */
  note: string;
}

/**
 * The wait before the next attempt: the backoff with jitter, and never less than the receiver's
 * Retry-After — which is honoured up to `maxRetryAfterMs` (a receiver asking for a day would
 * otherwise hold a page back for a day).
 */
export function retryWait(backoff: number, asked: number | undefined, opts: { maxRetryAfterMs?: number; random?: () => number } = {}): RetryWait {
  const waitMs = jittered(backoff, opts.random);
  if (asked === undefined) return { waitMs, note: '' };
  const max = opts.maxRetryAfterMs ?? MAX_RETRY_AFTER_MS;
  const retryAfterMs = Math.min(asked, max);
  return { waitMs: Math.max(waitMs, retryAfterMs), retryAfterMs, note: asked > max ? `; waiting ${seconds(max)}, the longest Retry-After honoured` : '' };
}

/** A wait as the log and `last_error` show it: `2 s`, `1.5 s`. */
export function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}
