import pino, { type Logger } from 'pino';
import { redactUrlsIn } from '../model/redact-url.js';

/** Field paths whose values never reach the log. */
export const REDACT_PATHS = [
  'password', '*.password', 'secret', '*.secret', 'token', '*.token', 'authorization', '*.authorization',
  'headers.authorization', '*.headers.authorization', 'routing_key', '*.routing_key', 'webhook_url', '*.webhook_url',
  'smtp_url', '*.smtp_url', 'databaseUrl', '*.databaseUrl', 'connectionString', '*.connectionString',
  'routingKey', '*.routingKey', 'webhookUrl', '*.webhookUrl', 'smtpUrl', '*.smtpUrl',
  'notifications.*.routingKey', 'notifications.*.webhookUrl', 'notifications.*.smtpUrl', 'notifications.*.secret',
];

/** How deep `withoutUrlCredentials` looks into a logged object; log fields are shallow. */
const MAX_DEPTH = 6;

/**
 * A logged value with the credentials of every URL in its strings removed (`http://user:pass@host`,
 * `?token=…`), however it got there: an error message, a notification event's graph link, a detail.
 * Only plain objects and arrays are walked; errors go through `serializeError`. Returns the value
 * itself when nothing changed.
 */
export function withoutUrlCredentials(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactUrlsIn(value);
  if (value === null || typeof value !== 'object' || depth >= MAX_DEPTH) return value;
  if (Array.isArray(value)) {
    const items = value.map((v) => withoutUrlCredentials(v, depth + 1));
    return items.some((v, i) => v !== value[i]) ? items : value;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  let out: Record<string, unknown> | undefined;
  for (const [key, v] of Object.entries(value)) {
    const next = withoutUrlCredentials(v, depth + 1);
    if (next !== v) (out ??= { ...(value as Record<string, unknown>) })[key] = next;
  }
  return out ?? value;
}

/**
 * pino's error serializer without what an HTTP client's error carries about its request — the
 * config (base URL with credentials, auth), the request (its headers) and the response — nor a
 * PostgreSQL error's quote of the row it refused, and with URL credentials removed from the
 * message, the stack and the causes.
 */
export function serializeError(err: unknown): unknown {
  return cleanError(pino.stdSerializers.err(err as Error) as unknown, 0);
}

function cleanError(serialized: unknown, depth: number): unknown {
  if (serialized === null || typeof serialized !== 'object') return withoutUrlCredentials(serialized);
  // A PostgreSQL error's `detail` and `where` quote the row or key it refused ("Failing row
  // contains (…)"): for a known-good record, a container's environment. Code and message stay.
  const { config: _config, request: _request, response: _response, detail: _detail, where: _where, cause, ...rest } = serialized as Record<string, unknown>;
  const out = withoutUrlCredentials(rest) as Record<string, unknown>;
  if (cause !== undefined) out.cause = depth < MAX_DEPTH ? cleanError(cause, depth + 1) : '[cause omitted]';
  return out;
}

/**
 * JSON logs as log collectors read them without configuration: `"level":"info"` (a name, not
 * pino's number) and `"time":"2025-01-31T12:00:00.000Z"` (ISO 8601, UTC); a readable form when
 * stdout is a terminal.
 */
export function createLogger(opts: { level?: string; pretty?: boolean; destination?: pino.DestinationStream } = {}): Logger {
  const pretty = !opts.destination && (opts.pretty ?? process.stdout.isTTY);
  return pino({
    name: 'rollguard',
    level: opts.level ?? process.env.ROLLGUARD_LOG_LEVEL ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: { err: serializeError },
    formatters: { level: (label) => ({ level: label }), log: (fields) => withoutUrlCredentials(fields) as Record<string, unknown> },
    timestamp: pino.stdTimeFunctions.isoTime,
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true } } } : {}),
  }, opts.destination);
}
