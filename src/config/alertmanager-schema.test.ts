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

describe('alertmanager in the policy', () => {
  it('types an alertmanager signal with the default service label', () => {
    const p = parsePolicy(policy(), 'p.yaml', {});
    assert.deepEqual(p.services.web?.signals.paged, { kind: 'alertmanager', name: 'paged', alertname: 'HighErrorRate', matchers: { severity: 'critical' }, serviceLabel: 'service' });
    assert.equal(p.alertmanager, undefined);
  });

  it('takes the service label and the silence from the top-level block, with their defaults', () => {
    const p = parsePolicy(policy(['alertmanager: {service_label: app, silence: {url: "http://127.0.0.1:9093/"}}']), 'p.yaml', {});
    assert.equal(p.services.web?.signals.paged?.kind === 'alertmanager' && p.services.web.signals.paged.serviceLabel, 'app');
    assert.deepEqual(p.alertmanager, { serviceLabel: 'app', silence: { url: 'http://127.0.0.1:9093', forMs: 900_000 } });
    const short = parsePolicy(policy(['alertmanager: {silence: {url: "http://am:9093", for: 5m}}']), 'p.yaml', {});
    assert.deepEqual(short.alertmanager, { serviceLabel: 'service', silence: { url: 'http://am:9093', forMs: 300_000 } });
  });

  it('matchers default to none', () => {
    const p = parsePolicy(policy([], '      paged: {alertmanager: {alertname: HighErrorRate}}'), 'p.yaml', {});
    assert.deepEqual(p.services.web?.signals.paged?.kind === 'alertmanager' && p.services.web.signals.paged.matchers, {});
  });

  it('refuses a signal without alertname, a bad label name and an unknown key, with their lines', () => {
    assert.deepEqual(problems(policy([], '      paged: {alertmanager: {matchers: {"1bad": x}, alert: X}}')).sort(), [
      'p.yaml:6: services.web.signals.paged.alertmanager.alert: unknown key',
      'p.yaml:6: services.web.signals.paged.alertmanager.alertname: required',
      'p.yaml:6: services.web.signals.paged.alertmanager.matchers.1bad: label names are letters, digits and _, not starting with a digit',
    ]);
  });

  it('refuses a bad service label, a silence shorter than a minute and a URL with a query', () => {
    const found = problems(policy(['alertmanager: {service_label: "app-name", silence: {url: "http://am:9093/?x=1", for: 30s}}']));
    assert.equal(found.length, 3, found.join('\n'));
    assert.ok(found.some((p) => p.includes('alertmanager.service_label: label names are letters')));
    assert.ok(found.some((p) => p.includes('alertmanager.silence.for: expected a duration of at least 1m')));
    assert.ok(found.some((p) => p.includes('alertmanager.silence.url: a query string or fragment cannot be used')));
  });

  it('refuses a literal password in the silence URL, and takes one from the environment', () => {
    assert.deepEqual(problems(policy(['alertmanager:', '  silence: {url: "http://rollguard:hunter2@am:9093"}'])), [
      'p.yaml:3: alertmanager.silence.url: a password in a URL is a secret and must not be written in the policy; use "${ENV_VAR}" for the URL or its password',
    ]);
    const p = parsePolicy(policy(['alertmanager:', '  silence: {url: "http://rollguard:${AM_PASSWORD}@am:9093"}']), 'p.yaml', { AM_PASSWORD: 'pw' });
    assert.equal(p.alertmanager?.silence?.url, 'http://rollguard:pw@am:9093');
  });

  it('refuses an alertmanager signal as a recovery criterion while the silence would mute its resolution', () => {
    const recovery = ['    recovery:', '      - {signal: paged, below: 1}'];
    assert.deepEqual(problems(policy(['alertmanager: {silence: {url: "http://am:9093"}}'], undefined, recovery)), [
      'p.yaml:12: services.web.recovery[0].signal: an alertmanager signal cannot be a recovery criterion while alertmanager.silence is set: the silence mutes the alert\'s resolution until the revert ends',
    ]);
    assert.equal(parsePolicy(policy([], undefined, recovery), 'p.yaml', {}).services.web?.recovery.length, 1, 'without a silence it may be one');
  });

  it('a signal with alertmanager and another kind is refused', () => {
    assert.deepEqual(problems(policy([], '      paged: {alertmanager: {alertname: X}, container: running}')), [
      'p.yaml:6: services.web.signals.paged: set exactly one of prometheus, http, container or alertmanager',
    ]);
  });
});
