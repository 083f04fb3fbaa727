import type { AxiosInstance, AxiosRequestConfig, AxiosResponse } from 'axios';
import { errorText } from './provider.js';

/** What one exchange may take: `timeoutMs` for all of it, `maxBytes` of response body. */
export interface ExchangeLimits {
  timeoutMs: number;
  maxBytes: number;
}

/** Why an exchange gave no response: past its deadline, a body past its limit, or the transport's own error. */
export interface ExchangeFailure {
  kind: 'timeout' | 'too-large' | 'error';
  /** e.g. `no complete response within 2000 ms`, `response body larger than 10 MiB`, `ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9090`. */
  detail: string;
}

export type Exchange<T> = { ok: true; res: AxiosResponse<T> } | { ok: false; failure: ExchangeFailure };

/**
 * Sends one request bounded as a whole. axios's `timeout` is, in Node, an idle timeout of the
 * socket: a server that sends its headers and then one byte a second never trips it. An
 * AbortSignal made for this request alone ends the exchange `timeoutMs` after it began,
 * whatever stage it is in (connecting, waiting for headers, reading the body), and
 * `maxContentLength` ends it once the body (decompressed) passes `maxBytes`. Never rejects.
 */
export async function boundedRequest<T>(http: AxiosInstance, config: AxiosRequestConfig, limits: ExchangeLimits): Promise<Exchange<T>> {
  const deadline = AbortSignal.timeout(Math.max(1, Math.round(limits.timeoutMs)));
  try {
    const res = await http.request<T>({ ...config, signal: deadline, maxContentLength: limits.maxBytes });
    return { ok: true, res };
  } catch (err) {
    if (deadline.aborted) return { ok: false, failure: { kind: 'timeout', detail: `no complete response within ${limits.timeoutMs} ms` } };
    if (/maxContentLength size of \d+ exceeded/.test(errorText(err))) {
      return { ok: false, failure: { kind: 'too-large', detail: `response body larger than ${formatBytes(limits.maxBytes)}` } };
    }
    return { ok: false, failure: { kind: 'error', detail: errorText(err) } };
  }
}

/** `10 MiB`, `512 KiB`, `300 bytes`. */
export function formatBytes(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}
