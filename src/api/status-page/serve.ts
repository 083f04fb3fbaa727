import type http from 'node:http';
import { z } from 'zod';
import { jsonNumber } from '../../model/json-number.js';
import { CLIENT_JS } from './client.js';
import { html, page } from './html.js';
import { renderDeployment } from './render-deployment.js';
import { renderHome } from './render-home.js';
import { statusView, type DeploymentDetail, type DeploymentRow, type StatusView } from './view.js';

/** What the status page reads from the daemon (a part of the API's source). */
export interface StatusPageSource {
  status(): unknown | Promise<unknown>;
  /**
   * The status without what costs a database query (the notification counts), for `/`, which
   * every open page polls every 2 s; without it the page uses `status()`.
   */
  pageStatus?(): unknown | Promise<unknown>;
  history(opts: { service?: string; limit?: number }): Promise<unknown>;
  /** One deployment with its samples, decisions, actions and rules; undefined when there is none. */
  deployment?(id: number): Promise<DeploymentDetail | undefined>;
}

/** How many recorded deployments `/` lists. */
export const LATEST_DEPLOYMENTS = 20;
/** How long the page waits for the store before it is shown without what the store holds. */
export const STORE_TIMEOUT_MS = 3_000;

/** The store did not answer (an error or no answer in time): the page says so instead of failing. */
export class StoreUnavailable extends Error {
  constructor(cause: unknown) {
    super(`the store is not answering: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'StoreUnavailable';
  }
}

/** `read()`, or StoreUnavailable when it fails or takes longer than `ms`. */
export async function fromStore<T>(read: () => Promise<T>, ms = STORE_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms); });
  try {
    return await Promise.race([read(), late]);
  } catch (err) {
    throw new StoreUnavailable(err);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Everything the page shows comes from the daemon: scripts only from it, styles inline, images
 * only inline (the charts are inline SVG), requests only back to it.
 */
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

const deploymentRow = z.object({
  id: z.coerce.number(),
  service: z.string(),
  from_ref: z.string().nullable(),
  from_image: z.string().nullable(),
  to_ref: z.string(),
  to_image: z.string(),
  state: z.string(),
  reason: z.string().nullable(),
  dry_run: z.boolean(),
  attempts: z.coerce.number(),
  started_at: z.coerce.date(),
  detected_at: z.coerce.date(),
  window_ends_at: z.coerce.date(),
  decided_at: z.coerce.date().nullable(),
  recovered_at: z.coerce.date().nullable(),
});

/** The daemon's status, or an empty one when it does not fit (the page still loads and says so). */
export function parseStatus(body: unknown): StatusView {
  const parsed = statusView.safeParse(body);
  return parsed.success ? parsed.data : statusView.parse({});
}

/** Recorded deployments the page can list; rows that do not fit are left out. */
export function parseDeployments(body: unknown): DeploymentRow[] {
  if (!Array.isArray(body)) return [];
  return body.flatMap((row) => {
    const parsed = deploymentRow.safeParse(row);
    return parsed.success ? [parsed.data] : [];
  });
}

function write(res: http.ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, ...SECURITY_HEADERS, ...extra });
  res.end(body);
}

function notFound(res: http.ServerResponse, what: string, now: Date): void {
  const main = html`<p>${what}</p><p><a href="/">Back to all services</a></p>`;
  write(res, 404, 'text/html; charset=utf-8', page('rollguard: not found', html`<h1><a href="/">rollguard</a></h1>`, main, { live: false, generatedAt: now }));
}

/** The store is down: a page that says so (and retries, as a live page does), not an error body. */
function storeDown(res: http.ServerResponse, what: string, now: Date): void {
  const main = html`<p class="store-down" role="alert">${what} is unavailable: the store is not answering. This page tries again every 2 s.</p><p><a href="/">Back to all services</a></p>`;
  write(res, 503, 'text/html; charset=utf-8', page('rollguard: store unavailable', html`<h1><a href="/">rollguard</a></h1>`, main, { live: true, generatedAt: now }), { 'retry-after': '2' });
}

/** JSON with ±Infinity written `'+Inf'` / `'-Inf'` (JSON.stringify would make them null: no data). */
function toJson(body: unknown): string {
  return JSON.stringify(body, (_key, v: unknown) => jsonNumber(v));
}

/**
 * Serves the status page's routes: `/`, `/deployments/:id`, `/api/v1/deployments/:id` (JSON) and
 * `/status-page.js`. Returns false for any other path, for the API to answer.
 */
export async function serveStatusPage(url: URL, source: StatusPageSource, res: http.ServerResponse, now: () => Date = () => new Date()): Promise<boolean> {
  if (url.pathname === '/') {
    // The services come from memory; the deployments from the store, which may be down: the page
    // is shown without them then, since what runs and what is watched matter most in an outage.
    const history = fromStore(() => source.history({ limit: LATEST_DEPLOYMENTS })).then(parseDeployments, () => undefined);
    const status = await (source.pageStatus ?? source.status).call(source);
    write(res, 200, 'text/html; charset=utf-8', renderHome(parseStatus(status), await history, now()));
    return true;
  }
  if (url.pathname === '/status-page.js') {
    write(res, 200, 'text/javascript; charset=utf-8', CLIENT_JS);
    return true;
  }
  const m = /^\/(api\/v1\/)?deployments\/([^/]+)$/.exec(url.pathname);
  if (!m) return false;
  const json = m[1] !== undefined;
  const id = Number(m[2]);
  let detail: DeploymentDetail | undefined;
  try {
    const read = source.deployment?.bind(source);
    detail = Number.isSafeInteger(id) && id > 0 && read ? await fromStore(() => read(id)) : undefined;
  } catch (err) {
    if (!(err instanceof StoreUnavailable)) throw err;
    // The cause (a driver's message, which may name hosts) stays out of the answer.
    if (json) write(res, 503, 'application/json', JSON.stringify({ error: 'the store is not answering; try again shortly' }), { 'retry-after': '2' });
    else storeDown(res, `Deployment #${m[2]}`, now());
    return true;
  }
  if (json) {
    if (!detail) write(res, 404, 'application/json', JSON.stringify({ error: `no deployment ${m[2]}` }));
    else write(res, 200, 'application/json', toJson(detail));
    return true;
  }
  if (!detail) notFound(res, `No deployment #${m[2]} is recorded.`, now());
  else write(res, 200, 'text/html; charset=utf-8', renderDeployment(detail, now()));
  return true;
}
