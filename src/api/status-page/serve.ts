import type http from 'node:http';
import { z } from 'zod';
import { CLIENT_JS } from './client.js';
import { html, page } from './html.js';
import { renderDeployment } from './render-deployment.js';
import { renderHome } from './render-home.js';
import { statusView, type DeploymentDetail, type DeploymentRow, type StatusView } from './view.js';

/** What the status page reads from the daemon (a part of the API's source). */
export interface StatusPageSource {
  status(): unknown | Promise<unknown>;
  history(opts: { service?: string; limit?: number }): Promise<unknown>;
  /** One deployment with its samples, decisions, actions and rules; undefined when there is none. */
  deployment?(id: number): Promise<DeploymentDetail | undefined>;
}

/** How many recorded deployments `/` lists. */
export const LATEST_DEPLOYMENTS = 20;

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

/**
 * Serves the status page's routes: `/`, `/deployments/:id`, `/api/v1/deployments/:id` (JSON) and
 * `/status-page.js`. Returns false for any other path, for the API to answer.
 */
export async function serveStatusPage(url: URL, source: StatusPageSource, res: http.ServerResponse, now: () => Date = () => new Date()): Promise<boolean> {
  if (url.pathname === '/') {
    const [status, history] = await Promise.all([source.status(), source.history({ limit: LATEST_DEPLOYMENTS })]);
    write(res, 200, 'text/html; charset=utf-8', renderHome(parseStatus(status), parseDeployments(history), now()));
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
  const detail = Number.isSafeInteger(id) && id > 0 ? await source.deployment?.(id) : undefined;
  if (json) {
    if (!detail) write(res, 404, 'application/json', JSON.stringify({ error: `no deployment ${m[2]}` }));
    else write(res, 200, 'application/json', JSON.stringify(detail));
    return true;
  }
  if (!detail) notFound(res, `No deployment #${m[2]} is recorded.`, now());
  else write(res, 200, 'text/html; charset=utf-8', renderDeployment(detail, now()));
  return true;
}
