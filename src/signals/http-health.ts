import http from 'node:http';
import https from 'node:https';
import axios, { type AxiosInstance } from 'axios';
import type { HttpSignal } from '../config/policy.js';
import { errorText, type Measurement, type SignalProvider } from './provider.js';

/** Reads a dot path (`checks.database.status`) out of a parsed JSON body. */
export function readPath(body: unknown, dotted: string): unknown {
  let cur: unknown = body;
  for (const key of dotted.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

/** HTTP health/readiness checks: 1 when status and every JSON expectation hold, else 0. */
export class HttpHealthProvider implements SignalProvider<HttpSignal> {
  readonly kind = 'http';
  private readonly http: AxiosInstance;

  constructor(client?: AxiosInstance) {
    this.http = client ?? axios.create({
      httpAgent: new http.Agent({ keepAlive: true, maxSockets: 4 }),
      httpsAgent: new https.Agent({ keepAlive: true, maxSockets: 4 }),
      maxRedirects: 0,
      validateStatus: () => true,
      responseType: 'text',
      transformResponse: (data: unknown) => data,
    });
  }

  async measure(signal: HttpSignal): Promise<Measurement> {
    const started = performance.now();
    const done = (value: 0 | 1, detail?: string): Measurement => ({ value, detail, latencyMs: performance.now() - started });
    let status: number;
    let text: string;
    try {
      const res = await this.http.get<string>(signal.url, { timeout: signal.timeoutMs, signal: AbortSignal.timeout(signal.timeoutMs + 500) });
      status = res.status;
      text = typeof res.data === 'string' ? res.data : String(res.data ?? '');
    } catch (err) {
      return done(0, `request failed: ${errorText(err)}`);
    }
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
