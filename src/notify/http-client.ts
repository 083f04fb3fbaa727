import http from 'node:http';
import https from 'node:https';
import axios, { type AxiosInstance } from 'axios';

/** One keep-alive client for the HTTP channels; statuses are judged by the caller, redirects not followed. */
export function notifyHttpClient(timeoutMs = 10_000): AxiosInstance {
  return axios.create({
    timeout: timeoutMs,
    maxRedirects: 0,
    validateStatus: () => true,
    httpAgent: new http.Agent({ keepAlive: true, maxSockets: 4 }),
    httpsAgent: new https.Agent({ keepAlive: true, maxSockets: 4 }),
    headers: { 'user-agent': 'rollguard' },
  });
}

/** Error text of a failed request without the request's URL or headers (they can carry secrets). */
export function requestError(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return e.code ? `request failed: ${e.code}` : `request failed: ${e.message ?? String(err)}`;
}
