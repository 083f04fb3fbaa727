import { redactUrlsIn } from '../../model/redact-url.js';

/**
 * What the alertmanager signal and the revert's silence share to call Alertmanager's API v2: the
 * base URL split from its credentials, one bounded call, and failures told without credentials.
 */

/** The base URL without its userinfo, and that userinfo as a basic-auth header (fetch refuses URLs that carry credentials). */
export function alertmanagerEndpoint(base: string): { url: string; headers: Record<string, string> } {
  const u = new URL(base);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (u.username || u.password) {
    headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
    u.username = '';
    u.password = '';
  }
  return { url: u.toString().replace(/\/+$/, ''), headers };
}

/** An answer other than 2xx; `status` lets a caller tell a missing silence (404) from an outage. */
export class AlertmanagerHttpError extends Error {
  constructor(readonly status: number, body: string) {
    super(`HTTP ${status}${body.trim() ? `: ${body.trim().slice(0, 200)}` : ''}`);
    this.name = 'AlertmanagerHttpError';
  }
}

/** One call, ended after `timeoutMs` whatever stage it is in; the body parsed as JSON (undefined when empty). Rejects on any failure. */
export async function callAlertmanager(f: typeof fetch, url: string, init: RequestInit, timeoutMs: number): Promise<unknown> {
  const res = await f(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(Math.max(1, Math.round(timeoutMs))) });
  const text = await res.text();
  if (!res.ok) throw new AlertmanagerHttpError(res.status, text);
  return text ? (JSON.parse(text) as unknown) : undefined;
}

/** What went wrong, with fetch's underlying cause (ECONNREFUSED…), without credentials. */
export function failureText(err: unknown): string {
  const e = err as { name?: unknown; message?: unknown; cause?: { message?: unknown } } | undefined;
  if (e?.name === 'TimeoutError') return 'no answer in time';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  const cause = typeof e?.cause?.message === 'string' ? `: ${e.cause.message}` : '';
  return redactUrlsIn(`${message}${cause}`);
}
