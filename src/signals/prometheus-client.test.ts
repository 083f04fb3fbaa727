import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { PrometheusSettings } from '../config/policy.js';
import { createPrometheusClient, prometheusClientConfig, prometheusProvider } from './prometheus-client.js';
import { rangeAverage } from './prometheus.js';
import { queryRange } from './prometheus-history.js';
import { makeCertificates, type TestCertificates } from './prometheus-tls.fixture.js';

const ctx = { template: { service: 'web', container: 'web', image: 'app:v2', version: 'v2' }, containerId: 'c', at: new Date() };
const signal = { kind: 'prometheus' as const, name: 'up', query: 'up{service="{{service}}"}' };

/** What a request to the loopback Prometheus carried. */
interface Seen { path: string; query: string; authorization?: string; tenant?: string }

/**
 * A loopback stand-in for the Prometheus HTTP API that records each request's path, query and
 * headers; answers 401 without the expected Authorization when `authorization` is set.
 */
function handler(seen: Seen[], authorization?: string): http.RequestListener {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const query = url.searchParams.get('query') ?? '';
    seen.push({ path: url.pathname, query, authorization: req.headers.authorization, tenant: req.headers['x-scope-orgid'] as string | undefined });
    if (authorization !== undefined && req.headers.authorization !== authorization) {
      res.writeHead(401, { 'content-type': 'text/plain' }).end('Unauthorized\n');
      return;
    }
    const now = Date.now() / 1000;
    const data = url.pathname === '/api/v1/query_range'
      ? { resultType: 'matrix', result: [{ metric: {}, values: [[now - 1, '2'], [now, '4']] }] }
      : query === 'time()' ? { resultType: 'scalar', result: [now, String(now)] } : { resultType: 'vector', result: [{ metric: {}, value: [now, '1'] }] };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'success', data }));
  };
}

async function listen(server: http.Server | https.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

describe('prometheusClientConfig()', () => {
  it('an http:// Prometheus: base URL, headers and the Authorization header; no redirects; every status is an answer', () => {
    const config = prometheusClientConfig({ url: 'http://prom:9090', timeoutMs: 1_000, headers: { 'X-Scope-OrgID': 'tenant-1' }, authorization: { type: 'Bearer', credentials: 'tok' } });
    assert.equal(config.baseURL, 'http://prom:9090');
    assert.deepEqual(config.headers, { 'X-Scope-OrgID': 'tenant-1', Authorization: 'Bearer tok' });
    assert.equal(config.maxRedirects, 0);
    assert.equal(config.validateStatus?.(503), true);
    assert.equal(config.auth, undefined);
    assert.equal(config.httpsAgent, undefined, 'no TLS agent for plain HTTP');
  });

  it('basic_auth becomes axios auth, not a header written here', () => {
    const config = prometheusClientConfig({ url: 'http://prom:9090', timeoutMs: 1_000, basicAuth: { username: 'rg', password: 'pw' } });
    assert.deepEqual(config.auth, { username: 'rg', password: 'pw' });
    assert.deepEqual(config.headers, {});
  });

  it('an https:// Prometheus gets an agent with the CA, client certificate, server name and verification', () => {
    const tls = { ca: 'CA PEM', cert: 'CERT PEM', key: 'KEY PEM', serverName: 'prom.internal', insecureSkipVerify: false };
    const agent = prometheusClientConfig({ url: 'https://10.0.0.5:9090', timeoutMs: 1_000, tls }).httpsAgent as https.Agent;
    assert.ok(agent instanceof https.Agent);
    assert.deepEqual(
      (({ ca, cert, key, servername, rejectUnauthorized }) => ({ ca, cert, key, servername, rejectUnauthorized }))(agent.options),
      { ca: 'CA PEM', cert: 'CERT PEM', key: 'KEY PEM', servername: 'prom.internal', rejectUnauthorized: true },
    );
    const insecure = prometheusClientConfig({ url: 'https://prom:9090', timeoutMs: 1_000, tls: { insecureSkipVerify: true } }).httpsAgent as https.Agent;
    assert.equal(insecure.options.rejectUnauthorized, false);
    const plain = prometheusClientConfig({ url: 'https://prom:9090', timeoutMs: 1_000 }).httpsAgent as https.Agent;
    assert.equal(plain.options.rejectUnauthorized, true, 'verified against the system CAs by default');
  });
});

describe('a Prometheus client made from the policy, against a loopback server', () => {
  const seen: Seen[] = [];
  let server: http.Server;
  let base: string;

  before(async () => {
    server = http.createServer(handler(seen, `Basic ${Buffer.from('rg:pw').toString('base64')}`));
    base = `http://127.0.0.1:${await listen(server)}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('sends the credentials and headers with every request: the clock (time()), instant and range queries', async () => {
    seen.length = 0;
    const settings: PrometheusSettings = { url: base, timeoutMs: 2_000, basicAuth: { username: 'rg', password: 'pw' }, headers: { 'X-Scope-OrgID': 'tenant-1' } };
    const provider = prometheusProvider(settings);
    assert.equal((await provider.measure(signal, ctx)).value, 1);
    assert.equal((await rangeAverage(provider, 'up', new Date(), 60_000, 1_000)).value, 3);
    const now = Date.now();
    const replay = await queryRange(provider, 'up', { startMs: now - 60_000, endMs: now, stepMs: 30_000 });
    assert.equal(replay.ok, true);
    assert.deepEqual([...new Set(seen.map((s) => s.path))].sort(), ['/api/v1/query', '/api/v1/query_range']);
    assert.ok(seen.some((s) => s.query === 'time()'), 'the clock was read');
    for (const s of seen) {
      assert.equal(s.authorization, `Basic ${Buffer.from('rg:pw').toString('base64')}`, `${s.path} ${s.query}`);
      assert.equal(s.tenant, 'tenant-1', `${s.path} ${s.query}`);
    }
  });

  it('credentials in the URL (user:password@) still work', async () => {
    const provider = prometheusProvider({ url: base.replace('http://', 'http://rg:pw@'), timeoutMs: 2_000 });
    assert.equal((await provider.measure(signal, ctx)).value, 1);
  });

  it('a refused request is no data that names the settings to check, not an "unexpected body"', async () => {
    const wrong = prometheusProvider({ url: base, timeoutMs: 2_000, basicAuth: { username: 'rg', password: 'nope' } });
    const m = await wrong.measure(signal, ctx);
    assert.equal(m.value, null);
    assert.equal(m.detail, 'Prometheus answered HTTP 401 Unauthorized: credentials missing or wrong (prometheus.basic_auth or prometheus.authorization)');
    const range = await rangeAverage(wrong, 'up', new Date(), 60_000, 1_000);
    assert.match(range.detail ?? '', /HTTP 401 Unauthorized: credentials missing or wrong/);
    const replay = await queryRange(wrong, 'up', { startMs: Date.now() - 60_000, endMs: Date.now(), stepMs: 30_000 });
    assert.deepEqual(replay, { ok: false, detail: m.detail });
  });

  it('createPrometheusClient sends the Authorization header of `authorization`', async () => {
    seen.length = 0;
    const client = createPrometheusClient({ url: base, timeoutMs: 2_000, authorization: { type: 'Bearer', credentials: 'tok' } });
    const res = await client.get('/api/v1/query', { params: { query: 'up' } });
    assert.equal(res.status, 401, 'this server wants basic auth');
    assert.equal(seen[0]?.authorization, 'Bearer tok');
  });
});

describe('a Prometheus client over TLS with a private CA and a client certificate', () => {
  let dir: string;
  let certs: TestCertificates;
  let server: https.Server;
  let port: number;
  const pem = (file: string): string => readFileSync(file, 'utf8');

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'rg-prom-tls-'));
    certs = makeCertificates(dir);
    server = https.createServer({ cert: pem(certs.serverCert), key: pem(certs.serverKey), ca: pem(certs.ca), requestCert: true, rejectUnauthorized: true }, handler([]));
    port = await listen(server);
  });
  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  const measure = async (url: string, tls: PrometheusSettings['tls']) => prometheusProvider({ url, timeoutMs: 2_000, tls }).measure(signal, ctx);
  const client = () => ({ cert: pem(certs.clientCert), key: pem(certs.clientKey) });

  it('answers with the CA and the client certificate', async () => {
    const m = await measure(`https://127.0.0.1:${port}`, { ca: pem(certs.ca), ...client(), insecureSkipVerify: false });
    assert.equal(m.value, 1, m.detail);
  });

  it('server_name: the certificate is checked for that name (and refused for one it does not carry)', async () => {
    assert.equal((await measure(`https://127.0.0.1:${port}`, { ca: pem(certs.ca), ...client(), serverName: 'localhost', insecureSkipVerify: false })).value, 1);
    const m = await measure(`https://127.0.0.1:${port}`, { ca: pem(certs.ca), ...client(), serverName: 'prom.example.com', insecureSkipVerify: false });
    assert.equal(m.value, null);
    assert.match(m.detail ?? '', /ERR_TLS_CERT_ALTNAME_INVALID.*set prometheus\.tls_config\.server_name/);
  });

  it('without the CA, the certificate is refused and the detail says to set ca_file', async () => {
    const m = await measure(`https://127.0.0.1:${port}`, { ...client(), insecureSkipVerify: false });
    assert.equal(m.value, null);
    assert.match(m.detail ?? '', /^Prometheus unreachable: .*certificate.*\(its certificate is not signed by a trusted CA: set prometheus\.tls_config\.ca_file\)$/);
    const other = await measure(`https://127.0.0.1:${port}`, { ca: pem(certs.otherCa), ...client(), insecureSkipVerify: false });
    assert.match(other.detail ?? '', /set prometheus\.tls_config\.ca_file/);
  });

  it('insecure_skip_verify answers without the CA', async () => {
    assert.equal((await measure(`https://127.0.0.1:${port}`, { ...client(), insecureSkipVerify: true })).value, 1);
  });

  it('without the client certificate, Prometheus refuses the handshake and the detail says to set cert_file and key_file', async () => {
    const m = await measure(`https://127.0.0.1:${port}`, { ca: pem(certs.ca), insecureSkipVerify: false });
    assert.equal(m.value, null);
    assert.match(m.detail ?? '', /^Prometheus unreachable: .*certificate required \(it asks for a client certificate: set prometheus\.tls_config\.cert_file and key_file\)$/);
    assert.doesNotMatch(m.detail ?? '', /\n|rec_layer/, 'OpenSSL\'s internals are left out');
  });
});
