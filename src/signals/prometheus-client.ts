import https from 'node:https';
import axios, { type AxiosInstance, type CreateAxiosDefaults } from 'axios';
import type { PrometheusSettings } from '../config/policy.js';
import { PrometheusProvider, type PrometheusOptions } from './prometheus.js';

/**
 * The axios settings for talking to Prometheus as the policy says: the base URL, the extra
 * headers (a tenant's X-Scope-OrgID), basic auth or an Authorization header, and for an https://
 * URL an agent with the policy's CA, client certificate, server name and verification. Every
 * request rollguard sends Prometheus — instant and batched queries, `time()`, range queries for
 * baselines and replays, the live check — goes through a client made from these.
 *
 * Redirects are not followed (a redirect could carry the credentials to another host) and every
 * status is an answer, read by the caller.
 */
export function prometheusClientConfig(settings: PrometheusSettings): CreateAxiosDefaults {
  const headers: Record<string, string> = { ...settings.headers };
  if (settings.authorization) headers.Authorization = `${settings.authorization.type} ${settings.authorization.credentials}`;
  const config: CreateAxiosDefaults = { baseURL: settings.url, validateStatus: () => true, maxRedirects: 0, headers };
  if (settings.basicAuth) config.auth = { username: settings.basicAuth.username, password: settings.basicAuth.password };
  if (/^https:/i.test(settings.url)) config.httpsAgent = httpsAgent(settings.tls);
  return config;
}

/** An agent per client: connections are kept alive between ticks and carry the policy's TLS settings. */
function httpsAgent(tls: PrometheusSettings['tls']): https.Agent {
  return new https.Agent({
    keepAlive: true,
    ...(tls?.ca !== undefined ? { ca: tls.ca } : {}),
    ...(tls?.cert !== undefined && tls.key !== undefined ? { cert: tls.cert, key: tls.key } : {}),
    ...(tls?.serverName !== undefined ? { servername: tls.serverName } : {}),
    rejectUnauthorized: !(tls?.insecureSkipVerify ?? false),
  });
}

/** An HTTP client for Prometheus as the policy configures it. */
export function createPrometheusClient(settings: PrometheusSettings): AxiosInstance {
  return axios.create(prometheusClientConfig(settings));
}

/** The provider the daemon, the live check and simulate query Prometheus with, over the policy's client. */
export function prometheusProvider(settings: PrometheusSettings, opts: Omit<PrometheusOptions, 'http'> = {}): PrometheusProvider {
  return new PrometheusProvider(settings.url, settings.timeoutMs, { ...opts, http: createPrometheusClient(settings) });
}
