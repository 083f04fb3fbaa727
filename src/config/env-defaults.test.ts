import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, formatProblem } from './errors.js';
import { policyJsonSchema, type JsonSchema } from './json-schema.js';
import { parsePolicy } from './load-policy.js';
import type { Policy } from './policy.js';

type Env = Record<string, string | undefined>;

/** One array element per line, so that line N of the file is element N - 1. */
const yaml = (...lines: string[]): string => lines.join('\n') + '\n';

/** Service `web` with one rule; `container` and `above` are written as given. Lines: 5 container, 11 above. */
const service = (container: string, above: string, top: string[] = []): string =>
  yaml(
    'version: 1', //                  1
    ...top,
    'services:', //                   2 (+ top)
    '  web:', //                      3
    '    match:', //                  4
    `      container: ${container}`, // 5
    '    signals:', //                6
    '      up:', //                   7
    '        container: running', //  8
    '    rules:', //                  9
    '      - name: down', //          10
    `        above: ${above}`, //     11
    '        signal: up',
  );

const load = (text: string, env: Env = {}): Policy => parsePolicy(text, 'p.yaml', env);

/** The problems of a refused policy as `file:line: path: message`. */
function problems(text: string, env: Env = {}): string[] {
  try {
    load(text, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.problems.map(formatProblem);
  }
  assert.fail('the policy was accepted');
}

const rule = (p: Policy) => p.services.web?.rules[0];
const containerName = (p: Policy): string | undefined => (p.services.web?.match.kind === 'container' ? p.services.web.match.name : undefined);

describe('${VAR:-default} in the policy', () => {
  it('uses the default when the variable is unset, and a number stays a number', () => {
    assert.deepEqual(rule(load(service('web', '${THRESHOLD:-0.05}')))?.above, 0.05);
  });

  it('uses the default when the variable is set but empty, as POSIX sh does', () => {
    assert.deepEqual(rule(load(service('web', '${THRESHOLD:-0.05}'), { THRESHOLD: '' }))?.above, 0.05);
  });

  it('uses the variable when it is set, with the type of its value', () => {
    assert.deepEqual(rule(load(service('web', '${THRESHOLD:-0.05}'), { THRESHOLD: '0.2' }))?.above, 0.2);
  });

  it('substitutes defaults inside a longer string; ${VAR} set empty stays empty', () => {
    assert.equal(containerName(load(service('${PREFIX:-app}-${NAME}', '0.05'), { NAME: 'web' })), 'app-web');
    assert.equal(containerName(load(service('${PREFIX:-app}-${NAME}', '0.05'), { PREFIX: '', NAME: 'web' })), 'app-web');
    assert.equal(containerName(load(service('x${PREFIX}-${NAME}', '0.05'), { PREFIX: '', NAME: 'web' })), 'x-web');
    assert.equal(containerName(load(service('${PREFIX:-app}-${NAME}', '0.05'), { PREFIX: 'shop', NAME: 'web' })), 'shop-web');
  });

  it('takes ${VAR:-} as an empty default', () => {
    assert.equal(containerName(load(service('web${SUFFIX:-}', '0.05'))), 'web');
  });

  it('ends the default at the first }', () => {
    assert.equal(containerName(load(service('"${NAME:-web}}"', '0.05'))), 'web}');
  });

  it('a quoted reference stays a string, refused where a number is expected, on its line', () => {
    assert.deepEqual(problems(service('web', '"${THRESHOLD:-0.05}"')), ['p.yaml:11: services.web.rules[0].above: expected a number']);
  });

  it('a default YAML cannot read as a value stays text, for the schema to refuse', () => {
    assert.deepEqual(problems(service('web', '${THRESHOLD:-*a}')), ['p.yaml:11: services.web.rules[0].above: expected a number']);
  });

  it('an unset variable without a default is still a problem on its line; one with a default is not', () => {
    assert.deepEqual(problems(service('${NAME}-${SUFFIX:-web}', '${THRESHOLD:-0.05}')), ['p.yaml:5: environment variable NAME is not set']);
  });

  it('in a multi-line query, an unset variable is reported on its own line beside a default', () => {
    const text = yaml(
      'version: 1',
      'prometheus:',
      '  url: ${PROM_URL:-http://127.0.0.1:9090}',
      'services:',
      '  web:',
      '    match: {container: web}',
      '    signals:',
      '      errors:',
      '        prometheus: |',
      '          sum(rate(${ERRORS:-http_errors_total}[1m]))',
      '            / ${DENOM}',
      '    rules:',
      '      - {name: errors, signal: errors, above: 0.05}',
    );
    assert.deepEqual(problems(text), ['p.yaml:11: environment variable DENOM is not set']);
    const policy = load(text, { DENOM: 'sum(rate(http_requests_total[1m]))' });
    assert.equal(policy.prometheus?.url, 'http://127.0.0.1:9090');
    const errors = policy.services.web?.signals.errors;
    assert.equal(errors?.kind === 'prometheus' ? errors.query : undefined, 'sum(rate(http_errors_total[1m]))\n  / sum(rate(http_requests_total[1m]))\n');
  });
});

describe('${VAR:-default} in secrets', () => {
  const message = (instead: string) => `a default for a secret would write it in the policy; use ${instead}`;
  const channelSecret = message('"${ENV_VAR}" (or "${ENV_VAR:-}") or FIELD_file');
  const urlPassword = message('a password from "${ENV_VAR}" without a default');

  /** A policy with `lines` after `notifications:` (lines 2 on) and a minimal service after them. */
  const withNotifications = (...lines: string[]): string =>
    yaml('version: 1', 'notifications:', ...lines, 'services:', '  web:', '    match: {container: web}', '    signals: {up: {container: running}}', '    rules: [{name: down, signal: up, below: 1}]');

  it('refuses a default for a channel secret, whether or not the variable is set, naming each line', () => {
    const text = withNotifications(
      '  pager:', //                                                           3
      '    pagerduty: {routing_key: "${PD_KEY:-R0123456789}"}', //            4
      '  chat:', //                                                            5
      '    slack: {webhook_url: "${SLACK_URL:-https://hooks.slack.com/x}"}', // 6
      '  hook:', //                                                            7
      '    webhook:', //                                                       8
      '      url: https://hooks.example.com/in', //                           9
      '      secret: "prefix-${HOOK_SECRET:-abc}"', //                        10
    );
    const want = [
      `p.yaml:4: notifications.pager.pagerduty.routing_key: ${channelSecret.replace('FIELD', 'routing_key')}`,
      `p.yaml:6: notifications.chat.slack.webhook_url: ${channelSecret.replace('FIELD', 'webhook_url')}`,
      `p.yaml:10: notifications.hook.webhook.secret: ${channelSecret.replace('FIELD', 'secret')}`,
    ];
    assert.deepEqual(problems(text), want);
    assert.deepEqual(problems(text, { PD_KEY: 'k', SLACK_URL: 'https://hooks.slack.com/y', HOOK_SECRET: 's' }), want);
  });

  it('never shows the default of a secret in the problem', () => {
    const text = withNotifications('  pager:', '    pagerduty: {routing_key: "${PD_KEY:-R0123456789}"}');
    assert.ok(problems(text).every((line) => !line.includes('R0123456789')));
  });

  it('accepts an empty default for a secret: ${VAR:-} writes nothing', () => {
    const policy = load(withNotifications('  pager:', '    pagerduty: {routing_key: "${PD_KEY:-}"}'), { PD_KEY: 'k' });
    const pager = policy.notifications.pager;
    assert.equal(pager?.kind === 'pagerduty' ? pager.routingKey : undefined, 'k');
  });

  it('accepts a default SMTP URL without credentials; refuses one with a password', () => {
    const email = (url: string) => withNotifications('  mail:', `    email: {smtp_url: "${url}", from: a@example.com, to: [b@example.com]}`);
    const policy = load(email('${SMTP_URL:-smtp://127.0.0.1:25}'));
    const mail = policy.notifications.mail;
    assert.equal(mail?.kind === 'email' ? mail.smtpUrl : undefined, 'smtp://127.0.0.1:25');
    assert.equal(load(email('smtp://rollguard:${SMTP_PASSWORD:-}@mail:25'), { SMTP_PASSWORD: 'pw' }).notifications.mail?.kind, 'email');
    assert.deepEqual(problems(email('${SMTP_URL:-smtp://rollguard:pw@mail:25}')), [
      `p.yaml:4: notifications.mail.email.smtp_url: ${channelSecret.replace('FIELD', 'smtp_url')}`,
    ]);
  });

  it('accepts a default URL without a password, or with the password from the environment', () => {
    const prometheus = (url: string) => yaml('version: 1', 'prometheus:', `  url: ${url}`, 'services: {}');
    assert.equal(load(prometheus('${PROM_URL:-http://127.0.0.1:9090}')).prometheus?.url, 'http://127.0.0.1:9090');
    assert.equal(load(prometheus('http://${PROM_USER:-rollguard}:${PROM_PASSWORD}@prom:9090'), { PROM_PASSWORD: 'pw' }).prometheus?.url, 'http://rollguard:pw@prom:9090');
    assert.equal(load(prometheus('http://rollguard:${PROM_PASSWORD:-}@prom:9090'), { PROM_PASSWORD: 'pw' }).prometheus?.url, 'http://rollguard:pw@prom:9090');
  });

  it('refuses a default that writes a URL password, in the Prometheus, HTTP check and webhook URLs', () => {
    const text = yaml(
      'version: 1', //                                                        1
      'prometheus:', //                                                       2
      '  url: http://rollguard:${PROM_PASSWORD:-hunter2}@prom:9090', //      3
      'notifications:', //                                                    4
      '  hook:', //                                                           5
      '    webhook:', //                                                      6
      '      url: "${HOOK_URL:-https://bot:pw@hooks.example.com/in}"', //    7
      '      secret: ${HOOK_SECRET}', //                                      8
      'services:', //                                                         9
      '  web:', //                                                            10
      '    match: {container: web}', //                                       11
      '    signals:', //                                                      12
      '      ready: {http: {url: "http://probe:${PROBE_PASSWORD:-pw}@127.0.0.1:8000/ready"}}', // 13
      '    rules: [{name: down, signal: ready, below: 1}]',
    );
    assert.deepEqual(problems(text, { PROM_PASSWORD: 'set', HOOK_SECRET: 'x' }), [
      `p.yaml:3: prometheus.url: ${urlPassword}`,
      `p.yaml:7: notifications.hook.webhook.url: ${urlPassword}`,
      `p.yaml:13: services.web.signals.ready.http.url: ${urlPassword}`,
    ]);
  });
});

describe('${VAR:-default} in the JSON Schema', () => {
  it('lets an editor accept ${THRESHOLD:-0.05} where a number is expected, as the loader does', () => {
    const patterns: string[] = [];
    const walk = (s: unknown): void => {
      if (Array.isArray(s)) s.forEach(walk);
      else if (typeof s === 'object' && s !== null) {
        const schema = s as JsonSchema;
        if (typeof schema.pattern === 'string' && schema.pattern.includes('\\$\\{')) patterns.push(schema.pattern);
        Object.values(schema).forEach(walk);
      }
    };
    walk(policyJsonSchema());
    assert.ok(patterns.length > 0);
    for (const pattern of new Set(patterns)) {
      const re = new RegExp(pattern, 'u');
      for (const ok of ['${THRESHOLD}', '${THRESHOLD:-0.05}', '${FLAG:-}']) assert.match(ok, re);
      for (const bad of ['${THRESHOLD:-0.05}}', '${THRESHOLD:0.05}', '0.05']) assert.doesNotMatch(bad, re);
    }
  });
});
