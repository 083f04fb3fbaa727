import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AlertmanagerSignal } from '../../config/policy.js';
import type { ProbeContext } from '../provider.js';
import { measure } from '../registry.js';
import { AlertBook, type ReceivedAlert } from './book.js';
import { AlertmanagerProvider } from './provider.js';

const NOW = new Date('2026-11-30T01:00:00Z');
const signal: AlertmanagerSignal = { kind: 'alertmanager', name: 'paged', alertname: 'HighErrorRate', matchers: { severity: 'critical' }, serviceLabel: 'service' };

function ctx(service: string, at = NOW): ProbeContext {
  return { template: { service, container: `${service}-1`, image: 'app:v2', version: 'v2' }, containerId: 'c1', at };
}

function firing(fingerprint: string, labels: Record<string, string>, over: Partial<ReceivedAlert> = {}): ReceivedAlert {
  return { status: 'firing', fingerprint, labels, annotations: {}, startsAt: '2026-11-30T00:58:00Z', endsAt: '0001-01-01T00:00:00Z', ...over };
}

describe('AlertmanagerProvider', () => {
  it('is 0, not no data, before any alert arrived', async () => {
    const m = await new AlertmanagerProvider(new AlertBook()).measure(signal, ctx('web'));
    assert.equal(m.value, 0);
  });

  it('is 1 while a matching alert fires for the service under watch, naming it in the detail', async () => {
    const book = new AlertBook();
    book.record([firing('f1', { alertname: 'HighErrorRate', service: 'web', severity: 'critical' }, { annotations: { summary: 'web serves 20 % errors' } })], NOW);
    const m = await new AlertmanagerProvider(book).measure(signal, ctx('web'));
    assert.equal(m.value, 1);
    assert.equal(m.detail, 'HighErrorRate firing since 2026-11-30T00:58:00.000Z: web serves 20 % errors');
  });

  it('is 0 for another service, another alertname or another label value', async () => {
    const book = new AlertBook();
    book.record([
      firing('api', { alertname: 'HighErrorRate', service: 'api', severity: 'critical' }),
      firing('latency', { alertname: 'HighLatency', service: 'web', severity: 'critical' }),
      firing('warning', { alertname: 'HighErrorRate', service: 'web', severity: 'warning' }),
    ], NOW);
    assert.equal((await new AlertmanagerProvider(book).measure(signal, ctx('web'))).value, 0);
  });

  it('goes back to 0 once the alert resolves', async () => {
    const book = new AlertBook();
    const provider = new AlertmanagerProvider(book);
    const labels = { alertname: 'HighErrorRate', service: 'web', severity: 'critical' };
    book.record([firing('f1', labels)], NOW);
    assert.equal((await provider.measure(signal, ctx('web'))).value, 1);
    book.record([firing('f1', labels, { status: 'resolved', endsAt: '2026-11-30T01:00:30Z' })], NOW);
    assert.equal((await provider.measure(signal, ctx('web'))).value, 0);
  });

  it('matches the service by the configured label, or by a value the matchers give it', async () => {
    const book = new AlertBook();
    book.record([
      firing('app', { alertname: 'HighErrorRate', app: 'web', severity: 'critical' }),
      firing('job', { alertname: 'HighErrorRate', service: 'shop-web', severity: 'critical' }),
    ], NOW);
    const provider = new AlertmanagerProvider(book);
    assert.equal((await provider.measure({ ...signal, serviceLabel: 'app' }, ctx('web'))).value, 1);
    assert.equal((await provider.measure(signal, ctx('web'))).value, 0);
    assert.equal((await provider.measure({ ...signal, matchers: { severity: 'critical', service: 'shop-web' } }, ctx('web'))).value, 1);
  });

  it('is the provider the registry picks for the alertmanager kind', async () => {
    const book = new AlertBook();
    book.record([firing('f1', { alertname: 'HighErrorRate', service: 'web', severity: 'critical' }), firing('f2', { alertname: 'HighErrorRate', service: 'web', severity: 'critical', instance: 'b' })], NOW);
    const m = await measure({ alertmanager: new AlertmanagerProvider(book) }, signal, ctx('web'));
    assert.equal(m.value, 1);
    assert.match(m.detail ?? '', /\(2 alerts firing\)$/);
  });
});
