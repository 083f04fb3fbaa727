import { z } from 'zod';
import { parseDuration } from './duration.js';
import { isMap } from './raw.js';

// The top-level `prometheus:` block: where Prometheus is and how to reach it — the settings
// Prometheus's own clients take (basic_auth, authorization, tls_config) plus the headers a
// Mimir, Cortex or Thanos tenant needs, and the base of the graph links people open.

/** The policy keys whose value is a secret: given as `${ENV}` or by `<key>_file`, never literally. */
export const PROMETHEUS_SECRET_KEYS = [
  ['prometheus', 'basic_auth', 'password'],
  ['prometheus', 'authorization', 'credentials'],
] as const;

const timeout = z
  .string()
  .refine((text) => parseDuration(text) !== undefined, { message: 'expected a duration such as 500ms, 15s, 10m or 1h' })
  .transform((text) => parseDuration(text) as number)
  .refine((ms) => ms > 0, { message: 'must be greater than 0' });

const httpUrl = z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' });
const filePath = (what: string): z.ZodString => z.string().min(1).describe(`Path of the file holding ${what}, relative to the policy file; read when the policy is loaded (and reloaded).`);

/** `scheme://…@`: a URL carrying a user (and maybe a password) before its host. */
const USERINFO = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i;

/** Exactly one of `key` and `key_file`. */
function oneOf(key: string) {
  return (body: Record<string, unknown>, ctx: z.RefinementCtx): void => {
    if ((body[key] === undefined) === (body[`${key}_file`] === undefined)) {
      ctx.addIssue({ code: 'custom', message: `set exactly one of ${key} (as "\${ENV_VAR}") or ${key}_file` });
    }
  };
}

const basicAuth = z
  .strictObject({
    username: z.string().min(1).describe('The user name.'),
    password: z.string().min(1).optional().describe('The password, from the environment: "${PROM_PASSWORD}" (a literal is refused); or password_file.'),
    password_file: filePath('the password').optional(),
  })
  .superRefine(oneOf('password'))
  .describe('HTTP basic authentication, as Prometheus\'s own basic_auth: username, and password as ${ENV} or password_file.');

const authorization = z
  .strictObject({
    type: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*$/, 'expected an authentication scheme such as Bearer')
      .refine((t) => t.toLowerCase() !== 'basic', { message: 'use basic_auth for Basic authentication' })
      .default('Bearer')
      .describe('The scheme sent before the credentials (default Bearer).'),
    credentials: z.string().min(1).optional().describe('The token, from the environment: "${PROM_TOKEN}" (a literal is refused); or credentials_file.'),
    credentials_file: filePath('the token').optional(),
  })
  .superRefine(oneOf('credentials'))
  .describe('An Authorization header: `<type> <credentials>`, as Prometheus\'s own authorization (a bearer token by default).');

/** A header name as HTTP allows it (a token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Headers the HTTP client sets itself: sent twice or overridden, they would break the request. */
const CLIENT_HEADERS = new Set(['host', 'content-length', 'content-type', 'content-encoding', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer']);

const headerName = z
  .string()
  .regex(HEADER_NAME, 'expected a header name: letters, digits and - (e.g. X-Scope-OrgID)')
  .superRefine((header, ctx) => {
    const lower = header.toLowerCase();
    if (lower === 'authorization' || lower === 'proxy-authorization') {
      ctx.addIssue({ code: 'custom', message: `credentials do not go in headers: use prometheus.authorization or basic_auth (their secrets come from the environment or a file and are never shown)` });
    } else if (CLIENT_HEADERS.has(lower)) {
      ctx.addIssue({ code: 'custom', message: `${header} is set by rollguard's HTTP client and cannot be given here` });
    }
  });

const headerValue = z
  .union([z.string(), z.number()])
  .transform(String)
  .refine((v) => !/[\r\n\0]/.test(v), { message: 'a header value cannot contain line breaks' });

const tlsConfig = z
  .strictObject({
    ca_file: filePath('the CA certificates (PEM) that Prometheus\'s certificate is checked against, instead of the system\'s').optional(),
    cert_file: filePath('the client certificate (PEM), for a Prometheus that asks for one; goes with key_file').optional(),
    key_file: filePath('the client certificate\'s private key (PEM, unencrypted); goes with cert_file').optional(),
    server_name: z.string().min(1).optional().describe('The name Prometheus\'s certificate must carry, when it is not the URL\'s host (e.g. the URL is an IP address); also sent as SNI.'),
    insecure_skip_verify: z.boolean().default(false).describe('Do not check Prometheus\'s certificate at all (default false). Anyone on the path can then read the credentials: prefer ca_file.'),
  })
  .superRefine((t, ctx) => {
    if ((t.cert_file === undefined) !== (t.key_file === undefined)) {
      ctx.addIssue({ code: 'custom', path: [t.cert_file === undefined ? 'key_file' : 'cert_file'], message: 'cert_file and key_file go together (a client certificate and its key)' });
    }
  })
  .describe('TLS to an https:// Prometheus, as Prometheus\'s own tls_config: a private CA, a client certificate, the expected server name.');

/** The `prometheus:` block of the policy file. Checks between its keys are in `prometheusProblems`. */
export const prometheusSchema = z
  .strictObject({
    url: httpUrl
      .refine((u) => !/[?#]/.test(u), { message: 'a query string or fragment cannot be used: rollguard appends /api/v1/… to this URL; give credentials in basic_auth or authorization (or as http://user:${PASSWORD}@host:9090)' })
      .describe('Prometheus base URL (the API; often loopback). Credentials go in basic_auth or authorization; a URL with user:${PASSWORD}@ still works. rollguard never shows credentials (graph links, logs, CLI output).'),
    timeout: timeout.default(5_000).describe('A query slower than this is no data (default 5s).'),
    external_url: httpUrl
      .refine((u) => !/[?#]/.test(u), { message: 'a query string or fragment cannot be used: rollguard appends /graph?… to this URL' })
      .refine((u) => !USERINFO.test(u), { message: 'external_url is shown in messages; it cannot carry credentials' })
      .optional()
      .describe('The base of the graph links in messages, as people open it (e.g. https://prometheus.example.com); default: url without its credentials.'),
    basic_auth: basicAuth.optional(),
    authorization: authorization.optional(),
    headers: z
      .record(headerName, headerValue)
      .default({})
      .describe('Extra request headers by name, e.g. X-Scope-OrgID: tenant-1 for a Mimir, Cortex or Thanos tenant. Not for credentials (use authorization); a value may be "${ENV}".'),
    tls_config: tlsConfig.optional(),
  })
  .describe('The Prometheus server that prometheus signals query, and how to reach it; required when any service uses one.');

export type PrometheusFile = z.output<typeof prometheusSchema>;


/**
 * Checks between the keys of the raw `prometheus:` block: one way to authenticate, and TLS
 * settings only for an https:// URL. On the raw document, so that they are reported together
 * with the schema's problems.
 */
export function prometheusProblems(raw: unknown): { keys: (string | number)[]; message: string }[] {
  if (!isMap(raw)) return [];
  const problems: { keys: (string | number)[]; message: string }[] = [];
  if (raw.basic_auth !== undefined && raw.authorization !== undefined) {
    problems.push({ keys: ['prometheus', 'authorization'], message: 'set at most one of basic_auth or authorization' });
  }
  const url = typeof raw.url === 'string' ? raw.url : undefined;
  const auth = raw.basic_auth !== undefined ? 'basic_auth' : raw.authorization !== undefined ? 'authorization' : undefined;
  if (url && auth && USERINFO.test(url)) {
    problems.push({ keys: ['prometheus', 'url'], message: `credentials are given twice: remove the user:password@ from url, ${auth} holds them` });
  }
  if (url && raw.tls_config !== undefined && !/^https:/i.test(url)) {
    problems.push({ keys: ['prometheus', 'tls_config'], message: 'tls_config applies to an https:// url only' });
  }
  return problems;
}
