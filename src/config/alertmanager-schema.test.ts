import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, formatProblem } from './errors.js';
import { parsePolicy } from './load-policy.js';

const yaml = (...lines: string[]): string => lines.join('\n') + '\n';

/** A service `web` whose rule reads the alertmanager signal `paged`; `top` goes before `services:`. */
function policy(top: string[] = [], signal = '      paged: {alertmanager: {alertname: HighErrorRate, matchers: {severity: critical}}}', recovery: string[] = []): string {
  return yaml(
    'version: 1',
    ...top,
    'services:',
    '  web:',
    '    match: {container: web}',
    '    signals:',
    signal,
    '      up: {container: running}',
    '    rules:',
    '      - {name: paged, signal: paged, above: 0, for: 1, action: rollback}',
    ...recovery,
  );
}

function problems(text: string, env: Record<string, string> = {}): string[] {
  try {
    parsePolicy(text, 'p.yaml', env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map(formatProblem);
    throw err;
  }
  assert.fail('expected the policy to be refused');
}

const AM = 'alertmanager: {url: "http://127.0.0.1:9093"}';

describe('alertmanager in the policy', () => {
  it('types an alertmanager signal with the default service label, and keeps the url without its trailing slash', () => {
    const p = parsePolicy(policy(['alertmanager: {url: "http://127.0.0.1:9093/"}']), 'p.yaml', {});
    assert.deepEqual(p.services.web?.signals.paged, { kind: 'alertmanager', name: 'paged', alertname: 'HighErrorRate', matchers: { severity: 'critical' }, serviceLabel: 'service' });
    assert.deepEqual(p.alertmanager, { url: 'http://127.0.0.1:9093', serviceLabel: 'service', silence: undefined });
  });

  it('takes the service label and the silence from the top-level block, with their defaults', () => {
    const p = parsePolicy(policy(['alertmanager: {url: "http://127.0.0.1:9093", service_label: app, silence: {}}']), 'p.yaml', {});
    assert.equal(p.services.web?.signals.paged?.kind === 'alertmanager' && p.services.web.signals.paged.serviceLabel, 'app');
    assert.deepEqual(p.alertmanager, { url: 'http://127.0.0.1:9093', serviceLabel: 'app', silence: { forMs: 900_000 } });
    const short = parsePolicy(policy(['alertmanager: {url: "http://am:9093", silence: {for: 5m}}']), 'p.yaml', {});
    assert.deepEqual(short.alertmanager, { url: 'http://am:9093', serviceLabel: 'service', silence: { forMs: 300_000 } });
    assert.equal(parsePolicy(policy(['alertmanager: {url: "http://am:9093", silence: {for: 1h}}']), 'p.yaml', {}).alertmanager?.silence?.forMs, 3_600_000);
  });

  it('matchers default to none', () => {
    const p = parsePolicy(policy([AM], '      paged: {alertmanager: {alertname: HighErrorRate}}'), 'p.yaml', {});
    assert.deepEqual(p.services.web?.signals.paged?.kind === 'alertmanager' && p.services.web.signals.paged.matchers, {});
  });

  it('refuses an alertmanager signal, or the silence, without alertmanager.url, with their lines', () => {
    assert.deepEqual(problems(policy()), [
      'p.yaml:6: services.web.signals.paged.alertmanager: an alertmanager signal needs the top-level alertmanager.url',
    ]);
    assert.deepEqual(problems(policy(['alertmanager:', '  service_label: app', '  silence: {for: 5m}'], '      paged: {container: running}')), [
      'p.yaml:4: alertmanager.silence: the silence needs alertmanager.url',
    ]);
    assert.equal(parsePolicy(policy(['alertmanager: {service_label: app}'], '      paged: {container: running}'), 'p.yaml', {}).alertmanager?.url, undefined, 'nothing needs it');
  });

  it('refuses a signal without alertname, a bad label name and an unknown key, with their lines', () => {
    assert.deepEqual(problems(policy([AM], '      paged: {alertmanager: {matchers: {"1bad": x}, alert: X}}')).sort(), [
      'p.yaml:7: services.web.signals.paged.alertmanager.alert: unknown key',
      'p.yaml:7: services.web.signals.paged.alertmanager.alertname: required',
      'p.yaml:7: services.web.signals.paged.alertmanager.matchers.1bad: label names are letters, digits and _, not starting with a digit',
    ]);
  });

  it('refuses a bad service label, a silence shorter than a minute and a URL with a query', () => {
    const found = problems(policy(['alertmanager: {url: "http://am:9093/?x=1", service_label: "app-name", silence: {for: 30s}}']));
    assert.equal(found.length, 3, found.join('\n'));
    assert.ok(found.some((p) => p.includes('alertmanager.service_label: label names are letters')));
    assert.ok(found.some((p) => p.includes('alertmanager.silence.for: expected a duration from 1m to 1h')));
    assert.ok(found.some((p) => p.includes('alertmanager.url: a query string or fragment cannot be used')));
  });

  it('refuses a silence longer than an hour, with its line', () => {
    assert.deepEqual(problems(policy(['alertmanager:', '  url: "http://am:9093"', '  silence:', '    for: 2h'])), [
      'p.yaml:5: alertmanager.silence.for: expected a duration from 1m to 1h, such as 15m',
    ]);
  });

  it('refuses the url under silence: there is one url, at the top of the block', () => {
    assert.deepEqual(problems(policy(['alertmanager:', '  url: "http://am:9093"', '  silence: {url: "http://am:9093"}'])), [
      'p.yaml:4: alertmanager.silence.url: unknown key',
    ]);
  });

  it('refuses a literal password in the URL, and takes one from the environment', () => {
    assert.deepEqual(problems(policy(['alertmanager:', '  url: "http://rollguard:hunter2@am:9093"'])), [
      'p.yaml:3: alertmanager.url: a password in a URL is a secret and must not be written in the policy; use "${ENV_VAR}" for the URL or its password',
    ]);
    const p = parsePolicy(policy(['alertmanager:', '  url: "http://rollguard:${AM_PASSWORD}@am:9093"']), 'p.yaml', { AM_PASSWORD: 'pw' });
    assert.equal(p.alertmanager?.url, 'http://rollguard:pw@am:9093');
  });

  it('takes an alertmanager signal as a recovery criterion, silence or not: the API tells the alert\'s state while silenced', () => {
    const recovery = ['    recovery:', '      - {signal: paged, below: 1}'];
    assert.equal(parsePolicy(policy(['alertmanager: {url: "http://am:9093", silence: {}}'], undefined, recovery), 'p.yaml', {}).services.web?.recovery.length, 1);
  });

  it('a signal with alertmanager and another kind is refused', () => {
    assert.deepEqual(problems(policy([AM], '      paged: {alertmanager: {alertname: X}, container: running}')), [
      'p.yaml:7: services.web.signals.paged: set exactly one of prometheus, http, container or alertmanager',
    ]);
  });
});
