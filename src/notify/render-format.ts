/** Formatting primitives every channel's message shares (see render.ts): times, durations, values, clipping. */
import { shortId } from '../model/image-ref.js';
import { redactUrl } from '../model/redact-url.js';

/** `sha256:0123456789abcdef…` → `0123456789ab`; no image (no previous version) → `unknown`. */
export function shortImage(id: string | null | undefined): string {
  return id ? shortId(id) : 'unknown';
}

export const oneLine = (s: string): string => s.replace(/[\r\n]+/g, ' ');

/** `850 ms`, `3.4 s`, `2 min 05 s`, `1 h 02 min`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return 'unknown';
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  const s = Math.round(ms / 1_000);
  if (s < 3_600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3_600)} h ${String(Math.floor((s % 3_600) / 60)).padStart(2, '0')} min`;
}

/** `2024-05-01T03:00:15.123Z` → `2024-05-01 03:00:15 UTC`; anything unparsable is shown as given. */
export function formatTime(iso: string): string {
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? iso : `${t.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

export const formatDate = (iso: string): string => formatTime(iso).slice(0, 10);

export function formatValue(v: number | null): string {
  if (v === null || Number.isNaN(v)) return 'no data';
  return Number.isInteger(v) || !Number.isFinite(v) ? String(v) : String(Number(v.toPrecision(6)));
}

/** Cuts `s` to at most `max` UTF-16 units, ending in `…`, never inside a surrogate pair. */
export function clip(s: string, max: number): string {
  if (s.length <= max) return s;
  let cut = s.slice(0, Math.max(0, max - 1));
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}

export const isHttpUrl = (u: string): boolean => /^https?:\/\//i.test(u);

/**
 * The event's Prometheus graph link as a message may show it: without credentials, even when the
 * event was recorded with them (the Prometheus URL's `user:password@` or a `?token=`).
 */
export function graphLink(e: { graphUrl?: string }): string | undefined {
  return e.graphUrl ? redactUrl(e.graphUrl) : undefined;
}
