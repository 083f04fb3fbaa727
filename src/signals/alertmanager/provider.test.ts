import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { AlertmanagerSignal } from '../../config/policy.js';
import type { ProbeContext } from '../provider.js';
import { measure } from '../registry.js';
import { AlertmanagerProvider, alertsQuery, quoteLabelValue } from './provider.js';

const NOW = new Date('2026-11-30T01:00:00Z');
const DEPLOYED = Date.parse('2026-11-30T00:55:00Z');
const signal: AlertmanagerSignal = { kind: 'alertmanager', name: 'paged', alertname: 'HighErrorRate', matchers: { severity: 'critical' }, serviceLabel: 'service' };
const LABELS = { alertname: 'HighErrorRate', service: 'web', severity: 'critical' };

function ctx(over: Partial<ProbeContext> = {}): ProbeContext {
  return { template: { service: 'web', container: 'web-1', image: 'app:v2', version: 'v2' }, containerId: 'c1', at: NOW, deployedAt: DEPLOYED, ...over };
}

/** An alert as Alertmanager's GET /api/v2/alerts lists it. */
function listed(startsAt: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    labels: LABELS, annotations: { summary: 'web serves 20 % errors' }, startsAt, endsAt: '2026-11-30T01:04:00.000Z', updatedAt: startsAt,
    fingerprint: 'f1', receivers: [{ name: 'rollguard' }], status: { state: 'active', silencedBy: [], inhibitedBy: [] }, generatorURL: 'http://prom/graph',
    ...over,
  };
}

interface Seen { path: string; query: URLSearchParams; authorization?: string }

/** Alertmanager's API on a loopback port: each test sets what `/api/v2/alerts` answers. */
describe('AlertmanagerProvider against an HTTP server answering /api/v2/alerts', () => {
  let server: http.Server;
  let base: string;
  let seen: Seen[];
  let answer: (res: http.ServerResponse) => void;

  before(async () => {
    server = http.createServer((req, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      seen.push({ path: u.pathname, query: u.searchParams, authorization: req.headers.authorization });
      if (u.pathname !== '/api/v2/alerts') return void res.writeHead(404).end();
      answer(res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  beforeEach(() => {
    seen = [];
    answer = (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('[]');
  });
  const json = (body: unknown) => (res: http.ServerResponse): void => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));

  it('is 1 while a matching alert that started after the deploy is active, naming it in the detail', async () => {
    answer = json([listed('2026-11-30T00:58:00.123456789Z')]);
    const m = await new AlertmanagerProvider(base).measure(signal, ctx());
    assert.equal(m.value, 1);
    assert.equal(m.detail, 'HighErrorRate active since 2026-11-30T00:58:00.123Z: web serves 20 % errors');
  });

  it('is 1 for a silenced alert too: a silence mutes the notification, not the fault', async () => {
    answer = json([listed('2026-11-30T00:58:00Z', { status: { state: 'suppressed', silencedBy: ['s-1'], inhibitedBy: [] } })]);
    const m = await new AlertmanagerProvider(base).measure(signal, ctx());
    assert.equal(m.value, 1);
    assert.match(m.detail ?? '', /\(suppressed\)/);
  });

  it('is 0 when Alertmanager holds no such alert', async () => {
    const m = await new AlertmanagerProvider(base).measure(signal, ctx());
    assert.deepEqual({ value: m.value, detail: m.detail }, { value: 0, detail: undefined });
  });

  it('is 0 for an alert that started before the deploy (the previous version\'s), and 1 for it without a deploy time', async () => {
    answer = json([listed('2026-11-30T00:50:00Z')]);
    const provider = new AlertmanagerProvider(base);
    const m = await provider.measure(signal, ctx());
    assert.equal(m.value, 0);
    assert.equal(m.detail, 'no HighErrorRate alert since the deploy (1 started before the deploy, not counted)');
    assert.equal((await provider.measure(signal, ctx({ deployedAt: DEPLOYED - 60 * 60_000 }))).value, 1, 'an older deploy counts it');
    assert.equal((await provider.measure(signal, ctx({ deployedAt: undefined }))).value, 1, 'recovery verification counts every active alert');
  });

  it('asks for every unresolved alert, filtered on the alertname, the service label and the matchers', async () => {
    await new AlertmanagerProvider(base).measure(signal, ctx());
    const [call] = seen;
    assert.equal(call?.path, '/api/v2/alerts');
    assert.deepEqual(['active', 'silenced', 'inhibited', 'unprocessed'].map((k) => call?.query.get(k)), ['true', 'true', 'true', 'true']);
    assert.deepEqual(call?.query.getAll('filter').sort(), ['alertname="HighErrorRate"', 'service="web"', 'severity="critical"']);
  });

  it('lets the matchers name the service label, and uses the configured one otherwise', async () => {
    const provider = new AlertmanagerProvider(base);
    await provider.measure({ ...signal, matchers: { service: 'shop-web' } }, ctx());
    await provider.measure({ ...signal, serviceLabel: 'app' }, ctx());
    assert.deepEqual(seen[0]?.query.getAll('filter').sort(), ['alertname="HighErrorRate"', 'service="shop-web"']);
    assert.deepEqual(seen[1]?.query.getAll('filter').sort(), ['alertname="HighErrorRate"', 'app="web"', 'severity="critical"']);
  });

  it('does not count an alert of another service, should the filter not have been applied', async () => {
    answer = json([listed('2026-11-30T00:58:00Z', { labels: { ...LABELS, service: 'api' } })]);
    assert.equal((await new AlertmanagerProvider(base).measure(signal, ctx())).value, 0);
  });

  it('is no data, never a breach or 0, when Alertmanager answers 500, garbage, or too late', async () => {
    const provider = new AlertmanagerProvider(base, { timeoutMs: 200 });
    answer = (res) => void res.writeHead(500).end('internal error');
    const failed = await provider.measure(signal, ctx());
    assert.deepEqual({ value: failed.value, detail: failed.detail }, { value: null, detail: `Alertmanager ${base} did not answer: HTTP 500: internal error` });
    answer = (res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('<html>proxy login</html>');
    assert.equal((await provider.measure(signal, ctx())).value, null);
    answer = json({ status: 'success', data: [] });
    const wrong = await provider.measure(signal, ctx());
    assert.deepEqual({ value: wrong.value, detail: wrong.detail }, { value: null, detail: `Alertmanager ${base} answered something else than a list of alerts` });
    answer = json([{ labels: LABELS, startsAt: 'yesterday' }]);
    assert.equal((await provider.measure(signal, ctx())).value, null);
    answer = () => {};
    const late = await provider.measure(signal, ctx());
    assert.deepEqual({ value: late.value, detail: late.detail }, { value: null, detail: `Alertmanager ${base} did not answer: no answer in time` });
    assert.ok(late.latencyMs < 2_000);
  });

  it('waits no longer than the watch interval', async () => {
    answer = () => {};
    const m = await new AlertmanagerProvider(base).measure(signal, ctx({ intervalMs: 150 }));
    assert.equal(m.value, null);
    assert.ok(m.latencyMs < 1_500, `took ${m.latencyMs} ms`);
  });

  it('sends the URL\'s credentials as basic auth and never shows them', async () => {
    const withPassword = base.replace('://', '://rollguard:s3cret%21@');
    answer = (res) => void res.writeHead(503).end();
    const m = await new AlertmanagerProvider(withPassword).measure(signal, ctx());
    assert.equal(seen[0]?.authorization, `Basic ${Buffer.from('rollguard:s3cret!').toString('base64')}`);
    assert.equal(m.value, null);
    assert.equal(m.detail?.includes('s3cret'), false, m.detail);
  });

  it('is no data when nothing listens', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const m = await new AlertmanagerProvider(`http://127.0.0.1:${port}`).measure(signal, ctx());
    assert.equal(m.value, null);
    assert.match(m.detail ?? '', /ECONNREFUSED/);
  });

  it('is the provider the registry picks for the alertmanager kind, and counts every matching alert', async () => {
    answer = json([listed('2026-11-30T00:58:00Z'), listed('2026-11-30T00:59:00Z', { fingerprint: 'f2', labels: { ...LABELS, instance: 'b' } })]);
    const m = await measure({ alertmanager: new AlertmanagerProvider(base) }, signal, ctx());
    assert.equal(m.value, 1);
    assert.match(m.detail ?? '', /since 2026-11-30T00:58:00.000Z.*\(2 alerts\)$/);
  });
});

describe('alertmanager matchers', () => {
  it('quote values as Alertmanager parses them: backslash, double quote and newline escaped', () => {
    assert.equal(quoteLabelValue('web'), '"web"');
    assert.equal(quoteLabelValue('a"b\\c\nd'), '"a\\"b\\\\c\\nd"');
    assert.equal(quoteLabelValue('x,y=z}'), '"x,y=z}"');
  });

  it('are sent one filter each, URL-encoded', () => {
    const q = alertsQuery({ alertname: 'Errors "5xx"', service: 'web' });
    assert.match(q, /^active=true&silenced=true&inhibited=true&unprocessed=true&filter=/);
    assert.deepEqual(new URLSearchParams(q).getAll('filter'), ['alertname="Errors \\"5xx\\""', 'service="web"']);
  });
});
