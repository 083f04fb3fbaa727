import http from 'node:http';
import https from 'node:https';
import axios, { type AxiosInstance } from 'axios';
import type { HttpSignal } from '../config/policy.js';
import { boundedRequest } from './bounded-request.js';
import type { Measurement, SignalProvider } from './provider.js';

/** Reads a dot path (`checks.database.status`) out of a parsed JSON body. */
export function readPath(body: unknown, dotted: string): unknown {
  let cur: unknown = body;
  for (const key of dotted.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

/** The largest health response body read; a readiness answer is a few KiB at most. Past it the check fails. */
export const HTTP_CHECK_MAX_BODY_BYTES = 1024 * 1024;

/**
 * HTTP health/readiness checks: 1 when status and every JSON expectation hold, else 0, with the
 * reason in the detail. The check's `timeoutMs` bounds the whole exchange, body included.
 */
export class HttpHealthProvider implements SignalProvider<HttpSignal> {
  readonly kind = 'http';
  private readonly http: AxiosInstance;

  constructor(client?: AxiosInstance, private readonly maxBodyBytes = HTTP_CHECK_MAX_BODY_BYTES) {
    this.http = client ?? axios.create({
      httpAgent: new http.Agent({ keepAlive: true, maxSockets: 4 }),
      httpsAgent: new https.Agent({ keepAlive: true, maxSockets: 4 }),
      maxRedirects: 0,
      validateStatus: () => true,
      responseType: 'text',
      transformResponse: (data: unknown) => data,
      // A check is no stricter than the probes operators trust (curl, browsers, Go's net/http as
      // in Kubernetes' probes), which read header lines ending in a bare LF; Node's strict parser
      // refuses them (HPE_CR_EXPECTED) and a healthy endpoint would read as failed. Node's
      // lenient parser also accepts: header values with invalid characters, invalid HTTP
      // versions, both Transfer-Encoding and Content-Length, data after a `Connection: close`
      // message, extra transfer encodings after `chunked`, a chunk without its trailing CRLF, and
      // spaces after a chunk size. Those matter to a proxy forwarding messages (request
      // smuggling); a check only reads one answer of the service it judges. A response that is
      // not HTTP at all still fails, with the parser's error as the reason.
      insecureHTTPParser: true,
    });
  }

  async measure(signal: HttpSignal): Promise<Measurement> {
    const started = performance.now();
    const done = (value: 0 | 1, detail?: string): Measurement => ({ value, detail, latencyMs: performance.now() - started });
    const exchange = await boundedRequest<string>(this.http, { method: 'GET', url: signal.url }, { timeoutMs: signal.timeoutMs, maxBytes: this.maxBodyBytes });
    if (!exchange.ok) {
      const f = exchange.failure;
      return done(0, f.kind === 'error' ? `request failed: ${f.detail}` : f.detail);
    }
    const status = exchange.res.status;
    const data: unknown = exchange.res.data;
    const text = typeof data === 'string' ? data : String(data ?? '');
    if (status !== signal.status) return done(0, `HTTP ${status}, expected ${signal.status}`);
    const expectations = Object.entries(signal.json);
    if (!expectations.length) return done(1);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return done(0, 'body is not JSON');
    }
    for (const [key, want] of expectations) {
      const got = readPath(body, key);
      if (got !== want) return done(0, `${key} is ${JSON.stringify(got) ?? 'missing'}, expected ${JSON.stringify(want)}`);
    }
    return done(1);
  }
}
