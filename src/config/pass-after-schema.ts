import { z } from 'zod';
import { formatDuration, parseDuration } from './duration.js';
import { isMap, Problem } from './raw.js';

/**
 * `pass_after`: a timing key, in `defaults:` and per service like `window`. A deployment whose
 * every rule has been ok for `ok` samples in a row, at least `min` after it started, becomes
 * known-good before its window ends. Its cross-key checks (against the window and the interval
 * it is used with) are here too, so schema.ts only spreads the key in.
 */

const DEFAULT_WINDOW_MS = 600_000;
const DEFAULT_INTERVAL_MS = 15_000;

const duration = z
  .string()
  .refine((text) => parseDuration(text) !== undefined, { message: 'expected a duration such as 500ms, 15s, 10m or 1h' })
  .transform((text) => parseDuration(text) as number);

const passAfterHelp = 'Decide sooner: a deployment whose every rule (notify rules and the built-in serving rule included) was ok — no breach, no sample without data — '
  + 'for `ok` samples in a row, and at least `min` after it started, becomes known-good before its window ends, recorded as passed_early. '
  + 'A hold, a migration freeze, a revert running or too little data (min_data_ratio) keeps it watching to the end of the window. Default: off.';

/** `{ok, min}` as written; the loader turns it into ServicePolicy.passAfter. */
export const passAfterSchema = z
  .strictObject({
    ok: z.number().int().min(1).max(100_000).describe('Consecutive samples in which every rule was ok (each sample `interval` apart).'),
    min: duration.describe('And at least this long after the deployment started (a duration: 2m); at most the window.'),
  })
  .describe(passAfterHelp);

/** The service-level key: `null` turns off an early pass the defaults set. */
export const servicePassAfter = passAfterSchema.nullable().optional().describe(`${passAfterHelp} null: this service never passes early, whatever the defaults say.`);

/** The `defaults:` key: no default, so no service passes early unless the policy says so. */
export const defaultsPassAfter = passAfterSchema.optional().describe(passAfterHelp);

type Raw = Record<string, unknown>;

const ms = (v: unknown): number | undefined => (typeof v === 'string' ? parseDuration(v) : undefined);

/** What one set of timings says, with where each value came from. */
interface Timings { passAfter: unknown; window: unknown; interval: unknown }

/** Why `pass_after` can never take effect with this window and interval; none when it can. */
function contradictions(t: Timings): { key: 'min' | 'ok'; message: string }[] {
  const p = t.passAfter;
  if (!isMap(p)) return [];
  const windowMs = t.window === undefined ? DEFAULT_WINDOW_MS : ms(t.window);
  const intervalMs = t.interval === undefined ? DEFAULT_INTERVAL_MS : ms(t.interval);
  const minMs = ms(p.min);
  const out: { key: 'min' | 'ok'; message: string }[] = [];
  if (windowMs === undefined || windowMs <= 0) return out;
  if (minMs !== undefined && minMs > windowMs) {
    out.push({ key: 'min', message: `pass_after.min (${formatDuration(minMs)}) is longer than the window (${formatDuration(windowMs)}): the window ends first, so it could never pass early` });
  }
  if (typeof p.ok === 'number' && Number.isInteger(p.ok) && p.ok >= 1 && intervalMs !== undefined && intervalMs > 0 && p.ok * intervalMs > windowMs) {
    out.push({ key: 'ok', message: `pass_after.ok: ${p.ok} samples every ${formatDuration(intervalMs)} take ${formatDuration(p.ok * intervalMs)}, longer than the window (${formatDuration(windowMs)}), so it could never pass early` });
  }
  return out;
}

/**
 * `pass_after` that could never take effect is refused: a `min` longer than the window, or `ok`
 * samples that take longer than it. The defaults are checked against the default window; a
 * service against its own window and interval, where it sets any of the three (so a mistake
 * made once in `defaults:` is reported once).
 */
export function passAfterProblems(raw: unknown): Problem[] {
  if (!isMap(raw)) return [];
  const d = isMap(raw.defaults) ? raw.defaults : {};
  const problems: Problem[] = [];
  for (const c of contradictions({ passAfter: d.pass_after, window: d.window, interval: d.interval })) {
    problems.push({ keys: ['defaults', 'pass_after', c.key], message: c.message });
  }
  if (!isMap(raw.services)) return problems;
  for (const [name, svc] of Object.entries(raw.services)) {
    if (!isMap(svc)) continue;
    const own = Object.hasOwn(svc, 'pass_after');
    if (!own && svc.window === undefined && svc.interval === undefined) continue;
    const timings = { passAfter: own ? svc.pass_after : d.pass_after, window: svc.window ?? d.window, interval: svc.interval ?? d.interval };
    for (const c of contradictions(timings)) {
      if (own) problems.push({ keys: ['services', name, 'pass_after', c.key], message: c.message });
      else problems.push({ keys: ['services', name, svc.window !== undefined ? 'window' : 'interval'], message: `${c.message} (pass_after from defaults)` });
    }
  }
  return problems;
}
