import { redactUrlsIn } from '../../model/redact-url.js';

/** The most a step's detail holds; the daemon records it and notifications quote it. */
export const MAX_DETAIL_CHARS = 2000;
/** The most of it the summary line may take, so some output always shows. */
const MAX_SUMMARY_CHARS = 500;

/**
 * A step's detail: its summary, then its output, with the credentials of every URL removed, at
 * most `max` characters. Output past the limit loses its beginning: the end of a failing
 * command's output is where its error is.
 */
export function composeDetail(summary: string, output?: string, max = MAX_DETAIL_CHARS): string {
  let head = redactUrlsIn(summary).trim();
  if (head.length > MAX_SUMMARY_CHARS) head = `${head.slice(0, MAX_SUMMARY_CHARS - 1)}…`;
  const body = output === undefined ? '' : redactUrlsIn(output).trimEnd();
  if (!body) return head.slice(0, max);
  const full = `${head}\n${body}`;
  if (full.length <= max) return full;
  // No count: a step may have kept only the end of its output already, so a count would be wrong.
  const marker = '[… earlier output cut]\n';
  const keep = Math.max(0, max - head.length - 1 - marker.length);
  return `${head}\n${marker}${body.slice(body.length - keep)}`;
}
