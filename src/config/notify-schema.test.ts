import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, formatProblem } from './errors.js';
import { parsePolicy } from './load-policy.js';

const SERVICE = `version: 1
services:
  web:
    match: {container: web}
    signals: {ready: {http: {url: "http://127.0.0.1:8000/ready"}}}
    rules: [{name: ready, signal: ready, below: 1, for: 3, severity: P0, action: rollback}]
`;

function problems(text: string, env: Record<string, string> = {}, file = 'p.yaml'): string[] {
  try {
    parsePolicy(text, file, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n');
    throw err;
  }
  return [];
}

describe('notification policy', () => {
  it('reads channels, routes, escalation, maintenance and digest with secrets from the environment', () => {
    const p = parsePolicy(`${SERVICE}    notify: {P1: [chat]}
notifications:
  oncall-email: {email: {smtp_url: "\${SMTP_URL}", from: rollguard@example.com, to: [oncall@example.com]}}
  pager: {pagerduty: {routing_key: "\${PD_KEY}"}}
  chat: {slack: {webhook_url: "\${SLACK_URL}"}}
  ci: {webhook: {url: "https://ci.example.com/hook", secret: "\${HOOK_SECRET}"}}
routes: {P0: [pager, oncall-email, chat], P1: [oncall-email, chat], P2: [chat], detected: [chat]}
escalation: {contacts: ["DevOps Lead: @devops-oncall"]}
maintenance: {file: {path: /var/www/maintenance.html}}
digest: {schedule: "0 8 * * *", to: [oncall-email]}
`, 'p.yaml', { SMTP_URL: 'smtp://bot:pw@127.0.0.1:25', PD_KEY: 'k', SLACK_URL: 'https://hooks.slack.com/services/T/B/X', HOOK_SECRET: 's' });
    assert.deepEqual(p.notifications.pager, { kind: 'pagerduty', name: 'pager', routingKey: 'k', url: 'https://events.pagerduty.com/v2/enqueue' });
    assert.deepEqual(p.notifications['oncall-email'], { kind: 'email', name: 'oncall-email', smtpUrl: 'smtp://bot:pw@127.0.0.1:25', from: 'rollguard@example.com', to: ['oncall@example.com'] });
    assert.deepEqual(p.routes.P0, ['pager', 'oncall-email', 'chat']);
    assert.deepEqual(p.services.web?.notify, { P1: ['chat'] });
    assert.deepEqual(p.escalation, ['DevOps Lead: @devops-oncall']);
    assert.deepEqual(p.maintenance, { kind: 'file', path: '/var/www/maintenance.html', content: 'System maintenance in progress.\n', timeoutMs: 30_000 });
    assert.equal(p.digest?.schedule, '0 8 * * *');
  });

  it('reads a secret from its _file, relative to the policy file, without the trailing newline', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'rg-secret-'));
    writeFileSync(path.join(dir, 'pd.key'), 'from-file\n');
    const p = parsePolicy(`${SERVICE}notifications:\n  pager: {pagerduty: {routing_key_file: pd.key}}\n`, path.join(dir, 'p.yaml'), {});
    assert.equal(p.notifications.pager?.kind === 'pagerduty' && p.notifications.pager.routingKey, 'from-file');
  });

  it('refuses secrets written in the policy, naming the line and the way to give them', () => {
    assert.deepEqual(problems(`${SERVICE}notifications:
  pager: {pagerduty: {routing_key: abc123}}
  chat: {slack: {webhook_url: "https://hooks.slack.com/services/T/B/X"}}
  mail: {email: {smtp_url: "smtp://bot:pw@mail:25", from: a@b.c, to: [d@e.f]}}
`), [
      'p.yaml:8: notifications.pager.pagerduty.routing_key: a secret must not be written in the policy; use "${ENV_VAR}" or routing_key_file',
      'p.yaml:9: notifications.chat.slack.webhook_url: a secret must not be written in the policy; use "${ENV_VAR}" or webhook_url_file',
      'p.yaml:10: notifications.mail.email.smtp_url: a secret must not be written in the policy; use "${ENV_VAR}" or smtp_url_file',
    ]);
  });

  it('allows an SMTP URL without credentials inline', () => {
    assert.deepEqual(problems(`${SERVICE}notifications:\n  mail: {email: {smtp_url: "smtp://127.0.0.1:25", from: a@b.c, to: [d@e.f]}}\n`), []);
  });

  it('names unknown channels in routes, service notify and digest, and checks channel kinds', () => {
    assert.deepEqual(problems(`${SERVICE}    notify: {P0: [pagr]}
notifications:
  mail: {email: {smtp_url: "smtp://127.0.0.1:25", from: a@b.c, to: [d@e.f]}}
routes: {P0: [mail, chatt], detected: [mail]}
digest: {schedule: "0 8 * * *", to: [nope]}
`), [
      'p.yaml:7: services.web.notify.P0[0]: unknown channel "pagr"; defined: mail',
      'p.yaml:10: routes.P0[1]: unknown channel "chatt"; defined: mail',
      'p.yaml:10: routes.detected[0]: "mail" is not a chat channel; deployment announcements go to slack or webhook channels only',
      'p.yaml:11: digest.to[0]: unknown channel "nope"; defined: mail',
    ]);
  });

  it('rejects a channel with two kinds, a missing secret, a bad cron and an empty maintenance block', () => {
    assert.deepEqual(problems(`${SERVICE}notifications:
  two: {slack: {webhook_url_file: a}, webhook: {url: "http://127.0.0.1:1/", secret_file: b}}
  nokey: {pagerduty: {}}
digest: {schedule: "every morning", to: [two]}
maintenance: {}
`), [
      'p.yaml:8: notifications.two: set exactly one of email, pagerduty, slack or webhook',
      'p.yaml:9: notifications.nokey.pagerduty: set exactly one of routing_key or routing_key_file',
      'p.yaml:10: digest.to[0]: "two" is not an email channel',
      'p.yaml:10: digest.schedule: expected a cron expression such as "0 8 * * *"',
      'p.yaml:11: maintenance: set exactly one of file or command',
    ]);
  });
});

describe('signature: standard checks its secret when the policy loads', () => {
  const policy = (secret: string): string => [
    'version: 1',
    'notifications:',
    '  hook:',
    '    webhook:',
    '      url: https://hooks.example.com/rollguard',
    `      secret: \${HOOK_SECRET}`,
    '      signature: standard',
    'services: {}',
  ].join('\n');
  const problemsOf = (secret: string): string[] => {
    try {
      parsePolicy(policy(secret), 'p.yaml', { HOOK_SECRET: secret });
      return [];
    } catch (err) {
      return (err as ConfigError).problems.map(formatProblem);
    }
  };

  it('a whsec_ secret that is not base64 is refused with the line, without showing it; a raw or whsec_ base64 secret loads', () => {
    assert.deepEqual(problemsOf('whsec_not*base64!'), ['p.yaml:4: notifications.hook.webhook.secret: the secret starts with whsec_ but the rest is not base64 (see standardwebhooks.com)']);
    assert.deepEqual(problemsOf('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'), []);
    assert.deepEqual(problemsOf('a-raw-shared-secret'), []);
  });
});
