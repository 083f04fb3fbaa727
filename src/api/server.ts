import http from 'node:http';
import type { Logger } from 'pino';
import { z } from 'zod';
import { parseDuration } from '../config/duration.js';
import { ALERTMANAGER_MAX_BODY, alertmanagerPayload, type AlertmanagerPayload } from './alertmanager.js';
import { bearerMatches } from './auth.js';
import type { Metrics } from './metrics.js';
import { serveStatusPage } from './status-page/serve.js';
import type { DeploymentDetail } from './status-page/view.js';

/** What the HTTP API reads from the running daemon. */
export interface ApiSource {
  health(): { ok: boolean; [k: string]: unknown };
  status(): unknown | Promise<unknown>;
  /** The status without the notification counts (a query over the outbox), for the status page's polls. */
  pageStatus?(): unknown | Promise<unknown>;
  history(opts: { service?: string; limit?: number }): Promise<unknown>;
  hold(service: string, forMs: number, reason: string): Promise<unknown>;
  markMigrations(service: string, image: string): Promise<unknown>;
  /** The deploy API's announcement of a deployment: the service's target looks for it at once (git services). */
  announceDeployment?(service: string, commit?: string): Promise<unknown>;
  release(service: string): Promise<unknown>;
  /** One deployment with its samples, decisions, actions and rules, for the status page and `/api/v1/deployments/:id`. */
  deployment?(id: number): Promise<DeploymentDetail | undefined>;
  /** `rollguard rollback`: resolves once the revert is decided and recorded. */
  rollback(service: string, opts: { to?: string; reason: string; deployment?: number }): Promise<unknown>;
  /** Alertmanager's webhook notification, already validated: logged, and its alerts kept for the status (no sample reads them). */
  alertmanager?(payload: AlertmanagerPayload): unknown;
}

/** An error whose message and HTTP status the API passes to the caller. */
interface StatusError extends Error { status: number }
const isStatusError = (err: unknown): err is StatusError => err instanceof Error && typeof (err as Partial<StatusError>).status === 'number';

const MAX_BODY = 64 * 1024;
const holdBody = z.strictObject({
  service: z.string().min(1),
  for: z.string().refine((t) => (parseDuration(t) ?? 0) > 0, { message: 'expected a duration such as 10m' }),
  reason: z.string().min(1).max(1_000),
});

const rollbackBody = z.strictObject({
  service: z.string().min(1),
  to: z.string().max(500).regex(/^[A-Za-z0-9][A-Za-z0-9._\-/:@]*$/, 'expected an image reference (name:tag, name@sha256:…, or an image ID)').optional()
    .describe('An image (tag or ID) on the host to run with the known-good settings; default: the known-good version.'),
  reason: z.string().min(1).max(1_000),
  deployment: z.number().int().optional().describe('The deployment the operator means to revert; another current one is refused (409).'),
});

/** The deploy pipeline's word that a deployment carries DB migrations (as the container label would). */
const deploymentBody = z.strictObject({
  service: z.string().min(1),
  commit: z.string().regex(/^[0-9a-f]{4,64}$/, 'expected a commit id (hex)').optional().describe('The commit just deployed; the answer says whether HEAD is it.'),
});

const migrationsBody = z.strictObject({
  service: z.string().min(1),
  image: z.string().min(1).describe('The image reference (tag) or image ID being deployed.'),
});

/** Reads a JSON body and validates it at the edge; a body that does not fit is a 400 naming each problem. */
async function readBody<S extends z.ZodType>(req: http.IncomingMessage, schema: S, maxBytes = MAX_BODY): Promise<z.output<S>> {
  const parsed = schema.safeParse(await readJson(req, maxBytes));
  if (!parsed.success) {
    const error = parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');
    throw Object.assign(new Error(error), { status: 400 });
  }
  return parsed.data;
}

async function readJson(req: http.IncomingMessage, maxBytes = MAX_BODY): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw Object.assign(new Error('body too large'), { status: 413 });
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
  } catch {
    throw Object.assign(new Error('body is not JSON'), { status: 400 });
  }
}

/** Splits `127.0.0.1:9817` / `[::1]:9817` / `9817` into host and port. */
export function parseListen(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+))?:?(\d+)$/.exec(addr.trim());
  const port = Number(m?.[3]);
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid listen address "${addr}"; expected HOST:PORT`);
  return { host: m[1] ?? m[2] ?? '127.0.0.1', port };
}

function send(res: http.ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = type === 'application/json' ? JSON.stringify(body) : String(body);
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(text);
}

/** /healthz, /metrics, and read-only JSON views of status and history. */
export async function startApi(listen: string, source: ApiSource, metrics: Metrics, log: Logger, token?: string): Promise<{ server: http.Server; url: string; close: () => Promise<void> }> {
  const { host, port } = parseListen(listen);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const announcing = url.pathname === '/api/v1/deployments' && req.method === 'POST';
    const changes = url.pathname.startsWith('/api/v1/holds') || url.pathname === '/api/v1/migrations' || url.pathname === '/api/v1/rollbacks' || url.pathname === '/api/v1/alertmanager' || announcing;
    if (!changes && req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { error: 'method not allowed' });
    const route = async (): Promise<void> => {
      if (changes) {
        if (!token) return send(res, 403, { error: 'state-changing API calls are disabled: start rollguard with ROLLGUARD_API_TOKEN or ROLLGUARD_API_TOKEN_FILE' });
        if (!bearerMatches(req.headers.authorization, token)) return send(res, 401, { error: 'missing or wrong bearer token' });
        if (req.method === 'POST' && url.pathname === '/api/v1/holds') {
          const body = await readBody(req, holdBody);
          return send(res, 201, await source.hold(body.service, parseDuration(body.for) as number, body.reason));
        }
        if (req.method === 'POST' && url.pathname === '/api/v1/migrations') {
          const body = await readBody(req, migrationsBody);
          return send(res, 200, await source.markMigrations(body.service, body.image));
        }
        if (announcing) {
          const body = await readBody(req, deploymentBody);
          if (!source.announceDeployment) return send(res, 404, { error: 'not found' });
          return send(res, 200, await source.announceDeployment(body.service, body.commit));
        }
        if (req.method === 'POST' && url.pathname === '/api/v1/rollbacks') {
          const body = await readBody(req, rollbackBody);
          return send(res, 202, await source.rollback(body.service, { to: body.to, reason: body.reason, deployment: body.deployment }));
        }
        if (req.method === 'POST' && url.pathname === '/api/v1/alertmanager' && source.alertmanager) {
          const body = await readBody(req, alertmanagerPayload, ALERTMANAGER_MAX_BODY);
          return send(res, 200, source.alertmanager(body));
        }
        const m = /^\/api\/v1\/holds\/([^/]+)$/.exec(url.pathname);
        if (req.method === 'DELETE' && m) return send(res, 200, await source.release(decodeURIComponent(m[1] as string)));
        return send(res, 404, { error: 'not found' });
      }
      switch (url.pathname) {
        case '/healthz': {
          const h = source.health();
          return send(res, h.ok ? 200 : 503, h);
        }
        case '/metrics':
          return send(res, 200, await metrics.registry.metrics(), metrics.registry.contentType);
        case '/api/v1/status':
          return send(res, 200, await source.status());
        case '/api/v1/deployments': {
          const limit = Number(url.searchParams.get('limit') ?? 100);
          if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) return send(res, 400, { error: 'limit must be an integer from 1 to 10000' });
          return send(res, 200, await source.history({ service: url.searchParams.get('service') ?? undefined, limit }));
        }
        default:
          // The status page: `/`, `/deployments/:id`, `/api/v1/deployments/:id` and its script.
          if (await serveStatusPage(url, source, res)) return;
          return send(res, 404, { error: 'not found' });
      }
    };
    route().catch((err) => {
      if (isStatusError(err)) return send(res, err.status, { error: err.message });
      log.error({ err, path: url.pathname }, 'API request failed');
      if (!res.headersSent) send(res, 500, { error: 'internal error' });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  const boundPort = typeof address === 'object' && address ? address.port : port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    server,
    url: `http://${shownHost}:${boundPort}`,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
