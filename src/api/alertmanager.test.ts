import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { AlertBook } from '../signals/alertmanager/book.js';
import { alertmanagerPayload, receiveAlerts } from './alertmanager.js';
import { createMetrics } from './metrics.js';
import { startApi, type ApiSource } from './server.js';

const TOKEN = 'alertmanager-test-token';
const silent = pino({ level: 'silent' });

/** A notification as Alertmanager 0.25 sends it (webhook payload version 4). */
function notification(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    receiver: 'rollguard',
    status: 'firing',
    alerts: [{
      status: 'firing',
      labels: { alertname: 'HighErrorRate', service: 'web', severity: 'critical', instance: '127.0.0.1:18080', job: 'web' },
      annotations: { summary: 'web serves 20 % errors' },
      startsAt: '2026-11-30T00:58:01.739266876Z',
      endsAt: '0001-01-01T00:00:00Z',
      generatorURL: 'http://127.0.0.1:9090/graph?g0.expr=x&g0.tab=1',
      fingerprint: '1a30ba71cca2921f',
    }],
    groupLabels: { alertname: 'HighErrorRate' },
    commonLabels: { alertname: 'HighErrorRate', service: 'web', severity: 'critical' },
    commonAnnotations: { summary: 'web serves 20 % errors' },
    externalURL: 'http://127.0.0.1:9093',
    version: '4',
    groupKey: '{}:{alertname="HighErrorRate"}',
    truncatedAlerts: 0,
    ...over,
  };
}

describe('Alertmanager webhook payload', () => {
  it('accepts a version 4 notification as Alertmanager sends it, nanosecond times and Go\'s zero time included', () => {
    const parsed = alertmanagerPayload.parse(notification());
    assert.equal(parsed.alerts[0]?.fingerprint, '1a30ba71cca2921f');
    assert.equal(parsed.truncatedAlerts, 0);
  });

  it('ignores keys a later Alertmanager may add, and defaults what older ones leave out', () => {
    const { truncatedAlerts: _t, commonAnnotations: _c, ...older } = notification({ orgId: 1 });
    const parsed = alertmanagerPayload.parse(older);
    assert.equal(parsed.truncatedAlerts, 0);
    assert.deepEqual(parsed.commonAnnotations, {});
    assert.equal('orgId' in parsed, false);
  });

  it('refuses another payload version, a bad status, a bad time and a missing fingerprint, naming each', () => {
    const bad = notification({
      version: '3',
      status: 'pending',
      alerts: [{ status: 'firing', labels: { alertname: 'X' }, startsAt: 'yesterday', endsAt: '0001-01-01T00:00:00Z' }],
    });
    const result = alertmanagerPayload.safeParse(bad);
    assert.equal(result.success, false);
    const paths = result.error?.issues.map((i) => i.path.join('.')).sort();
    assert.deepEqual(paths, ['alerts.0.fingerprint', 'alerts.0.startsAt', 'status', 'version']);
  });

  it('receiveAlerts records firing alerts and removes resolved ones', () => {
    const book = new AlertBook();
    const now = new Date('2026-11-30T01:00:00Z');
    assert.deepEqual(receiveAlerts(book, alertmanagerPayload.parse(notification()), silent, now), { firing: 1, resolved: 0, held: 1 });
    const resolved = notification({ status: 'resolved', alerts: [{ ...(notification().alerts as object[])[0], status: 'resolved', endsAt: '2026-11-30T00:59:59Z' }] });
    assert.deepEqual(receiveAlerts(book, alertmanagerPayload.parse(resolved), silent, now), { firing: 0, resolved: 1, held: 0 });
  });

  it('receiveAlerts logs each notification at info, with its alertnames and counts', () => {
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
    receiveAlerts(new AlertBook(), alertmanagerPayload.parse(notification()), log, new Date('2026-11-30T01:00:00Z'));
    assert.equal(lines.length, 1);
    assert.deepEqual({ level: lines[0]?.level, msg: lines[0]?.msg, alertnames: lines[0]?.alertnames, firing: lines[0]?.firing, status: lines[0]?.status },
      { level: 30, msg: 'Alertmanager notification received', alertnames: ['HighErrorRate'], firing: 1, status: 'firing' });
  });
});

describe('POST /api/v1/alertmanager', () => {
  const book = new AlertBook();
  let api: Awaited<ReturnType<typeof startApi>>;
  let open: Awaited<ReturnType<typeof startApi>>;
  const source: ApiSource = {
    health: () => ({ ok: true }),
    status: () => ({}),
    history: async () => [],
    hold: async () => ({}),
    release: async () => ({}),
    markMigrations: async () => ({}),
    rollback: async () => ({}),
    alertmanager: (payload) => receiveAlerts(book, payload, silent),
  };
  const post = (base: string, body: unknown, auth?: string): Promise<Response> =>
    fetch(`${base}/api/v1/alertmanager`, { method: 'POST', headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) }, body: typeof body === 'string' ? body : JSON.stringify(body) });

  before(async () => {
    api = await startApi('127.0.0.1:0', source, createMetrics(), silent, TOKEN);
    open = await startApi('127.0.0.1:0', source, createMetrics(), silent, undefined);
  });
  after(async () => {
    await api.close();
    await open.close();
  });

  it('takes a notification with the API token into the book', async () => {
    const res = await post(api.url, notification(), `Bearer ${TOKEN}`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { firing: 1, resolved: 0, held: 1 });
    assert.equal(book.firing({ alertname: 'HighErrorRate', service: 'web' }, new Date()).length, 1);
  });

  it('is 401 without the token or with a wrong one, and changes nothing', async () => {
    const before = book.size;
    const other = notification({ alerts: [{ ...(notification().alerts as object[])[0], fingerprint: 'other' }] });
    assert.equal((await post(api.url, other)).status, 401);
    assert.equal((await post(api.url, other, 'Bearer wrong')).status, 401);
    assert.equal(book.size, before);
  });

  it('is 403 when the daemon has no API token, like every state-changing route', async () => {
    assert.equal((await post(open.url, notification())).status, 403);
  });

  it('is 400 naming each problem of a body that does not fit', async () => {
    const res = await post(api.url, { version: '4', status: 'firing', alerts: [{ status: 'on fire' }] }, `Bearer ${TOKEN}`);
    assert.equal(res.status, 400);
    const { error } = (await res.json()) as { error: string };
    for (const key of ['receiver', 'alerts.0.status', 'alerts.0.labels', 'alerts.0.startsAt', 'alerts.0.endsAt', 'alerts.0.fingerprint', 'groupLabels', 'commonLabels', 'externalURL']) {
      assert.ok(error.includes(`${key}:`), `${key} is named in: ${error}`);
    }
    assert.equal((await post(api.url, 'not json', `Bearer ${TOKEN}`)).status, 400);
  });

  it('reads a notification larger than the other routes\' 64 KiB limit', async () => {
    const alerts = Array.from({ length: 300 }, (_, i) => ({ ...(notification().alerts as object[])[0], fingerprint: `big-${i}`, annotations: { description: 'x'.repeat(300) } }));
    const res = await post(api.url, notification({ alerts }), `Bearer ${TOKEN}`);
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { firing: number }).firing, 300);
  });
});
